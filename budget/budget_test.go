package budget

import (
	"context"
	"sync"
	"testing"
	"time"

	"github.com/reducto-bridge/reducto-bridge/reducto"
	"github.com/reducto-bridge/reducto-bridge/replica"
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

// Reducto's 429s: the GET /job limit, the all-endpoints limit, and one without a code.
func code2000(ra time.Duration) *reducto.APIError {
	return &reducto.APIError{Op: reducto.OpGetJob, StatusCode: 429, RateLimitCode: reducto.RateLimitPolling, RetryAfter: ra}
}

func code1000(ra time.Duration) *reducto.APIError {
	return &reducto.APIError{Op: reducto.OpGetJob, StatusCode: 429, RateLimitCode: reducto.RateLimitAll, RetryAfter: ra}
}

func unmarked429() *reducto.APIError {
	return &reducto.APIError{Op: reducto.OpCancelJob, StatusCode: 429}
}

func TestThrottledHalvesOncePerBurstAndRecovers(t *testing.T) {
	clk := &fakeClock{now: time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)}
	var rates []float64
	b := New(100, 500, WithClock(clk.Now), WithRateObserver(func(limit string, r float64) {
		if limit == LimitGetJob {
			rates = append(rates, r)
		}
	}))
	if got := b.Rate(LimitGetJob); got != 100 {
		t.Fatalf("initial rate = %v, want 100", got)
	}
	// A burst of 429s (every request in flight got one) cuts once.
	for range 10 {
		b.Throttled(code2000(0))
	}
	if got := b.Rate(LimitGetJob); got != 50 {
		t.Fatalf("after a burst of 429s: rate = %v, want 50", got)
	}
	clk.Advance(1100 * time.Millisecond)
	b.Throttled(code2000(0))
	// 1.1s of recovery (+5.5) then the cut: (50+5.5)/2.
	if got := b.Rate(LimitGetJob); got < 27 || got > 28 {
		t.Fatalf("after a second cut: rate = %v, want about 27.75", got)
	}
	// Recovery: 5% of the configured rate per second, up to the configured rate.
	clk.Advance(10 * time.Second)
	if got := b.Rate(LimitGetJob); got < 77 || got > 78 {
		t.Errorf("after 10s: rate = %v, want about 77.75", got)
	}
	clk.Advance(time.Minute)
	if got := b.Rate(LimitGetJob); got != 100 {
		t.Errorf("after a minute: rate = %v, want back at 100", got)
	}
	if len(rates) < 4 || rates[0] != 100 || rates[len(rates)-1] != 100 {
		t.Errorf("observed rates %v", rates)
	}
}

// TestLimitsAreSeparate: a [CODE 2000] cuts only the GET /job rate; a [CODE 1000] or a 429
// without a code only the all-endpoints rate.
func TestLimitsAreSeparate(t *testing.T) {
	clk := &fakeClock{now: time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)}
	b := New(100, 500, WithClock(clk.Now))
	b.Throttled(code2000(0))
	if job, all := b.Rate(LimitGetJob), b.Rate(LimitAll); job != 50 || all != 500 {
		t.Fatalf("after [CODE 2000]: get_job %v, all %v; want 50, 500 (only GET /job cut)", job, all)
	}
	clk.Advance(time.Hour)
	b.Throttled(code1000(0))
	if job, all := b.Rate(LimitGetJob), b.Rate(LimitAll); job != 100 || all != 250 {
		t.Fatalf("after [CODE 1000]: get_job %v, all %v; want 100, 250 (only all cut)", job, all)
	}
	clk.Advance(time.Hour)
	b.Throttled(unmarked429())
	if job, all := b.Rate(LimitGetJob), b.Rate(LimitAll); job != 100 || all != 250 {
		t.Fatalf("after an unmarked 429: get_job %v, all %v; want 100, 250 (only all cut)", job, all)
	}
}

// TestShareFollowsReplicas: each limit runs at its share of the live replicas, and the AIMD
// factor applies to the share.
func TestShareFollowsReplicas(t *testing.T) {
	clk := &fakeClock{now: time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)}
	got := map[string]float64{}
	b := New(150, 600, WithClock(clk.Now), WithRateObserver(func(limit string, r float64) { got[limit] = r }))
	b.SetReplicas(3)
	if got[LimitGetJob] != 50 || got[LimitAll] != 200 {
		t.Fatalf("3 replicas: observed %v, want get_job 50, all 200", got)
	}
	if r := b.KeyRate(LimitGetJob); r != 150 {
		t.Fatalf("3 replicas: key rate %v, want the whole 150", r)
	}
	b.Throttled(code2000(0))
	if r := b.Rate(LimitGetJob); r != 25 {
		t.Fatalf("cut of a 50/s share = %v, want 25", r)
	}
	if r := b.KeyRate(LimitGetJob); r != 75 {
		t.Fatalf("key rate after a cut = %v, want 75 (3 x 25)", r)
	}
	b.SetReplicas(2) // one died: the cut share of a larger slice
	if r := b.Rate(LimitGetJob); r != 37.5 {
		t.Fatalf("2 replicas after a cut = %v, want 37.5 (half of 75)", r)
	}
	clk.Advance(20 * time.Second) // recovery: 5%/s of the share, up to the whole share
	if r := b.Rate(LimitGetJob); r != 75 {
		t.Fatalf("after recovery = %v, want 75", r)
	}
	b.SetReplicas(0) // never below one: this replica is alive
	if r := b.Rate(LimitAll); r != 600 {
		t.Fatalf("SetReplicas(0): all = %v, want the whole 600", r)
	}
}

// TestShareRecomputedOnJoinAndDeath drives the budget from the replica set on a fake clock: a
// replica heard joins the share at once, one not heard for the window leaves it.
func TestShareRecomputedOnJoinAndDeath(t *testing.T) {
	clk := &fakeClock{now: time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)}
	b := New(150, 900, WithClock(clk.Now))
	set := replica.NewSet("self00000000000a", 3*time.Second)
	step := func(d time.Duration, heard ...string) {
		clk.Advance(d)
		for _, id := range heard {
			set.Heard(id, clk.Now())
		}
		b.SetReplicas(set.Live(clk.Now()))
	}
	check := func(when string, job, all float64) {
		t.Helper()
		if g, a := b.Rate(LimitGetJob), b.Rate(LimitAll); g != job || a != all {
			t.Errorf("%s: get_job %v, all %v; want %v, %v", when, g, a, job, all)
		}
	}
	step(0)
	check("alone", 150, 900)
	step(time.Second, "b000000000000000")
	check("b joined", 75, 450)
	step(time.Second, "b000000000000000", "c000000000000000")
	check("c joined", 50, 300)
	step(time.Second, "c000000000000000") // b silent from now on
	step(time.Second, "c000000000000000")
	step(time.Second, "c000000000000000")
	check("b heard 3s ago", 50, 300)
	step(100*time.Millisecond, "c000000000000000")
	check("b silent for more than the window", 75, 450)
	step(3100 * time.Millisecond)
	check("c silent too", 150, 900)
}

func TestFloor(t *testing.T) {
	clk := &fakeClock{now: time.Now()}
	b := New(100, 500, WithClock(clk.Now))
	for range 20 {
		b.Throttled(code2000(0))
		clk.Advance(2 * time.Second)
		// Rate() recovers a little each time; the floor still holds.
	}
	if got := b.Rate(LimitGetJob); got < 5 {
		t.Errorf("rate = %v, want never below the 5%% floor", got)
	}
}

// TestRetryAfterPausesItsLimit: a Retry-After on [CODE 1000] pauses every request; one on
// [CODE 2000] pauses GET /job only.
func TestRetryAfterPausesItsLimit(t *testing.T) {
	b := New(1000, 1000)
	b.Throttled(code2000(time.Hour))
	ctx, cancel := context.WithTimeout(t.Context(), 20*time.Millisecond)
	defer cancel()
	if err := b.Wait(ctx, reducto.OpGetJob); err == nil {
		t.Error("GET /job not paused by a [CODE 2000] Retry-After")
	}
	if err := b.Wait(t.Context(), reducto.OpCancelJob); err != nil {
		t.Errorf("cancel paused by a [CODE 2000] Retry-After: %v", err)
	}

	b = New(1000, 1000)
	b.Throttled(code1000(150 * time.Millisecond))
	for _, op := range []string{reducto.OpCancelJob, reducto.OpGetJob} {
		start := time.Now()
		if err := b.Wait(t.Context(), op); err != nil {
			t.Fatal(err)
		}
		if op == reducto.OpCancelJob {
			if waited := time.Since(start); waited < 140*time.Millisecond {
				t.Errorf("%s waited %v, want the 150ms Retry-After honoured", op, waited)
			}
		}
	}
}

func TestWaitHonoursContext(t *testing.T) {
	b := New(1000, 1000)
	b.Throttled(code1000(time.Hour))
	ctx, cancel := context.WithTimeout(t.Context(), 20*time.Millisecond)
	defer cancel()
	if err := b.Wait(ctx, reducto.OpListJobs); err == nil {
		t.Error("Wait returned nil during an hour-long pause with a 20ms context")
	}
}

func TestRateIsEnforced(t *testing.T) {
	var waits int
	b := New(50, 1000, WithWaitObserver(func(time.Duration) { waits++ }))
	start := time.Now()
	for range 30 {
		if err := b.Wait(t.Context(), reducto.OpGetJob); err != nil {
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

// TestEveryRequestTakesFromAll: GET /job and the other requests share the all-endpoints
// limit, and only GET /job takes from the GET /job one.
func TestEveryRequestTakesFromAll(t *testing.T) {
	b := New(1000, 50)
	start := time.Now()
	for i := range 30 {
		op := reducto.OpCancelJob
		if i%2 == 0 {
			op = reducto.OpGetJob
		}
		if err := b.Wait(t.Context(), op); err != nil {
			t.Fatal(err)
		}
	}
	// All 30 from the all-endpoints bucket: burst 5, then 25 at 50/s.
	if elapsed := time.Since(start); elapsed < 450*time.Millisecond {
		t.Errorf("30 mixed requests under a 50/s all-endpoints limit took %v, want >= 0.5s", elapsed)
	}

	b = New(50, 1000)
	start = time.Now()
	for range 30 {
		if err := b.Wait(t.Context(), reducto.OpListJobs); err != nil {
			t.Fatal(err)
		}
	}
	if elapsed := time.Since(start); elapsed > 400*time.Millisecond {
		t.Errorf("30 list requests took %v under a 50/s GET /job limit they must not take from", elapsed)
	}
}
