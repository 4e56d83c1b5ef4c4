package metrics

import (
	"testing"
	"time"

	dto "github.com/prometheus/client_model/go"
)

func TestLabel(t *testing.T) {
	for in, want := range map[string]string{
		"get job": "get_job", "cancel job": "cancel_job", "list jobs": "list_jobs",
		"submit parse": "submit_parse", "submit extract": "submit_extract", "get_job": "get_job",
		"Split-V2": "split_v2", "": "",
	} {
		if got := Label(in); got != want {
			t.Errorf("Label(%q) = %q, want %q", in, got, want)
		}
	}
}

// TestReported: a negative lag (Reducto's clock ahead of ours) counts as 0, an unknown lag is
// not observed, and a nil *Metrics records nothing without panicking.
func TestReported(t *testing.T) {
	var none *Metrics
	none.Reported("completed", time.Second, time.Second, true, 3)
	none.WebhookToEvent(time.Second)
	if err := none.NATSConnection(func() bool { return true }, func() uint64 { return 0 }); err != nil {
		t.Fatal(err)
	}

	m := New()
	m.Reported("completed", 2*time.Second, -time.Second, true, 4)
	m.Reported("completed", time.Second, 0, false, 1)
	h := func(name string) *dto.Histogram {
		t.Helper()
		mfs, err := m.Registry.Gather()
		if err != nil {
			t.Fatal(err)
		}
		for _, mf := range mfs {
			if mf.GetName() == name {
				return mf.GetMetric()[0].GetHistogram()
			}
		}
		t.Fatalf("no %s", name)
		return nil
	}
	if lag := h("reducto_bridge_detection_lag_seconds"); lag.GetSampleCount() != 1 || lag.GetSampleSum() != 0 {
		t.Errorf("detection lag: %d observations, sum %v; want 1, 0", lag.GetSampleCount(), lag.GetSampleSum())
	}
	if tte := h("reducto_bridge_track_to_event_seconds"); tte.GetSampleCount() != 2 || tte.GetSampleSum() != 3 {
		t.Errorf("track to event: %d, %v; want 2, 3", tte.GetSampleCount(), tte.GetSampleSum())
	}
	if p := h("reducto_bridge_polls_per_job"); p.GetSampleCount() != 2 || p.GetSampleSum() != 5 {
		t.Errorf("polls per job: %d, %v; want 2, 5", p.GetSampleCount(), p.GetSampleSum())
	}
}
