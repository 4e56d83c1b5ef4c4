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
