// Package budget is the process-wide budget of Reducto requests: a token bucket that every
// request (polls, cancels, submits) waits on, which shrinks when Reducto answers 429 and grows
// back while it does not (additive increase, multiplicative decrease), and pauses for a
// Retry-After. One Budget per process keeps the bridge from ever earning a [CODE 2000] 429 by
// itself; replicas each get BRIDGE_RATE_LIMIT.
package budget

import (
	"context"
	"sync"
	"time"

	"golang.org/x/time/rate"
)

// Tuning of the adaptive behaviour.
const (
	// decrease is the factor applied to the rate on a 429.
	decrease = 0.5
	// increasePerSecond is how much of the configured rate is won back per second without 429s.
	increasePerSecond = 0.05
	// cutSpacing keeps one burst of 429s (every request in flight got one) to a single cut.
	cutSpacing = time.Second
	// minFraction is the floor of the rate, as a fraction of the configured one.
	minFraction = 0.05
)

// Budget is a shared, adaptive request budget. It satisfies reducto.Limiter and
// reducto.Throttler. Safe for concurrent use.
type Budget struct {
	lim    *rate.Limiter
	max    float64
	onWait func(time.Duration)
	onRate func(float64)
	now    func() time.Time

	mu          sync.Mutex
	current     float64
	lastChange  time.Time
	lastCut     time.Time
	pausedUntil time.Time
}

// Option configures a Budget.
type Option func(*Budget)

// WithWaitObserver is told how long each request waited (for metrics).
func WithWaitObserver(f func(time.Duration)) Option { return func(b *Budget) { b.onWait = f } }

// WithRateObserver is told the rate whenever it changes (for metrics).
func WithRateObserver(f func(float64)) Option { return func(b *Budget) { b.onRate = f } }

// WithClock replaces time.Now (tests).
func WithClock(now func() time.Time) Option { return func(b *Budget) { b.now = now } }

// New returns a budget of perSecond requests per second. The burst is a tenth of a second's
// worth (at least 1), so a backlog cannot spend seconds of budget at once.
func New(perSecond float64, opts ...Option) *Budget {
	b := &Budget{max: perSecond, current: perSecond, now: time.Now}
	for _, o := range opts {
		o(b)
	}
	b.lim = rate.NewLimiter(rate.Limit(perSecond), burstFor(perSecond))
	b.lastChange = b.now()
	if b.onRate != nil {
		b.onRate(perSecond)
	}
	return b
}

func burstFor(perSecond float64) int {
	return max(1, int(perSecond/10))
}

// Wait blocks until a request may be sent, or ctx ends.
func (b *Budget) Wait(ctx context.Context) error {
	start := b.now()
	b.mu.Lock()
	b.recoverLocked(start)
	pause := b.pausedUntil.Sub(start)
	b.mu.Unlock()
	if pause > 0 {
		t := time.NewTimer(pause)
		select {
		case <-ctx.Done():
			t.Stop()
			return ctx.Err()
		case <-t.C:
		}
	}
	err := b.lim.Wait(ctx)
	if b.onWait != nil {
		if d := b.now().Sub(start); d > time.Millisecond {
			b.onWait(d)
		}
	}
	return err
}

// Throttled is called after a 429: the rate is halved (once per burst of 429s) and, when the
// answer carried a Retry-After, every request pauses that long.
func (b *Budget) Throttled(retryAfter time.Duration) {
	now := b.now()
	b.mu.Lock()
	defer b.mu.Unlock()
	if retryAfter > 0 && now.Add(retryAfter).After(b.pausedUntil) {
		b.pausedUntil = now.Add(retryAfter)
	}
	if now.Sub(b.lastCut) < cutSpacing {
		return
	}
	b.lastCut = now
	b.recoverLocked(now)
	b.setLocked(now, max(b.max*minFraction, b.current*decrease))
}

// Rate returns the current requests per second.
func (b *Budget) Rate() float64 {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.recoverLocked(b.now())
	return b.current
}

// recoverLocked wins back increasePerSecond of the configured rate per second since the last
// change.
func (b *Budget) recoverLocked(now time.Time) {
	if b.current >= b.max {
		return
	}
	elapsed := now.Sub(b.lastChange).Seconds()
	if elapsed < 0.1 {
		return
	}
	b.setLocked(now, min(b.max, b.current+b.max*increasePerSecond*elapsed))
}

func (b *Budget) setLocked(now time.Time, r float64) {
	b.lastChange = now
	if r == b.current {
		return
	}
	b.current = r
	b.lim.SetLimitAt(now, rate.Limit(r))
	b.lim.SetBurstAt(now, burstFor(r))
	if b.onRate != nil {
		b.onRate(r)
	}
}
