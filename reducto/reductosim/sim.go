// Package reductosim simulates Reducto's REST API as an [http.Handler], so that the bridge can
// be tested, demonstrated and benchmarked without reaching Reducto.
//
// It deliberately does not import the client package (reducto): it is written from the API
// reference alone, so that the client is tested against an independent reading of the API
// rather than against its own assumptions.
//
// Served paths (bearer auth on all but /version, /results and /presigned; a request without an
// Authorization header gets 403 with an HTML page, a wrong key 401 JSON):
//
//	POST /parse_async, /extract_async, /split_async, /pipeline_async   v3 body {input, async{...}}
//	POST /edit_async                         legacy body {document_url, edit_instructions, webhook}
//	GET  /job/{id}                           enhanced job JSON (Idle, Pending, Completed, Failed by
//	                                         default); 404, or 409/404 then 410 once deleted
//	DELETE /job/{id}                         202 for a terminal job, 400 otherwise
//	POST /cancel/{id}                        200 null (also for a terminal job); 404 unknown
//	GET  /jobs?limit=&cursor=&exclude_configs=   newest first, opaque keyset cursor (or
//	                                         offsets, [Options.OffsetCursors]); statuses
//	                                         optionally stale ([Options.ListStaleness])
//	POST /upload                             multipart file, or a presigned URL to PUT to
//	GET  /version                            a JSON string
//	GET  /results/{result_id}                URL results (no auth, like a presigned S3 URL; expiring with [Options.ResultURLTTL])
//
// Job timelines run on a [Clock] (real, scaled or fake); how each job behaves is a [JobSpec],
// chosen per submission by [Options.Spec] or given directly to [Server.Create]. Jobs nobody
// tracks (other traffic on the account) arrive at a rate set by [Background]. Webhooks
// (direct and Svix-signed), rate limits (429 [CODE 2000] and [CODE 1000]) and faults
// ([Faults]) are simulated too; [Server.Stats] tells what happened.
//
// Where the reference marks a behaviour as unconfirmed (401 and 404 bodies, cancel semantics,
// Retry-After, statuses outside the GET /job enum, the GET /jobs cursor and freshness), the
// simulator picks one documented shape and
// makes the alternatives selectable through [Options].
package reductosim

import (
	"context"
	"encoding/base64"
	"encoding/binary"
	"errors"
	"fmt"
	"log/slog"
	"math"
	"math/rand/v2"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"golang.org/x/time/rate"
)

// ErrInvalidOptions is returned by [New] when the options cannot be used.
var ErrInvalidOptions = errors.New("reductosim: invalid options")

// CancelStyle selects how a cancelled job is reported, since Reducto does not document it.
type CancelStyle int

const (
	// CancelAsFailed reports a cancelled job as status "Failed" with error name
	// "JOB_CANCELLED" and reason "Job was cancelled by the user" (the GET /job enum has no
	// Cancelled). It is the default.
	CancelAsFailed CancelStyle = iota
	// CancelAsCancelled reports a cancelled job as status "Cancelled" (the GET /jobs enum has it).
	CancelAsCancelled
)

// Options configures a [Server]. The zero value is usable: no auth, real clock, random seed,
// default job behaviour, no rate limits, no faults, no Svix.
type Options struct {
	// APIKey is the bearer token every authenticated endpoint requires. Empty disables auth.
	APIKey string
	// Clock measures job timelines. Nil means [RealClock].
	Clock Clock
	// Seed makes job ids, default durations and fault draws reproducible. 0 means a random seed
	// (so that a restarted simulator does not hand out job ids seen before).
	Seed int64
	// Spec decides how a job submitted over HTTP behaves. endpoint is the request path (for
	// example "/parse_async") and body the raw request body. Nil means the default: a lognormal
	// duration with median 20s and sigma 0.8, no queueing, linear progress, a completed ~2 KB
	// result (a URL result when a /parse_async body sets settings.force_url_result; other
	// endpoints have no URL results). An empty [JobSpec.Type] is derived from the endpoint.
	Spec func(endpoint string, body []byte) JobSpec
	// Lifecycle reports "Pending" while queued, "InProgress" while running and "Completing" in
	// the last 5% of the running time, as the async-overview docs describe. The default (false)
	// keeps to the GET /job enum of the spec and of the official SDKs: "Idle" while queued,
	// "Pending" while running. GET /jobs reports the same status as GET /job in both modes
	// (its enum has all seven: Pending, Idle, InProgress, Completing, Completed, Failed,
	// Cancelled).
	Lifecycle bool
	// CancelStyle selects how cancelled jobs are reported. Default [CancelAsFailed].
	CancelStyle CancelStyle
	// JobRateLimit limits GET /job/{id} to this many requests per second of real time (token
	// bucket). Excess requests get 429 [CODE 2000]. 0 disables it.
	JobRateLimit float64
	// GlobalRateLimit limits all endpoints to this many requests per second of real time.
	// Excess requests get 429 [CODE 1000]. 0 disables it.
	GlobalRateLimit float64
	// RateBurst is the token bucket size of both limiters. 0 means one second's worth of the
	// respective limit (at least 1).
	RateBurst int
	// RetryAfter, when > 0, adds a Retry-After header (whole seconds, rounded up) to every 429.
	// Reducto does not document the header; the default leaves it out.
	RetryAfter time.Duration
	// Faults is the initial fault injection; see [Server.SetFaults].
	Faults Faults
	// WebhookSecret is the Svix endpoint signing secret, "whsec_" followed by a base64 key.
	// Required only for Svix-mode webhooks.
	WebhookSecret string
	// SvixURL is where Svix-mode webhooks are delivered (in reality, the endpoint configured in
	// the Svix dashboard). Empty means Svix-mode webhooks are counted as failed deliveries.
	SvixURL string
	// WebhookClient sends webhooks. Nil means a client with a 10s timeout, owned (and its idle
	// connections closed) by the server.
	WebhookClient *http.Client
	// WebhookTick is the real-time interval at which terminal jobs are checked for webhooks to
	// send. 0 means 5ms; negative disables the background loop (call [Server.Sweep] instead).
	WebhookTick time.Duration
	// WebhookRetryWait is the first wait (real time) before a failed delivery is retried; it
	// doubles on each retry. 0 means 200ms.
	WebhookRetryWait time.Duration
	// WebhookRetries is how many times a failed delivery is retried. 0 means 3 (Reducto's
	// documented "up to 3 times"); negative means no retry.
	WebhookRetries int
	// WebhookConcurrency bounds the deliveries in flight (retry waits included). 0 means 64.
	WebhookConcurrency int
	// DeleteDuration is how long (simulator time) DELETE /job/{id} keeps answering 409 before
	// 410. 0 means 2s.
	DeleteDuration time.Duration
	// PublicURL is the base of URLs the simulator hands out (URL results, presigned uploads,
	// edited documents). Empty means derived from each request's Host.
	PublicURL string
	// Logger receives debug logs (webhook failures and the like). Nil discards.
	Logger *slog.Logger

	// OffsetCursors makes GET /jobs hand out next_cursor as the numeric offset of the next
	// page in the newest-first listing ("500", "1000"...), instead of the default opaque
	// keyset cursor (the position of the page's last job). Reducto documents the cursor as an
	// opaque string only (reference section 5: UNCONFIRMED); the default assumes a keyset,
	// which neither repeats nor skips jobs between pages. With offsets, every job created
	// between two page requests shifts the listing by one, so the next page repeats entries
	// of the last one (none is skipped by that); a job deleted between two requests shifts it
	// the other way, so one entry is skipped.
	OffsetCursors bool
	// ListStaleness makes GET /jobs report each job's status (and the fields that depend on
	// it: num_pages, duration) as it was that long ago on the simulator clock, as a list
	// served from a lagging replica or cache would; GET /job stays current. A job created
	// within the window is listed as queued. 0 means current, like GET /job (the reference
	// says nothing about the list's freshness: UNCONFIRMED).
	ListStaleness time.Duration
	// ResultURLTTL makes URL results expire like presigned S3 links: each GET /job (and
	// every other answer carrying the result) hands out a fresh link to
	// /results/{result_id}?X-Amz-Expires=...&expires=..., valid for this long on the
	// simulator clock; after it, or without a valid expiry, the link answers 403 with S3's
	// AccessDenied "Request has expired". 0 means links that never expire.
	ResultURLTTL time.Duration
	// Background is untracked account traffic, created by the simulator from New on; see
	// [Background] and [Server.SetBackground].
	Background Background
}

// Server is the simulator: an [http.Handler] serving Reducto's paths plus a control API for
// tests. All methods are safe for concurrent use. Call [Server.Close] when done.
type Server struct {
	clock       Clock
	log         *slog.Logger
	spec        func(endpoint string, body []byte) JobSpec
	lifecycle   bool
	cancelStyle CancelStyle
	auth        string // "Bearer <key>", empty when auth is off
	jobLimit    *rate.Limiter
	global      *rate.Limiter
	retryAfter  []string // Retry-After header value, nil when off
	publicURL   string
	deleteFor   time.Duration

	offsetCursors bool
	listStaleness time.Duration
	resultURLTTL  time.Duration
	bg            background

	faults atomic.Pointer[Faults]

	rngMu sync.Mutex
	rng   *rand.Rand

	jobs    sync.Map // job id -> *job
	results sync.Map // result id -> *job
	seq     atomic.Uint64

	orderMu sync.RWMutex
	order   []*job // ascending by (created, seq)

	innerMu    sync.RWMutex
	inners     map[innerKey]*innerDoc
	innerBytes int

	hooks       hookQueue
	svixKey     []byte
	svixURL     string
	client      *http.Client
	ownClient   bool
	hookTick    time.Duration
	hookWait    time.Duration
	hookRetries int
	sem         chan struct{}

	stop      chan struct{}
	ctx       context.Context // cancelled by Close; aborts webhook deliveries
	abort     context.CancelFunc
	closeMu   sync.RWMutex // held (read) by a sweep while it starts deliveries
	closed    bool         // set by Close under closeMu; no delivery starts afterwards
	closeOnce sync.Once
	wg        sync.WaitGroup

	stats counters
}

// New returns a running simulator; it starts the webhook loop unless disabled.
func New(opts Options) (*Server, error) {
	s := &Server{
		clock:       opts.Clock,
		log:         opts.Logger,
		spec:        opts.Spec,
		lifecycle:   opts.Lifecycle,
		cancelStyle: opts.CancelStyle,
		publicURL:   strings.TrimRight(opts.PublicURL, "/"),
		deleteFor:   opts.DeleteDuration,
		inners:      make(map[innerKey]*innerDoc),
		svixURL:     opts.SvixURL,
		client:      opts.WebhookClient,
		hookTick:    opts.WebhookTick,
		hookWait:    opts.WebhookRetryWait,
		hookRetries: opts.WebhookRetries,
		stop:        make(chan struct{}),

		offsetCursors: opts.OffsetCursors,
		listStaleness: opts.ListStaleness,
		resultURLTTL:  max(opts.ResultURLTTL, 0),
	}
	if opts.ListStaleness < 0 {
		return nil, fmt.Errorf("%w: negative list staleness", ErrInvalidOptions)
	}
	if r := opts.Background.Rate; !(r >= 0) || math.IsInf(r, 0) {
		return nil, fmt.Errorf("%w: background rate must be a finite number >= 0", ErrInvalidOptions)
	}
	if opts.JobRateLimit < 0 || opts.GlobalRateLimit < 0 || opts.RateBurst < 0 {
		return nil, fmt.Errorf("%w: negative rate limit or burst", ErrInvalidOptions)
	}
	if opts.WebhookSecret != "" {
		key, err := base64.StdEncoding.DecodeString(strings.TrimPrefix(opts.WebhookSecret, "whsec_"))
		if err != nil || len(key) == 0 {
			return nil, fmt.Errorf("%w: webhook secret is not whsec_ followed by base64", ErrInvalidOptions)
		}
		s.svixKey = key
	}
	if s.clock == nil {
		s.clock = RealClock()
	}
	if s.log == nil {
		s.log = slog.New(slog.DiscardHandler)
	}
	if opts.APIKey != "" {
		s.auth = "Bearer " + opts.APIKey
	}
	if s.deleteFor <= 0 {
		s.deleteFor = 2 * time.Second
	}
	s.jobLimit = newLimiter(opts.JobRateLimit, opts.RateBurst)
	s.global = newLimiter(opts.GlobalRateLimit, opts.RateBurst)
	if opts.RetryAfter > 0 {
		secs := int64(math.Ceil(opts.RetryAfter.Seconds()))
		s.retryAfter = []string{strconv.FormatInt(secs, 10)}
	}
	s.SetFaults(opts.Faults)

	seed1, seed2 := uint64(opts.Seed), uint64(opts.Seed)^0x9e3779b97f4a7c15
	if opts.Seed == 0 {
		seed1, seed2 = rand.Uint64(), rand.Uint64()
	}
	s.rng = rand.New(rand.NewPCG(seed1, seed2))
	s.bg.init(seed1, seed2)
	s.SetBackground(opts.Background)

	n := opts.WebhookConcurrency
	if n <= 0 {
		n = 64
	}
	if s.client == nil {
		// An own transport, so that Close can drop its idle connections without touching
		// http.DefaultTransport.
		tr := http.DefaultTransport.(*http.Transport).Clone()
		tr.MaxIdleConnsPerHost = n
		s.client = &http.Client{Transport: tr, Timeout: 10 * time.Second}
		s.ownClient = true
	}
	if s.hookTick == 0 {
		s.hookTick = 5 * time.Millisecond
	}
	if s.hookWait <= 0 {
		s.hookWait = 200 * time.Millisecond
	}
	switch {
	case s.hookRetries == 0:
		s.hookRetries = 3
	case s.hookRetries < 0:
		s.hookRetries = 0
	}
	s.sem = make(chan struct{}, n)
	s.ctx, s.abort = context.WithCancel(context.Background())

	if s.hookTick > 0 {
		s.wg.Add(1)
		go s.hookLoop()
	}
	return s, nil
}

func newLimiter(perSecond float64, burst int) *rate.Limiter {
	if perSecond == 0 {
		return nil
	}
	if burst == 0 {
		burst = max(1, int(math.Ceil(perSecond)))
	}
	return rate.NewLimiter(rate.Limit(perSecond), burst)
}

// Close stops the webhook loop, aborts deliveries in flight and waits for every goroutine the
// server started. The handler keeps answering afterwards, but no webhook is sent any more.
func (s *Server) Close() {
	s.closeOnce.Do(func() {
		close(s.stop)
		s.abort()
		// Taking the lock waits for a sweep that is starting deliveries (it sees stop closed
		// and quits soon); later sweeps see closed and start none, so wg.Wait is final.
		s.closeMu.Lock()
		s.closed = true
		s.closeMu.Unlock()
		s.wg.Wait()
		if s.ownClient {
			s.client.CloseIdleConnections()
		}
	})
}

// newID returns a random (seeded) UUID v4, the format of Reducto's job ids.
func (s *Server) newID() string {
	var b [16]byte
	s.rngMu.Lock()
	binary.LittleEndian.PutUint64(b[:8], s.rng.Uint64())
	binary.LittleEndian.PutUint64(b[8:], s.rng.Uint64())
	s.rngMu.Unlock()
	b[6] = b[6]&0x0f | 0x40
	b[8] = b[8]&0x3f | 0x80
	const hexdigits = "0123456789abcdef"
	out := make([]byte, 0, 36)
	for i, c := range b {
		if i == 4 || i == 6 || i == 8 || i == 10 {
			out = append(out, '-')
		}
		out = append(out, hexdigits[c>>4], hexdigits[c&0x0f])
	}
	return string(out)
}

// random returns a seeded float in [0, 1).
func (s *Server) random() float64 {
	s.rngMu.Lock()
	defer s.rngMu.Unlock()
	return s.rng.Float64()
}

func (s *Server) normal() float64 {
	s.rngMu.Lock()
	defer s.rngMu.Unlock()
	return s.rng.NormFloat64()
}

func (s *Server) token(n int) string {
	const alphabet = "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz"
	b := make([]byte, n)
	s.rngMu.Lock()
	for i := range b {
		b[i] = alphabet[s.rng.IntN(len(alphabet))]
	}
	s.rngMu.Unlock()
	return string(b)
}

// baseURL is where URLs handed out in responses point: PublicURL, or the request's own host.
func (s *Server) baseURL(r *http.Request) string {
	if s.publicURL != "" {
		return s.publicURL
	}
	scheme := "http"
	if r.TLS != nil {
		scheme = "https"
	}
	return scheme + "://" + r.Host
}
