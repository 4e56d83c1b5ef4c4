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
		{8, 30 * time.Second}, // 2*1.5^7 = 34.2s, capped
		{1_000_000, 30 * time.Second},
	}
	for _, tt := range tests {
		if got := s.interval(tt.n); got != tt.want {
			t.Errorf("interval(%d) = %v, want %v", tt.n, got, tt.want)
		}
	}
}

func TestScheduleJitterStaysInBounds(t *testing.T) {
	s := schedule{initial: time.Second, max: 10 * time.Second, multiplier: 2, jitter: 0.2}
	seen := map[time.Duration]bool{}
	for range 200 {
		d := s.interval(3) // base 4s
		if d < 3200*time.Millisecond || d > 4800*time.Millisecond {
			t.Fatalf("interval(3) = %v, want within 4s ±20%%", d)
		}
		seen[d] = true
	}
	if len(seen) < 10 {
		t.Errorf("jitter produced only %d distinct values in 200 draws", len(seen))
	}
}
