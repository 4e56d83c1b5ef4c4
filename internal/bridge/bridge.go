package bridge

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	neturl "net/url"
	"os"
	"sync"
	"sync/atomic"
	"time"

	"github.com/cenkalti/backoff/v4"
	"github.com/nats-io/nats-server/v2/server"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/reducto-bridge/reducto-bridge/budget"
	"github.com/reducto-bridge/reducto-bridge/capture"
	"github.com/reducto-bridge/reducto-bridge/command"
	"github.com/reducto-bridge/reducto-bridge/config"
	"github.com/reducto-bridge/reducto-bridge/internal/redact"
	"github.com/reducto-bridge/reducto-bridge/lastpoll"
	"github.com/reducto-bridge/reducto-bridge/metrics"
	"github.com/reducto-bridge/reducto-bridge/poller"
	"github.com/reducto-bridge/reducto-bridge/publisher"
	"github.com/reducto-bridge/reducto-bridge/reducto"
	"github.com/reducto-bridge/reducto-bridge/replica"
	"github.com/reducto-bridge/reducto-bridge/subject"
	"github.com/reducto-bridge/reducto-bridge/sweep"
	"github.com/reducto-bridge/reducto-bridge/tracing"
	"github.com/reducto-bridge/reducto-bridge/track"
	"github.com/reducto-bridge/reducto-bridge/webhook"
)

// Bridge is one running bridge: NATS (maybe embedded), the streams, the poller, the command
// service and the HTTP server, started in that order by [Start] and stopped in reverse by
// [Bridge.Shutdown]. Its methods are safe for concurrent use.
type Bridge struct {
	cfg    *config.Config
	log    *slog.Logger
	m      *metrics.Metrics
	redact *redact.Redactor // the configured secrets, out of logs and events

	ns     *server.Server // embedded server; nil with NATS_URL
	nc     *nats.Conn
	closed chan struct{} // closed by the NATS ClosedHandler
	js     jetstream.JetStream
	hc     *http.Client // Reducto's; its idle connections are closed at shutdown
	client *reducto.Client
	pub    *publisher.Publisher
	cmds   *command.Service
	poller *poller.Poller // set before started; /readyz asks it whether Reducto takes the key
	// replicas announces this replica and counts the key's live ones, which share its budget.
	replicas        *replica.Tracker
	polls           *lastpoll.Book  // this replica's last poll of each job, for P.status
	peers           *lastpoll.Peers // answers and asks the key's other replicas about them
	replicaInterval time.Duration   // tests only: the announcement period instead of replica.DefaultInterval
	// origins is the first-track-time bucket (BRIDGE_RETRACK_KEEPS_SCHEDULE); nil without it.
	origins *track.Origins
	kv      jetstream.KeyValue // the lease bucket (BRIDGE_LIST_SWEEP); nil without the sweep
	sweep   *sweep.Sweeper     // nil without BRIDGE_LIST_SWEEP
	// tracer makes the poll and publish spans: exporting with the OTEL_EXPORTER_OTLP_*
	// variables, recording nothing without them. Tests set it (tune) to an in-memory one.
	tracer *tracing.Tracer

	// health follows the NATS connection for /readyz; set (before the connection is made)
	// while start runs, so /readyz can say why NATS is not there yet.
	health   atomic.Pointer[natsHealth]
	setupErr atomic.Pointer[string] // the last failed stream set-up, for /readyz

	stopPolling context.CancelFunc
	polling     chan struct{} // closed when the poller has returned
	stopSweep   context.CancelFunc
	sweeping    chan struct{} // closed when the sweeper has returned

	webhook  atomic.Pointer[webhook.Handler] // set once the poller exists
	httpSrv  *http.Server
	httpAddr net.Addr
	httpDone chan struct{}
	// The public webhook listener (BRIDGE_WEBHOOK_ADDR); all nil when it is empty.
	webhookSrv      *http.Server
	webhookLn       *capListener
	webhookAddr     net.Addr
	webhookDone     chan struct{}
	webhookMaxConns int          // tests only: the connection cap instead of webhookMaxConns
	started         atomic.Bool  // set once start has filled every field: /readyz reads them only then
	probe           *streamProbe // both streams' health and the outstanding count, at most once a second
	draining        atomic.Bool
}

// Run is 'bridge run': it loads the configuration from the environment, logs to stderr, warns
// about unknown variables, starts the bridge, serves until ctx ends (SIGTERM or SIGINT in
// main) and drains within BRIDGE_DRAIN_TIMEOUT. A configuration error names every variable at
// fault. The end of ctx during start-up is not an error: the bridge was asked to stop, and has.
func Run(ctx context.Context, stderr io.Writer) error {
	cfg, err := config.Load()
	if err == nil {
		err = cfg.RequireAPIKey()
	}
	if err != nil {
		return fmt.Errorf("configuration:\n%w%s", err, unknownVarsNote(os.Environ()))
	}
	log := NewLogger(cfg, stderr)
	warnUnknownVars(log, os.Environ())
	b, err := Start(ctx, cfg, log)
	if err != nil {
		if ctx.Err() != nil {
			// SIGTERM or SIGINT during start-up (while NATS is out of reach, say) asks the
			// bridge to stop, which it has: not a failure.
			log.Info("start-up interrupted; exiting", "cause", context.Cause(ctx), "during", err)
			return nil
		}
		return err
	}
	<-ctx.Done()
	log.Info("shutting down", "cause", context.Cause(ctx))
	dctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), cfg.DrainTimeout)
	defer cancel()
	return b.Shutdown(dctx)
}

// Start brings a bridge up in the order of the package comment and returns it once the
// command service answers; on an error everything it started is stopped again. The HTTP server
// comes first, so /healthz answers and /readyz says 503 while NATS and the streams are set up.
// ctx bounds start-up only: while NATS is out of reach Start keeps retrying until ctx ends.
// cfg must have passed [config.Config.Validate]; log receives every component's logs.
func Start(ctx context.Context, cfg *config.Config, log *slog.Logger) (*Bridge, error) {
	return start(ctx, cfg, log, nil)
}

// start is [Start]; tune, when not nil, adjusts the new bridge's unexported settings (tests).
func start(ctx context.Context, cfg *config.Config, log *slog.Logger, tune func(*Bridge)) (_ *Bridge, err error) {
	// A Reducto error that quotes a secret the bridge sent (the direct webhook URL carries the
	// token) is redacted from every component's log lines and from events.
	red := redact.New(cfg.SecretValues()...)
	log = slog.New(red.Handler(log.Handler()))
	b := &Bridge{redact: red, cfg: cfg, log: log, m: metrics.New(), closed: make(chan struct{})}
	if tune != nil {
		tune(b)
	}
	defer func() {
		if err != nil {
			sctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 10*time.Second)
			defer cancel()
			b.Shutdown(sctx)
		}
	}()
	if b.tracer == nil {
		if b.tracer, err = tracing.Setup(ctx, os.Getenv); err != nil {
			return nil, err
		}
	}
	if err := b.startHTTP(); err != nil {
		return nil, err
	}
	if err := b.connect(); err != nil {
		return nil, err
	}
	var queue *track.Queue
	if queue, err = b.setupStreams(ctx); err != nil {
		return nil, err
	}

	bud := budget.New(cfg.RateLimit, cfg.RateLimitAll, budget.WithWaitObserver(b.m.RateWait), budget.WithRateObserver(b.m.RateLimit))
	b.replicas, err = replica.Start(b.nc, replica.Options{
		Subject:  subject.Replicas(cfg.SubjectPrefix, cfg.APIKey.Reveal()),
		Interval: b.replicaInterval,
		OnChange: func(n int) { bud.SetReplicas(n); b.m.Replicas(n) },
		Logger:   log.With("component", "replica"),
	})
	if err != nil {
		return nil, fmt.Errorf("replica announcements: %w", err)
	}
	b.polls = lastpoll.NewBook(lastpoll.DefaultMax)
	if b.peers, err = lastpoll.Serve(b.nc, subject.Polls(cfg.SubjectPrefix, cfg.APIKey.Reveal()), b.polls, b.replicas.Live); err != nil {
		return nil, fmt.Errorf("last polls: %w", err)
	}
	b.hc = &http.Client{Transport: &http.Transport{
		Proxy:               http.ProxyFromEnvironment,
		MaxIdleConnsPerHost: cfg.Concurrency,
		IdleConnTimeout:     90 * time.Second,
		TLSHandshakeTimeout: 10 * time.Second,
		ForceAttemptHTTP2:   true,
	}}
	b.client, err = reducto.New(cfg.BaseURL, cfg.APIKey.Reveal(),
		reducto.WithHTTPClient(b.hc),
		reducto.WithTimeout(cfg.HTTPTimeout),
		reducto.WithRetryAfterMax(cfg.RetryAfterMax),
		reducto.WithMaxBody(cfg.ReductoMaxBody),
		reducto.WithLimiter(bud),
		reducto.WithObserver(b.m.ReductoRequest),
		reducto.WithLogger(log.With("component", "reducto")),
	)
	if err != nil {
		return nil, fmt.Errorf("reducto client: %w", err)
	}

	var coverage poller.Coverage
	if cfg.ListSweep {
		if b.sweep, err = b.newSweeper(queue); err != nil {
			return nil, err
		}
		coverage = b.sweep
	}
	po := poller.Options{
		InitialInterval:     cfg.PollInitialInterval,
		MaxInterval:         cfg.PollMaxInterval,
		Multiplier:          cfg.PollMultiplier,
		Jitter:              cfg.PollJitter,
		JobTTL:              cfg.JobTTL,
		Concurrency:         cfg.Concurrency,
		WebhookPollInterval: cfg.WebhookPollInterval,
		Coverage:            coverage,
		SweptPollInterval:   cfg.ListSafetyInterval,
		Outstanding:         b.probe.cached,
		PollRate:            func() float64 { return bud.KeyRate(budget.LimitGetJob) },
		DrainTimeout:        cfg.DrainTimeout,
		Logger:              log.With("component", "poller"),
		Metrics:             b.m,
		AfterPublish:        crashAfterPublish(log),
		Polls:               b.polls,
	}
	if b.origins != nil {
		po.Origins = b.origins // never a nil *track.Origins in the interface
	}
	if cfg.CaptureURLResults {
		// http:// links on loopback only for a Reducto (a simulator) on this machine.
		u, _ := neturl.Parse(cfg.BaseURL)
		c, err := capture.New(b.pub, capture.Options{MaxBytes: cfg.CaptureMaxBytes, AllowInsecure: cfg.AllowInsecureReducto,
			AllowLoopback: u != nil && u.Scheme == "http" && capture.Loopback(u.Hostname())})
		if err != nil {
			return nil, fmt.Errorf("url result capture: %w", err)
		}
		po.Capture = c
	}
	b.poller, err = poller.New(queue,
		tracedJobs{jobs: b.client, tr: b.tracer, redact: red},
		tracedEvents{events: b.pub, tr: b.tracer, redact: red}, po)
	if err != nil {
		return nil, err
	}
	pctx, cancel := context.WithCancel(context.WithoutCancel(ctx))
	b.stopPolling, b.polling = cancel, make(chan struct{})
	go func() {
		defer close(b.polling)
		// The poller spaces its polls by the outstanding count: keep it current.
		fctx, stopFresh := context.WithCancel(pctx)
		var wg sync.WaitGroup
		wg.Go(func() { b.probe.keepFresh(fctx) })
		b.poller.Run(pctx)
		stopFresh()
		wg.Wait()
	}()
	if b.sweep != nil {
		sctx, cancel := context.WithCancel(context.WithoutCancel(ctx))
		b.stopSweep, b.sweeping = cancel, make(chan struct{})
		go func() {
			defer close(b.sweeping)
			b.sweep.Run(sctx)
		}()
	}

	hook, err := webhook.New(b.poller, webhook.Options{
		Secret:  cfg.WebhookSecret.Reveal(),
		Token:   cfg.WebhookToken.Reveal(),
		Logger:  log.With("component", "webhook"),
		Metrics: b.m,
	})
	if err != nil {
		return nil, err
	}
	b.webhook.Store(hook)

	// Redacted from command replies, logs and $SRV.STATS should a Reducto error quote one
	// (the webhook token, which the direct webhook URL carries, always is).
	secrets := []string{cfg.WebhookSecret.Reveal(), cfg.APIKey.Reveal(), cfg.NATSPassword.Reveal(), cfg.NATSToken.Reveal()}
	b.cmds, err = command.Start(b.nc, b.client, b.pub, queue.Ensure, command.Options{
		Prefix:       cfg.SubjectPrefix,
		PublicURL:    cfg.PublicURL,
		WebhookToken: cfg.WebhookToken.Reveal(),
		Secrets:      secrets,
		WebhookSvix:  cfg.WebhookSecret.IsSet(),
		Timeout:      cfg.HTTPTimeout,
		Logger:       log.With("component", "command"),
		Metrics:      b.m,

		CancelTrackedOnly: cfg.CancelTrackedOnly,
		Tracked: func(ctx context.Context, id string) (bool, error) {
			m, err := queue.Last(ctx, id)
			return m != nil, err
		},
		RefuseWebhooks: !cfg.SubmitWebhooks,
		Status:         &command.StatusSources{Track: queue.Last, Event: b.pub.Find, Position: queue.Position, LastPoll: b.peers.Ask},
		Tracer:         b.tracer,
	})
	if err != nil {
		return nil, fmt.Errorf("command service: %w", err)
	}
	if err := b.m.Register(b.outstandingGauge()); err != nil {
		return nil, fmt.Errorf("register metrics: %w", err)
	}
	b.started.Store(true)
	log.Info("bridge started", "prefix", cfg.SubjectPrefix, "reducto", config.RedactURL(cfg.BaseURL),
		"nats", b.natsDescription(), "http", b.httpAddr.String(), "webhooks", b.webhookDescription(), "rate_limit", cfg.RateLimit, "rate_limit_all", cfg.RateLimitAll, "concurrency", cfg.Concurrency, "list_sweep", cfg.ListSweep)
	return b, nil
}

// newSweeper builds the list sweeper (BRIDGE_LIST_SWEEP): its pages go through the Reducto
// client, so they wait on the one rate budget; its hints go to the poller, made next.
func (b *Bridge) newSweeper(queue *track.Queue) (*sweep.Sweeper, error) {
	cfg := b.cfg
	var trackAll func(ctx context.Context, id string) error
	if cfg.TrackAll {
		trackAll = func(ctx context.Context, id string) error {
			_, err := queue.Ensure(ctx, id, track.Request{})
			return err
		}
	}
	lease := sweep.NewLease(b.kv, sweep.LeaseKey(cfg.APIKey.Reveal()), 0, b.log.With("component", "sweep"))
	return sweep.New(b.client, hintFunc(func(ctx context.Context, id string) (bool, error) {
		return b.poller.HintTracked(ctx, id)
	}), b.probe.tracked, sweep.Options{
		Interval:       cfg.ListInterval,
		MaxRate:        cfg.ListMaxRate,
		SafetyInterval: cfg.ListSafetyInterval,
		DeepAge:        cfg.ListDeepAge,
		TrackSlack:     cfg.ListTrackSlack,
		PollInterval:   cfg.PollMaxInterval,
		Lease:          lease,
		Track:          trackAll,
		Logger:         b.log.With("component", "sweep"),
		Metrics:        b.m,
	})
}

// hintFunc adapts a function to sweep.Hinter.
type hintFunc func(ctx context.Context, id string) (bool, error)

func (f hintFunc) HintTracked(ctx context.Context, id string) (bool, error) { return f(ctx, id) }

// connect opens the NATS connection, starting the embedded server first when NATS_URL is
// empty. The connection retries forever; set-up waits for it within its context.
func (b *Bridge) connect() error {
	h := newNATSHealth(b.log.With("component", "nats"))
	opts, err := connectOptions(b.cfg, h, b.closed)
	if err != nil {
		return err
	}
	url := b.cfg.NATSURL
	if b.cfg.Embedded() {
		if b.ns, err = startEmbedded(b.cfg, b.log); err != nil {
			return err
		}
		url = b.ns.ClientURL()
		opts = append(opts, nats.InProcessServer(b.ns))
		if b.cfg.EmbeddedNATSToken.IsSet() {
			opts = append(opts, nats.Token(b.cfg.EmbeddedNATSToken.Reveal()))
		}
	}
	h.urls = config.RedactURLs(url)
	b.health.Store(h)
	if b.nc, err = nats.Connect(url, opts...); err != nil {
		// A url.Error would quote the URL, user information included.
		var uerr *neturl.Error
		if errors.As(err, &uerr) {
			err = uerr.Err
		}
		return fmt.Errorf("connect to nats %s: %w", h.urls, err)
	}
	h.setConn(b.nc)
	nc := b.nc
	if err := b.m.NATSConnection(nc.IsConnected, func() uint64 { return nc.Stats().Reconnects }); err != nil {
		return fmt.Errorf("register nats metrics: %w", err)
	}
	if b.js, err = jetstream.New(b.nc); err != nil {
		return fmt.Errorf("jetstream: %w", err)
	}
	b.probe = &streamProbe{js: b.js, now: time.Now, key: track.MoveKey(b.cfg.APIKey.Reveal())}
	return nil
}

// HTTPAddr is the address the HTTP server listens on (BRIDGE_HTTP_ADDR, with the port chosen
// when it was 0).
func (b *Bridge) HTTPAddr() net.Addr { return b.httpAddr }

// WebhookAddr is the address of the public webhook listener (BRIDGE_WEBHOOK_ADDR, with the
// port chosen when it was 0), or nil when webhooks are served on [Bridge.HTTPAddr].
func (b *Bridge) WebhookAddr() net.Addr { return b.webhookAddr }

// NATSURL is the URL a client uses to reach the bridge's NATS: the embedded server's client URL
// when NATS_URL is empty, else NATS_URL as configured (user information included).
func (b *Bridge) NATSURL() string {
	if b.ns != nil {
		return b.ns.ClientURL()
	}
	return b.cfg.NATSURL
}

func (b *Bridge) webhookDescription() string {
	if b.webhookAddr == nil {
		return "on the http address"
	}
	return b.webhookAddr.String()
}

func (b *Bridge) natsDescription() string {
	if b.ns != nil {
		return "embedded " + b.ns.ClientURL()
	}
	// Not ConnectedUrlRedacted: it keeps a token given as nats://token@host.
	return config.RedactURL(b.nc.ConnectedUrl())
}

// setupStreams creates or updates the streams, the object store and the consumer. NATS may
// not be reachable yet (the connection retries in the background), so set-up is retried
// unlimitedIfZero maps a BRIDGE_TRACK_* limit, where 0 means unlimited, to track.Options,
// where 0 means the default and a negative value unlimited.
func unlimitedIfZero(n int64) int64 {
	if n == 0 {
		return -1
	}
	return n
}

// until ctx ends.
func (b *Bridge) setupStreams(ctx context.Context) (*track.Queue, error) {
	po := publisher.Options{
		Prefix:     b.cfg.SubjectPrefix,
		Source:     b.cfg.EventSource,
		Replicas:   b.cfg.StreamReplicas,
		MaxAge:     b.cfg.EventsMaxAge,
		Duplicates: b.cfg.DuplicateWindow,
		MaxBytes:   b.cfg.EventsMaxBytes,
		Logger:     b.log.With("component", "publisher"),
		Redact:     b.redact,
	}
	var queue *track.Queue
	op := func() error {
		actx, cancel := context.WithTimeout(ctx, 10*time.Second)
		defer cancel()
		var err error
		if b.pub, err = publisher.Setup(actx, b.js, po); err != nil {
			return err
		}
		queue, err = track.Setup(actx, b.js, track.Options{
			Prefix: b.cfg.SubjectPrefix, Replicas: b.cfg.StreamReplicas, AckWait: b.cfg.AckWait,
			MaxJobs: unlimitedIfZero(b.cfg.TrackMaxJobs), MaxBytes: unlimitedIfZero(b.cfg.TrackMaxBytes),
			MoveKey: track.MoveKey(b.cfg.APIKey.Reveal()),
		})
		if err == nil && b.cfg.RetrackKeepsSchedule {
			b.origins, err = track.SetupOrigins(actx, b.js, track.OriginsOptions{
				JobTTL: b.cfg.JobTTL, Replicas: b.cfg.StreamReplicas,
			})
		}
		if err == nil && b.cfg.ListSweep {
			b.kv, err = sweep.SetupBucket(actx, b.js, b.cfg.StreamReplicas)
		}
		return err
	}
	notify := func(err error, wait time.Duration) {
		msg := err.Error()
		b.setupErr.Store(&msg)
		if !b.nc.IsConnected() {
			// NATS is not there: the connection's own log lines say where and why.
			b.log.Debug("stream set-up failed; retrying", "error", err, "wait", wait)
			return
		}
		b.log.Warn("stream set-up failed; retrying", "error", err, "wait", wait)
	}
	bo := backoff.NewExponentialBackOff(backoff.WithMaxInterval(10*time.Second), backoff.WithMaxElapsedTime(0))
	if err := backoff.RetryNotify(op, backoff.WithContext(bo, ctx), notify); err != nil {
		return nil, fmt.Errorf("set up streams: %w", err)
	}
	return queue, nil
}

// outstandingGauge reports the jobs waiting for their event: the messages in the track
// work-queue stream (acked ones are removed).
func (b *Bridge) outstandingGauge() prometheus.Collector {
	return prometheus.NewGaugeFunc(prometheus.GaugeOpts{
		Namespace: "reducto_bridge", Name: "jobs_outstanding",
		Help: "Tracked jobs without a terminal event yet (messages in REDUCTO_TRACK).",
	}, func() float64 {
		n, err := b.probe.state(context.Background())
		if err != nil {
			return -1
		}
		return float64(n)
	})
}

// Ready reports why the bridge cannot serve, or nil; GET /readyz answers 503 with its text.
// In order: not draining; NATS connected (else the servers, without user information, and the
// last connection error, at start-up or later); start-up finished (else the last stream set-up
// error); both streams answered the latest probe (at most one a second, whatever the request
// rate); fetching jobs from the shared consumer works (it fails while the consumer is gone,
// until the poller has recreated it); events can be published; Reducto has not answered
// 401/403 since the last success.
func (b *Bridge) Ready(ctx context.Context) error {
	if b.draining.Load() {
		return errors.New("draining")
	}
	h := b.health.Load()
	if h == nil {
		return errors.New("starting")
	}
	if err := h.notReady(); err != nil {
		return err
	}
	if !b.started.Load() {
		if msg := b.setupErr.Load(); msg != nil {
			return fmt.Errorf("starting: setting up streams: %s", *msg)
		}
		return errors.New("starting")
	}
	if _, err := b.probe.state(ctx); err != nil {
		return err
	}
	if since, err, failing := b.poller.PublishFailing(); failing {
		return fmt.Errorf("events cannot be published since %s (polling paused, nothing lost): %w",
			since.UTC().Format(time.RFC3339), err)
	}
	if since, err, failing := b.poller.FetchFailing(); failing {
		return fmt.Errorf("polling stopped: consumer %s: %w, since %s", track.ConsumerName, err,
			since.UTC().Format(time.RFC3339))
	}
	if since, failing := b.poller.AuthFailing(); failing {
		return fmt.Errorf("reducto rejects the API key (401/403 since %s); check REDUCTO_API_KEY: jobs stay tracked, none is failed",
			since.UTC().Format(time.RFC3339))
	}
	return nil
}

// Shutdown drains in reverse start order within ctx: stop polling (in-flight polls and
// publishes finish), stop the command service, drain the NATS connection, stop the embedded
// server, and last the HTTP server (so /healthz answers while the bridge drains). /readyz says
// 503 from the first step. It returns every step that failed or ran out of time; the bridge is
// stopped either way. Give it a fresh context (context.WithoutCancel plus a timeout).
func (b *Bridge) Shutdown(ctx context.Context) error {
	b.draining.Store(true)
	var errs []error
	// The public listener first: no new webhooks, the ones in flight finish while the poller
	// still runs.
	if b.webhookSrv != nil {
		if err := b.webhookSrv.Shutdown(ctx); err != nil {
			errs = append(errs, fmt.Errorf("webhook server shutdown: %w", err))
			b.webhookSrv.Close()
		}
		<-b.webhookDone
	}
	if b.stopSweep != nil {
		// The sweeper first: its hints use the poller. Releasing the lease lets another
		// replica's sweeper take over at once.
		b.stopSweep()
		select {
		case <-b.sweeping:
			b.sweep.Release(ctx)
		case <-ctx.Done():
			errs = append(errs, errors.New("list sweeper did not stop in time"))
		}
	}
	if b.stopPolling != nil {
		b.stopPolling()
		select {
		case <-b.polling:
		case <-ctx.Done():
			errs = append(errs, errors.New("poller did not stop in time"))
		}
	}
	if b.cmds != nil {
		if err := b.cmds.Shutdown(ctx); err != nil {
			errs = append(errs, fmt.Errorf("stop command service: %w", err))
		}
	}
	if b.hc != nil {
		b.hc.CloseIdleConnections()
	}
	if b.peers != nil {
		b.peers.Stop()
	}
	if b.replicas != nil {
		// After the poller and the commands: no more requests from this replica, so the
		// others may take its share at once.
		b.replicas.Stop()
	}
	if b.nc != nil {
		if err := b.nc.Drain(); err != nil && !errors.Is(err, nats.ErrConnectionClosed) {
			b.nc.Close()
		}
		select {
		case <-b.closed:
		case <-ctx.Done():
			b.nc.Close()
			errs = append(errs, errors.New("nats drain did not finish in time"))
		}
	}
	if b.ns != nil {
		b.ns.Shutdown()
		b.ns.WaitForShutdown()
	}
	if b.httpSrv != nil {
		if err := b.httpSrv.Shutdown(ctx); err != nil {
			errs = append(errs, fmt.Errorf("http shutdown: %w", err))
		}
		<-b.httpDone
	}
	if b.tracer != nil {
		if err := b.tracer.Shutdown(ctx); err != nil {
			errs = append(errs, err)
		}
	}
	b.log.Info("bridge stopped")
	return errors.Join(errs...)
}
