package poller

import (
	"math"
	"testing"
	"time"
)

// TestSweptEvery: the covered jobs' safety-net polls, together, take half the GET /job rate
// at most; without a count or a rate nothing is stretched.
func TestSweptEvery(t *testing.T) {
	for _, tt := range []struct {
		name        string
		outstanding func() uint64
		rate        func() float64
		want        time.Duration
	}{
		{"100,000 jobs at 100/s", func() uint64 { return 100_000 }, func() float64 { return 100 }, 2000 * time.Second},
		{"a share of 50/s", func() uint64 { return 1_000 }, func() float64 { return 50 }, 40 * time.Second},
		{"no jobs", func() uint64 { return 0 }, func() float64 { return 100 }, 0},
		{"no rate", func() uint64 { return 1_000 }, func() float64 { return 0 }, 0},
		{"infinite rate", func() uint64 { return 1_000 }, func() float64 { return math.Inf(1) }, 0},
		{"no count function", nil, func() float64 { return 100 }, 0},
		{"no rate function", func() uint64 { return 1_000 }, nil, 0},
	} {
		t.Run(tt.name, func(t *testing.T) {
			p := &Poller{o: Options{Outstanding: tt.outstanding, PollRate: tt.rate}}
			if got := p.sweptEvery(0); got != tt.want {
				t.Errorf("sweptEvery = %s, want %s", got, tt.want)
			}
		})
	}
}

// TestFairEvery: every outstanding job polled at that interval takes 90% of the key's GET
// /job rate, when that is longer than the schedule's longest interval (30 s); otherwise, or
// without a count or a rate, there is no floor.
func TestFairEvery(t *testing.T) {
	for _, tt := range []struct {
		name        string
		outstanding func() uint64
		atLeast     uint64 // the delivery's pending count
		rate        func() float64
		want        time.Duration
	}{
		{"100,000 jobs at 100/s", func() uint64 { return 100_000 }, 0, func() float64 { return 100 }, 1111111111111 * time.Nanosecond},
		{"a count not yet refreshed: the pending count binds", func() uint64 { return 10 }, 3600, func() float64 { return 100 }, 40 * time.Second},
		{"the pending count below the count", func() uint64 { return 3600 }, 5, func() float64 { return 100 }, 40 * time.Second},
		{"3,600 jobs at 100/s: 40 s", func() uint64 { return 3600 }, 0, func() float64 { return 100 }, 40 * time.Second},
		{"2,700 jobs at 100/s: 30 s, not beyond the schedule", func() uint64 { return 2700 }, 0, func() float64 { return 100 }, 0},
		{"900 jobs at 100/s: within the schedule", func() uint64 { return 900 }, 0, func() float64 { return 100 }, 0},
		{"no jobs", func() uint64 { return 0 }, 0, func() float64 { return 100 }, 0},
		{"no rate", func() uint64 { return 1_000 }, 0, func() float64 { return 0 }, 0},
		{"no rate function", func() uint64 { return 1_000 }, 3600, nil, 0},
	} {
		t.Run(tt.name, func(t *testing.T) {
			p := &Poller{o: Options{Outstanding: tt.outstanding, PollRate: tt.rate, MaxInterval: 30 * time.Second}}
			if got := p.fairEvery(tt.atLeast); got != tt.want {
				t.Errorf("fairEvery = %s, want %s", got, tt.want)
			}
		})
	}
}
