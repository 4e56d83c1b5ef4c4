package budget

import (
	"context"
	"sync"
	"testing"
	"time"
)

// fakeClock is a settable clock for the adaptive logic (the token bucket itself runs on real
// time, so tests that wait on it use generous rates).
type fakeClock struct {
	mu  sync.Mutex
	now time.Time
}

func (c *fakeClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.now
}

func (c *fakeClock) Advance(d time.Duration) {
	c.mu.Lock()
	c.now = c.now.Add(d)
	c.mu.Unlock()
}

func TestThrottledHalvesOncePerBurstAndRecovers(t *testing.T) {
	clk := &fakeClock{now: time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)}
	var rates []float64
	b := New(100, WithClock(clk.Now), WithRateObserver(func(r float64) { rates = append(rates, r) }))
	if got := b.Rate(); got != 100 {
		t.Fatalf("initial rate = %v, want 100", got)
	}
	// A burst of 429s (every request in flight got one) cuts once.
	for range 10 {
		b.Throttled(0)
	}
	if got := b.Rate(); got != 50 {
		t.Fatalf("after a burst of 429s: rate = %v, want 50", got)
	}
	clk.Advance(1100 * time.Millisecond)
	b.Throttled(0)
	// 1.1s of recovery (+5.5) then the cut: (50+5.5)/2.
	if got := b.Rate(); got < 27 || got > 28 {
		t.Fatalf("after a second cut: rate = %v, want about 27.75", got)
	}
	// Recovery: 5% of the configured rate per second, up to the configured rate.
	clk.Advance(10 * time.Second)
	if got := b.Rate(); got < 77 || got > 78 {
		t.Errorf("after 10s: rate = %v, want about 77.75", got)
	}
	clk.Advance(time.Minute)
	if got := b.Rate(); got != 100 {
		t.Errorf("after a minute: rate = %v, want back at 100", got)
	}
	if len(rates) < 4 || rates[0] != 100 || rates[len(rates)-1] != 100 {
		t.Errorf("observed rates %v", rates)
	}
}

func TestFloor(t *testing.T) {
	clk := &fakeClock{now: time.Now()}
	b := New(100, WithClock(clk.Now))
	for range 20 {
		b.Throttled(0)
		clk.Advance(2 * time.Second)
		// Rate() recovers a little each time; the floor still holds.
	}
	if got := b.Rate(); got < 5 {
		t.Errorf("rate = %v, want never below the 5%% floor", got)
	}
}

func TestRetryAfterPausesEveryone(t *testing.T) {
	b := New(1000)
	b.Throttled(150 * time.Millisecond)
	start := time.Now()
	if err := b.Wait(t.Context()); err != nil {
		t.Fatal(err)
	}
	if waited := time.Since(start); waited < 140*time.Millisecond {
		t.Errorf("waited %v, want the 150ms Retry-After honoured", waited)
	}
}

func TestWaitHonoursContext(t *testing.T) {
	b := New(1000)
	b.Throttled(time.Hour)
	ctx, cancel := context.WithTimeout(t.Context(), 20*time.Millisecond)
	defer cancel()
	if err := b.Wait(ctx); err == nil {
		t.Error("Wait returned nil during an hour-long pause with a 20ms context")
	}
}

func TestRateIsEnforced(t *testing.T) {
	var waits int
	b := New(50, WithWaitObserver(func(time.Duration) { waits++ }))
	start := time.Now()
	for range 30 {
		if err := b.Wait(t.Context()); err != nil {
			t.Fatal(err)
		}
	}
	// Burst 5, then 25 more at 50/s: at least 0.5s.
	if elapsed := time.Since(start); elapsed < 450*time.Millisecond {
		t.Errorf("30 requests at 50/s took %v, want >= 0.5s", elapsed)
	}
	if waits == 0 {
		t.Error("wait observer never called")
	}
}
