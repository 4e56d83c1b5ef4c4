// Package metrics holds the bridge's Prometheus collectors, all named reducto_bridge_*. Each
// package records through the nil-safe methods here, so a component built without metrics (a
// unit test, say) needs no registry.
package metrics

import (
	"strconv"
	"strings"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"

	"github.com/reducto-bridge/reducto-bridge/internal/version"
)

const namespace = "reducto_bridge"

// Poll outcomes, the values of the "outcome" label of reducto_bridge_polls_total.
const (
	PollPending      = "pending"       // not finished yet, rescheduled
	PollTerminal     = "terminal"      // finished; an event follows
	PollTransient    = "transient"     // network, 5xx, 429, malformed: rescheduled
	PollRateLimited  = "rate_limited"  // a 429 (also counted as transient by Reducto's meaning)
	PollGone         = "gone"          // 404/409/410 (confirmed on a second poll before failing)
	PollPermanent    = "permanent"     // another permanent error (confirmed before failing)
	PollUnauthorized = "unauthorized"  // 401/403: the bridge's key is wrong; rescheduled, never failed
	PollPublishError = "publish_error" // the event could not be published; rescheduled
)

// Metrics is the set of collectors. The zero value and nil are valid and record nothing.
type Metrics struct {
	Registry *prometheus.Registry

	polls           *prometheus.CounterVec
	events          *prometheus.CounterVec
	reductoRequests *prometheus.CounterVec
	reductoLatency  *prometheus.HistogramVec
	rateWaits       prometheus.Counter
	rateWaitSeconds prometheus.Counter
	rateLimit       *prometheus.GaugeVec
	replicas        prometheus.Gauge
	paused          prometheus.Gauge
	authFailing     prometheus.Gauge
	commands        *prometheus.CounterVec
	tracks          *prometheus.CounterVec
	parks           *prometheus.CounterVec
	captures        *prometheus.CounterVec
	captureBytes    prometheus.Counter
	webhooks        *prometheus.CounterVec
	listPages       *prometheus.CounterVec
	listTerminal    prometheus.Counter
	sweepDepth      prometheus.Gauge
	sweepHealthy    prometheus.Gauge
	sweepMisses     prometheus.Counter
	leaseHeld       prometheus.Gauge
	trackToEvent    *prometheus.HistogramVec
	detectionLag    *prometheus.HistogramVec
	pollsPerJob     *prometheus.HistogramVec
	webhookToEvent  prometheus.Histogram
	buildInfo       *prometheus.GaugeVec
}

// Buckets of the service-level histograms.
var (
	// latencyBuckets span a job's life, from a webhook's sub-second answer to jobs polled
	// for hours (seconds).
	latencyBuckets = []float64{.05, .1, .25, .5, 1, 2.5, 5, 10, 30, 60, 120, 300, 600, 1800, 3600, 4 * 3600, 24 * 3600}
	// pollBuckets count GET /job calls per job.
	pollBuckets = []float64{0, 1, 2, 3, 5, 8, 13, 21, 34, 55, 89, 144}
)

// Label turns a value into the snake case every label value uses: lower case, with spaces and
// dashes as underscores (reducto's op "get job" is get_job).
func Label(v string) string {
	return strings.Map(func(r rune) rune {
		switch {
		case r == ' ' || r == '-':
			return '_'
		case r >= 'A' && r <= 'Z':
			return r + ('a' - 'A')
		}
		return r
	}, v)
}

// New creates the collectors and registers them, with Go and process collectors, on a fresh
// registry.
func New() *Metrics {
	reg := prometheus.NewRegistry()
	m := &Metrics{
		Registry: reg,
		polls: prometheus.NewCounterVec(prometheus.CounterOpts{
			Namespace: namespace, Name: "polls_total",
			Help: "Polls of Reducto jobs (GET /job), by outcome.",
		}, []string{"outcome"}),
		events: prometheus.NewCounterVec(prometheus.CounterOpts{
			Namespace: namespace, Name: "events_total",
			Help: "Terminal events, by kind and result (published, or duplicate when the stream already held the job's event).",
		}, []string{"kind", "result"}),
		reductoRequests: prometheus.NewCounterVec(prometheus.CounterOpts{
			Namespace: namespace, Name: "reducto_requests_total",
			Help: "HTTP requests to Reducto, by operation and status code (0 = no response).",
		}, []string{"op", "code"}),
		reductoLatency: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Namespace: namespace, Name: "reducto_request_duration_seconds",
			Help:    "Duration of HTTP requests to Reducto, by operation.",
			Buckets: []float64{.01, .025, .05, .1, .25, .5, 1, 2.5, 5, 10, 30},
		}, []string{"op"}),
		rateWaits: prometheus.NewCounter(prometheus.CounterOpts{
			Namespace: namespace, Name: "rate_limit_waits_total",
			Help: "Requests that had to wait for the client-side rate budget.",
		}),
		rateWaitSeconds: prometheus.NewCounter(prometheus.CounterOpts{
			Namespace: namespace, Name: "rate_limit_wait_seconds_total",
			Help: "Time spent waiting for the client-side rate budget.",
		}),
		rateLimit: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Namespace: namespace, Name: "rate_limit_per_second",
			Help: "This replica's current client-side rate budget (requests/s), by limit (get_job, all): its share of the key's, lower after Reducto 429s.",
		}, []string{"limit"}),
		replicas: prometheus.NewGauge(prometheus.GaugeOpts{
			Namespace: namespace, Name: "replicas",
			Help: "Live replicas sharing the API key's rate budget, this one included.",
		}),
		paused: prometheus.NewGauge(prometheus.GaugeOpts{
			Namespace: namespace, Name: "polling_paused",
			Help: "1 while polling is paused because events cannot be published (back-pressure), else 0.",
		}),
		authFailing: prometheus.NewGauge(prometheus.GaugeOpts{
			Namespace: namespace, Name: "auth_failing",
			Help: "1 while Reducto rejects the API key (401/403 on GET /job): jobs stay tracked, none is failed; else 0.",
		}),
		commands: prometheus.NewCounterVec(prometheus.CounterOpts{
			Namespace: namespace, Name: "commands_total",
			Help: "Commands served (cancel, submit), by command and reply code (200 = success).",
		}, []string{"command", "code"}),
		tracks: prometheus.NewCounterVec(prometheus.CounterOpts{
			Namespace: namespace, Name: "track_messages_total",
			Help: "Track messages admitted, by result (new, already_reported, invalid_subject, bad_body).",
		}, []string{"result"}),
		parks: prometheus.NewCounterVec(prometheus.CounterOpts{
			Namespace: namespace, Name: "parks_total",
			Help: "Unfinished jobs put back on the schedule, by how: delay (NakWithDelay), requeue (moved to the track queue's tail while the budget binds), superseded (a newer track message held the job), requeue_failed (parked with a delay instead).",
		}, []string{"how"}),
		captures: prometheus.NewCounterVec(prometheus.CounterOpts{
			Namespace: namespace, Name: "url_captures_total",
			Help: "Downloads of completed jobs' URL results into REDUCTO_RESULTS (BRIDGE_CAPTURE_URL_RESULTS), by result: captured, refused (over BRIDGE_CAPTURE_MAX_BYTES or not https: the event carries capture_error), failed (retried like a transient poll).",
		}, []string{"result"}),
		captureBytes: prometheus.NewCounter(prometheus.CounterOpts{
			Namespace: namespace, Name: "url_capture_bytes_total",
			Help: "Bytes of URL results captured into REDUCTO_RESULTS.",
		}),
		webhooks: prometheus.NewCounterVec(prometheus.CounterOpts{
			Namespace: namespace, Name: "webhooks_total",
			Help: "Reducto webhooks received, by result (accepted, replayed, unauthorized, malformed, failed).",
		}, []string{"result"}),
		listPages: prometheus.NewCounterVec(prometheus.CounterOpts{
			Namespace: namespace, Name: "list_pages_total",
			Help: "GET /jobs pages read by the list sweep, by result (ok, error).",
		}, []string{"result"}),
		listTerminal: prometheus.NewCounter(prometheus.CounterOpts{
			Namespace: namespace, Name: "list_sweep_reported_total",
			Help: "Tracked jobs the list sweep found terminal and reported (one GET /job each).",
		}),
		sweepDepth: prometheus.NewGauge(prometheus.GaugeOpts{
			Namespace: namespace, Name: "list_sweep_depth_pages",
			Help: "Pages of GET /jobs the latest list sweep read.",
		}),
		sweepHealthy: prometheus.NewGauge(prometheus.GaugeOpts{
			Namespace: namespace, Name: "list_sweep_healthy",
			Help: "1 while the list sweep covers tracked jobs (their per-job polls stretched), 0 while coverage is withdrawn.",
		}),
		sweepMisses: prometheus.NewCounter(prometheus.CounterOpts{
			Namespace: namespace, Name: "list_sweep_misses_total",
			Help: "Tracked jobs the list should have shown but did not over several sweeps (the self-check).",
		}),
		leaseHeld: prometheus.NewGauge(prometheus.GaugeOpts{
			Namespace: namespace, Name: "list_sweep_lease_held",
			Help: "1 while this replica holds the API key's sweeper lease (it pages GET /jobs), else 0.",
		}),
		trackToEvent: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Namespace: namespace, Name: "track_to_event_seconds",
			Help:    "Time from a job's track message (its stream timestamp; a webhook's arrival for a job first seen by webhook) to the publish of its event, by kind.",
			Buckets: latencyBuckets,
		}, []string{"kind"}),
		detectionLag: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Namespace: namespace, Name: "detection_lag_seconds",
			Help:    "Time from the job's end at Reducto (its created_at plus duration, when GET /job gives both) to the publish of its event, by kind.",
			Buckets: latencyBuckets,
		}, []string{"kind"}),
		pollsPerJob: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Namespace: namespace, Name: "polls_per_job",
			Help:    "GET /job calls the bridge made for a job, counted when its event is published, by kind.",
			Buckets: pollBuckets,
		}, []string{"kind"}),
		webhookToEvent: prometheus.NewHistogram(prometheus.HistogramOpts{
			Namespace: namespace, Name: "webhook_to_event_seconds",
			Help:    "Time from an accepted webhook's arrival to the publish of the event it announced.",
			Buckets: latencyBuckets,
		}),
		buildInfo: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Namespace: namespace, Name: "build_info",
			Help: "Always 1; the labels name the bridge's version, the Go version and the VCS revision (empty when the build recorded none).",
		}, []string{"version", "goversion", "revision"}),
	}
	goVersion, revision := version.Build()
	m.buildInfo.WithLabelValues(version.Version, goVersion, revision).Set(1)
	reg.MustRegister(m.polls, m.events, m.reductoRequests, m.reductoLatency, m.rateWaits,
		m.rateWaitSeconds, m.rateLimit, m.replicas, m.paused, m.authFailing, m.commands, m.tracks, m.parks, m.captures, m.captureBytes, m.webhooks,
		m.listPages, m.listTerminal, m.sweepDepth, m.sweepHealthy, m.sweepMisses, m.leaseHeld,
		m.trackToEvent, m.detectionLag, m.pollsPerJob, m.webhookToEvent, m.buildInfo,
		collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	return m
}

// Poll counts one poll outcome.
func (m *Metrics) Poll(outcome string) {
	if m != nil {
		m.polls.WithLabelValues(outcome).Inc()
	}
}

// Event counts one terminal event publish.
func (m *Metrics) Event(kind string, duplicate bool) {
	if m == nil {
		return
	}
	result := "published"
	if duplicate {
		result = "duplicate"
	}
	m.events.WithLabelValues(kind, result).Inc()
}

// ReductoRequest records one HTTP exchange with Reducto; it fits reducto.Observer.
func (m *Metrics) ReductoRequest(op string, code int, elapsed time.Duration) {
	if m == nil {
		return
	}
	op = Label(op)
	m.reductoRequests.WithLabelValues(op, strconv.Itoa(code)).Inc()
	m.reductoLatency.WithLabelValues(op).Observe(elapsed.Seconds())
}

// RateWait records a wait for the rate budget.
func (m *Metrics) RateWait(d time.Duration) {
	if m == nil || d <= 0 {
		return
	}
	m.rateWaits.Inc()
	m.rateWaitSeconds.Add(d.Seconds())
}

// RateLimit reports the current rate budget of one limit (budget.LimitGetJob or LimitAll).
func (m *Metrics) RateLimit(limit string, perSecond float64) {
	if m != nil {
		m.rateLimit.WithLabelValues(limit).Set(perSecond)
	}
}

// Replicas reports the live replicas sharing the key's budget.
func (m *Metrics) Replicas(n int) {
	if m != nil {
		m.replicas.Set(float64(n))
	}
}

// Paused reports whether polling is paused by back-pressure.
func (m *Metrics) Paused(paused bool) {
	if m != nil {
		setBool(m.paused, paused)
	}
}

// AuthFailing reports whether Reducto rejects the API key.
func (m *Metrics) AuthFailing(failing bool) {
	if m != nil {
		setBool(m.authFailing, failing)
	}
}

// setBool sets a 0/1 gauge.
func setBool(g prometheus.Gauge, on bool) {
	v := 0.0
	if on {
		v = 1
	}
	g.Set(v)
}

// Command counts one command reply.
func (m *Metrics) Command(command string, code int) {
	if m != nil {
		m.commands.WithLabelValues(command, strconv.Itoa(code)).Inc()
	}
}

// Track counts one admitted track message.
func (m *Metrics) Track(result string) {
	if m != nil {
		m.tracks.WithLabelValues(result).Inc()
	}
}

// Park counts one unfinished job put back on the schedule, by how.
func (m *Metrics) Park(how string) {
	if m != nil {
		m.parks.WithLabelValues(how).Inc()
	}
}

// Capture results of [Metrics.Capture].
const (
	CaptureCaptured = "captured"
	CaptureRefused  = "refused"
	CaptureFailed   = "failed"
)

// Capture counts one download of a URL result: result is a Capture* value, size the bytes
// stored (captured only).
func (m *Metrics) Capture(result string, size int64) {
	if m != nil {
		m.captures.WithLabelValues(result).Inc()
		if result == CaptureCaptured && size > 0 {
			m.captureBytes.Add(float64(size))
		}
	}
}

// Webhook counts one webhook delivery.
func (m *Metrics) Webhook(result string) {
	if m != nil {
		m.webhooks.WithLabelValues(result).Inc()
	}
}

// ListPage counts one GET /jobs page of the list sweep.
func (m *Metrics) ListPage(ok bool) {
	if m == nil {
		return
	}
	result := "ok"
	if !ok {
		result = "error"
	}
	m.listPages.WithLabelValues(result).Inc()
}

// ListReported counts one tracked job the list sweep found terminal and reported.
func (m *Metrics) ListReported() {
	if m != nil {
		m.listTerminal.Inc()
	}
}

// SweepDepth reports the pages the latest sweep read.
func (m *Metrics) SweepDepth(pages int) {
	if m != nil {
		m.sweepDepth.Set(float64(pages))
	}
}

// SweepHealthy reports whether the list sweep covers tracked jobs.
func (m *Metrics) SweepHealthy(healthy bool) {
	if m != nil {
		setBool(m.sweepHealthy, healthy)
	}
}

// SweepMiss counts one tracked job the list failed to show.
func (m *Metrics) SweepMiss() {
	if m != nil {
		m.sweepMisses.Inc()
	}
}

// LeaseHeld reports whether this replica holds the sweeper lease.
func (m *Metrics) LeaseHeld(held bool) {
	if m != nil {
		setBool(m.leaseHeld, held)
	}
}

// Reported records the service level of one published event (not a duplicate): trackToEvent
// from the track message; lag since the job's end at Reducto, when known (known false: not
// observed; a negative lag, clock skew, counts as 0); the job's GET /job calls.
func (m *Metrics) Reported(kind string, trackToEvent time.Duration, lag time.Duration, lagKnown bool, polls int) {
	if m == nil {
		return
	}
	kind = Label(kind)
	m.trackToEvent.WithLabelValues(kind).Observe(max(trackToEvent, 0).Seconds())
	if lagKnown {
		m.detectionLag.WithLabelValues(kind).Observe(max(lag, 0).Seconds())
	}
	m.pollsPerJob.WithLabelValues(kind).Observe(float64(max(polls, 0)))
}

// WebhookToEvent records the time from a webhook's arrival to the event it announced.
func (m *Metrics) WebhookToEvent(d time.Duration) {
	if m != nil {
		m.webhookToEvent.Observe(max(d, 0).Seconds())
	}
}

// NATSConnection registers the NATS connection's gauges, read at scrape time:
// reducto_bridge_nats_connected (1 while connected) and reducto_bridge_nats_reconnects_total.
func (m *Metrics) NATSConnection(connected func() bool, reconnects func() uint64) error {
	if m == nil {
		return nil
	}
	err := m.Registry.Register(prometheus.NewGaugeFunc(prometheus.GaugeOpts{
		Namespace: namespace, Name: "nats_connected",
		Help: "1 while the bridge's NATS connection is up, 0 while it is disconnected, reconnecting or closed.",
	}, func() float64 {
		if connected() {
			return 1
		}
		return 0
	}))
	if err != nil {
		return err
	}
	return m.Registry.Register(prometheus.NewCounterFunc(prometheus.CounterOpts{
		Namespace: namespace, Name: "nats_reconnects_total",
		Help: "Times the NATS connection was re-established after a loss.",
	}, func() float64 { return float64(reconnects()) }))
}

// Register adds further collectors (e.g. a gauge computed at scrape time).
func (m *Metrics) Register(c prometheus.Collector) error {
	if m == nil {
		return nil
	}
	return m.Registry.Register(c)
}
