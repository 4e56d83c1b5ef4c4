// Package metrics holds the bridge's Prometheus collectors, all named reducto_bridge_*. Each
// package records through the nil-safe methods here, so a component built without metrics (a
// unit test, say) needs no registry.
package metrics

import (
	"strconv"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
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
	webhooks        *prometheus.CounterVec
	listPages       *prometheus.CounterVec
	listTerminal    prometheus.Counter
	sweepDepth      prometheus.Gauge
	sweepHealthy    prometheus.Gauge
	sweepMisses     prometheus.Counter
	leaseHeld       prometheus.Gauge
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
	}
	reg.MustRegister(m.polls, m.events, m.reductoRequests, m.reductoLatency, m.rateWaits,
		m.rateWaitSeconds, m.rateLimit, m.replicas, m.paused, m.authFailing, m.commands, m.tracks, m.webhooks,
		m.listPages, m.listTerminal, m.sweepDepth, m.sweepHealthy, m.sweepMisses, m.leaseHeld,
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

// Register adds further collectors (e.g. a gauge computed at scrape time).
func (m *Metrics) Register(c prometheus.Collector) error {
	if m == nil {
		return nil
	}
	return m.Registry.Register(c)
}
