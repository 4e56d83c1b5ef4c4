package bridge

import (
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/reducto-bridge/reducto-bridge/config"
	"github.com/reducto-bridge/reducto-bridge/event"
	"github.com/reducto-bridge/reducto-bridge/internal/natstest"
	"github.com/reducto-bridge/reducto-bridge/internal/redact"
	"github.com/reducto-bridge/reducto-bridge/reducto/reductosim"
)

// TestBaseURLCredentialsNotLogged: user information in REDUCTO_BASE_URL (user:password@, or
// a token in the user name) shows in no log line: not "bridge started", not a failed poll,
// whose error carries the request URL.
func TestBaseURLCredentialsNotLogged(t *testing.T) {
	for _, tt := range []struct{ name, creds string }{
		{"user and password", "usr-2d8e:secret-pw-61f0@"},
		{"token as user name", "secret-tok-a47c@"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			h := newHarness(t, natstest.Options{}, reductosim.Options{})
			cfg := h.config()
			host := "127.0.0.1:" + strconv.Itoa(closedPort(t))
			cfg.BaseURL = "https://" + tt.creds + host
			b := h.start(cfg)
			defer h.stop(b)
			h.track("job-redact", `{}`)
			deadline := time.Now().Add(10 * time.Second)
			for h.logLine("poll failed", "job-redact") == "" && time.Now().Before(deadline) {
				time.Sleep(20 * time.Millisecond)
			}
			started := h.logLine("bridge started")
			if started == "" || !strings.Contains(started, "reducto=https://"+host) {
				t.Errorf("start-up line %q does not name the Reducto URL without credentials", started)
			}
			if h.logLine("poll failed", "job-redact", host) == "" {
				t.Errorf("no failed poll logged, naming %s", host)
			}
			logs := h.logs.String()
			for _, secret := range []string{"secret", "usr-2d8e"} {
				if strings.Contains(logs, secret) {
					t.Errorf("logs show %q:\n%s", secret, logs)
				}
			}
		})
	}
}

// TestReductoMaxBodyApplies: BRIDGE_REDUCTO_MAX_BODY reaches the Reducto client: an answer
// larger than it is refused (a transient failure: the job is polled again).
func TestReductoMaxBodyApplies(t *testing.T) {
	h := newHarness(t, natstest.Options{}, reductosim.Options{})
	cfg := h.config()
	cfg.ReductoMaxBody = 8 // smaller than any GET /job answer
	b := h.start(cfg)
	defer h.stop(b)
	id := h.sim.Create(reductosim.JobSpec{Outcome: reductosim.OutcomeNever})
	h.track(id, `{}`)
	deadline := time.Now().Add(10 * time.Second)
	for h.logLine("poll failed", id) == "" && time.Now().Before(deadline) {
		time.Sleep(20 * time.Millisecond)
	}
	if line := h.logLine("poll failed", id, "larger than 8 bytes"); line == "" {
		t.Errorf("no failed poll for a body over BRIDGE_REDUCTO_MAX_BODY; logs:\n%s", h.logs.String())
	}
}

// TestSecretsQuotedByReductoRedacted: a Reducto error that quotes secrets the bridge sent
// (the API key from the Authorization header, the direct webhook token from the webhook URL,
// JSON-escaped or URL-escaped) reaches neither a log line nor the failed event, whose error
// object stays valid JSON with everything else in it.
func TestSecretsQuotedByReductoRedacted(t *testing.T) {
	const token = "whtok/8d1+c4"
	quoted := fmt.Sprintf(`{"detail":"job refused: Bearer %s, webhook https://b.example/webhooks/reducto?token=%s","code":400,"echo":"%s"}`,
		testKey, url.QueryEscape(token), token)
	fake := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(http.StatusBadRequest)
		io.WriteString(w, quoted)
	}))
	defer fake.Close()
	h := newHarness(t, natstest.Options{}, reductosim.Options{})
	cfg := h.config()
	cfg.BaseURL = fake.URL
	cfg.WebhookToken = config.Secret(token)
	b := h.start(cfg)
	defer h.stop(b)
	h.track("job-quotes", `{}`)
	ev := decode(t, h.collect("job-quotes")["job-quotes"])
	if ev.Kind != event.Failed || ev.Error == nil {
		t.Fatalf("event %s, error %+v: want a failed event with Reducto's error", ev.Kind, ev.Error)
	}
	raw, _ := json.Marshal(ev.Error)
	var obj map[string]any
	if err := json.Unmarshal(ev.Error.Raw, &obj); err != nil || obj["code"] != 400.0 {
		t.Errorf("error object %s: not Reducto's object with its code (%v)", ev.Error.Raw, err)
	}
	logs := h.logs.String()
	for name, text := range map[string]string{"event error": string(raw) + ev.Error.Message, "logs": logs} {
		for _, secret := range []string{testKey, token, url.QueryEscape(token)} {
			if strings.Contains(text, secret) {
				t.Errorf("%s show %q:\n%s", name, secret, text)
			}
		}
		if !strings.Contains(text, redact.Placeholder) {
			t.Errorf("%s lack the placeholder (was Reducto's error in them at all?):\n%s", name, text)
		}
	}
}
