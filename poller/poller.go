// Package poller is the bridge's scheduler. It consumes track messages from the REDUCTO_TRACK
// work queue ([track.Queue]) through one durable pull consumer shared by every replica, polls each job
// through a [JobGetter], answers an unfinished job with NakWithDelay (so the delay lives in
// JetStream and survives crashes), and hands a finished job to an [EventPublisher], acking the
// track message only after the event's PubAck.
package poller

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"sync/atomic"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/reducto-bridge/reducto-bridge/event"
	"github.com/reducto-bridge/reducto-bridge/metrics"
	"github.com/reducto-bridge/reducto-bridge/publisher"
	"github.com/reducto-bridge/reducto-bridge/reducto"
	"github.com/reducto-bridge/reducto-bridge/track"
)

// JobGetter fetches a job's current state; *reducto.Client satisfies it.
type JobGetter interface {
	GetJob(ctx context.Context, id string) (*reducto.Job, error)
}

// EventPublisher publishes terminal events and finds those already published;
// *publisher.Publisher satisfies it.
type EventPublisher interface {
	Publish(ctx context.Context, ev *event.Event) (publisher.Result, error)
	Lookup(ctx context.Context, jobID string) (*event.Event, error)
}

// Queue is the track work queue the poller consumes and keeps; *track.Queue satisfies it.
type Queue interface {
	Consumer() jetstream.Consumer
	JobID(subject string) (string, error)
	Ensure(ctx context.Context, id string, req track.Request) (bool, error)
	Last(ctx context.Context, id string) (*jetstream.RawStreamMsg, error)
	Delete(ctx context.Context, seq uint64) error
}

// Defaults of zero [Options] fields. config.Defaults() agrees with them (BRIDGE_POLL_*,
// BRIDGE_JOB_TTL, BRIDGE_CONCURRENCY, BRIDGE_DRAIN_TIMEOUT, BRIDGE_WEBHOOK_POLL_INTERVAL).
const (
	DefaultInitialInterval     = 2 * time.Second
	DefaultMaxInterval         = 30 * time.Second
	DefaultMultiplier          = 1.5
	DefaultJobTTL              = 12 * time.Hour
	DefaultConcurrency         = 32
	DefaultDrainTimeout        = 30 * time.Second
	DefaultWebhookPollInterval = 5 * time.Minute
	// DefaultJitter is the jitter to use without a reason to choose another. New does not
	// apply it to a zero Jitter: 0 is a valid value (no jitter).
	DefaultJitter = 0.2
)

// Options configure a Poller. Zero values take the defaults in brackets.
type Options struct {
	InitialInterval time.Duration // tracking to first poll [DefaultInitialInterval]
	MaxInterval     time.Duration // cap of the backoff [DefaultMaxInterval]
	Multiplier      float64       // backoff growth [DefaultMultiplier]
	// Jitter is the randomization factor of each interval, in [0, 1); 0 means none, so a
	// zero Jitter is not defaulted (see DefaultJitter).
	Jitter      float64
	JobTTL      time.Duration // age after which an unfinished job is reported expired [DefaultJobTTL]
	Concurrency int           // jobs handled at once [DefaultConcurrency]
	// DrainTimeout bounds how long in-flight polls may run after Run's context ends
	// [DefaultDrainTimeout].
	DrainTimeout time.Duration
	// MaxMetadata is the largest metadata echoed in events; larger metadata is dropped with
	// a warning [track.DefaultMaxMetadata, 64 KiB].
	MaxMetadata int
	Logger      *slog.Logger
	Metrics     *metrics.Metrics
	Now         func() time.Time // clock for ages and observed_at [time.Now]
	// WebhookPollInterval is the poll interval of jobs that Reducto will announce by webhook
	// (track body {"webhook": true}); polls are only a safety net for them
	// [DefaultWebhookPollInterval].
	WebhookPollInterval time.Duration
	// AfterPublish, when set, runs after an event's PubAck and before the track message is
	// acked: the fault-injection point of the crash tests (the worst moment to die).
	AfterPublish func(jobID string)
}

// Poller consumes track messages and polls their jobs. Construct it with [New].
type Poller struct {
	queue  Queue
	cons   jetstream.Consumer // queue.Consumer()
	jobs   JobGetter
	events EventPublisher
	o      Options
	pol    policy
	log    *slog.Logger
	m      *metrics.Metrics
	now    func() time.Time

	gate gate       // closed while the events stream refuses publishes
	eta  *estimator // predicts when jobs finish
	// authFailingSince is when Reducto started rejecting the API key (unix ns), 0 while it
	// accepts it. Only for operators: no decision reads it.
	authFailingSince atomic.Int64
}

// New returns a poller consuming from q (see [track.Setup]).
func New(q Queue, jobs JobGetter, events EventPublisher, o Options) (*Poller, error) {
	if q == nil || q.Consumer() == nil || jobs == nil || events == nil {
		return nil, errors.New("poller: track queue, job getter and event publisher are required")
	}
	if o.InitialInterval <= 0 {
		o.InitialInterval = DefaultInitialInterval
	}
	if o.MaxInterval <= 0 {
		o.MaxInterval = DefaultMaxInterval
	}
	if o.MaxInterval < o.InitialInterval {
		o.MaxInterval = o.InitialInterval
	}
	if o.Multiplier < 1 {
		o.Multiplier = DefaultMultiplier
	}
	if o.Jitter < 0 || o.Jitter >= 1 {
		o.Jitter = 0
	}
	if o.JobTTL <= 0 {
		o.JobTTL = DefaultJobTTL
	}
	if o.Concurrency <= 0 {
		o.Concurrency = DefaultConcurrency
	}
	if o.DrainTimeout <= 0 {
		o.DrainTimeout = DefaultDrainTimeout
	}
	if o.WebhookPollInterval <= 0 {
		o.WebhookPollInterval = DefaultWebhookPollInterval
	}
	if o.MaxMetadata <= 0 {
		o.MaxMetadata = track.DefaultMaxMetadata
	}
	if o.Logger == nil {
		o.Logger = slog.New(slog.DiscardHandler)
	}
	if o.Now == nil {
		o.Now = time.Now
	}
	return &Poller{
		queue:  q,
		cons:   q.Consumer(),
		jobs:   jobs,
		events: events,
		o:      o,
		pol: policy{
			sched:           schedule{initial: o.InitialInterval, max: o.MaxInterval, multiplier: o.Multiplier, jitter: o.Jitter},
			confirmAfter:    o.InitialInterval,
			ttl:             o.JobTTL,
			webhookInterval: o.WebhookPollInterval,
			authRetry:       o.MaxInterval,
		},
		log: o.Logger,
		m:   o.Metrics,
		now: o.Now,
		eta: newEstimator(o.InitialInterval, o.MaxInterval),
	}, nil
}

// Run consumes and polls until ctx ends. Then it stops taking messages, hands back those it
// had buffered (Nak, so another replica takes them at once), lets in-flight polls and
// publishes finish for up to DrainTimeout, and returns. A job whose poll is cut short is
// redelivered, never lost; its event is published at most once whatever happens. Run has
// nothing to report: a failing fetch is retried (and logged) until ctx ends.
func (p *Poller) Run(ctx context.Context) {
	// In-flight work outlives ctx by at most DrainTimeout.
	work, cancelWork := context.WithCancel(context.WithoutCancel(ctx))
	defer cancelWork()
	stopDrain := context.AfterFunc(ctx, func() {
		t := time.AfterFunc(p.o.DrainTimeout, cancelWork)
		context.AfterFunc(work, func() { t.Stop() })
	})
	defer stopDrain()

	slots := make(chan struct{}, p.o.Concurrency)
	var wg sync.WaitGroup
	defer wg.Wait()

	failing := false
	for ctx.Err() == nil {
		err := p.consume(ctx, work, slots, &wg)
		if err == nil || ctx.Err() != nil {
			break
		}
		// Fetching failed (NATS unreachable, consumer deleted): retry every second, so that
		// a reconnect, or a consumer recreated by another replica, is picked up. One warning
		// per outage is enough.
		if !failing {
			p.log.Warn("cannot fetch jobs; retrying", "error", err)
			failing = true
		} else {
			p.log.Debug("cannot fetch jobs; retrying", "error", err)
		}
		select {
		case <-ctx.Done():
		case <-time.After(time.Second):
		}
	}
}

// fetchWait bounds one pull request: how long an idle poller waits before asking again, and
// how long shutdown may wait for the pull in progress.
const fetchWait = time.Second

// consume fetches jobs until ctx ends (nil) or fetching fails (its error). It asks JetStream
// for exactly as many jobs as there are free workers, so nothing waits in a client buffer: a
// buffered message overflowed after a NATS reconnect (a slow-consumer drop) and then came back
// only after AckWait.
func (p *Poller) consume(ctx, work context.Context, slots chan struct{}, wg *sync.WaitGroup) error {
	for {
		// While events cannot be published, polling would only spend Reducto's budget on
		// results that cannot be stored: wait until the gate reopens.
		if err := p.gate.wait(ctx); err != nil {
			return nil
		}
		n, ok := reserve(ctx, slots)
		if !ok {
			return nil
		}
		batch, err := p.cons.Fetch(n, jetstream.FetchMaxWait(fetchWait))
		if err != nil {
			release(slots, n)
			return fmt.Errorf("fetch from %s: %w", track.ConsumerName, err)
		}
		got := 0
		for msg := range batch.Messages() {
			got++
			if ctx.Err() != nil {
				// Shutting down: hand the job back, another replica takes it at once.
				<-slots
				p.nak(msg, 0)
				continue
			}
			wg.Go(func() {
				defer func() { <-slots }()
				p.handle(work, msg)
			})
		}
		release(slots, n-got)
		if err := batch.Error(); err != nil && !errors.Is(err, nats.ErrTimeout) && ctx.Err() == nil {
			p.log.Debug("fetch ended early", "error", err)
		}
	}
}

// reserve waits for at least one free worker slot and takes every other free one; it reports
// false when ctx ends first.
func reserve(ctx context.Context, slots chan struct{}) (int, bool) {
	select {
	case slots <- struct{}{}:
	case <-ctx.Done():
		return 0, false
	}
	n := 1
	for n < cap(slots) {
		select {
		case slots <- struct{}{}:
			n++
		default:
			return n, true
		}
	}
	return n, true
}

func release(slots chan struct{}, n int) {
	for range n {
		<-slots
	}
}

// nak reschedules a message after d (0: at once).
func (p *Poller) nak(msg jetstream.Msg, d time.Duration) {
	var err error
	if d <= 0 {
		err = msg.Nak()
	} else {
		err = msg.NakWithDelay(d)
	}
	if err != nil {
		// The message comes back after AckWait anyway.
		p.log.Debug("nak failed", "subject", msg.Subject(), "error", err)
	}
}
