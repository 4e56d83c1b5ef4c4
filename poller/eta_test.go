package poller

import (
	"strconv"
	"testing"
	"time"

	"github.com/reducto-bridge/reducto-bridge/reducto"
)

func progress(p float64) *reducto.Job {
	return &reducto.Job{Status: "Pending", Type: "Parse", Progress: &p}
}

func TestEstimatorProgress(t *testing.T) {
	t0 := time.Date(2026, 11, 29, 12, 0, 0, 0, time.UTC)
	tracked := t0.Add(-2 * time.Second)
	const fallback = 3 * time.Second
	tests := []struct {
		name    string
		samples []float64 // progress at t0, t0+2s, ...
		want    time.Duration
	}{
		// 10% at t0, 20% at t0+2s: 5%/s, 80% left = 16s, +1% slack, +200ms (initial/10).
		{"linear", []float64{10, 20}, 16*time.Second + 160*time.Millisecond + 200*time.Millisecond},
		{"one sample waits for the schedule", []float64{10}, fallback},
		// 80% after 2s of tracking: at most 0.5s left (+1%, +200ms), before the schedule's 3s.
		{"one sample nearly done polls sooner", []float64{80}, 705 * time.Millisecond},
		{"flat progress falls back", []float64{30, 30}, fallback},
		{"progress going back falls back", []float64{30, 20}, fallback},
		{"jump to nearly done: soon, not before the minimum gap", []float64{1, 99.9}, time.Second},
		{"slow: capped at the max interval", []float64{1, 1.1}, 30 * time.Second},
		{"100% but not finished: soon", []float64{50, 100}, 2 * time.Second},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			e := newEstimator(2*time.Second, 30*time.Second)
			var got time.Duration
			for i, p := range tt.samples {
				got = e.next("j", progress(p), tracked, t0.Add(time.Duration(i)*2*time.Second), fallback)
			}
			// The jump case lands below the minimum gap (0.5s): clamped up to it.
			if tt.name == "jump to nearly done: soon, not before the minimum gap" {
				if got < 500*time.Millisecond || got > time.Second {
					t.Errorf("got %v, want within [0.5s, 1s]", got)
				}
				return
			}
			if got != tt.want {
				t.Errorf("got %v, want %v", got, tt.want)
			}
		})
	}
}

func TestEstimatorNoProgressUsesDurations(t *testing.T) {
	e := newEstimator(2*time.Second, 30*time.Second) // lag target 10s
	noProgress := &reducto.Job{Status: "Pending", Type: "Parse"}
	const fallback = 3 * time.Second
	// Cold: nothing learned yet, the backoff decides.
	if got := e.next("j", noProgress, time.Time{}, time.Time{}.Add(2*time.Second), fallback); got != fallback {
		t.Fatalf("cold: got %v, want the fallback %v", got, fallback)
	}
	// Learn 100 Parse jobs of 20s..119s.
	for i := range 100 {
		e.finished("x", &reducto.Job{Status: "Completed", Type: "Parse"}, time.Duration(20+i)*time.Second)
	}
	tracked := time.Date(2026, 11, 29, 12, 0, 0, 0, time.UTC)
	// q01 = 20s, q99 = 118s; polls are 9s apart (0.9 of the 10s lag target, so that lags stay
	// under it) from q01 until twice q99.
	tests := []struct {
		age  time.Duration
		want time.Duration
	}{
		{2 * time.Second, 9 * time.Second},   // towards q01, one spacing at a time
		{19 * time.Second, 1 * time.Second},  // just before q01: poll at q01
		{25 * time.Second, 9 * time.Second},  // inside the bulk
		{200 * time.Second, 9 * time.Second}, // in the tail up to 2 x q99
		{300 * time.Second, 3 * time.Second}, // beyond: the backoff
		{-time.Hour, 9 * time.Second},        // clock skew: capped
	}
	for _, tt := range tests {
		if got := e.next("j", noProgress, tracked, tracked.Add(tt.age), fallback); got != tt.want {
			t.Errorf("age %v: got %v, want %v", tt.age, got, tt.want)
		}
	}
	// A longer backoff is replaced by the spacing inside the bulk.
	if got := e.next("j", noProgress, tracked, tracked.Add(50*time.Second), 25*time.Second); got != 9*time.Second {
		t.Errorf("bulk with a long backoff: got %v, want 9s", got)
	}
	// Another type without its own history uses the global one.
	other := &reducto.Job{Status: "Pending", Type: "Split"}
	if got := e.next("k", other, tracked, tracked.Add(15*time.Second), fallback); got != 5*time.Second {
		t.Errorf("other type: got %v, want 5s (q01 of the global durations)", got)
	}
}

func TestEstimatorForgetsFinishedJobs(t *testing.T) {
	e := newEstimator(time.Second, 10*time.Second)
	now := time.Now()
	e.next("a", progress(10), now, now, time.Second)
	e.finished("a", &reducto.Job{Status: "Failed"}, time.Second)
	e.next("b", progress(10), now, now, time.Second)
	e.forget("b")
	if len(e.samples) != 0 {
		t.Errorf("samples = %v, want none", e.samples)
	}
	if len(e.classes) != 0 {
		t.Errorf("a failed job was learned from: %v", e.classes)
	}
}

func TestClassOf(t *testing.T) {
	n := func(v int) *int { return &v }
	tests := []struct {
		j    reducto.Job
		want string
	}{
		{reducto.Job{Type: "Parse"}, "Parse/0"},
		{reducto.Job{Type: "Parse", TotalPages: n(1)}, "Parse/0"},
		{reducto.Job{Type: "Parse", TotalPages: n(7)}, "Parse/2"},
		{reducto.Job{Type: "Parse", TotalPages: n(8)}, "Parse/3"},
		{reducto.Job{Type: "Extract", NumPages: n(900)}, "Extract/9"},
	}
	for _, tt := range tests {
		if got := classOf(&tt.j); got != tt.want {
			t.Errorf("classOf(%+v) = %q, want %q", tt.j, got, tt.want)
		}
	}
}

func TestEstimatorEvictsStaleSamples(t *testing.T) {
	e := newEstimator(time.Second, 10*time.Second)
	now := time.Now()
	for i := range maxTracked {
		e.samples[strconv.Itoa(i)] = sample{at: now.Add(-time.Hour), progress: 1}
	}
	e.next("fresh", progress(5), now, now, time.Second)
	if _, ok := e.samples["fresh"]; !ok || len(e.samples) != 1 {
		t.Errorf("samples = %d (fresh kept: %v), want the stale ones evicted and the fresh one kept", len(e.samples), ok)
	}
}
