package bridge

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats-server/v2/server"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/nats-io/nats.go/micro"

	"github.com/reducto-bridge/reducto-bridge/config"
	"github.com/reducto-bridge/reducto-bridge/event"
	"github.com/reducto-bridge/reducto-bridge/internal/logtest"
	"github.com/reducto-bridge/reducto-bridge/internal/natsconf"
	"github.com/reducto-bridge/reducto-bridge/internal/natstest"
	"github.com/reducto-bridge/reducto-bridge/reducto/reductosim"
	"github.com/reducto-bridge/reducto-bridge/subject"
)

// securityConfig is the nats-server configuration printed in docs/security.md: the one block
// fenced as ```conf.
func securityConfig(t *testing.T) string {
	t.Helper()
	doc, err := os.ReadFile(filepath.Join("..", "..", "docs", "security.md"))
	if err != nil {
		t.Fatal(err)
	}
	block, err := natsconf.SecurityBlock(string(doc))
	if err != nil {
		t.Fatalf("docs/security.md: %v", err)
	}
	return block
}

// permissionErrors collects a connection's asynchronous errors (a permissions violation is
// reported only that way).
func permissionErrors() (chan error, nats.Option) {
	errs := make(chan error, 100)
	return errs, nats.ErrorHandler(func(_ *nats.Conn, _ *nats.Subscription, err error) {
		select {
		case errs <- err:
		default:
		}
	})
}

// expectViolation publishes to subj on nc and waits for the server's permissions violation.
func expectViolation(t *testing.T, nc *nats.Conn, errs chan error, subj string) {
	t.Helper()
	if err := nc.Publish(subj, []byte(`{"forged":true}`)); err != nil {
		t.Fatalf("publish %s: %v", subj, err)
	}
	nc.Flush()
	waitViolation(t, errs, subj)
}

// waitViolation waits for the permissions violation reported for subj.
func waitViolation(t *testing.T, errs chan error, subj string) {
	t.Helper()
	select {
	case err := <-errs:
		if !errors.Is(err, nats.ErrPermissionViolation) || !strings.Contains(err.Error(), subj) {
			t.Fatalf("publish %s: async error %v, want a permissions violation naming it", subj, err)
		}
	case <-time.After(10 * time.Second):
		t.Fatalf("publish %s: no permissions violation reported", subj)
	}
}

// TestLeastPrivilegePermissions runs the bridge under exactly the nats-server configuration of
// docs/security.md, as its bridge user: a producer tracks, submits and cancels; a reader gets
// every event, replays them through its own consumer and reads a large result from the object
// store; and neither can publish where only the bridge may.
func TestLeastPrivilegePermissions(t *testing.T) {
	pw := map[string]string{"bridge": "b-pw", "producer": "p-pw", "reader": "r-pw", "operator": "o-pw"}
	for user, p := range pw {
		t.Setenv(strings.ToUpper(user)+"_NATS_PASSWORD", p)
	}
	confFile := filepath.Join(t.TempDir(), "nats.conf")
	if err := os.WriteFile(confFile, []byte(securityConfig(t)), 0o600); err != nil {
		t.Fatal(err)
	}
	const maxPayload = 64 << 10
	s := natstest.RunServer(t, natstest.Options{Configure: func(o *server.Options) {
		// The file's accounts and users; host, port and store stay the test's.
		fo, err := server.ProcessConfigFile(confFile)
		if err != nil {
			t.Fatalf("docs/security.md config: %v", err)
		}
		if !fo.JetStream || fo.StoreDir == "" {
			t.Fatal("docs/security.md config does not enable JetStream")
		}
		o.Accounts, o.Users, o.MaxPayload = fo.Accounts, fo.Users, maxPayload
	}})
	connect := func(user string) (*nats.Conn, jetstream.JetStream, chan error) {
		errs, onErr := permissionErrors()
		nc := natstest.Connect(t, s, nats.UserInfo(user, pw[user]), onErr)
		js, err := jetstream.New(nc)
		if err != nil {
			t.Fatal(err)
		}
		return nc, js, errs
	}

	// Jobs submitted over HTTP have a result larger than max_payload: it goes to the object store.
	clock := reductosim.NewFakeClock(time.Now())
	sim, err := reductosim.New(reductosim.Options{Clock: clock, APIKey: testKey,
		Spec: func(string, []byte) reductosim.JobSpec {
			return reductosim.JobSpec{Duration: time.Second, ResultSize: 200 << 10}
		}})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(sim.Close)
	srv := httptest.NewServer(sim)
	t.Cleanup(srv.Close)

	pnc, pjs, perrs := connect("producer")
	rnc, rjs, rerrs := connect("reader")
	h := &harness{t: t, natsURL: s.ClientURL(), sim: sim, simURL: srv.URL, clock: clock,
		nc: pnc, js: pjs, events: make(chan *nats.Msg, 100), logs: &logtest.Buffer{}}
	t.Cleanup(func() {
		if t.Failed() {
			t.Logf("bridge logs:\n%s", h.logs.String())
		}
	})
	sub, err := rnc.ChanSubscribe(subject.EventsAll("reducto"), h.events)
	if err != nil {
		t.Fatal(err)
	}
	rnc.Flush()

	cfg := h.config()
	cfg.NATSUser, cfg.NATSPassword = "bridge", config.Secret(pw["bridge"])
	// Every optional restriction on, so that the bucket REDUCTO_TRACKED is used too: the
	// permissions of the default configuration are a subset.
	cfg.CancelTrackedOnly, cfg.SubmitWebhooks, cfg.RetrackKeepsSchedule = true, false, true
	b := h.start(cfg)
	if err := b.Ready(t.Context()); err != nil {
		t.Fatalf("bridge not ready under the documented permissions: %v", err)
	}

	// Producer: track (a JetStream publish, acknowledged), submit, cancel (status below).
	tracked := sim.Create(reductosim.JobSpec{Duration: time.Second})
	h.track(tracked, `{"metadata":{"team":"a"}}`)
	resp, err := pnc.Request(subject.Submit("reducto"), []byte(`{"endpoint":"parse","body":{"input":"https://x/big.pdf"}}`), 10*time.Second)
	if err != nil || resp.Header.Get(micro.ErrorCodeHeader) != "" {
		t.Fatalf("submit: %v %v", err, resp.Header)
	}
	var submitted struct {
		JobID string `json:"job_id"`
	}
	if err := json.Unmarshal(resp.Data, &submitted); err != nil || submitted.JobID == "" {
		t.Fatalf("submit reply %s: %v", resp.Data, err)
	}
	cancelled := sim.Create(reductosim.JobSpec{Outcome: reductosim.OutcomeNever})
	h.cancel(t, fmt.Sprintf(`{"job_id":%q}`, cancelled), "403") // BRIDGE_CANCEL_TRACKED_ONLY: not tracked yet
	h.track(cancelled, "")
	h.track(tracked, `{"metadata":{"team":"a"}}`) // a re-track, with REDUCTO_TRACKED
	h.cancel(t, fmt.Sprintf(`{"job_id":%q}`, cancelled), "")

	// Forgeries are refused by the server before they reach the bridge.
	expectViolation(t, pnc, perrs, subject.Event("reducto", "completed", tracked))
	expectViolation(t, pnc, perrs, subject.Event("reducto", "completed", cancelled))
	expectViolation(t, rnc, rerrs, subject.Track("reducto", "x"))
	// A refused request gets no answer: the client times out.
	refused := func() context.Context {
		ctx, cancel := context.WithTimeout(t.Context(), 500*time.Millisecond)
		t.Cleanup(cancel)
		return ctx
	}
	forged := subject.Event("reducto", "completed", tracked)
	if _, err := pjs.Publish(refused(), forged, []byte("{}"), jetstream.WithRetryAttempts(0)); err == nil {
		t.Error("producer's JetStream publish to an event subject succeeded")
	}
	waitViolation(t, perrs, forged)
	if err := pjs.DeleteStream(refused(), subject.TrackStream); err == nil {
		t.Error("producer deleted REDUCTO_TRACK")
	}
	waitViolation(t, perrs, "$JS.API.STREAM.DELETE."+subject.TrackStream)
	if err := rjs.DeleteStream(refused(), subject.EventsStream); err == nil {
		t.Error("reader deleted REDUCTO_EVENTS")
	}
	waitViolation(t, rerrs, "$JS.API.STREAM.DELETE."+subject.EventsStream)

	// P.status of a job still running gives its last poll: the bridge's user may ask the
	// replicas on P.bridge.polls.<key id> and answer there.
	natstest.WaitFor(t, func() bool {
		resp, err := pnc.Request(subject.Status("reducto"), fmt.Appendf(nil, `{"job_id":%q}`, tracked), 10*time.Second)
		return err == nil && strings.Contains(string(resp.Data), `"last_poll":{"status":`)
	})

	clock.Advance(2 * time.Second)
	got := h.collect(tracked, submitted.JobID, cancelled)
	sub.Unsubscribe()
	want := map[string]event.Kind{tracked: event.Completed, submitted.JobID: event.Completed, cancelled: event.Cancelled}
	for id, kind := range want {
		ev := decode(t, got[id])
		if ev.Kind != kind {
			t.Errorf("job %s: kind %s, want %s", id, ev.Kind, kind)
		}
	}
	if ev := decode(t, got[tracked]); string(ev.Metadata) != `{"team":"a"}` || ev.Result == nil {
		t.Errorf("tracked job's event: metadata %s, result %d bytes", ev.Metadata, len(ev.Result))
	}

	// Producer: P.status, answered by the bridge reading both streams under its permissions.
	// A job reported through a poll may still have its track message for a moment (the ack
	// follows the event), so only the event is checked.
	resp, err = pnc.Request(subject.Status("reducto"), fmt.Appendf(nil, `{"job_id":%q}`, cancelled), 10*time.Second)
	if err != nil {
		t.Fatalf("status: %v", err)
	}
	if code := resp.Header.Get(micro.ErrorCodeHeader); code != "" {
		t.Fatalf("status: error %s %s", code, resp.Header.Get(micro.ErrorHeader))
	}
	var st struct {
		Event *struct {
			Kind event.Kind `json:"kind"`
		} `json:"event"`
	}
	if err := json.Unmarshal(resp.Data, &st); err != nil || st.Event == nil || st.Event.Kind != event.Cancelled {
		t.Fatalf("status reply %s: %v, want the cancelled event", resp.Data, err)
	}

	// Reader: the large result from the object store.
	ref := decode(t, got[submitted.JobID]).ResultRef
	if ref == nil || ref.Bucket != subject.ResultsBucket {
		t.Fatalf("submitted job's result_ref = %+v, want the object store", ref)
	}
	obs, err := rjs.ObjectStore(t.Context(), ref.Bucket)
	if err != nil {
		t.Fatalf("reader opens the object store: %v", err)
	}
	data, err := obs.GetBytes(t.Context(), ref.Name)
	if err != nil || uint64(len(data)) != ref.Size || len(data) <= maxPayload || !json.Valid(data) {
		t.Fatalf("reader gets the result: %d bytes (ref %d), %v", len(data), ref.Size, err)
	}

	// Reader: a replay through its own consumer holds exactly the three genuine events.
	cons, err := rjs.CreateOrUpdateConsumer(t.Context(), subject.EventsStream, jetstream.ConsumerConfig{
		Durable: "reader-replay", AckPolicy: jetstream.AckExplicitPolicy})
	if err != nil {
		t.Fatalf("reader creates a consumer: %v", err)
	}
	seen := map[string]bool{}
	for len(seen) < len(want) {
		batch, err := cons.Fetch(len(want)-len(seen), jetstream.FetchMaxWait(5*time.Second))
		if err != nil {
			t.Fatalf("reader fetches: %v", err)
		}
		n := 0
		for m := range batch.Messages() {
			n++
			ev, err := event.Decode(m.Data())
			if err != nil || seen[ev.JobID] || want[ev.JobID] != ev.Kind {
				t.Fatalf("replayed %s: %+v %v (seen before: %v)", m.Subject(), ev, err, seen[ev.JobID])
			}
			seen[ev.JobID] = true
			if err := m.Ack(); err != nil {
				t.Fatal(err)
			}
		}
		if err := batch.Error(); err != nil && !errors.Is(err, jetstream.ErrNoMessages) && !errors.Is(err, nats.ErrTimeout) {
			t.Fatalf("fetch: %v", err)
		}
		if n == 0 {
			t.Fatalf("replay: %d of %d events", len(seen), len(want))
		}
	}
	if info, err := cons.Info(t.Context()); err != nil || info.NumPending != 0 {
		t.Errorf("replay consumer: %+v %v, want nothing more", info, err)
	}
	// No stray violation from the bridge's or the clients' normal work.
	if strings.Contains(h.logs.String(), "nats async error") {
		t.Errorf("the bridge hit a NATS error under the documented permissions:\n%s", grepLines(h.logs.String(), "nats async error"))
	}
	for who, errs := range map[string]chan error{"producer": perrs, "reader": rerrs} {
		select {
		case err := <-errs:
			t.Errorf("%s: unexpected async error: %v", who, err)
		default:
		}
	}
}
