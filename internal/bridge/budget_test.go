package bridge

import (
	"fmt"
	"log/slog"
	"strings"
	"testing"
	"time"

	"github.com/reducto-bridge/reducto-bridge/internal/natstest"
	"github.com/reducto-bridge/reducto-bridge/reducto/reductosim"
)

// TestReplicasShareOneBudget runs three bridges on one key with BRIDGE_RATE_LIMIT=150 against
// a simulator that allows 200 GET /job per second, with far more never-ending jobs than the
// budget can poll. Once the replicas have seen each other (their replica gauge says 3), the
// sum of their requests stays within 150/s (+10%) and Reducto never answers [CODE 2000];
// when one replica stops, the two others take its share. Before the budget was shared, each
// replica sent up to 150/s: 450/s against the 200/s limit.
func TestReplicasShareOneBudget(t *testing.T) {
	const (
		budget = 150.0
		jobs   = 300
		window = 3 * time.Second
	)
	h := newHarness(t, natstest.Options{}, reductosim.Options{JobRateLimit: 200, GlobalRateLimit: 1000})
	var bs []*Bridge
	for range 3 {
		cfg := h.config()
		cfg.RateLimit = budget
		// Per-job polling spends the budget: with list sweeps, covered jobs would be polled
		// only every BRIDGE_LIST_SAFETY_INTERVAL and the budget would not be saturated.
		cfg.ListSweep = false
		cfg.LogLevel = slog.LevelInfo
		bs = append(bs, h.start(cfg))
	}
	waitReplicas := func(bs []*Bridge, n int) {
		t.Helper()
		want := fmt.Sprintf("reducto_bridge_replicas %d\n", n)
		for _, b := range bs {
			natstest.WaitFor(t, func() bool { return strings.Contains(metricsText(t, b), want) })
		}
	}
	waitReplicas(bs, 3)

	for range jobs {
		h.track(h.sim.Create(reductosim.JobSpec{Duration: 24 * time.Hour}), `{}`)
	}
	requests := func() int64 {
		var n int64
		for _, c := range h.sim.Stats().Requests {
			n += c
		}
		return n
	}
	// Saturated: every replica's share in use (about 2s of budget spent).
	natstest.WaitFor(t, func() bool { return requests() >= 2*budget })
	measure := func(what string, minRate float64) {
		t.Helper()
		n0, t0 := requests(), time.Now()
		<-time.After(window)
		n1, t1 := requests(), time.Now()
		rate := float64(n1-n0) / t1.Sub(t0).Seconds()
		t.Logf("%s: %d requests in %v: %.1f/s (budget %.0f/s)", what, n1-n0, t1.Sub(t0).Round(time.Millisecond), rate, budget)
		if rate > budget*1.1 {
			t.Errorf("%s: %.1f requests/s, want at most %.0f (the key's budget +10%%)", what, rate, budget*1.1)
		}
		if rate < minRate {
			t.Errorf("%s: %.1f requests/s, want at least %.0f: the budget is not saturated, the test proves nothing", what, rate, minRate)
		}
	}
	measure("3 replicas", budget/2)

	// One replica leaves: the two others take its share.
	h.stop(bs[2])
	waitReplicas(bs[:2], 2)
	measure("2 replicas", budget/2)

	st := h.sim.Stats()
	if st.RateLimited2000 != 0 || st.RateLimited1000 != 0 {
		t.Errorf("Reducto answered %d 429 [CODE 2000] and %d [CODE 1000], want none", st.RateLimited2000, st.RateLimited1000)
	}
}
