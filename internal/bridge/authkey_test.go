package bridge

import (
	"io"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/reducto-bridge/reducto-bridge/config"
	"github.com/reducto-bridge/reducto-bridge/internal/natstest"
	"github.com/reducto-bridge/reducto-bridge/reducto/reductosim"
)

// TestRejectedKey: while Reducto answers 401 to the bridge's key, the job stays tracked with
// no event, /readyz says why (without the key) and the auth gauge is 1; a bridge with the
// right key then reports the job.
func TestRejectedKey(t *testing.T) {
	h := newHarness(t, natstest.Options{}, reductosim.Options{})
	const wrongKey = "sk-live-WRONG-KEY-77aa"
	cfg := h.config()
	cfg.APIKey = config.Secret(wrongKey)
	b := h.start(cfg)
	get := func(path string) (int, string) {
		resp, err := http.Get("http://" + b.httpAddr.String() + path)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		body, _ := io.ReadAll(resp.Body)
		return resp.StatusCode, string(body)
	}
	id := h.sim.Create(reductosim.JobSpec{Duration: time.Millisecond})
	h.clock.Advance(time.Second)
	h.track(id, "")

	var body string
	natstest.WaitFor(t, func() bool {
		var code int
		code, body = get("/readyz")
		return code == http.StatusServiceUnavailable && strings.Contains(body, "rejects the API key")
	})
	if strings.Contains(body, wrongKey) {
		t.Errorf("/readyz shows the key: %s", body)
	}
	if _, metrics := get("/metrics"); !strings.Contains(metrics, "reducto_bridge_auth_failing 1") {
		t.Error("reducto_bridge_auth_failing is not 1 while the key is rejected")
	}
	if n := h.eventCount(id); n != 0 {
		t.Fatalf("%d events for a job polled with a rejected key, want 0", n)
	}
	if strings.Contains(h.logs.String(), wrongKey) {
		t.Error("the logs show the key")
	}
	h.stop(b)

	b = h.start(h.config())
	ev := decode(t, h.collect(id)[id])
	if ev.Kind != "completed" {
		t.Errorf("kind %s after the key was fixed, want completed", ev.Kind)
	}
	if code, body := get("/readyz"); code != http.StatusOK {
		t.Errorf("/readyz = %d %s with the right key", code, body)
	}
}
