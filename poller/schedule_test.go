package poller

import (
	"testing"
	"time"
)

func TestScheduleInterval(t *testing.T) {
	s := schedule{initial: 2 * time.Second, max: 30 * time.Second, multiplier: 1.5}
	tests := []struct {
		n    uint64
		want time.Duration
	}{
		{0, 2 * time.Second},
		{1, 2 * time.Second},
		{2, 3 * time.Second},
		{3, 4500 * time.Millisecond},
		{4, 6750 * time.Millisecond},
		{7, 22781250 * time.Microsecond},
		{8, 30 * time.Second}, // 2*1.5^7 = 34.2s, capped
		{1_000_000, 30 * time.Second},
		{^uint64(0), 30 * time.Second},
	}
	for _, tt := range tests {
		if got := s.interval(tt.n, 0.5); got != tt.want {
			t.Errorf("interval(%d) = %v, want %v", tt.n, got, tt.want)
		}
	}
	flat := schedule{initial: time.Second, max: 10 * time.Second, multiplier: 1}
	if got := flat.interval(50, 0.5); got != time.Second {
		t.Errorf("multiplier 1: interval(50) = %v, want 1s", got)
	}
}

func TestScheduleJitter(t *testing.T) {
	s := schedule{initial: time.Second, max: 10 * time.Second, multiplier: 2, jitter: 0.2}
	tests := []struct {
		n    uint64
		draw float64
		want time.Duration
	}{
		{3, 0, 3200 * time.Millisecond}, // base 4s, -20%
		{3, 0.5, 4 * time.Second},       // the middle
		{3, 0.999999, 4799998400 * time.Nanosecond},
		{3, -1, 3200 * time.Millisecond}, // out-of-range draws are clamped
		{3, 7, 4800 * time.Millisecond},
		{20, 0, 8 * time.Second}, // jitter applies around the cap too
		{20, 1, 12 * time.Second},
	}
	for _, tt := range tests {
		if got := s.interval(tt.n, tt.draw); got != tt.want {
			t.Errorf("interval(%d, %v) = %v, want %v", tt.n, tt.draw, got, tt.want)
		}
	}
}

func BenchmarkScheduleInterval(b *testing.B) {
	s := schedule{initial: 2 * time.Second, max: 30 * time.Second, multiplier: 1.5, jitter: 0.2}
	for i := range b.N {
		_ = s.interval(uint64(i%200), 0.3)
	}
}

func TestScheduleStepsAndElapsed(t *testing.T) {
	s := schedule{initial: 2 * time.Second, max: 30 * time.Second, multiplier: 1.5, jitter: 0.2}
	// Intervals 2, 3, 4.5, 6.75, 10.125, 15.1875, 22.78125, then 30: polls at 2, 5, 9.5,
	// 16.25, 26.375, 41.5625, 64.34375, 94.34375, 124.34375...
	tests := []struct {
		age  time.Duration
		want uint64
	}{
		{0, 0},
		{1999 * time.Millisecond, 0},
		{2 * time.Second, 1},
		{4999 * time.Millisecond, 1},
		{5 * time.Second, 2},
		{64343750 * time.Microsecond, 7},
		{94343750 * time.Microsecond, 8},
		{124 * time.Second, 8},
		{12 * time.Hour, 8 + uint64((12*time.Hour-94343750*time.Microsecond)/(30*time.Second))},
		{-time.Second, 0},
	}
	for _, tt := range tests {
		n := s.steps(tt.age)
		if n != tt.want {
			t.Errorf("steps(%v) = %d, want %d", tt.age, n, tt.want)
		}
		// steps and elapsed agree: poll n is within age, poll n+1 is not.
		if tt.age >= 0 && (s.elapsed(n) > tt.age || s.elapsed(n+1) <= tt.age) {
			t.Errorf("age %v: elapsed(%d) = %v, elapsed(%d) = %v", tt.age, n, s.elapsed(n), n+1, s.elapsed(n+1))
		}
	}
	if got, want := s.elapsed(9), 124343750*time.Microsecond; got != want {
		t.Errorf("elapsed(9) = %v, want %v", got, want)
	}
	flat := schedule{initial: time.Second, max: 10 * time.Second, multiplier: 1}
	if got := flat.steps(time.Hour); got != 3600 {
		t.Errorf("multiplier 1: steps(1h) = %d, want 3600", got)
	}
	if got := flat.elapsed(3600); got != time.Hour {
		t.Errorf("multiplier 1: elapsed(3600) = %v, want 1h", got)
	}
}
