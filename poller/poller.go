// Package poller is the bridge's scheduler. It consumes track messages from the REDUCTO_TRACK
// work queue ([track.Queue]) through one durable pull consumer shared by every replica, polls each job
// through a [JobGetter], answers an unfinished job with NakWithDelay (so the delay lives in
// JetStream and survives crashes) or, while the GET /job budget binds, moves its message to
// the stream's tail ([track.Queue.Requeue]: the jobs are then polled round robin, and wait in
// the stream at no cost per poll to nats-server), and hands a finished job to an
// [EventPublisher], acking the track message only after the event's PubAck.
package poller

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"sync/atomic"
	"time"

	"github.com/cenkalti/backoff/v4"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/reducto-bridge/reducto-bridge/event"
	"github.com/reducto-bridge/reducto-bridge/lastpoll"
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
// Consumer is asked before every fetch, so that the consumer Recreate made (after a fetch
// found the old one gone) is the one used next.
type Queue interface {
	Consumer() jetstream.Consumer
	Recreate(ctx context.Context) error
	JobID(subject string) (string, error)
	Ensure(ctx context.Context, id string, req track.Request) (bool, error)
	Last(ctx context.Context, id string) (*jetstream.RawStreamMsg, error)
	Delete(ctx context.Context, seq uint64) error
	Requeue(ctx context.Context, msg jetstream.Msg, p track.Position) (bool, error)
	Position(subj string, h nats.Header, stored time.Time, delivered uint64) track.Position
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
	DefaultSweptPollInterval   = 2 * time.Minute
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
	Jitter float64
	JobTTL time.Duration // age after which an unfinished job is reported expired [DefaultJobTTL]
	// Concurrency is the number of worker slots: Reducto requests in flight at most. Jobs
	// waiting to confirm a permanent answer give their slot back; up to 8 per slot wait at
	// once [DefaultConcurrency].
	Concurrency int
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
	// Coverage, when set, says which jobs a list sweep covers (package sweep): their polls
	// are only a safety net, spaced by SweptPollInterval. It is asked at every delivery; nil
	// means no job is covered.
	Coverage Coverage
	// SweptPollInterval is the poll interval of jobs the list sweep covers
	// (BRIDGE_LIST_SAFETY_INTERVAL) [DefaultSweptPollInterval].
	SweptPollInterval time.Duration
	// Outstanding and PollRate, when both set, space the polls so that they fit the GET /job
	// budget: every poll at least outstanding / (90% of the rate) after the previous one
	// (fairness when the budget binds), and the safety-net polls of covered jobs at least
	// outstanding / (half the rate). Outstanding is the number of tracked jobs on the key
	// (cached, cheap to call), PollRate the key's GET /job requests per second now (all
	// replicas together).
	Outstanding func() uint64
	PollRate    func() float64
	// AfterPublish, when set, runs after an event's PubAck and before the track message is
	// acked: the fault-injection point of the crash tests (the worst moment to die).
	AfterPublish func(jobID string)
	// Origins, when set (BRIDGE_RETRACK_KEEPS_SCHEDULE), keeps each job's first track time:
	// a new track message for an outstanding job then keeps the job's TTL origin and its
	// place in the schedule, and only its metadata changes. Nil: a re-track restarts both.
	Origins Origins
	// Capture, when set (BRIDGE_CAPTURE_URL_RESULTS), downloads a completed job's URL result
	// into the object store before its event is published; nil leaves URL results as they
	// are.
	Capture Capturer
	// Polls, when set, records what each poll of an unfinished job saw, and forgets the job
	// once its event is stored (for P.status); nil records nothing.
	Polls Polls
}

// Polls keeps each job's last poll; *lastpoll.Book satisfies it. Record is called once per
// poll that leaves the job unfinished, Forget once the job's event is stored.
type Polls interface {
	Record(id string, p lastpoll.Poll)
	Forget(id string)
}

// Capturer downloads a URL result into the results object store under name and says where;
// *capture.Capturer satisfies it. Its errors are classified by capture.Permanent.
type Capturer interface {
	Capture(ctx context.Context, name, url string) (*event.ResultRef, error)
}

// Coverage says whether a list sweep will find a tracked job's end; *sweep.Sweeper satisfies
// it. Covers is called once per delivery of a track message (which also tells the sweep's
// self-check about the job), so it must be cheap and safe for concurrent use.
// Done is called once a job's event is stored (by a poll or a hint), so the sweep forgets it.
type Coverage interface {
	Covers(id string, trackedAt time.Time) bool
	Done(id string)
}

// Poller consumes track messages and polls their jobs. Construct it with [New].
type Poller struct {
	queue  Queue
	jobs   JobGetter
	events EventPublisher
	o      Options
	pol    policy
	log    *slog.Logger
	m      *metrics.Metrics
	now    func() time.Time

	busy sync.Map   // job ids polled or hinted now: see [Poller.claim]
	gate gate       // closed while the events stream refuses publishes
	eta  *estimator // predicts when jobs finish
	// authFailingSince is when Reducto started rejecting the API key (unix ns), 0 while it
	// accepts it. Only for operators: no decision reads it.
	authFailingSince atomic.Int64
	// confirming counts the jobs in a confirmation wait without a worker slot (see
	// [Poller.hold]); while there are any, fetches are kept short so that a job whose wait
	// is over gets a slot back soon.
	confirming atomic.Int64
	// fetch is the health of fetching, for operators: see [Poller.FetchFailing].
	fetch struct {
		mu    sync.Mutex
		since time.Time // start of the current outage; zero while fetching works
		err   error     // its latest error
	}
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
	if o.SweptPollInterval <= 0 {
		o.SweptPollInterval = DefaultSweptPollInterval
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
		jobs:   jobs,
		events: events,
		o:      o,
		pol: policy{
			sched:           schedule{initial: o.InitialInterval, max: o.MaxInterval, multiplier: o.Multiplier, jitter: o.Jitter},
			confirmAfter:    o.InitialInterval,
			ttl:             o.JobTTL,
			webhookInterval: o.WebhookPollInterval,
			sweptInterval:   o.SweptPollInterval,
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
// nothing to report: a failing fetch is retried until ctx ends, with the backoff of
// [Poller.retryFetch], and reported by [Poller.FetchFailing] and one warning per outage.
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
	waits := make(chan struct{}, confirmWaitsPerWorker*p.o.Concurrency)
	var wg sync.WaitGroup
	defer wg.Wait()

	bo := backoff.NewExponentialBackOff(
		backoff.WithInitialInterval(fetchRetryInitial),
		backoff.WithMultiplier(2),
		backoff.WithMaxInterval(fetchRetryMax),
		backoff.WithRandomizationFactor(0.2),
		backoff.WithMaxElapsedTime(0),
	)
	for ctx.Err() == nil {
		err := p.consume(ctx, work, slots, waits, &wg)
		if err == nil || ctx.Err() != nil {
			break
		}
		p.retryFetch(ctx, err, bo)
	}
}

// Fetch retries back off exponentially from fetchRetryInitial to fetchRetryMax (with 20%
// jitter, so that replicas spread out); a fetch that returned an error itself (NATS out of
// reach, the connection closed) waits at least fetchRetryFloor.
const (
	fetchRetryInitial = 100 * time.Millisecond
	fetchRetryMax     = 5 * time.Second
	fetchRetryFloor   = time.Second
)

// fetchError is a failed fetch: gone when the consumer is not there (deleted by hand: the
// pull request has no responders, or the server says the consumer was deleted or is not
// found), early when the fetch itself worked but the batch ended at once with an error (a
// loop would spin on it).
type fetchError struct {
	err   error
	gone  bool
	early bool
}

func (e *fetchError) Error() string { return e.err.Error() }
func (e *fetchError) Unwrap() error { return e.err }

func consumerGone(err error) bool {
	return errors.Is(err, nats.ErrNoResponders) || errors.Is(err, jetstream.ErrConsumerDeleted) ||
		errors.Is(err, jetstream.ErrConsumerNotFound)
}

// retryFetch handles a failed fetch: it records the outage (one warning, at its start),
// waits for the next backoff interval, and, when the consumer is gone, recreates it, so that
// the jobs the stream still holds are delivered again. A consumer another replica recreated
// first is taken as it is.
func (p *Poller) retryFetch(ctx context.Context, err error, bo *backoff.ExponentialBackOff) {
	var fe *fetchError
	gone := errors.As(err, &fe) && fe.gone
	if p.fetchFailed(err) {
		bo.Reset()
		msg := "cannot fetch jobs; retrying"
		if gone {
			msg = "cannot fetch jobs: consumer gone; recreating it"
		}
		p.log.Warn(msg, "consumer", track.ConsumerName, "error", err)
	} else {
		p.log.Debug("cannot fetch jobs; retrying", "consumer", track.ConsumerName, "error", err)
	}
	wait := bo.NextBackOff()
	if fe == nil || (!fe.early && !gone) {
		wait = max(wait, fetchRetryFloor)
	}
	t := time.NewTimer(wait)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return
	case <-t.C:
	}
	if !gone {
		return
	}
	if rerr := p.queue.Recreate(ctx); rerr != nil && ctx.Err() == nil {
		p.log.Debug("cannot recreate the consumer; retrying", "consumer", track.ConsumerName, "error", rerr)
		p.noteFetchError(fmt.Errorf("%w; %w", err, rerr))
	}
}

// fetchFailed records a failed fetch and reports whether it starts an outage.
func (p *Poller) fetchFailed(err error) bool {
	p.fetch.mu.Lock()
	defer p.fetch.mu.Unlock()
	p.fetch.err = err
	if !p.fetch.since.IsZero() {
		return false
	}
	p.fetch.since = p.now()
	return true
}

// noteFetchError replaces the error of the current outage, if there is one.
func (p *Poller) noteFetchError(err error) {
	p.fetch.mu.Lock()
	defer p.fetch.mu.Unlock()
	if !p.fetch.since.IsZero() {
		p.fetch.err = err
	}
}

// fetchWorks records a fetch that worked, ending the outage if there was one (logged once).
func (p *Poller) fetchWorks() {
	p.fetch.mu.Lock()
	since := p.fetch.since
	p.fetch.since, p.fetch.err = time.Time{}, nil
	p.fetch.mu.Unlock()
	if !since.IsZero() {
		p.log.Info("fetching jobs again", "consumer", track.ConsumerName, "after", p.now().Sub(since).Round(time.Millisecond))
	}
}

// FetchFailing reports whether fetching jobs from the shared consumer fails, since when, and
// its latest error (the consumer was deleted, NATS is out of reach...). While it fails no job
// is polled; the poller retries with a backoff of up to 5 s, recreating a consumer that is
// gone. It turns false at the first fetch that works again.
func (p *Poller) FetchFailing() (since time.Time, err error, failing bool) {
	p.fetch.mu.Lock()
	defer p.fetch.mu.Unlock()
	return p.fetch.since, p.fetch.err, !p.fetch.since.IsZero()
}

// fetchWait bounds one pull request: how long an idle poller waits before asking again, and
// how long shutdown may wait for the pull in progress.
const fetchWait = time.Second

// confirmFetchWait bounds a pull request while jobs wait for a confirmation without a worker
// slot: a job whose wait is over needs a slot back, and a pull holds every free slot until
// it ends.
const confirmFetchWait = 100 * time.Millisecond

// confirmWaitsPerWorker bounds the jobs in a confirmation wait, per worker slot
// (Concurrency): at the default 32 slots, 256 jobs wait at once, so confirmations go at up
// to 128 jobs (256 GETs) per second with the default 2 s wait, above the default budget
// (100/s). A waiting job costs a goroutine and its message (a few KB), and one InProgress
// per third of AckWait.
const confirmWaitsPerWorker = 8

// consume fetches jobs until ctx ends (nil) or fetching fails (its error). It asks JetStream
// for exactly as many jobs as there are free workers, so nothing waits in a client buffer: a
// buffered message overflowed after a NATS reconnect (a slow-consumer drop) and then came back
// only after AckWait. A worker slot bounds the Reducto requests in flight; a job waiting to
// confirm a permanent answer gives its slot back for the wait and takes one of waits instead.
func (p *Poller) consume(ctx, work context.Context, slots, waits chan struct{}, wg *sync.WaitGroup) error {
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
		wait := fetchWait
		if p.confirming.Load() > 0 {
			wait = confirmFetchWait
		}
		batch, err := p.queue.Consumer().Fetch(n, jetstream.FetchMaxWait(wait))
		if err != nil {
			release(slots, n)
			return &fetchError{err: err, gone: consumerGone(err)}
		}
		got := 0
		for msg := range batch.Messages() {
			if got++; got == 1 {
				p.fetchWorks() // a delivery proves it, before the batch ends
			}
			if ctx.Err() != nil {
				// Shutting down: hand the job back, another replica takes it at once.
				<-slots
				p.nak(msg, 0)
				continue
			}
			w := &worker{slots: slots, waits: waits, held: true}
			wg.Go(func() {
				defer w.release()
				p.handle(withWorker(work, w), msg)
			})
		}
		release(slots, n-got)
		err = batch.Error()
		switch {
		case ctx.Err() != nil:
		case consumerGone(err):
			// Asking again at once would spin: each answer comes back in microseconds.
			return &fetchError{err: err, gone: true}
		case err == nil, errors.Is(err, nats.ErrTimeout), errors.Is(err, jetstream.ErrNoMessages):
			p.fetchWorks()
		case got > 0:
			p.log.Debug("fetch ended early", "error", err)
		default:
			return &fetchError{err: err, early: true}
		}
	}
}

// worker is one delivery's claim on the worker slots: held while it may send a Reducto
// request, given back during a confirmation wait (see [Poller.hold]). Only the delivery's
// goroutine touches it.
type worker struct {
	slots, waits chan struct{}
	held         bool // holds one of slots
}

// release gives the worker slot back, if it is held.
func (w *worker) release() {
	if w.held {
		<-w.slots
		w.held = false
	}
}

type workerKey struct{}

// withWorker carries a delivery's worker claim to [Poller.hold].
func withWorker(ctx context.Context, w *worker) context.Context {
	return context.WithValue(ctx, workerKey{}, w)
}

// workerOf is the delivery's worker claim, nil when there is none (then a confirmation wait
// keeps whatever it holds).
func workerOf(ctx context.Context) *worker {
	w, _ := ctx.Value(workerKey{}).(*worker)
	return w
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
