package bridge

import (
	"io"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/reducto-bridge/reducto-bridge/internal/natstest"
	"github.com/reducto-bridge/reducto-bridge/reducto/reductosim"
	"github.com/reducto-bridge/reducto-bridge/subject"
)

// TestReadyzWhileEventsStreamFull: while the events stream refuses publishes (an operator
// capped it at one message), /readyz says so; once the cap is lifted, the held job is
// reported and /readyz is ready again.
func TestReadyzWhileEventsStreamFull(t *testing.T) {
	h := newHarness(t, natstest.Options{}, reductosim.Options{})
	b := h.start(h.config())
	readyz := func() (int, string) {
		resp, err := http.Get("http://" + b.HTTPAddr().String() + "/readyz")
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		body, _ := io.ReadAll(resp.Body)
		return resp.StatusCode, string(body)
	}
	ctx := t.Context()
	st, err := h.js.Stream(ctx, subject.EventsStream)
	if err != nil {
		t.Fatal(err)
	}
	cfg := st.CachedInfo().Config
	cfg.MaxMsgs = 1
	if _, err := h.js.UpdateStream(ctx, cfg); err != nil {
		t.Fatal(err)
	}
	first := h.sim.Create(reductosim.JobSpec{Duration: time.Millisecond})
	second := h.sim.Create(reductosim.JobSpec{Duration: time.Millisecond})
	h.clock.Advance(time.Second)
	h.track(first, "")
	h.collect(first)
	h.track(second, "")

	var body string
	natstest.WaitFor(t, func() bool {
		var code int
		code, body = readyz()
		return code == http.StatusServiceUnavailable && strings.Contains(body, "events cannot be published")
	})
	cfg.MaxMsgs = -1
	if _, err := h.js.UpdateStream(ctx, cfg); err != nil {
		t.Fatal(err)
	}
	h.collect(second)
	natstest.WaitFor(t, func() bool { code, _ := readyz(); return code == http.StatusOK })
}
