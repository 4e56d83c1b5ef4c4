package config

import (
	"errors"
	"math"
	"slices"
	"strings"
	"testing"
	"time"
)

// validConfig is a valid configuration: the contract's defaults (written out in
// contractDefaults, independent of the default tags) plus an API key.
func validConfig() Config {
	c := contractDefaults
	c.APIKey = "key"
	return c
}

// errVars returns the variable of every VarError in err's tree, in order.
func errVars(err error) []string {
	var vars []string
	var walk func(error)
	walk = func(err error) {
		if ve, ok := err.(*VarError); ok {
			vars = append(vars, ve.Var)
			return
		}
		if j, ok := err.(interface{ Unwrap() []error }); ok {
			for _, e := range j.Unwrap() {
				walk(e)
			}
		}
	}
	walk(err)
	return vars
}

func TestValidate(t *testing.T) {
	tests := []struct {
		name    string
		mutate  func(c *Config)
		wantVar string // "" means valid
	}{
		{"base", func(c *Config) {}, ""},
		{"no api key is valid", func(c *Config) { c.APIKey = "" }, ""},
		{"base url not a url", func(c *Config) { c.BaseURL = "://x" }, "REDUCTO_BASE_URL"},
		{"base url relative", func(c *Config) { c.BaseURL = "/v1" }, "REDUCTO_BASE_URL"},
		{"base url ftp", func(c *Config) { c.BaseURL = "ftp://example.com" }, "REDUCTO_BASE_URL"},
		{"base url empty", func(c *Config) { c.BaseURL = "" }, "REDUCTO_BASE_URL"},
		{"base url simulator", func(c *Config) { c.BaseURL = "http://127.0.0.1:8081" }, ""},
		{"base url http loopback 127/8", func(c *Config) { c.BaseURL = "http://127.3.2.1:8081" }, ""},
		{"base url http ::1", func(c *Config) { c.BaseURL = "http://[::1]:8081" }, ""},
		{"base url http localhost", func(c *Config) { c.BaseURL = "http://localhost:8081/v1" }, ""},
		{"base url http LOCALHOST.", func(c *Config) { c.BaseURL = "http://LOCALHOST.:8081" }, ""},
		{"base url http remote", func(c *Config) { c.BaseURL = "http://platform.reducto.ai" }, "REDUCTO_BASE_URL"},
		{"base url http private address", func(c *Config) { c.BaseURL = "http://10.0.0.5:8081" }, "REDUCTO_BASE_URL"},
		{"base url http localhost lookalike", func(c *Config) { c.BaseURL = "http://localhost.evil.example" }, "REDUCTO_BASE_URL"},
		{"base url http 127 lookalike", func(c *Config) { c.BaseURL = "http://127.0.0.1.evil.example" }, "REDUCTO_BASE_URL"},
		{"base url http ::ffff:127.0.0.1", func(c *Config) { c.BaseURL = "http://[::ffff:8.8.8.8]" }, "REDUCTO_BASE_URL"},
		{"base url http remote, allowed", func(c *Config) { c.BaseURL, c.AllowInsecureReducto = "http://reducto.internal:8081", true }, ""},
		{"base url https remote", func(c *Config) { c.BaseURL = "https://eu.platform.reducto.ai" }, ""},
		{"reducto max body zero", func(c *Config) { c.ReductoMaxBody = 0 }, "BRIDGE_REDUCTO_MAX_BODY"},
		{"reducto max body negative", func(c *Config) { c.ReductoMaxBody = -1 }, "BRIDGE_REDUCTO_MAX_BODY"},
		{"capture max bytes zero", func(c *Config) { c.CaptureMaxBytes = 0 }, "BRIDGE_CAPTURE_MAX_BYTES"},
		{"capture max bytes negative, capture off: still checked", func(c *Config) { c.CaptureURLResults, c.CaptureMaxBytes = false, -5 }, "BRIDGE_CAPTURE_MAX_BYTES"},
		{"reducto max body 1", func(c *Config) { c.ReductoMaxBody = 1 }, ""},
		{"nats url list", func(c *Config) { c.NATSURL = "nats://a:4222, nats://b:4222" }, ""},
		{"nats url empty entry", func(c *Config) { c.NATSURL = "nats://a:4222,,nats://b:4222" }, "NATS_URL"},
		{"nats password without user", func(c *Config) { c.NATSURL, c.NATSPassword = "nats://a:4222", "pw" }, "NATS_PASSWORD"},
		{"nats user and password", func(c *Config) { c.NATSURL, c.NATSUser, c.NATSPassword = "nats://a:4222", "u", "pw" }, ""},
		{"nats cert without key", func(c *Config) { c.NATSURL, c.NATSCert = "tls://a:4222", "c.pem" }, "NATS_KEY"},
		{"nats key without cert", func(c *Config) { c.NATSURL, c.NATSKey = "tls://a:4222", "k.pem" }, "NATS_CERT"},
		{"nats cert and key", func(c *Config) { c.NATSURL, c.NATSCert, c.NATSKey = "tls://a:4222", "c.pem", "k.pem" }, ""},
		{"prefix wildcard", func(c *Config) { c.SubjectPrefix = "a.*" }, "BRIDGE_SUBJECT_PREFIX"},
		{"prefix empty token", func(c *Config) { c.SubjectPrefix = "a..b" }, "BRIDGE_SUBJECT_PREFIX"},
		{"prefix empty", func(c *Config) { c.SubjectPrefix = "" }, "BRIDGE_SUBJECT_PREFIX"},
		{"prefix two tokens", func(c *Config) { c.SubjectPrefix = "acme.reducto" }, ""},
		{"embedded addr no port", func(c *Config) { c.EmbeddedNATSAddr = "127.0.0.1" }, "BRIDGE_EMBEDDED_NATS_ADDR"},
		{"embedded addr bad port", func(c *Config) { c.EmbeddedNATSAddr = "127.0.0.1:http" }, "BRIDGE_EMBEDDED_NATS_ADDR"},
		{"embedded addr port too big", func(c *Config) { c.EmbeddedNATSAddr = "127.0.0.1:70000" }, "BRIDGE_EMBEDDED_NATS_ADDR"},
		{"embedded addr port 0", func(c *Config) { c.EmbeddedNATSAddr = "127.0.0.1:0" }, ""},
		{"embedded addr 0.0.0.0 without token", func(c *Config) { c.EmbeddedNATSAddr = "0.0.0.0:4222" }, "BRIDGE_EMBEDDED_NATS_ADDR"},
		{"embedded addr 10.0.0.5 without token", func(c *Config) { c.EmbeddedNATSAddr = "10.0.0.5:4222" }, "BRIDGE_EMBEDDED_NATS_ADDR"},
		{"embedded addr all interfaces without token", func(c *Config) { c.EmbeddedNATSAddr = ":4222" }, "BRIDGE_EMBEDDED_NATS_ADDR"},
		{"embedded addr [::] without token", func(c *Config) { c.EmbeddedNATSAddr = "[::]:4222" }, "BRIDGE_EMBEDDED_NATS_ADDR"},
		{"embedded addr host name without token", func(c *Config) { c.EmbeddedNATSAddr = "bridge.internal:4222" }, "BRIDGE_EMBEDDED_NATS_ADDR"},
		{"embedded addr localhost lookalike without token", func(c *Config) { c.EmbeddedNATSAddr = "localhost.evil.example:4222" }, "BRIDGE_EMBEDDED_NATS_ADDR"},
		{"embedded addr 127.0.0.1", func(c *Config) { c.EmbeddedNATSAddr = "127.0.0.1:4222" }, ""},
		{"embedded addr 127.3.2.1", func(c *Config) { c.EmbeddedNATSAddr = "127.3.2.1:4222" }, ""},
		{"embedded addr [::1]", func(c *Config) { c.EmbeddedNATSAddr = "[::1]:4222" }, ""},
		{"embedded addr localhost", func(c *Config) { c.EmbeddedNATSAddr = "localhost:4222" }, ""},
		{"embedded addr 0.0.0.0 with token", func(c *Config) { c.EmbeddedNATSAddr, c.EmbeddedNATSToken = "0.0.0.0:4222", "tok" }, ""},
		{"embedded addr 10.0.0.5 with token", func(c *Config) { c.EmbeddedNATSAddr, c.EmbeddedNATSToken = "10.0.0.5:4222", "tok" }, ""},
		{"embedded addr loopback with token", func(c *Config) { c.EmbeddedNATSToken = "tok" }, ""},
		{"embedded addr 0.0.0.0 ignored with nats url", func(c *Config) { c.EmbeddedNATSAddr, c.NATSURL = "0.0.0.0:4222", "nats://a:4222" }, ""},
		{"embedded token with nats url", func(c *Config) { c.EmbeddedNATSToken, c.NATSURL = "tok", "nats://a:4222" }, "BRIDGE_EMBEDDED_NATS_TOKEN"},
		{"data dir empty when embedded", func(c *Config) { c.DataDir = "" }, "BRIDGE_DATA_DIR"},
		{"data dir empty with nats url", func(c *Config) { c.DataDir, c.NATSURL = "", "nats://a:4222" }, ""},
		{"initial interval zero", func(c *Config) { c.PollInitialInterval = 0 }, "BRIDGE_POLL_INITIAL_INTERVAL"},
		{"max interval negative", func(c *Config) { c.PollMaxInterval = -time.Second }, "BRIDGE_POLL_MAX_INTERVAL"},
		{"max below initial", func(c *Config) { c.PollMaxInterval = time.Second }, "BRIDGE_POLL_MAX_INTERVAL"},
		{"max equals initial", func(c *Config) { c.PollMaxInterval = c.PollInitialInterval }, ""},
		{"multiplier below 1", func(c *Config) { c.PollMultiplier = 0.9 }, "BRIDGE_POLL_MULTIPLIER"},
		{"multiplier NaN", func(c *Config) { c.PollMultiplier = math.NaN() }, "BRIDGE_POLL_MULTIPLIER"},
		{"multiplier Inf", func(c *Config) { c.PollMultiplier = math.Inf(1) }, "BRIDGE_POLL_MULTIPLIER"},
		{"multiplier 1", func(c *Config) { c.PollMultiplier = 1 }, ""},
		{"jitter negative", func(c *Config) { c.PollJitter = -0.1 }, "BRIDGE_POLL_JITTER"},
		{"jitter 1", func(c *Config) { c.PollJitter = 1 }, "BRIDGE_POLL_JITTER"},
		{"jitter NaN", func(c *Config) { c.PollJitter = math.NaN() }, "BRIDGE_POLL_JITTER"},
		{"jitter 0", func(c *Config) { c.PollJitter = 0 }, ""},
		{"ttl zero", func(c *Config) { c.JobTTL = 0 }, "BRIDGE_JOB_TTL"},
		{"rate negative", func(c *Config) { c.RateLimit = -1 }, "BRIDGE_RATE_LIMIT"},
		{"rate zero", func(c *Config) { c.RateLimit = 0 }, "BRIDGE_RATE_LIMIT"},
		{"rate NaN", func(c *Config) { c.RateLimit = math.NaN() }, "BRIDGE_RATE_LIMIT"},
		{"rate all zero", func(c *Config) { c.RateLimitAll = 0 }, "BRIDGE_RATE_LIMIT_ALL"},
		{"rate all infinite", func(c *Config) { c.RateLimitAll = math.Inf(1) }, "BRIDGE_RATE_LIMIT_ALL"},
		{"rate fraction", func(c *Config) { c.RateLimit = 0.5 }, ""},
		{"concurrency zero", func(c *Config) { c.Concurrency = 0 }, "BRIDGE_CONCURRENCY"},
		{"http addr no port", func(c *Config) { c.HTTPAddr = "localhost" }, "BRIDGE_HTTP_ADDR"},
		{"webhook addr no port", func(c *Config) { c.WebhookAddr, c.WebhookToken = "localhost", "t" }, "BRIDGE_WEBHOOK_ADDR"},
		{"webhook addr without token or secret", func(c *Config) { c.WebhookAddr = ":8081" }, "BRIDGE_WEBHOOK_ADDR"},
		{"webhook addr is http addr", func(c *Config) { c.WebhookAddr, c.WebhookToken = c.HTTPAddr, "t" }, "BRIDGE_WEBHOOK_ADDR"},
		{"webhook addr and http addr both port 0", func(c *Config) { c.HTTPAddr, c.WebhookAddr, c.WebhookToken = "127.0.0.1:0", "127.0.0.1:0", "t" }, ""},
		{"webhook addr with token", func(c *Config) { c.WebhookAddr, c.WebhookToken = ":8081", "t" }, ""},
		{"webhook addr with secret", func(c *Config) {
			c.WebhookAddr, c.WebhookSecret = "127.0.0.1:0", "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"
		}, ""},
		{"event source empty", func(c *Config) { c.EventSource = "" }, "BRIDGE_EVENT_SOURCE"},
		{"log format unknown", func(c *Config) { c.LogFormat = "logfmt" }, "BRIDGE_LOG_FORMAT"},
		{"log format json", func(c *Config) { c.LogFormat = "json" }, ""},
		{"public url relative", func(c *Config) { c.PublicURL = "bridge.example.com" }, "BRIDGE_PUBLIC_URL"},
		{"public url https", func(c *Config) { c.PublicURL, c.WebhookToken = "https://bridge.example.com", "t" }, ""},
		{"webhook secret no prefix", func(c *Config) { c.WebhookSecret = "c2VjcmV0" }, "BRIDGE_WEBHOOK_SECRET"},
		{"webhook secret bad base64", func(c *Config) { c.WebhookSecret = "whsec_!!!" }, "BRIDGE_WEBHOOK_SECRET"},
		{"webhook secret empty base64", func(c *Config) { c.WebhookSecret = "whsec_" }, "BRIDGE_WEBHOOK_SECRET"},
		{"webhook secret valid", func(c *Config) { c.WebhookSecret = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw" }, ""},
		{"http timeout zero", func(c *Config) { c.HTTPTimeout = 0 }, "BRIDGE_HTTP_TIMEOUT"},
		{"retry after max zero", func(c *Config) { c.RetryAfterMax = 0 }, "BRIDGE_RETRY_AFTER_MAX"},
		{"drain timeout negative", func(c *Config) { c.DrainTimeout = -time.Second }, "BRIDGE_DRAIN_TIMEOUT"},
		{"replicas zero", func(c *Config) { c.StreamReplicas = 0 }, "BRIDGE_STREAM_REPLICAS"},
		{"replicas six", func(c *Config) { c.StreamReplicas = 6 }, "BRIDGE_STREAM_REPLICAS"},
		{"replicas 3 embedded", func(c *Config) { c.StreamReplicas = 3 }, "BRIDGE_STREAM_REPLICAS"},
		{"replicas 3 cluster", func(c *Config) { c.StreamReplicas, c.NATSURL = 3, "nats://a:4222" }, ""},
		{"events max age zero", func(c *Config) { c.EventsMaxAge = 0 }, "BRIDGE_EVENTS_MAX_AGE"},
		{"dup window too small", func(c *Config) { c.DuplicateWindow = 99 * time.Millisecond }, "BRIDGE_DUPLICATE_WINDOW"},
		{"dup window above max age", func(c *Config) { c.EventsMaxAge = 30 * time.Minute }, "BRIDGE_DUPLICATE_WINDOW"},
		{"dup window equals max age", func(c *Config) { c.DuplicateWindow = c.EventsMaxAge }, ""},
		{"dup window 100ms", func(c *Config) { c.DuplicateWindow = 100 * time.Millisecond }, ""},
		{"events max bytes negative", func(c *Config) { c.EventsMaxBytes = -1 }, "BRIDGE_EVENTS_MAX_BYTES"},
		{"events max bytes set", func(c *Config) { c.EventsMaxBytes = 10 << 30 }, ""},
		{"track max jobs negative", func(c *Config) { c.TrackMaxJobs = -5 }, "BRIDGE_TRACK_MAX_JOBS"},
		{"track max jobs unlimited", func(c *Config) { c.TrackMaxJobs = 0 }, ""},
		{"track max bytes negative", func(c *Config) { c.TrackMaxBytes = -1 }, "BRIDGE_TRACK_MAX_BYTES"},
		{"track max bytes unlimited", func(c *Config) { c.TrackMaxBytes = 0 }, ""},
		{"ack wait equals http timeout", func(c *Config) { c.AckWait = c.HTTPTimeout }, "BRIDGE_ACK_WAIT"},
		{"ack wait zero", func(c *Config) { c.AckWait = 0 }, "BRIDGE_ACK_WAIT"},
		{"webhook poll interval zero", func(c *Config) { c.WebhookPollInterval = 0 }, "BRIDGE_WEBHOOK_POLL_INTERVAL"},
		{"list interval zero", func(c *Config) { c.ListInterval = 0 }, "BRIDGE_LIST_INTERVAL"},
		{"list safety interval negative", func(c *Config) { c.ListSafetyInterval = -time.Second }, "BRIDGE_LIST_SAFETY_INTERVAL"},
		{"list deep age zero", func(c *Config) { c.ListDeepAge = 0 }, "BRIDGE_LIST_DEEP_AGE"},
		{"list track slack negative", func(c *Config) { c.ListTrackSlack = -time.Second }, "BRIDGE_LIST_TRACK_SLACK"},
		{"list max rate zero", func(c *Config) { c.ListMaxRate = 0 }, "BRIDGE_LIST_MAX_RATE"},
		{"track all without the sweep", func(c *Config) { c.TrackAll, c.ListSweep = true, false }, "BRIDGE_TRACK_ALL"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			c := validConfig()
			tt.mutate(&c)
			err := c.Validate()
			if tt.wantVar == "" {
				if err != nil {
					t.Fatalf("Validate() = %v, want nil", err)
				}
				return
			}
			if err == nil {
				t.Fatalf("Validate() = nil, want an error naming %s", tt.wantVar)
			}
			if got := errVars(err); !slices.Equal(got, []string{tt.wantVar}) {
				t.Errorf("Validate() names %v, want exactly [%s]; error: %v", got, tt.wantVar, err)
			}
			if !strings.HasPrefix(err.Error(), tt.wantVar+": ") {
				t.Errorf("Validate() = %q, want it to start with %q", err, tt.wantVar+": ")
			}
		})
	}
}

func TestValidateListsEveryProblem(t *testing.T) {
	c := validConfig()
	c.PollJitter = 2
	c.RateLimit = -1
	c.LogFormat = "xml"
	err := c.Validate()
	want := []string{"BRIDGE_POLL_JITTER", "BRIDGE_RATE_LIMIT", "BRIDGE_LOG_FORMAT"}
	if got := errVars(err); !slices.Equal(got, want) {
		t.Errorf("Validate() names %v, want %v", got, want)
	}
}

func TestRequireAPIKey(t *testing.T) {
	c := validConfig()
	if err := c.RequireAPIKey(); err != nil {
		t.Errorf("RequireAPIKey() with a key = %v, want nil", err)
	}
	c.APIKey = ""
	err := c.RequireAPIKey()
	if !errors.Is(err, ErrRequired) {
		t.Errorf("RequireAPIKey() = %v, want ErrRequired", err)
	}
	var ve *VarError
	if !errors.As(err, &ve) || ve.Var != "REDUCTO_API_KEY" {
		t.Errorf("RequireAPIKey() = %v, want a VarError naming REDUCTO_API_KEY", err)
	}
}

func TestNATSURLs(t *testing.T) {
	tests := []struct {
		raw          string
		want         []string
		wantEmbedded bool
	}{
		{"", nil, true},
		{" , ", nil, true},
		{"nats://a:4222", []string{"nats://a:4222"}, false},
		{"nats://a:4222, nats://b:4222 ,tls://c:4443", []string{"nats://a:4222", "nats://b:4222", "tls://c:4443"}, false},
	}
	for _, tt := range tests {
		t.Run(tt.raw, func(t *testing.T) {
			c := Config{NATSURL: tt.raw}
			if got := c.NATSURLs(); !slices.Equal(got, tt.want) {
				t.Errorf("NATSURLs() = %q, want %q", got, tt.want)
			}
			if got := c.Embedded(); got != tt.wantEmbedded {
				t.Errorf("Embedded() = %v, want %v", got, tt.wantEmbedded)
			}
		})
	}
}

// TestValidateInsecureReductoURL: an http:// REDUCTO_BASE_URL off loopback is refused with a
// message naming both variables and never the URL's password.
func TestValidateInsecureReductoURL(t *testing.T) {
	c := validConfig()
	c.BaseURL = "http://user:pw-secret-41@reducto.internal:8081"
	err := c.Validate()
	if err == nil {
		t.Fatal("Validate() = nil, want an error")
	}
	msg := err.Error()
	for _, want := range []string{"REDUCTO_BASE_URL", "BRIDGE_ALLOW_INSECURE_REDUCTO", "reducto.internal"} {
		if !strings.Contains(msg, want) {
			t.Errorf("Validate() = %q, does not name %s", msg, want)
		}
	}
	if strings.Contains(msg, "pw-secret-41") {
		t.Errorf("Validate() = %q shows the password", msg)
	}
}
