package poller

import (
	"context"
	"sync"
	"time"
)

// Back-pressure schedule: the first failed publish pauses polling for gateFirst, each further
// one doubles the pause up to gateMax.
const (
	gateFirst = 500 * time.Millisecond
	gateMax   = 30 * time.Second
)

// gate stops the poller from taking jobs while the events stream refuses publishes (full,
// unavailable, NATS down): polling then would spend Reducto's budget on results that could
// only be dropped. The next publish after a pause is the probe: success reopens the gate for
// good, failure doubles the pause.
type gate struct {
	mu       sync.Mutex
	until    time.Time
	failures int
	since    time.Time // first failure of the current run of failures
	err      error     // the last one
}

// failed records a failed publish and returns the pause it starts (0 when a pause is already
// running, so a burst of failures counts once).
func (g *gate) failed(now time.Time, err error) time.Duration {
	g.mu.Lock()
	defer g.mu.Unlock()
	if g.failures == 0 {
		g.since = now
	}
	g.err = err
	if now.Before(g.until) {
		return 0
	}
	g.failures++
	d := gateFirst << min(g.failures-1, 10)
	d = min(d, gateMax)
	g.until = now.Add(d)
	return d
}

// succeeded records a successful publish and reports whether it ended a pause.
func (g *gate) succeeded() bool {
	g.mu.Lock()
	defer g.mu.Unlock()
	was := g.failures > 0
	g.failures = 0
	g.until = time.Time{}
	g.since, g.err = time.Time{}, nil
	return was
}

// failing reports whether the last publish failed, since when, and why.
func (g *gate) failing() (since time.Time, err error, failing bool) {
	g.mu.Lock()
	defer g.mu.Unlock()
	return g.since, g.err, g.failures > 0
}

// remaining is how long the current pause still runs.
func (g *gate) remaining(now time.Time) time.Duration {
	g.mu.Lock()
	defer g.mu.Unlock()
	return max(0, g.until.Sub(now))
}

// wait blocks while a pause runs; it returns ctx's error if ctx ends first.
func (g *gate) wait(ctx context.Context) error {
	for {
		g.mu.Lock()
		d := time.Until(g.until)
		g.mu.Unlock()
		if d <= 0 {
			return ctx.Err()
		}
		t := time.NewTimer(d)
		select {
		case <-ctx.Done():
			t.Stop()
			return ctx.Err()
		case <-t.C:
		}
	}
}
