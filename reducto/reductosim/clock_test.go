package reductosim

import (
	"strings"
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

func TestScaledClockWall(t *testing.T) {
	c := ScaledClock(4).(*scaledClock)
	if got, want := c.Wall(c.wall.Add(40*time.Second)), c.wall.Add(10*time.Second); !got.Equal(want) {
		t.Errorf("Wall(40 s of simulator time) = %v, want %v (10 s of real time)", got, want)
	}
	if got := wallTime(NewFakeClock(t0), t0); !got.Equal(t0) {
		t.Errorf("wallTime of an unscaled clock = %v, want %v", got, t0)
	}
}

// wallFake is a fake clock whose wall clock is an hour behind it, as a scaled clock's is
// after a while.
type wallFake struct{ *FakeClock }

func (wallFake) Wall(t time.Time) time.Time { return t.Add(-time.Hour) }

// TestCreatedAtOnTheWallClock: under a scaled clock a job's created_at (GET /jobs and GET
// /job) is the real instant of its creation, which a client compares with its own clock;
// the job's timeline stays on the simulator's clock.
func TestCreatedAtOnTheWallClock(t *testing.T) {
	clock := wallFake{NewFakeClock(t0)}
	f := newFixture(t, Options{Clock: clock})
	id := f.sim.Create(JobSpec{Duration: time.Second})
	want := t0.Add(-time.Hour).UTC().Format(createdLayout)
	r := f.call(t, "GET", "/jobs?limit=10", "")
	if !strings.Contains(string(r.body), `"created_at":"`+want+`"`) {
		t.Errorf("GET /jobs: %s, want created_at %s", r.body, want)
	}
	clock.Advance(2 * time.Second)
	r = f.call(t, "GET", "/job/"+id, "")
	if !strings.Contains(string(r.body), `"created_at":"`+want+`"`) || !strings.Contains(string(r.body), `"Completed"`) {
		t.Errorf("GET /job after the duration: %s, want Completed with created_at %s", r.body, want)
	}
}
