package reductosim

import (
	"testing"
	"time"
)

func TestFakeClock(t *testing.T) {
	c := NewFakeClock(t0)
	if got := c.Now(); !got.Equal(t0) {
		t.Fatalf("got %v, want %v", got, t0)
	}
	c.Advance(90 * time.Second)
	if got, want := c.Now(), t0.Add(90*time.Second); !got.Equal(want) {
		t.Errorf("after Advance: got %v, want %v", got, want)
	}
	c.Set(t0.Add(-time.Hour))
	if got, want := c.Now(), t0.Add(-time.Hour); !got.Equal(want) {
		t.Errorf("after Set: got %v, want %v", got, want)
	}
}

func TestScaledClock(t *testing.T) {
	tests := []struct {
		factor  float64
		minGain time.Duration // simulated time after 20ms of real time, at least
	}{
		{1000, 20 * time.Second},
		{0, 20 * time.Millisecond}, // treated as 1
	}
	for _, tt := range tests {
		c := ScaledClock(tt.factor)
		start := c.Now()
		if d := start.Sub(time.Now()).Abs(); d > time.Second {
			t.Errorf("factor %v: starts %v away from real now, want about 0", tt.factor, d)
		}
		time.Sleep(20 * time.Millisecond) // the clock is the subject: there is no signal to await
		if gain := c.Now().Sub(start); gain < tt.minGain || gain > tt.minGain*100 {
			t.Errorf("factor %v: got %v of simulated time, want at least %v", tt.factor, gain, tt.minGain)
		}
	}
}

func TestRealClock(t *testing.T) {
	if d := RealClock().Now().Sub(time.Now()).Abs(); d > time.Second {
		t.Errorf("got %v away from time.Now, want about 0", d)
	}
}
