package cli

import (
	"bytes"
	"context"
	"errors"
	"flag"
	"log/slog"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/nats-io/nats-server/v2/server"

	"github.com/reducto-bridge/reducto-bridge/config"
	"github.com/reducto-bridge/reducto-bridge/event"
	"github.com/reducto-bridge/reducto-bridge/internal/bridge"
	"github.com/reducto-bridge/reducto-bridge/internal/logtest"
	"github.com/reducto-bridge/reducto-bridge/internal/natstest"
	"github.com/reducto-bridge/reducto-bridge/publisher"
	"github.com/reducto-bridge/reducto-bridge/reducto/reductosim"
	"github.com/reducto-bridge/reducto-bridge/subject"
)

const testKey = "cli-test-key"

// stack is an embedded NATS server, the simulator over httptest and a real bridge on both.
type stack struct {
	srv    *server.Server
	sim    *reductosim.Server
	simURL string
	clock  *reductosim.FakeClock
	cfg    *config.Config
}

func newStack(t *testing.T) *stack {
	t.Helper()
	st := &stack{srv: natstest.RunServer(t), clock: reductosim.NewFakeClock(time.Now())}
	sim, err := reductosim.New(reductosim.Options{APIKey: testKey, Clock: st.clock})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(sim.Close)
	hs := httptest.NewServer(sim)
	t.Cleanup(hs.Close)
	st.sim, st.simURL = sim, hs.URL

	cfg := config.Defaults()
	cfg.APIKey = config.Secret(testKey)
	cfg.BaseURL = hs.URL
	cfg.NATSURL = st.srv.ClientURL()
	cfg.HTTPAddr = "127.0.0.1:0"
	cfg.PollInitialInterval = 20 * time.Millisecond
	cfg.PollMaxInterval = 100 * time.Millisecond
	cfg.PollJitter = 0
	cfg.ListSweep = false
	cfg.DrainTimeout = 5 * time.Second
	if err := cfg.Validate(); err != nil {
		t.Fatal(err)
	}
	st.cfg = cfg
	logs := &logtest.Buffer{}
	b, err := bridge.Start(t.Context(), cfg, slog.New(slog.NewTextHandler(logs, nil)))
	if err != nil {
		t.Fatalf("start bridge: %v", err)
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		if err := b.Shutdown(ctx); err != nil {
			t.Errorf("shutdown: %v", err)
		}
		if t.Failed() {
			t.Logf("bridge logs:\n%s", logs.String())
		}
	})
	if err := b.Ready(t.Context()); err != nil {
		t.Fatalf("bridge not ready: %v", err)
	}
	// The verbs read the environment as 'bridge <verb>' does.
	for k, v := range map[string]string{"NATS_URL": cfg.NATSURL, "REDUCTO_API_KEY": testKey, "REDUCTO_BASE_URL": hs.URL} {
		t.Setenv(k, v)
	}
	return st
}

// verb runs 'bridge <verb> args...' and returns its output.
func verb(t *testing.T, args ...string) (string, error) {
	t.Helper()
	var out, errOut bytes.Buffer
	err := Run(t.Context(), args[0], args[1:], &out, &errOut)
	return out.String() + errOut.String(), err
}

// syncBuffer is a bytes.Buffer safe for a writer and a reader on two goroutines.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

// TestVerbs drives track, watch, status and cancel against a running bridge: each verb's
// output says what the streams and the bridge did.
func TestVerbs(t *testing.T) {
	st := newStack(t)
	done := st.sim.Create(reductosim.JobSpec{Duration: time.Second})
	never := st.sim.Create(reductosim.JobSpec{Outcome: reductosim.OutcomeNever})

	// Before anything: unknown to the bridge.
	out, err := verb(t, "status", done)
	if err != nil || !strings.Contains(out, "tracked  no\n") || !strings.Contains(out, "event    none yet\n") {
		t.Fatalf("status before tracking: %v\n%s", err, out)
	}

	// watch, from the start of the stream, until two events: the completed and the cancelled.
	watched := &syncBuffer{}
	watchErr := make(chan error, 1)
	go func() {
		var errOut bytes.Buffer
		watchErr <- Run(t.Context(), "watch", []string{"--all", "--count", "2"}, watched, &errOut)
	}()

	out, err = verb(t, "track", done, "--metadata", `{"order":7}`)
	if err != nil || !strings.HasPrefix(out, "tracked "+done+" (stream REDUCTO_TRACK, sequence ") {
		t.Fatalf("track: %v\n%s", err, out)
	}
	st.clock.Advance(2 * time.Second) // the job is done at its first poll

	out, err = verb(t, "cancel", never)
	if err != nil || out != "cancel requested for "+never+"; its event will tell how it ended\n" {
		t.Fatalf("cancel: %v\n%s", err, out)
	}
	select {
	case err := <-watchErr:
		if err != nil {
			t.Fatalf("watch: %v", err)
		}
	case <-time.After(30 * time.Second):
		t.Fatalf("watch saw no two events; so far:\n%s", watched.String())
	}
	lines := strings.Split(strings.TrimSpace(watched.String()), "\n")
	if len(lines) != 2 {
		t.Fatalf("watch printed %d lines, want 2:\n%s", len(lines), watched.String())
	}
	for _, want := range []string{"completed  " + done + "  status Completed", "cancelled  " + never} {
		if !strings.Contains(watched.String(), want) {
			t.Errorf("watch output lacks %q:\n%s", want, watched.String())
		}
	}

	// status of a job still running: where its last poll left it.
	running := st.sim.Create(reductosim.JobSpec{Outcome: reductosim.OutcomeNever})
	if out, err := verb(t, "track", running); err != nil {
		t.Fatalf("track: %v\n%s", err, out)
	}
	natstest.WaitFor(t, func() bool {
		out, err := verb(t, "status", running)
		return err == nil && strings.Contains(out, "\nparked   ") && strings.Contains(out, " deliveries so far; next poll ") &&
			(strings.Contains(out, "\npolled   Idle") || strings.Contains(out, "\npolled   Pending"))
	})

	// status after the event: the kind, and the sequence the stream gave it.
	out, err = verb(t, "status", done)
	if err != nil || !strings.Contains(out, "event    completed (status Completed) at ") || !strings.Contains(out, "REDUCTO_EVENTS sequence 1") {
		t.Fatalf("status after the event: %v\n%s", err, out)
	}
	out, err = verb(t, "status", done, "--json")
	if err != nil || !strings.Contains(out, `"kind":"completed"`) || !strings.Contains(out, `"job_id":"`+done+`"`) {
		t.Fatalf("status --json: %v\n%s", err, out)
	}

	// watch --json of one kind replays that kind's event bodies only.
	var js bytes.Buffer
	if err := Run(t.Context(), "watch", []string{"cancelled", "--all", "--json", "--count", "1"}, &js, &bytes.Buffer{}); err != nil {
		t.Fatal(err)
	}
	if !strings.HasPrefix(js.String(), `{"job_id":"`+never+`","kind":"cancelled"`) {
		t.Errorf("watch cancelled --json = %s", js.String())
	}

	// Refusals are errors carrying the bridge's code: cancelling a finished job is 409.
	_, err = verb(t, "cancel", done)
	var se *ServiceError
	if !errors.As(err, &se) || se.Code != 409 || !strings.Contains(se.Desc, "completed") {
		t.Errorf("cancel of a completed job: %v, want a 409 naming its kind", err)
	}
}

// TestVerbUsage: wrong command lines are usage errors before anything is sent; -h is help.
func TestVerbUsage(t *testing.T) {
	t.Setenv("NATS_URL", "nats://127.0.0.1:1") // nothing listens: a verb that connected would fail otherwise
	for _, args := range [][]string{
		{"track"},
		{"track", "a", "b"},
		{"track", "a", "--metadata", "{not json"},
		{"status"},
		{"cancel", "a", "b"},
		{"watch", "completed", "failed"},
		{"doctor", "x"},
		{"status", "a", "--no-such-flag"},
	} {
		if out, err := verb(t, args...); !errors.Is(err, ErrUsage) {
			t.Errorf("%q: %v, want a usage error\n%s", args, err, out)
		}
	}
	for _, v := range Verbs {
		if out, err := verb(t, v.Name, "-h"); !errors.Is(err, flagErrHelp) || !strings.Contains(out, "usage: bridge "+v.Name) {
			t.Errorf("%s -h: %v\n%s", v.Name, err, out)
		}
	}
	if _, err := verb(t, "watch", "bogus"); err == nil || !strings.Contains(err.Error(), `unknown kind "bogus"`) {
		t.Errorf("watch bogus: %v, want unknown kind", err)
	}
	if _, err := verb(t, "status", "a.b"); err == nil || !strings.Contains(err.Error(), "invalid job id") {
		t.Errorf("status a.b: %v, want invalid job id", err)
	}
	t.Setenv("NATS_URL", "bogus://x")
	if _, err := verb(t, "status", "a"); err == nil || !strings.Contains(err.Error(), "NATS_URL") {
		t.Errorf("bad NATS_URL: %v, want an error naming it", err)
	}
}

var flagErrHelp = flag.ErrHelp

// TestWatchForeign: a message another client published on an event subject, even one that
// decodes as that job's event, is shown as not an event; the bridge's own event is shown.
func TestWatchForeign(t *testing.T) {
	s := natstest.RunServer(t)
	nc, js := natstest.JetStream(t, s)
	pub, err := publisher.Setup(t.Context(), js, publisher.Options{})
	if err != nil {
		t.Fatal(err)
	}
	forged := []byte(`{"job_id":"j1","kind":"completed","status":"Completed","observed_at":"2026-01-01T00:00:00Z"}`)
	if _, err := js.Publish(t.Context(), subject.Event("reducto", "completed", "j1"), forged); err != nil {
		t.Fatal(err)
	}
	if _, err := pub.Publish(t.Context(), &event.Event{JobID: "j1", Kind: event.Failed, Status: "Failed"}); err != nil {
		t.Fatal(err)
	}
	var out bytes.Buffer
	c, err := NewClient(nc, "", &out)
	if err != nil {
		t.Fatal(err)
	}
	if err := c.Watch(t.Context(), WatchOptions{All: true, Count: 2}); err != nil {
		t.Fatal(err)
	}
	lines := strings.Split(strings.TrimSpace(out.String()), "\n")
	if len(lines) != 2 || !strings.Contains(lines[0], "not an event: reducto.job.completed.j1 (sequence 1)") ||
		!strings.Contains(lines[1], "failed     j1  status Failed") {
		t.Errorf("watch output:\n%s", out.String())
	}
}
