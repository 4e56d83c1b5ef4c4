// Package budget is the budget of Reducto requests of one API key, shared by the replicas that
// use the key. Reducto limits a key twice: GET /job (200 req/s, 429 [CODE 2000] above it) and
// all endpoints together (1,000 req/s, [CODE 1000]). A Budget keeps one adaptive token bucket
// per limit: a GET /job waits on both, every other request (list, cancel, submit) on the
// all-endpoints one. Each bucket runs at this replica's share of the key's rate (the configured
// rate divided by the live replicas, see [Budget.SetReplicas]), shrinks when Reducto answers 429
// for its limit and grows back while it does not (additive increase, multiplicative decrease,
// applied to the share), and pauses for a Retry-After.
package budget

import (
	"context"
	"sync"
	"time"

	"golang.org/x/time/rate"

	"github.com/reducto-bridge/reducto-bridge/reducto"
)

// Tuning of the adaptive behaviour.
const (
	// decrease is the factor applied to the rate on a 429.
	decrease = 0.5
	// increasePerSecond is how much of the share is won back per second without 429s.
	increasePerSecond = 0.05
	// cutSpacing keeps one burst of 429s (every request in flight got one) to a single cut.
	cutSpacing = time.Second
	// minFraction is the floor of the rate, as a fraction of the share.
	minFraction = 0.05
)

// Defaults of the key's two rates (BRIDGE_RATE_LIMIT and BRIDGE_RATE_LIMIT_ALL): half of
// Reducto's 200/s on GET /job and 1,000/s on all endpoints, leaving room for other clients.
const (
	DefaultGetJobRate float64 = 100
	DefaultAllRate    float64 = 500
)

// Names of the two limits, as the rate observer and [Budget.Rate] know them.
const (
	// LimitGetJob is Reducto's GET /job limit (BRIDGE_RATE_LIMIT).
	LimitGetJob = "get_job"
	// LimitAll is Reducto's all-endpoints limit (BRIDGE_RATE_LIMIT_ALL).
	LimitAll = "all"
)

// Budget is a shared, adaptive request budget. It satisfies reducto.Limiter and
// reducto.Throttler. Safe for concurrent use.
type Budget struct {
	job, all *limit
	onWait   func(time.Duration)
	onRate   func(limit string, perSecond float64)
	now      func() time.Time
}

// Option configures a Budget.
type Option func(*Budget)

// WithWaitObserver is told how long each request waited (for metrics).
func WithWaitObserver(f func(time.Duration)) Option { return func(b *Budget) { b.onWait = f } }

// WithRateObserver is told a limit's rate (requests/s of this replica) whenever it changes (for
// metrics); limit is [LimitGetJob] or [LimitAll].
func WithRateObserver(f func(limit string, perSecond float64)) Option {
	return func(b *Budget) { b.onRate = f }
}

// WithClock replaces time.Now (tests).
func WithClock(now func() time.Time) Option { return func(b *Budget) { b.now = now } }

// New returns the budget of a key allowed getJobPerSecond GET /job requests and allPerSecond
// requests in all, for a single replica until [Budget.SetReplicas] says otherwise. Each
// bucket's burst is a tenth of a second's worth (at least 1), so a backlog cannot spend
// seconds of budget at once.
func New(getJobPerSecond, allPerSecond float64, opts ...Option) *Budget {
	b := &Budget{now: time.Now}
	for _, o := range opts {
		o(b)
	}
	t := b.now()
	b.job = newLimit(LimitGetJob, getJobPerSecond, t, b.onRate)
	b.all = newLimit(LimitAll, allPerSecond, t, b.onRate)
	return b
}

// Wait blocks until a request for op (a reducto Op*) may be sent, or ctx ends. A GET /job
// takes from both limits, any other request from the all-endpoints one.
func (b *Budget) Wait(ctx context.Context, op string) error {
	start := b.now()
	var err error
	if op == reducto.OpGetJob {
		err = b.job.wait(ctx, start)
	}
	if err == nil {
		err = b.all.wait(ctx, start)
	}
	if b.onWait != nil {
		if d := b.now().Sub(start); d > time.Millisecond {
			b.onWait(d)
		}
	}
	return err
}

// Throttled is called after a 429. A [CODE 2000] (the GET /job limit) cuts the GET /job rate;
// a [CODE 1000] or a 429 without a code cuts the all-endpoints rate. The cut halves the rate
// (once per burst of 429s) and, when the answer carried a Retry-After, every request under
// that limit pauses that long.
func (b *Budget) Throttled(e *reducto.APIError) {
	l := b.all
	if e.RateLimitCode == reducto.RateLimitPolling {
		l = b.job
	}
	l.throttled(b.now(), e.RetryAfter)
}

// SetReplicas sets the number of live replicas sharing the key (at least 1): each limit's
// rate becomes its share, the configured rate divided by n, times the AIMD factor it has.
func (b *Budget) SetReplicas(n int) {
	now := b.now()
	b.job.setReplicas(now, n)
	b.all.setReplicas(now, n)
}

// KeyRate is a limit's rate for the whole API key as this replica sees it: its own rate
// times the live replicas, each of which takes an equal share (the AIMD cut included).
func (b *Budget) KeyRate(limit string) float64 {
	l := b.all
	if limit == LimitGetJob {
		l = b.job
	}
	r := l.rate(b.now())
	l.mu.Lock()
	defer l.mu.Unlock()
	return r * float64(l.replicas)
}

// Rate returns the current requests per second of this replica under limit ([LimitGetJob]
// or [LimitAll]).
func (b *Budget) Rate(limit string) float64 {
	l := b.all
	if limit == LimitGetJob {
		l = b.job
	}
	return l.rate(b.now())
}

// limit is one adaptive bucket. Its rate is max / replicas * fraction, where fraction is the
// AIMD factor in [minFraction, 1].
type limit struct {
	name   string
	lim    *rate.Limiter
	max    float64 // the key's rate, all replicas together
	onRate func(string, float64)

	mu          sync.Mutex
	replicas    int
	fraction    float64
	current     float64
	lastChange  time.Time
	lastCut     time.Time
	pausedUntil time.Time
}

func newLimit(name string, perSecond float64, now time.Time, onRate func(string, float64)) *limit {
	l := &limit{name: name, max: perSecond, onRate: onRate, replicas: 1, fraction: 1, current: perSecond, lastChange: now}
	l.lim = rate.NewLimiter(rate.Limit(perSecond), burstFor(perSecond))
	if onRate != nil {
		onRate(name, perSecond)
	}
	return l
}

func burstFor(perSecond float64) int {
	return max(1, int(perSecond/10))
}

func (l *limit) wait(ctx context.Context, start time.Time) error {
	l.mu.Lock()
	l.recoverLocked(start)
	pause := l.pausedUntil.Sub(start)
	l.mu.Unlock()
	if pause > 0 {
		t := time.NewTimer(pause)
		select {
		case <-ctx.Done():
			t.Stop()
			return ctx.Err()
		case <-t.C:
		}
	}
	return l.lim.Wait(ctx)
}

func (l *limit) throttled(now time.Time, retryAfter time.Duration) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if retryAfter > 0 && now.Add(retryAfter).After(l.pausedUntil) {
		l.pausedUntil = now.Add(retryAfter)
	}
	if now.Sub(l.lastCut) < cutSpacing {
		return
	}
	l.lastCut = now
	l.recoverLocked(now)
	l.fraction = max(minFraction, l.fraction*decrease)
	l.applyLocked(now)
}

func (l *limit) setReplicas(now time.Time, n int) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.recoverLocked(now)
	l.replicas = max(1, n)
	l.applyLocked(now)
}

func (l *limit) rate(now time.Time) float64 {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.recoverLocked(now)
	return l.current
}

// recoverLocked wins back increasePerSecond of the share per second since the last change.
func (l *limit) recoverLocked(now time.Time) {
	if l.fraction >= 1 {
		return
	}
	elapsed := now.Sub(l.lastChange).Seconds()
	if elapsed < 0.1 {
		return
	}
	l.fraction = min(1, l.fraction+increasePerSecond*elapsed)
	l.applyLocked(now)
}

// applyLocked sets the bucket to the rate of the current replicas and fraction.
func (l *limit) applyLocked(now time.Time) {
	l.lastChange = now
	r := l.max / float64(l.replicas) * l.fraction
	if r == l.current {
		return
	}
	l.current = r
	l.lim.SetLimitAt(now, rate.Limit(r))
	l.lim.SetBurstAt(now, burstFor(r))
	if l.onRate != nil {
		l.onRate(l.name, r)
	}
}
