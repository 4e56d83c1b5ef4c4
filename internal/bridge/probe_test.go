package bridge

import (
	"net/http"
	"sync/atomic"
	"testing"
	"time"

	"github.com/nats-io/nats.go"

	"github.com/reducto-bridge/reducto-bridge/internal/natstest"
	"github.com/reducto-bridge/reducto-bridge/reducto/reductosim"
)

// TestOperatorEndpointsCostNoJetStreamCalls: 300 /readyz and 100 /metrics requests in a row
// make at most two stream look-ups per second between them, not one or two per request.
func TestOperatorEndpointsCostNoJetStreamCalls(t *testing.T) {
	h := newHarness(t, natstest.Options{}, reductosim.Options{})
	b := h.start(h.config())
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
