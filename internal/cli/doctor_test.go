package cli

import (
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/reducto-bridge/reducto-bridge/internal/natstest"
	"github.com/reducto-bridge/reducto-bridge/publisher"
	"github.com/reducto-bridge/reducto-bridge/subject"
	"github.com/reducto-bridge/reducto-bridge/track"
)

// failed returns the FAIL blocks of a doctor report, by check name.
func failed(out string) map[string]string {
	got := map[string]string{}
	var cur string
	for _, line := range strings.Split(out, "\n") {
		switch {
		case strings.HasPrefix(line, "FAIL  "):
			cur = strings.TrimPrefix(line, "FAIL  ")
			got[cur] = ""
		case strings.HasPrefix(line, "      ") && cur != "":
			got[cur] += strings.TrimSpace(line) + "\n"
		default:
			cur = ""
		}
	}
	return got
}

// TestDoctor: a bridge's own set-up passes every check; a consumer mis-set by hand (BackOff,
// a small MaxAckPending, an older bridge's filter subject), a dedup window that differs from BRIDGE_DUPLICATE_WINDOW and a wrong
// API key are each found, with a fix, and make doctor fail (exit 1).
func TestDoctor(t *testing.T) {
	st := newStack(t)
	out, err := verb(t, "doctor")
	if err != nil || len(failed(out)) != 0 || !strings.Contains(out, "all 7 checks passed") {
		t.Fatalf("doctor on a healthy bridge: %v\n%s", err, out)
	}

	_, js := natstest.JetStream(t, st.srv)
	cons, err := js.Consumer(t.Context(), subject.TrackStream, track.ConsumerName)
	if err != nil {
		t.Fatal(err)
	}
	cc := cons.CachedInfo().Config
	cc.BackOff = []time.Duration{time.Second, 5 * time.Second}
	cc.MaxAckPending = 5
	cc.FilterSubject = "reducto.track.>" // as an older bridge set it
	if _, err := js.UpdateConsumer(t.Context(), subject.TrackStream, cc); err != nil {
		t.Fatalf("mis-set the consumer: %v", err)
	}
	es, err := js.Stream(t.Context(), subject.EventsStream)
	if err != nil {
		t.Fatal(err)
	}
	ec := es.CachedInfo().Config
	ec.Duplicates = 2 * time.Minute
	if _, err := js.UpdateStream(t.Context(), ec); err != nil {
		t.Fatalf("mis-set the events stream: %v", err)
	}
	t.Setenv("REDUCTO_API_KEY", "wrong-key")

	out, err = verb(t, "doctor")
	if !errors.Is(err, ErrProblems) {
		t.Fatalf("doctor: %v, want ErrProblems\n%s", err, out)
	}
	t.Logf("doctor's report:\n%s", out)
	got := failed(out)
	want := map[string][]string{
		"track consumer reducto-bridge":                       {"BackOff is set ([1s 5s])", "MaxAckPending 5", `filter subject "reducto.track.>"`, "fix: start (or restart) a bridge"},
		"events stream REDUCTO_EVENTS and its dedup window":   {"dedup window 2m0s, BRIDGE_DUPLICATE_WINDOW is 1h0m0s"},
		"Reducto accepts REDUCTO_API_KEY (GET /jobs?limit=1)": {"Reducto rejected the API key", "fix: set REDUCTO_API_KEY"},
	}
	if len(got) != len(want) {
		t.Errorf("failed checks %v, want %d", keys(got), len(want))
	}
	for check, parts := range want {
		block, ok := got[check]
		if !ok {
			t.Errorf("doctor did not fail %q\n%s", check, out)
			continue
		}
		for _, p := range parts {
			if !strings.Contains(block, p) {
				t.Errorf("%q: report lacks %q:\n%s", check, p, block)
			}
		}
	}
	if strings.Contains(out, "wrong-key") || strings.Contains(out, testKey) {
		t.Errorf("doctor printed the API key:\n%s", out)
	}
	if !strings.Contains(out, "3 of 7 checks failed") {
		t.Errorf("no summary line:\n%s", out)
	}

	// The fix doctor gives: a bridge starting with the same environment rewrites the settings.
	if _, err := track.Setup(t.Context(), js, track.Options{AckWait: st.cfg.AckWait}); err != nil {
		t.Fatal(err)
	}
	if _, err := publisher.Setup(t.Context(), js, publisher.Options{MaxAge: st.cfg.EventsMaxAge, Duplicates: st.cfg.DuplicateWindow}); err != nil {
		t.Fatal(err)
	}
	t.Setenv("REDUCTO_API_KEY", testKey)
	if out, err := verb(t, "doctor"); err != nil {
		t.Errorf("doctor after the bridge's set-up ran again: %v\n%s", err, out)
	}
}

// TestDoctorNoBridge: on a NATS server no bridge ever used, every stream, the consumer, the
// bucket and the service are missing, and a missing API key is reported as such.
func TestDoctorNoBridge(t *testing.T) {
	s := natstest.RunServer(t)
	t.Setenv("NATS_URL", s.ClientURL())
	t.Setenv("REDUCTO_API_KEY", "")
	out, err := verb(t, "doctor")
	if !errors.Is(err, ErrProblems) {
		t.Fatalf("doctor: %v\n%s", err, out)
	}
	got := failed(out)
	for check, part := range map[string]string{
		"track stream REDUCTO_TRACK":                          "stream REDUCTO_TRACK does not exist",
		"track consumer reducto-bridge":                       "does not exist: no job is polled",
		"events stream REDUCTO_EVENTS and its dedup window":   "stream REDUCTO_EVENTS does not exist",
		"object store REDUCTO_RESULTS":                        "cannot open it",
		"a bridge answers commands (reducto.status)":          "no reducto-bridge service answers",
		"Reducto accepts REDUCTO_API_KEY (GET /jobs?limit=1)": "REDUCTO_API_KEY is not set",
	} {
		if !strings.Contains(got[check], part) {
			t.Errorf("%q: want %q in\n%s", check, part, got[check])
		}
	}
	if _, ok := got["JetStream available to this user ($JS.API.INFO)"]; ok {
		t.Errorf("JetStream reported unavailable:\n%s", out)
	}
}

func keys(m map[string]string) []string {
	var out []string
	for k := range m {
		out = append(out, k)
	}
	return out
}
