package webhook

import (
	"bytes"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/reducto-bridge/reducto-bridge/metrics"
)

// postSigned posts body signed as svix-id id at timestamp ts and returns the status.
func postSigned(t *testing.T, h *Handler, id string, ts time.Time, body string) int {
	t.Helper()
	req := httptest.NewRequest(http.MethodPost, Path, strings.NewReader(body))
	req.Header.Set("svix-id", id)
	req.Header.Set("svix-timestamp", strconv.FormatInt(ts.Unix(), 10))
	req.Header.Set("svix-signature", sign(id, ts.Unix(), body))
	rw := httptest.NewRecorder()
	h.ServeHTTP(rw, req)
	return rw.Code
}

// TestSignedReplayIgnored: the same signed delivery posted twice is acted on once (the second
// is answered 200, counted and logged as "replayed"); another svix-id for the same job is acted
// on; a delivery whose hint failed is acted on when resent; once the tolerance window is past,
// the id is forgotten and the replay is refused by the timestamp check instead.
func TestSignedReplayIgnored(t *testing.T) {
	clock := now
	var logs bytes.Buffer
	m := metrics.New()
	rec := &recorder{}
	h, err := New(rec, Options{Secret: secret, Now: func() time.Time { return clock }, Metrics: m,
		Logger: slog.New(slog.NewTextHandler(&logs, nil))})
	if err != nil {
		t.Fatal(err)
	}
	body := `{"status":"Completed","job_id":"` + jobID + `"}`
	hints := func() int { rec.mu.Lock(); defer rec.mu.Unlock(); return len(rec.calls) }

	if code := postSigned(t, h, "msg_1", now, body); code != 200 || hints() != 1 {
		t.Fatalf("first delivery: %d, %d hints; want 200, 1", code, hints())
	}
	clock = now.Add(time.Minute)
	if code := postSigned(t, h, "msg_1", now, body); code != 200 || hints() != 1 {
		t.Errorf("replay: %d, %d hints; want 200 and still 1", code, hints())
	}
	if got := webhookCount(t, m, "replayed"); got != 1 {
		t.Errorf("webhooks_total{result=replayed} = %v, want 1", got)
	}
	if !strings.Contains(logs.String(), "webhook rejected") || !strings.Contains(logs.String(), "svix_id=msg_1") {
		t.Errorf("the replay is not logged with its svix-id:\n%s", logs.String())
	}
	if code := postSigned(t, h, "msg_2", clock, body); code != 200 || hints() != 2 {
		t.Errorf("another svix-id, same job: %d, %d hints; want 200, 2", code, hints())
	}

	// A failed hint is not remembered: the sender's retry is acted on.
	rec.mu.Lock()
	rec.err = errors.New("nats down")
	rec.mu.Unlock()
	if code := postSigned(t, h, "msg_3", clock, body); code != 503 || hints() != 3 {
		t.Errorf("failing hint: %d, %d hints; want 503, 3", code, hints())
	}
	rec.mu.Lock()
	rec.err = nil
	rec.mu.Unlock()
	if code := postSigned(t, h, "msg_3", clock.Add(10*time.Second), body); code != 200 || hints() != 4 {
		t.Errorf("retry after a failure: %d, %d hints; want 200, 4", code, hints())
	}

	// Past the tolerance the signature check refuses the replay, and the id is forgotten.
	clock = now.Add(DefaultTolerance + 2*time.Second)
	if code := postSigned(t, h, "msg_1", now, body); code != 401 || hints() != 4 {
		t.Errorf("replay after the tolerance: %d, %d hints; want 401, 4", code, hints())
	}
	postSigned(t, h, "msg_4", clock, body) // a claim drops the expired ids
	if n := h.seen.len(); n != 3 {         // msg_2, msg_3, msg_4 (within their windows)
		t.Errorf("%d ids remembered, want 3 (msg_1 expired)", n)
	}
}

// TestReplayMemoryBounded: 200,000 distinct accepted deliveries within one window leave at most
// the cap remembered, the oldest forgotten first (so a replay of the first is acted on again,
// one of the latest is not).
func TestReplayMemoryBounded(t *testing.T) {
	const limit = 1000
	rec := &recorder{}
	h, err := New(rec, Options{Secret: secret, Now: func() time.Time { return now }})
	if err != nil {
		t.Fatal(err)
	}
	h.seen.max = limit
	until := now.Add(DefaultTolerance)
	for i := range 200_000 {
		if !h.seen.claim(fmt.Sprintf("msg_%d", i), now, until) {
			t.Fatalf("msg_%d refused as a replay", i)
		}
		if n := h.seen.len(); n > limit {
			t.Fatalf("after %d ids, %d remembered; want at most %d", i+1, n, limit)
		}
	}
	if n := len(h.seen.order) - h.seen.head; n > limit {
		t.Errorf("order holds %d entries, want at most %d", n, limit)
	}
	if cap(h.seen.order) > 4*limit {
		t.Errorf("order's capacity %d grew past 4 x %d", cap(h.seen.order), limit)
	}
	body := `{"status":"Completed","job_id":"` + jobID + `"}`
	postSigned(t, h, "msg_0", now, body) // evicted long ago: acted on
	postSigned(t, h, "msg_199999", now, body)
	if len(rec.calls) != 1 {
		t.Errorf("%d hints, want 1 (msg_0 forgotten, msg_199999 remembered)", len(rec.calls))
	}
	if MaxRememberedDeliveries != 100_000 {
		t.Errorf("MaxRememberedDeliveries = %d; the README and docs/security.md say 100,000", MaxRememberedDeliveries)
	}
}

// webhookCount is reducto_bridge_webhooks_total{result}.
func webhookCount(t *testing.T, m *metrics.Metrics, result string) float64 {
	t.Helper()
	families, err := m.Registry.Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, f := range families {
		if f.GetName() != "reducto_bridge_webhooks_total" {
			continue
		}
		for _, mt := range f.GetMetric() {
			for _, l := range mt.GetLabel() {
				if l.GetName() == "result" && l.GetValue() == result {
					return mt.GetCounter().GetValue()
				}
			}
		}
	}
	return 0
}
