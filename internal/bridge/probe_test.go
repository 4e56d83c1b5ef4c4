package bridge

import (
	"net/http"
	"sync/atomic"
	"testing"
	"time"

	"github.com/nats-io/nats.go"

	"github.com/reducto-bridge/reducto-bridge/internal/natstest"
	"github.com/reducto-bridge/reducto-bridge/publisher"
	"github.com/reducto-bridge/reducto-bridge/reducto/reductosim"
	"github.com/reducto-bridge/reducto-bridge/track"
)

// TestOperatorEndpointsCostNoJetStreamCalls: 300 /readyz and 100 /metrics requests in a row
// make at most two stream look-ups per second between them, not one or two per request.
func TestOperatorEndpointsCostNoJetStreamCalls(t *testing.T) {
	h := newHarness(t, natstest.Options{}, reductosim.Options{})
	cfg := h.config()
	cfg.ListSweep = false // the sweep probes at each sweep: not an operator endpoint
	b := h.start(cfg)
	var infos atomic.Int64
	sub, err := h.nc.Subscribe("$JS.API.STREAM.INFO.>", func(*nats.Msg) { infos.Add(1) })
	if err != nil {
		t.Fatal(err)
	}
	defer sub.Unsubscribe()
	if err := h.nc.Flush(); err != nil {
		t.Fatal(err)
	}
	base := "http://" + b.HTTPAddr().String()
	start := time.Now()
	for i := range 400 {
		path := "/readyz"
		if i%4 == 3 {
			path = "/metrics"
		}
		resp, err := http.Get(base + path)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if path == "/readyz" && resp.StatusCode != http.StatusOK {
			t.Fatalf("/readyz = %d", resp.StatusCode)
		}
	}
	if err := h.nc.Flush(); err != nil {
		t.Fatal(err)
	}
	elapsed := time.Since(start)
	// One probe per started second (two look-ups each), plus one in flight at each end.
	limit := 2 * (int64(elapsed/probeEvery) + 2)
	if got := infos.Load(); got > limit {
		t.Errorf("%d stream look-ups for 400 requests in %v, want at most %d", got, elapsed.Round(time.Millisecond), limit)
	}
	t.Logf("%d stream look-ups for 400 requests in %v", infos.Load(), elapsed.Round(time.Millisecond))
}

// TestProbeTrackedIsCurrent: the list sweep's probe reads the track stream at each call (not
// the operator endpoints' cache), with the first and last message times: a job tracked a
// moment after the previous call is in the next one's Newest.
func TestProbeTrackedIsCurrent(t *testing.T) {
	h := newHarness(t, natstest.Options{}, reductosim.Options{})
	for _, setup := range []func() error{
		func() error {
			_, err := track.Setup(t.Context(), h.js, track.Options{Prefix: "reducto", AckWait: time.Minute})
			return err
		},
		func() error {
			_, err := publisher.Setup(t.Context(), h.js, publisher.Options{Prefix: "reducto", Source: "test", MaxAge: time.Hour, Duplicates: time.Minute})
			return err
		},
	} {
		if err := setup(); err != nil {
			t.Fatal(err)
		}
	}
	p := &streamProbe{js: h.js, now: time.Now}
	h.track("first-job", `{}`)
	first, err := p.tracked(t.Context())
	if err != nil || first.Count != 1 || first.Oldest.IsZero() || !first.Newest.Equal(first.Oldest) {
		t.Fatalf("tracked() = %+v, %v; want 1 job, oldest = newest", first, err)
	}
	h.track("second-job", `{}`)
	second, err := p.tracked(t.Context())
	if err != nil || second.Count != 2 || !second.Oldest.Equal(first.Oldest) || !second.Newest.After(first.Newest) {
		t.Errorf("tracked() right after a second track = %+v, %v; want 2 jobs, the same oldest, a newer newest than %v", second, err, first.Newest)
	}
}
