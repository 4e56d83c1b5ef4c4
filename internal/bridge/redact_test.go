package bridge

import (
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/reducto-bridge/reducto-bridge/internal/natstest"
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
