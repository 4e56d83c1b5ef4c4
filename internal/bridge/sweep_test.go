package bridge

import (
	"io"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/reducto-bridge/reducto-bridge/internal/natstest"
	"github.com/reducto-bridge/reducto-bridge/reducto/reductosim"
)

// TestListSweepWired: with BRIDGE_LIST_SWEEP (the default), a bridge whose per-job schedule is
// an hour away reports a finished tracked job after one GET /job: only the list sweep, with
// its lease, the track stream's state and the client's budget as wired here, can find it. An
// untracked job gets no GET. /metrics shows the lease and the pages.
func TestListSweepWired(t *testing.T) {
	h := newHarness(t, natstest.Options{}, reductosim.Options{})
	cfg := h.config()
	cfg.PollInitialInterval, cfg.PollMaxInterval = time.Hour, time.Hour
	cfg.ListSafetyInterval, cfg.ListInterval = time.Hour, 50*time.Millisecond
	b := h.start(cfg)

	tracked := h.sim.Create(reductosim.JobSpec{Duration: time.Second})
	untracked := h.sim.Create(reductosim.JobSpec{Duration: time.Second})
	h.track(tracked, `{}`)
	h.clock.Advance(2 * time.Second)
	h.collect(tracked)
	st := h.sim.Stats()
	if got := st.Jobs[tracked].Gets; got != 1 {
		t.Errorf("GET /job of the tracked job: %d, want 1", got)
	}
	if got := st.Jobs[untracked].Gets; got != 0 {
		t.Errorf("GET /job of the untracked job: %d, want 0", got)
	}
	if h.eventCount(untracked) != 0 {
		t.Error("the untracked job got an event")
	}
	var body []byte
	metrics := func() string {
		resp, err := http.Get("http://" + b.HTTPAddr().String() + "/metrics")
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		body, _ = io.ReadAll(resp.Body)
		return string(body)
	}
	// The counter follows the event's PubAck, so it may lag the event a little.
	natstest.WaitFor(t, func() bool { return strings.Contains(metrics(), "reducto_bridge_list_sweep_reported_total 1") })
	for _, want := range []string{"reducto_bridge_list_sweep_lease_held 1", `reducto_bridge_list_pages_total{result="ok"}`,
		"reducto_bridge_list_sweep_healthy 1"} {
		if !strings.Contains(string(body), want) {
			t.Errorf("/metrics lacks %q", want)
		}
	}
	if strings.Contains(string(body), testKey) || strings.Contains(h.logs.String(), testKey) {
		t.Error("the API key appears in /metrics or the logs")
	}
}
