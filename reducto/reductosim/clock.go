package reductosim

import (
	"sync"
	"time"
)

// Clock is the simulator's notion of time. Job timelines (queueing, running, terminal times,
// created_at, deletion windows) are measured on it; rate limits, webhook retry waits and slow
// responses use real time, because they interact with real sockets and real clients.
type Clock interface {
	Now() time.Time
}

type realClock struct{}

func (realClock) Now() time.Time { return time.Now() }

// RealClock returns a [Clock] that reads the wall clock.
func RealClock() Clock { return realClock{} }

type scaledClock struct {
	start  time.Time // with a monotonic reading, for elapsed time
	wall   time.Time // start without the monotonic reading, the origin of simulated time
	factor float64
}

// ScaledClock returns a [Clock] that starts at the real current time and then runs factor
// times faster than real time, so that jobs lasting minutes finish in seconds in a demo or a
// benchmark. A factor <= 0 is treated as 1.
func ScaledClock(factor float64) Clock {
	if factor <= 0 {
		factor = 1
	}
	now := time.Now()
	return &scaledClock{start: now, wall: now.Round(0), factor: factor}
}

func (c *scaledClock) Now() time.Time {
	return c.wall.Add(time.Duration(float64(time.Since(c.start)) * c.factor))
}

// Wall maps a simulator time back to the real instant it stands for.
func (c *scaledClock) Wall(t time.Time) time.Time {
	return c.wall.Add(time.Duration(float64(t.Sub(c.wall)) / c.factor))
}

// walled is a [Clock] whose time runs apart from the wall clock (a [ScaledClock]): the
// timestamps a client compares with its own clock (created_at) are reported on the wall
// clock, at the real instant the simulator time stands for.
type walled interface {
	Wall(t time.Time) time.Time
}

// wallTime is t as a client's clock reads it: t itself, unless the clock is scaled.
func wallTime(c Clock, t time.Time) time.Time {
	if w, ok := c.(walled); ok {
		return w.Wall(t)
	}
	return t
}

// FakeClock is a [Clock] that only moves when told to, for deterministic tests.
type FakeClock struct {
	mu sync.RWMutex
	t  time.Time
}

// NewFakeClock returns a [FakeClock] reading t.
func NewFakeClock(t time.Time) *FakeClock { return &FakeClock{t: t} }

// Now returns the fake current time.
func (c *FakeClock) Now() time.Time {
	c.mu.RLock()
	defer c.mu.RUnlock()
	return c.t
}

// Advance moves the clock forward by d.
func (c *FakeClock) Advance(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.t = c.t.Add(d)
}

// Set moves the clock to t.
func (c *FakeClock) Set(t time.Time) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.t = t
}
