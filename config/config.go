// Package config holds the bridge's configuration (docs/contract.md section 5), read from the
// environment with envconfig and checked by [Config.Validate]. A bad environment stops the
// bridge at start-up with one error that names every bad variable, never just the first.
//
// A variable that is set but empty means its default, exactly like an unset one (envconfig on
// its own would treat FOO= as the value "" and fail to parse it as a duration). This keeps
// docker-compose and Kubernetes manifests that list every variable with a blank value working.
package config

import (
	"log/slog"
	"reflect"
	"strings"
	"time"
)

// Config is the bridge's whole configuration. Each field's tags name its environment variable
// (envconfig), its default and a one-line description (desc, printed by [Usage]). The
// variables of the Reducto and NATS ecosystems keep their usual unprefixed names; the bridge's
// own start with BRIDGE_.
//
// Secrets have type [Secret], so printing or logging a Config never shows them.
type Config struct {
	// APIKey is the Reducto API key, sent as "Authorization: Bearer". No default. The bridge
	// requires it ([Config.RequireAPIKey]); the demo, which talks to the built-in simulator,
	// does not.
	APIKey Secret `envconfig:"REDUCTO_API_KEY" desc:"Reducto API key, sent as Authorization: Bearer (required by run, not by demo)"`

	// BaseURL is the Reducto API base URL, an absolute http(s) URL: another region or a
	// simulator. Default https://platform.reducto.ai.
	BaseURL string `envconfig:"REDUCTO_BASE_URL" default:"https://platform.reducto.ai" desc:"Reducto API base URL (EU/AU regions, or a simulator)"`

	// NATSURL is the raw, comma-separated list of NATS server URLs, as nats.Connect takes it;
	// [Config.NATSURLs] splits it. Each entry has the scheme nats, tls, ws or wss (websocket
	// and other URLs cannot be mixed), a host and an optional port (1-65535; default 4222, or
	// 80/443 for ws/wss); a bare host or host:port means nats:// (tls:// with NATS_CA or
	// NATS_CERT), as in nats.go. Default empty, which means the bridge runs an embedded
	// server (see [Config.Embedded]); the NATS credential and TLS variables are then refused.
	NATSURL string `envconfig:"NATS_URL" desc:"NATS server URL(s), comma separated; empty runs an embedded server"`

	// NATSCreds is the path of a NATS credentials file (JWT and nkey seed). Default empty.
	NATSCreds string `envconfig:"NATS_CREDS" desc:"path of a NATS credentials file (JWT + nkey)"`

	// NATSNKey is the path of an nkey seed file. Default empty.
	NATSNKey string `envconfig:"NATS_NKEY" desc:"path of an nkey seed file"`

	// NATSUser is the NATS user name, used with NATSPassword. Default empty.
	NATSUser string `envconfig:"NATS_USER" desc:"NATS user name"`

	// NATSPassword is the password of NATSUser. Default empty.
	NATSPassword Secret `envconfig:"NATS_PASSWORD" desc:"NATS password (with NATS_USER)"`

	// NATSToken is a NATS authentication token. Default empty.
	NATSToken Secret `envconfig:"NATS_TOKEN" desc:"NATS authentication token"`

	// NATSCA is the path of a PEM bundle of CAs that sign the NATS server's certificate.
	// Default empty: the system roots.
	NATSCA string `envconfig:"NATS_CA" desc:"path of the CA bundle that verifies the NATS server (TLS)"`

	// NATSCert is the path of the TLS client certificate; set together with NATSKey.
	// Default empty.
	NATSCert string `envconfig:"NATS_CERT" desc:"path of the TLS client certificate (with NATS_KEY)"`

	// NATSKey is the path of the TLS client key; set together with NATSCert. Default empty.
	NATSKey string `envconfig:"NATS_KEY" desc:"path of the TLS client key (with NATS_CERT)"`

	// SubjectPrefix is the first token(s) of every subject the bridge uses (P in the
	// contract): one or more dot-separated tokens without wildcards. Default reducto.
	SubjectPrefix string `envconfig:"BRIDGE_SUBJECT_PREFIX" default:"reducto" desc:"prefix of every subject (P.track.<id>, P.job.>, P.cancel...)"`

	// EmbeddedNATSAddr is the host:port the embedded NATS server listens on, used only when
	// NATSURL is empty. Default 127.0.0.1:4222. Port 0 asks for a free port; note that
	// nats-server itself reads port 0 as 4222, so the caller must pass -1 for it.
	// A host that is not loopback (127.0.0.0/8, ::1, localhost) needs EmbeddedNATSToken: the
	// embedded server never listens unauthenticated off loopback.
	EmbeddedNATSAddr string `envconfig:"BRIDGE_EMBEDDED_NATS_ADDR" default:"127.0.0.1:4222" desc:"host:port of the embedded NATS server (only when NATS_URL is empty; not loopback needs BRIDGE_EMBEDDED_NATS_TOKEN)"`

	// EmbeddedNATSToken is the token every client of the embedded server must present; the
	// bridge's own in-process connection uses it too. Only with NATS_URL empty. Default empty:
	// no authentication, allowed only on a loopback BRIDGE_EMBEDDED_NATS_ADDR.
	EmbeddedNATSToken Secret `envconfig:"BRIDGE_EMBEDDED_NATS_TOKEN" desc:"token the embedded NATS server requires of every client (only when NATS_URL is empty)"`

	// DataDir is the JetStream storage directory of the embedded server. Default ./data.
	DataDir string `envconfig:"BRIDGE_DATA_DIR" default:"./data" desc:"JetStream storage directory of the embedded server"`

	// PollInitialInterval is the delay before the first poll of a newly tracked job.
	// Default 2s.
	PollInitialInterval time.Duration `envconfig:"BRIDGE_POLL_INITIAL_INTERVAL" default:"2s" desc:"delay before the first poll of a tracked job"`

	// PollMaxInterval caps the exponential backoff between two polls of one job; it is at
	// least PollInitialInterval. Default 30s.
	PollMaxInterval time.Duration `envconfig:"BRIDGE_POLL_MAX_INTERVAL" default:"30s" desc:"cap of the exponential backoff between polls"`

	// PollMultiplier is the backoff growth factor between polls, at least 1. Default 1.5.
	PollMultiplier float64 `envconfig:"BRIDGE_POLL_MULTIPLIER" default:"1.5" desc:"backoff growth factor (>= 1)"`

	// PollJitter is the randomization factor of each poll interval: an interval d becomes a
	// random value in [d*(1-j), d*(1+j)]. In [0, 1); 0 means no jitter. Default 0.2.
	PollJitter float64 `envconfig:"BRIDGE_POLL_JITTER" default:"0.2" desc:"randomization factor of each interval, 0 <= j < 1 (0 = none)"`

	// JobTTL is the age after which a job that is still not terminal gets an expired event.
	// Default 12h, the lifetime of a Reducto job id.
	JobTTL time.Duration `envconfig:"BRIDGE_JOB_TTL" default:"12h" desc:"give up on a job (event expired) after this age"`

	// RateLimit is the number of GET /job requests per second of the API key, shared by all
	// the replicas that use the key (each takes its share of the live ones); fractions are
	// allowed. Default 100 (Reducto allows 200/s on GET /job per API key).
	RateLimit float64 `envconfig:"BRIDGE_RATE_LIMIT" default:"100" desc:"GET /job requests per second of the API key, shared by its live replicas"`

	// RateLimitAll is the number of Reducto requests per second of the API key on all
	// endpoints together (GET /job, GET /jobs, cancel, submit), shared like RateLimit.
	// Default 500 (Reducto allows 1,000/s on all endpoints per API key).
	RateLimitAll float64 `envconfig:"BRIDGE_RATE_LIMIT_ALL" default:"500" desc:"Reducto requests per second of the API key on all endpoints, shared by its live replicas"`

	// Concurrency is the maximum number of Reducto requests in flight. Default 32.
	Concurrency int `envconfig:"BRIDGE_CONCURRENCY" default:"32" desc:"Reducto requests in flight at most"`

	// HTTPAddr is the host:port of the health, readiness, metrics and webhook endpoints.
	// Default :8080 (all interfaces).
	HTTPAddr string `envconfig:"BRIDGE_HTTP_ADDR" default:":8080" desc:"host:port of health, readiness, metrics (and webhooks when BRIDGE_WEBHOOK_ADDR is empty)"`

	// WebhookAddr is the host:port of the public webhook listener, apart from the operator
	// endpoints: when set, POST /webhooks/reducto is served there only (with a connection cap,
	// small header limit and short timeouts) and no longer on HTTPAddr. Default empty: webhooks
	// are served on HTTPAddr, as before the variable existed.
	WebhookAddr string `envconfig:"BRIDGE_WEBHOOK_ADDR" desc:"host:port of the public webhook listener; empty = webhooks on BRIDGE_HTTP_ADDR"`

	// EventSource is the CloudEvents ce-source header of every event. Default reducto-bridge.
	EventSource string `envconfig:"BRIDGE_EVENT_SOURCE" default:"reducto-bridge" desc:"CloudEvents ce-source of every event"`

	// LogLevel is the minimum level logged: debug, info, warn or error, case-insensitive
	// (slog's offsets such as warn+2 work too). Default info.
	LogLevel slog.Level `envconfig:"BRIDGE_LOG_LEVEL" default:"info" desc:"debug, info, warn or error"`

	// LogFormat is the log output format: text or json. Default text.
	LogFormat string `envconfig:"BRIDGE_LOG_FORMAT" default:"text" desc:"text or json"`

	// PublicURL is the public base URL of this bridge, an absolute http(s) URL. When set,
	// submissions ask Reducto to send webhooks to <url>/webhooks/reducto. Default empty: no
	// webhooks, polling only.
	PublicURL string `envconfig:"BRIDGE_PUBLIC_URL" desc:"public base URL; when set, P.submit asks for webhooks to <url>/webhooks/reducto"`

	// WebhookSecret is the Svix signing secret (whsec_ followed by base64) that verifies
	// signed webhooks. Default empty.
	WebhookSecret Secret `envconfig:"BRIDGE_WEBHOOK_SECRET" desc:"Svix signing secret (whsec_...) for signed webhooks"`

	// WebhookToken is the shared token required on unsigned (direct-mode) webhooks.
	// Default empty.
	WebhookToken Secret `envconfig:"BRIDGE_WEBHOOK_TOKEN" desc:"shared token required on unsigned (direct-mode) webhooks"`

	// HTTPTimeout bounds each Reducto HTTP request. Default 30s.
	HTTPTimeout time.Duration `envconfig:"BRIDGE_HTTP_TIMEOUT" default:"30s" desc:"timeout of one Reducto request"`

	// RetryAfterMax caps the Retry-After delay the bridge honours from Reducto, so that one
	// odd header cannot park a job for hours. Default 60s.
	RetryAfterMax time.Duration `envconfig:"BRIDGE_RETRY_AFTER_MAX" default:"60s" desc:"cap on a Retry-After the bridge honours"`

	// DrainTimeout bounds graceful shutdown. Default 30s.
	DrainTimeout time.Duration `envconfig:"BRIDGE_DRAIN_TIMEOUT" default:"30s" desc:"bound on graceful shutdown"`

	// StreamReplicas is the replica count of the streams and the object store, 1 to 5; more
	// than 1 needs a NATS cluster. Default 1 (use 3 on a cluster).
	StreamReplicas int `envconfig:"BRIDGE_STREAM_REPLICAS" default:"1" desc:"replicas of the streams and the object store, 1-5 (3 on a cluster)"`

	// EventsMaxAge is how long events are kept in the REDUCTO_EVENTS stream. Default 720h
	// (30 days).
	EventsMaxAge time.Duration `envconfig:"BRIDGE_EVENTS_MAX_AGE" default:"720h" desc:"how long events are kept in REDUCTO_EVENTS"`

	// DuplicateWindow is the JetStream deduplication window of the events stream, between
	// 100ms and EventsMaxAge. Default 1h.
	DuplicateWindow time.Duration `envconfig:"BRIDGE_DUPLICATE_WINDOW" default:"1h" desc:"dedup window of REDUCTO_EVENTS (100ms to BRIDGE_EVENTS_MAX_AGE)"`

	// EventsMaxBytes caps the size of REDUCTO_EVENTS in bytes (its MaxBytes); 0 means no cap
	// but EventsMaxAge. A full events stream refuses events and pauses polling (nothing is
	// lost), so size it to the disk. A smaller cap set by hand survives a restart. Default 0.
	EventsMaxBytes int64 `envconfig:"BRIDGE_EVENTS_MAX_BYTES" default:"0" desc:"largest size of REDUCTO_EVENTS in bytes; 0 = bounded by BRIDGE_EVENTS_MAX_AGE only (a full stream pauses polling)"`

	// TrackMaxJobs caps the outstanding jobs, the messages of REDUCTO_TRACK (its MaxMsgs); 0
	// means unlimited. A full track stream refuses new tracks (the producer gets an error)
	// and never drops an outstanding job. A smaller cap set by hand survives a restart.
	// Default 1000000.
	TrackMaxJobs int64 `envconfig:"BRIDGE_TRACK_MAX_JOBS" default:"1000000" desc:"most outstanding jobs (REDUCTO_TRACK messages); 0 = unlimited; beyond it tracks are refused"`

	// TrackMaxBytes caps the size of REDUCTO_TRACK in bytes (its MaxBytes); 0 means unlimited.
	// Default 1073741824 (1 GiB).
	TrackMaxBytes int64 `envconfig:"BRIDGE_TRACK_MAX_BYTES" default:"1073741824" desc:"largest size of REDUCTO_TRACK in bytes; 0 = unlimited; beyond it tracks are refused"`

	// AckWait is the AckWait of the track consumer: how long a replica may hold a job before
	// JetStream redelivers it to another. It must exceed HTTPTimeout. Default 1m.
	AckWait time.Duration `envconfig:"BRIDGE_ACK_WAIT" default:"1m" desc:"AckWait of the track consumer (> BRIDGE_HTTP_TIMEOUT)"`

	// WebhookPollInterval is how often a job whose end Reducto announces to this bridge by
	// webhook (one submitted through P.submit with BRIDGE_PUBLIC_URL set) is polled anyway, as
	// a safety net for a lost webhook. Default 5m.
	WebhookPollInterval time.Duration `envconfig:"BRIDGE_WEBHOOK_POLL_INTERVAL" default:"5m" desc:"safety-net poll interval of jobs that will be announced by webhook"`

	// ListSweep turns on list sweeps: while jobs are tracked, one replica per API key pages
	// GET /jobs and fetches at once every tracked job the list shows finished (package
	// sweep). Default true.
	ListSweep bool `envconfig:"BRIDGE_LIST_SWEEP" default:"true" desc:"page GET /jobs to find finished tracked jobs (one replica per API key)"`

	// ListInterval is the time between two list sweeps: the detection lag of covered jobs is
	// about uniform over it. Default 1.8s, so that the p99 lag stays under the 2-second loop's.
	ListInterval time.Duration `envconfig:"BRIDGE_LIST_INTERVAL" default:"1.8s" desc:"time between two list sweeps"`

	// ListMaxRate is the most GET /jobs pages per second the sweep sends: the list's share of
	// Reducto's all-endpoints limit (1,000/s per key). Pages also wait on
	// BRIDGE_RATE_LIMIT_ALL. Default 50: a sweep of 100,000 outstanding jobs (200 pages) takes 4 s.
	ListMaxRate float64 `envconfig:"BRIDGE_LIST_MAX_RATE" default:"50" desc:"GET /jobs pages per second at most"`

	// ListSafetyInterval is the per-job poll interval of jobs the list sweep covers, a safety
	// net for a list that misses a job. Default 2m.
	ListSafetyInterval time.Duration `envconfig:"BRIDGE_LIST_SAFETY_INTERVAL" default:"2m" desc:"safety-net poll interval of jobs the list sweep covers"`

	// ListTrackSlack is how long before its tracking a job may have been created and still
	// be looked for in the list (the sweep pages that much below the oldest tracked job).
	// Default 30s.
	ListTrackSlack time.Duration `envconfig:"BRIDGE_LIST_TRACK_SLACK" default:"30s" desc:"list sweep: how long before its tracking a job may have been created"`

	// ListDeepAge is the least age of the list sweep's deep tier (more when 0.5% of the
	// reported jobs ended older): while jobs older than it are at
	// most 1% of the jobs the sweep reports, pages whose jobs were all created more than it
	// before the sweep are read every 16th sweep only. Default 135s.
	ListDeepAge time.Duration `envconfig:"BRIDGE_LIST_DEEP_AGE" default:"135s" desc:"list sweep: pages of jobs older than this (or than 99.5% of the reported jobs, when longer) are read every 16th sweep while such jobs are rare"`

	// TrackAll tracks every job the account's list shows, so that every Reducto job of the
	// account gets an event with no producer change. Needs ListSweep. Default false.
	TrackAll bool `envconfig:"BRIDGE_TRACK_ALL" default:"false" desc:"track every job GET /jobs shows (needs BRIDGE_LIST_SWEEP)"`

	// Pprof serves Go's profiling endpoints under /debug/pprof/ on the HTTP address, for
	// diagnosing memory and CPU use. Default false.
	Pprof bool `envconfig:"BRIDGE_PPROF" default:"false" desc:"serve /debug/pprof/ on the HTTP address"`

	// AllowInsecureReducto allows an http:// REDUCTO_BASE_URL whose host is not loopback
	// (127.0.0.0/8, ::1, localhost). Over plain http the API key crosses the network in
	// clear. Default false: http:// only for a local simulator.
	AllowInsecureReducto bool `envconfig:"BRIDGE_ALLOW_INSECURE_REDUCTO" default:"false" desc:"allow an http:// REDUCTO_BASE_URL that is not loopback (the API key travels in clear)"`

	// ReductoMaxBody is the largest Reducto answer the bridge reads, in bytes; a larger one is
	// refused without being read (a GET /job that keeps answering too much is polled until
	// the job expires). Default 268435456 (256 MiB).
	ReductoMaxBody int64 `envconfig:"BRIDGE_REDUCTO_MAX_BODY" default:"268435456" desc:"largest Reducto answer read, in bytes (a larger one is refused unread)"`

	// CaptureURLResults downloads a completed job's URL result ({"type":"url",...}, whose
	// presigned link expires) into REDUCTO_RESULTS before the event, which then carries
	// result_ref next to Reducto's result: a replay of the stream after the link has expired
	// still finds the result. It costs the download (bandwidth, up to CaptureMaxBytes per
	// job) and its storage for BRIDGE_EVENTS_MAX_AGE. Default true (package capture).
	CaptureURLResults bool `envconfig:"BRIDGE_CAPTURE_URL_RESULTS" default:"true" desc:"download URL results into REDUCTO_RESULTS before the event (result_ref next to result), so replays outlive the presigned link"`
	// CaptureMaxBytes bounds one captured URL result; a larger one is reported without
	// capture, with capture_error saying so. Default 268435456 (256 MiB).
	CaptureMaxBytes int64 `envconfig:"BRIDGE_CAPTURE_MAX_BYTES" default:"268435456" desc:"largest URL result captured, in bytes (a larger one is reported uncaptured, with capture_error)"`

	// The optional restrictions of docs/security.md ("Capabilities and the optional
	// restrictions"). All default to today's behaviour, right for one team per NATS account.

	// CancelTrackedOnly makes P.cancel refuse (403) a job that has neither a track message nor
	// an event: a client can then cancel only jobs this bridge follows. Default false.
	CancelTrackedOnly bool `envconfig:"BRIDGE_CANCEL_TRACKED_ONLY" default:"false" desc:"reducto.cancel refuses jobs this bridge neither tracks nor has an event for"`

	// SubmitWebhooks allows a P.submit body to set its own webhook (async.webhook, or the
	// legacy webhook); false refuses such a body (403). The bridge's own webhook is added
	// either way. Default true.
	SubmitWebhooks bool `envconfig:"BRIDGE_SUBMIT_WEBHOOKS" default:"true" desc:"reducto.submit accepts a caller-set webhook; false refuses one"`

	// RetrackKeepsSchedule makes a new track message for an outstanding job update only its
	// metadata: the job keeps the TTL origin of its first track and its place in the backoff
	// schedule (kept in the KV bucket REDUCTO_TRACKED). Default false: a re-track restarts.
	RetrackKeepsSchedule bool `envconfig:"BRIDGE_RETRACK_KEEPS_SCHEDULE" default:"false" desc:"re-tracking an outstanding job keeps its TTL and poll schedule (KV bucket REDUCTO_TRACKED)"`
}

// NATSURLs returns the NATS server URLs of NATSURL, split at commas and trimmed, without empty
// entries. An empty result means the bridge runs an embedded server.
func (c *Config) NATSURLs() []string {
	var urls []string
	for u := range strings.SplitSeq(c.NATSURL, ",") {
		if u = strings.TrimSpace(u); u != "" {
			urls = append(urls, u)
		}
	}
	return urls
}

// Embedded reports whether the bridge runs its own NATS server (NATS_URL is empty).
func (c *Config) Embedded() bool { return len(c.NATSURLs()) == 0 }

// LogValue implements [slog.LogValuer]: a group keyed by environment variable names, secrets
// redacted and the URLs (NATS_URL, REDUCTO_BASE_URL, BRIDGE_PUBLIC_URL) without their user
// information, so the effective configuration can be logged at start-up in the operator's
// terms.
func (c *Config) LogValue() slog.Value {
	v := reflect.ValueOf(c).Elem()
	t := v.Type()
	attrs := make([]slog.Attr, 0, t.NumField())
	for i := range t.NumField() {
		name := t.Field(i).Tag.Get("envconfig")
		if name == "" {
			continue
		}
		switch name {
		case "NATS_URL":
			// nats://user:password@host and nats://token@host carry credentials.
			attrs = append(attrs, slog.String(name, RedactURLs(c.NATSURL)))
			continue
		case "REDUCTO_BASE_URL", "BRIDGE_PUBLIC_URL":
			// So can https://user:password@host.
			attrs = append(attrs, slog.String(name, RedactURL(v.Field(i).String())))
			continue
		}
		switch x := v.Field(i).Interface().(type) {
		case Secret:
			attrs = append(attrs, slog.Attr{Key: name, Value: x.LogValue()})
		case slog.Level:
			attrs = append(attrs, slog.String(name, x.String()))
		case time.Duration:
			// A string, not JSON's nanoseconds, so it reads like the variable.
			attrs = append(attrs, slog.String(name, x.String()))
		default:
			attrs = append(attrs, slog.Any(name, x))
		}
	}
	return slog.GroupValue(attrs...)
}
