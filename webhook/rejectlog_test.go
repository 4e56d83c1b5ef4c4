package webhook

import (
	"bytes"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"
)

// TestRejectionsLogRateLimited: 200 forged webhooks in a burst are all refused (401), but the
// log gets at most a burst of warnings, each naming the peer and the svix-id, and the next
// line after the burst says how many were left out.
func TestRejectionsLogRateLimited(t *testing.T) {
	var logs bytes.Buffer
	h, err := New(&recorder{}, Options{Token: "right", Logger: slog.New(slog.NewTextHandler(&logs, nil))})
	if err != nil {
		t.Fatal(err)
	}
	start := time.Now()
	for range 200 {
		req := httptest.NewRequest(http.MethodPost, Path+"?token=wrong", strings.NewReader(`{}`))
		req.Header.Set("svix-id", "msg_forged")
		rw := httptest.NewRecorder()
		h.ServeHTTP(rw, req)
		if rw.Code != http.StatusUnauthorized {
			t.Fatalf("status %d, want 401", rw.Code)
		}
	}
	elapsed := time.Since(start)
	lines := strings.Count(logs.String(), "webhook rejected")
	// A burst of 5, then one a second.
	if limit := 5 + int(elapsed/time.Second) + 1; lines > limit {
		t.Errorf("%d warning lines for 200 rejections in %v, want at most %d", lines, elapsed, limit)
	}
	if !strings.Contains(logs.String(), "peer=192.0.2.1") || !strings.Contains(logs.String(), "svix_id=msg_forged") {
		t.Errorf("warnings do not name the peer and the svix-id:\n%s", logs.String())
	}
	// Once the limiter has a token again, the next warning reports the ones left out.
	h.logs.mu.Lock()
	h.logs.limits["unauthorized"].SetBurst(1) // refill at once for the test, no waiting
	h.logs.limits["unauthorized"].SetLimit(1e9)
	h.logs.mu.Unlock()
	req := httptest.NewRequest(http.MethodPost, Path+"?token=wrong", strings.NewReader(`{}`))
	h.ServeHTTP(httptest.NewRecorder(), req)
	if !strings.Contains(logs.String(), "suppressed=") {
		t.Errorf("no line reports the suppressed warnings:\n%s", logs.String())
	}
}
