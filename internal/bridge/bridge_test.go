package bridge

import (
	"bytes"
	"context"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/nats-io/nats.go/micro"
	"go.uber.org/goleak"

	"github.com/reducto-bridge/reducto-bridge/config"
	"github.com/reducto-bridge/reducto-bridge/event"
	"github.com/reducto-bridge/reducto-bridge/internal/logtest"
	"github.com/reducto-bridge/reducto-bridge/internal/natstest"
	"github.com/reducto-bridge/reducto-bridge/reducto/reductosim"
	"github.com/reducto-bridge/reducto-bridge/subject"
)

const testKey = "sk-live-TESTKEY-0b7d"

// harness is a NATS server, the Reducto simulator and a client, around which tests start
// bridges.
type harness struct {
	t       *testing.T
	natsURL string
	sim     *reductosim.Server
	simURL  string
	clock   *reductosim.FakeClock
	nc      *nats.Conn
	js      jetstream.JetStream
	events  chan *nats.Msg
	logs    *logtest.Buffer
}

func newHarness(t *testing.T, so natstest.Options, simOpts reductosim.Options) *harness {
	t.Helper()
	s := natstest.RunServer(t, so)
	h := &harness{t: t, natsURL: s.ClientURL(), logs: &logtest.Buffer{}}
	t.Cleanup(func() {
		if t.Failed() {
			t.Logf("bridge logs:\n%s", h.logs.String())
		}
	})
	if simOpts.Clock == nil {
		h.clock = reductosim.NewFakeClock(time.Now())
		simOpts.Clock = h.clock
	}
	simOpts.APIKey = testKey
	sim, err := reductosim.New(simOpts)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(sim.Close)
	srv := httptest.NewServer(sim)
	t.Cleanup(srv.Close)
	h.sim, h.simURL = sim, srv.URL
	h.nc, h.js = natstest.JetStream(t, s)
	h.events = make(chan *nats.Msg, 1000)
	sub, err := h.nc.ChanSubscribe(subject.EventsAll("reducto"), h.events)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { sub.Unsubscribe() })
	return h
}

// config is a configuration for a bridge on the harness, fast enough for tests.
func (h *harness) config() *config.Config {
	cfg := config.Defaults()
	cfg.APIKey = config.Secret(testKey)
	cfg.BaseURL = h.simURL
	cfg.NATSURL = h.natsURL
	cfg.HTTPAddr = "127.0.0.1:0"
	cfg.PollInitialInterval = 20 * time.Millisecond
	cfg.PollMaxInterval = 100 * time.Millisecond
	cfg.PollJitter = 0
	cfg.DrainTimeout = 5 * time.Second
	cfg.LogLevel = slog.LevelDebug
	return cfg
}

func (h *harness) start(cfg *config.Config) *Bridge {
	h.t.Helper()
	if err := cfg.Validate(); err != nil {
		h.t.Fatal(err)
	}
	log := slog.New(slog.NewTextHandler(h.logs, &slog.HandlerOptions{Level: cfg.LogLevel}))
	b, err := Start(h.t.Context(), cfg, log)
	if err != nil {
		h.t.Fatalf("start: %v", err)
	}
	var once sync.Once
	h.t.Cleanup(func() { once.Do(func() { h.stop(b) }) })
	return b
}

func (h *harness) stop(b *Bridge) {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := b.Shutdown(ctx); err != nil {
		h.t.Errorf("shutdown: %v", err)
	}
}

func (h *harness) track(id, body string) {
	h.t.Helper()
	if _, err := h.js.Publish(h.t.Context(), subject.Track("reducto", id), []byte(body)); err != nil {
		h.t.Fatalf("track: %v", err)
	}
}

// cancel sends a reducto.cancel request and checks its error code ("" for a success); it
// returns the reply.
func (h *harness) cancel(t *testing.T, body, wantCode string) *nats.Msg {
	t.Helper()
	resp, err := h.nc.Request(subject.Cancel("reducto"), []byte(body), 10*time.Second)
	if err != nil {
		t.Fatalf("cancel %.80q: %v", body, err)
	}
	if got := resp.Header.Get(micro.ErrorCodeHeader); got != wantCode {
		t.Errorf("cancel %.80q: error code = %q (%s), want %q", body, got, resp.Header.Get(micro.ErrorHeader), wantCode)
	}
	return resp
}

// collect waits for one event per id and fails on a second event for any job.
func (h *harness) collect(ids ...string) map[string]*nats.Msg {
	h.t.Helper()
	want := map[string]bool{}
	for _, id := range ids {
		want[id] = true
	}
	got := map[string]*nats.Msg{}
	deadline := time.After(20 * time.Second)
	for len(got) < len(want) {
		select {
		case m := <-h.events:
			ev, err := event.Decode(m.Data)
			if err != nil {
				h.t.Fatalf("bad event: %v", err)
			}
			if got[ev.JobID] != nil {
				h.t.Fatalf("second event for %s: %s", ev.JobID, m.Subject)
			}
			got[ev.JobID] = m
		case <-deadline:
			h.t.Fatalf("%d of %d events within 20s", len(got), len(want))
		}
	}
	return got
}

// eventCount is the number of events the stream holds for a job.
func (h *harness) eventCount(id string) uint64 {
	h.t.Helper()
	s, err := h.js.Stream(h.t.Context(), subject.EventsStream)
	if err != nil {
		h.t.Fatal(err)
	}
	info, err := s.Info(h.t.Context(), jetstream.WithSubjectFilter(subject.JobEvents("reducto", id)))
	if err != nil {
		h.t.Fatal(err)
	}
	var n uint64
	for _, c := range info.State.Subjects {
		n += c
	}
	return n
}

func decode(t *testing.T, m *nats.Msg) *event.Event {
	t.Helper()
	ev, err := event.Decode(m.Data)
	if err != nil {
		t.Fatal(err)
	}
	return ev
}

func TestEndToEnd(t *testing.T) {
	// A small max payload, so that a 300 KB result needs the object store.
	h := newHarness(t, natstest.Options{MaxPayload: 256 << 10}, reductosim.Options{})
	cfg := h.config()
	cfg.JobTTL = 2 * time.Second
	h.start(cfg)

	done := h.sim.Create(reductosim.JobSpec{Duration: time.Second, NumPages: 7})
	failed := h.sim.Create(reductosim.JobSpec{Outcome: reductosim.OutcomeFail, ErrorName: "DOCUMENT_CORRUPT"})
	cancelled := h.sim.Create(reductosim.JobSpec{Outcome: reductosim.OutcomeNever})
	expired := h.sim.Create(reductosim.JobSpec{Outcome: reductosim.OutcomeNever})
	large := h.sim.Create(reductosim.JobSpec{ResultSize: 300 << 10})
	h.sim.Cancel(cancelled)
	h.track(done, `{"metadata":{"tenant":"acme","n":[1,2,3]}}`)
	h.track(failed, "")
	h.track(cancelled, "not json at all")
	h.track(expired, `{"metadata":"x"}`)
	h.track(large, "")
	h.track("never-existed", "")
	h.track(done, `{"metadata":{"tenant":"acme","n":[1,2,3]}}`) // tracked twice
	h.clock.Advance(2 * time.Second)

	got := h.collect(done, failed, cancelled, expired, large, "never-existed")
	tests := []struct {
		id, kind string
		check    func(t *testing.T, m *nats.Msg, ev *event.Event)
	}{
		{done, "completed", func(t *testing.T, m *nats.Msg, ev *event.Event) {
			if string(ev.Metadata) != `{"tenant":"acme","n":[1,2,3]}` {
				t.Errorf("metadata = %s", ev.Metadata)
			}
			if ev.Status != "Completed" || ev.Type != "Parse" || ev.NumPages == nil || *ev.NumPages != 7 || !strings.Contains(string(ev.Result), `"chunks"`) {
				t.Errorf("event = %+v", ev)
			}
			for k, want := range map[string]string{
				"Nats-Msg-Id": done + ":completed", "Content-Type": "application/json", "ce-specversion": "1.0",
				"ce-id": done + ":completed", "ce-type": "ai.reducto.job.completed", "ce-source": "reducto-bridge", "ce-subject": done,
			} {
				if got := m.Header.Get(k); got != want {
					t.Errorf("header %s = %q, want %q", k, got, want)
				}
			}
			if _, err := time.Parse(time.RFC3339, m.Header.Get("ce-time")); err != nil {
				t.Errorf("ce-time %q: %v", m.Header.Get("ce-time"), err)
			}
		}},
		{failed, "failed", func(t *testing.T, _ *nats.Msg, ev *event.Event) {
			if ev.Error == nil || ev.Error.Name != "DOCUMENT_CORRUPT" || ev.Reason == "" {
				t.Errorf("error %+v reason %q", ev.Error, ev.Reason)
			}
		}},
		{cancelled, "cancelled", func(t *testing.T, _ *nats.Msg, ev *event.Event) {
			if ev.Metadata != nil {
				t.Errorf("metadata %s from a body that was not JSON", ev.Metadata)
			}
		}},
		{expired, "expired", nil},
		{large, "completed", func(t *testing.T, _ *nats.Msg, ev *event.Event) {
			if ev.Result != nil || ev.ResultRef == nil || ev.ResultRef.Bucket != subject.ResultsBucket || ev.ResultRef.Name != large {
				t.Fatalf("result %d bytes, ref %+v; want the result in the object store", len(ev.Result), ev.ResultRef)
			}
			obs, err := h.js.ObjectStore(t.Context(), subject.ResultsBucket)
			if err != nil {
				t.Fatal(err)
			}
			data, err := obs.GetBytes(t.Context(), large)
			if err != nil || len(data) < 290<<10 || uint64(len(data)) != ev.ResultRef.Size || !json.Valid(data) {
				t.Errorf("stored result: %d bytes (ref says %d), %v", len(data), ev.ResultRef.Size, err)
			}
		}},
		{"never-existed", "failed", func(t *testing.T, _ *nats.Msg, ev *event.Event) {
			if ev.Error == nil || ev.Error.Name != "NOT_FOUND" {
				t.Errorf("error = %+v, want NOT_FOUND", ev.Error)
			}
		}},
	}
	for _, tt := range tests {
		t.Run(tt.kind+"/"+tt.id, func(t *testing.T) {
			m := got[tt.id]
			if want := subject.Event("reducto", tt.kind, tt.id); m.Subject != want {
				t.Fatalf("subject %s, want %s", m.Subject, want)
			}
			ev := decode(t, m)
			if string(ev.Kind) != tt.kind || ev.JobID != tt.id || ev.TrackedAt.IsZero() || ev.ObservedAt.IsZero() {
				t.Errorf("event = %+v", ev)
			}
			if tt.check != nil {
				tt.check(t, m, ev)
			}
			natstest.WaitFor(t, func() bool { return h.eventCount(tt.id) >= 1 })
			if n := h.eventCount(tt.id); n != 1 {
				t.Errorf("stream holds %d events, want 1", n)
			}
		})
	}
	if strings.Contains(h.logs.String(), testKey) {
		t.Error("the API key appears in the logs")
	}
	if !strings.Contains(h.logs.String(), "track body is not a JSON object") {
		t.Error("no warning logged for the malformed track body")
	}
}

func TestCancelCommandEndToEnd(t *testing.T) {
	h := newHarness(t, natstest.Options{}, reductosim.Options{})
	h.start(h.config())
	id := h.sim.Create(reductosim.JobSpec{Outcome: reductosim.OutcomeNever})
	tests := []struct {
		name, body, code string
	}{
		{"running job", fmt.Sprintf(`{"job_id":%q}`, id), ""},
		{"unknown job", `{"job_id":"no-such-job"}`, "404"},
		{"not json", `{`, "400"},
		{"no id", `{}`, "400"},
		{"bad id", `{"job_id":"a.b"}`, "400"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			resp := h.cancel(t, tt.body, tt.code)
			if tt.code == "" && string(resp.Data) != fmt.Sprintf(`{"job_id":%q,"cancel":"requested"}`, id) {
				t.Errorf("reply = %s", resp.Data)
			}
		})
	}
	// The cancel tracked the job, so its terminal event arrives without any track message.
	ev := decode(t, h.collect(id)[id])
	if ev.Kind != event.Cancelled {
		t.Errorf("kind = %s, want cancelled", ev.Kind)
	}
	// Cancelling it again: already terminal.
	h.cancel(t, fmt.Sprintf(`{"job_id":%q}`, id), "409")
	// The micro service is discoverable.
	resp, err := h.nc.Request("$SRV.PING.reducto-bridge", nil, 5*time.Second)
	if err != nil || !strings.Contains(string(resp.Data), `"name":"reducto-bridge"`) {
		t.Errorf("$SRV.PING: %v %s", err, resp.Data)
	}
}

func TestHTTPEndpoints(t *testing.T) {
	h := newHarness(t, natstest.Options{}, reductosim.Options{})
	b := h.start(h.config())
	base := "http://" + b.httpAddr.String()
	get := func(path string) (int, string) {
		resp, err := http.Get(base + path)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		body, _ := io.ReadAll(resp.Body)
		return resp.StatusCode, string(body)
	}
	if code, _ := get("/healthz"); code != 200 {
		t.Errorf("/healthz = %d", code)
	}
	if code, _ := get("/debug/pprof/"); code != 404 {
		t.Errorf("/debug/pprof/ = %d without BRIDGE_PPROF, want 404", code)
	}
	if code, body := get("/readyz"); code != 200 {
		t.Errorf("/readyz = %d %s", code, body)
	}
	id := h.sim.Create(reductosim.JobSpec{})
	h.track(id, "")
	h.collect(id)
	// The event reaches the core subscription before the bridge has its PubAck and counts it.
	var code int
	var body string
	natstest.WaitFor(t, func() bool {
		code, body = get("/metrics")
		return code != 200 || strings.Contains(body, `reducto_bridge_events_total{kind="completed",result="published"} 1`)
	})
	if code != 200 {
		t.Fatalf("/metrics = %d", code)
	}
	for _, want := range []string{
		`reducto_bridge_polls_total{outcome="terminal"} 1`,
		`reducto_bridge_events_total{kind="completed",result="published"} 1`,
		`reducto_bridge_reducto_requests_total{code="200",op="get_job"} 1`,
		`reducto_bridge_jobs_outstanding`,
		`reducto_bridge_rate_limit_per_second{limit="get_job"} 100`,
		`reducto_bridge_rate_limit_per_second{limit="all"} 500`,
		`reducto_bridge_replicas 1`,
	} {
		if !strings.Contains(body, want) {
			t.Errorf("/metrics lacks %q", want)
		}
	}
	if strings.Contains(body, testKey) {
		t.Error("/metrics shows the API key")
	}
	// Draining: not ready any more.
	b.draining.Store(true)
	if code, _ := get("/readyz"); code != 503 {
		t.Errorf("/readyz while draining = %d, want 503", code)
	}
	b.draining.Store(false)
}

func TestShutdownLeaksNothing(t *testing.T) {
	h := newHarness(t, natstest.Options{}, reductosim.Options{})
	baseline := goleak.IgnoreCurrent()
	// The bridge owns an embedded server here, so everything it started must be gone after.
	cfg := h.config()
	cfg.NATSURL = ""
	cfg.EmbeddedNATSAddr = "127.0.0.1:0"
	cfg.DataDir = t.TempDir()
	b := h.start(cfg)
	nc, err := nats.Connect(b.ns.ClientURL())
	if err != nil {
		t.Fatal(err)
	}
	js, _ := jetstream.New(nc)
	for i := range 10 {
		id := h.sim.Create(reductosim.JobSpec{Outcome: reductosim.OutcomeNever})
		if _, err := js.Publish(t.Context(), subject.Track("reducto", id), fmt.Appendf(nil, `{"metadata":%d}`, i)); err != nil {
			t.Fatal(err)
		}
	}
	resp, err := nc.Request(subject.Cancel("reducto"), []byte(`{"job_id":"x"}`), 5*time.Second)
	if err != nil || resp.Header.Get(micro.ErrorCodeHeader) != "404" {
		t.Fatalf("cancel: %v", err)
	}
	nc.Close()
	h.stop(b)
	goleak.VerifyNone(t, baseline)
}

func TestEmbeddedServer(t *testing.T) {
	h := newHarness(t, natstest.Options{}, reductosim.Options{})
	cfg := h.config()
	cfg.NATSURL = ""
	cfg.EmbeddedNATSAddr = "127.0.0.1:0"
	cfg.DataDir = t.TempDir()
	b := h.start(cfg)
	// A separate client reaches the embedded server over TCP, as the nats CLI would.
	nc, err := nats.Connect(b.ns.ClientURL())
	if err != nil {
		t.Fatal(err)
	}
	defer nc.Close()
	events := make(chan *nats.Msg, 4)
	sub, _ := nc.ChanSubscribe("reducto.job.>", events)
	defer sub.Unsubscribe()
	id := h.sim.Create(reductosim.JobSpec{})
	if err := nc.Publish(subject.Track("reducto", id), nil); err != nil { // plain core publish
		t.Fatal(err)
	}
	select {
	case m := <-events:
		if m.Subject != subject.Event("reducto", "completed", id) {
			t.Errorf("event on %s", m.Subject)
		}
	case <-time.After(20 * time.Second):
		t.Fatal("no event from the embedded server")
	}
}

func TestRunRejectsBadEnvironment(t *testing.T) {
	t.Setenv("REDUCTO_API_KEY", "")
	t.Setenv("BRIDGE_POLL_INITIAL_INTERVAL", "soon")
	t.Setenv("BRIDGE_RATE_LIMIT", "-5")
	t.Setenv("BRIDGE_LOG_LEVEL", "chatty")
	t.Setenv("BRIDGE_SUBJECT_PREFIX", "a.*")
	var stderr bytes.Buffer
	err := Run(t.Context(), &stderr)
	if err == nil {
		t.Fatal("run accepted a bad environment")
	}
	for _, name := range []string{"BRIDGE_POLL_INITIAL_INTERVAL", "BRIDGE_RATE_LIMIT", "BRIDGE_LOG_LEVEL", "BRIDGE_SUBJECT_PREFIX"} {
		if !strings.Contains(err.Error(), name) {
			t.Errorf("error does not name %s:\n%v", name, err)
		}
	}
	// With the rest fixed, the missing key is named too.
	for _, name := range []string{"BRIDGE_POLL_INITIAL_INTERVAL", "BRIDGE_RATE_LIMIT", "BRIDGE_LOG_LEVEL", "BRIDGE_SUBJECT_PREFIX"} {
		t.Setenv(name, "")
	}
	err = Run(t.Context(), &stderr)
	if err == nil || !strings.Contains(err.Error(), "REDUCTO_API_KEY") {
		t.Errorf("missing key: %v", err)
	}
}

// TestWebhooksEndToEnd: jobs submitted through reducto.submit carry the bridge's webhook; the
// simulator delivers it when the job ends, and the bridge reports the job with one GET.
func TestWebhooksEndToEnd(t *testing.T) {
	secretKey := []byte("webhook-signing-key-0123456789ab")
	secret := "whsec_" + base64.StdEncoding.EncodeToString(secretKey)
	for _, mode := range []string{"direct", "svix"} {
		t.Run(mode, func(t *testing.T) {
			addr := natstest.FreeAddr(t)
			simOpts := reductosim.Options{Clock: reductosim.RealClock()}
			if mode == "svix" {
				simOpts.WebhookSecret = secret
				simOpts.SvixURL = "http://" + addr + "/webhooks/reducto"
			}
			h := newHarness(t, natstest.Options{}, simOpts)
			cfg := h.config()
			cfg.HTTPAddr = addr
			cfg.PublicURL = "http://" + addr
			cfg.WebhookToken = "hook-token"
			if mode == "svix" {
				cfg.WebhookSecret = config.Secret(secret)
			}
			h.start(cfg)
			var ids []string
			for i := range 5 {
				req := fmt.Sprintf(`{"endpoint":"parse","body":{"input":"https://x/%d.pdf"},"metadata":{"i":%d}}`, i, i)
				resp, err := h.nc.Request(subject.Submit("reducto"), []byte(req), 10*time.Second)
				if err != nil || resp.Header.Get(micro.ErrorCodeHeader) != "" {
					t.Fatalf("submit: %v %v", err, resp.Header)
				}
				var r struct {
					JobID string `json:"job_id"`
				}
				json.Unmarshal(resp.Data, &r)
				ids = append(ids, r.JobID)
			}
			// The simulator's default jobs take ~20s of real time: finish them now instead.
			for _, id := range ids {
				snap, ok := h.sim.Job(id)
				if !ok || snap.WebhookMode != mode {
					t.Fatalf("job %s webhook mode %q, want %s", id, snap.WebhookMode, mode)
				}
				h.sim.Cancel(id)
			}
			got := h.collect(ids...)
			// The simulator counts a delivery once the bridge's answer is back.
			natstest.WaitFor(t, func() bool { return h.sim.Stats().WebhooksDelivered == int64(len(ids)) })
			st := h.sim.Stats()
			for _, id := range ids {
				ev := decode(t, got[id])
				if ev.Kind != event.Cancelled || ev.Metadata == nil {
					t.Errorf("event %s %s metadata %s", id, ev.Kind, ev.Metadata)
				}
				if gets := st.Jobs[id].Gets; gets != 1 {
					t.Errorf("job %s cost %d GETs, want 1 (webhook, no polling)", id, gets)
				}
			}
			if st.WebhooksDelivered != int64(len(ids)) {
				t.Errorf("webhooks delivered = %d, want %d", st.WebhooksDelivered, len(ids))
			}
		})
	}
}

func TestPprof(t *testing.T) {
	h := newHarness(t, natstest.Options{}, reductosim.Options{})
	cfg := h.config()
	cfg.Pprof = true
	b := h.start(cfg)
	resp, err := http.Get("http://" + b.httpAddr.String() + "/debug/pprof/heap?debug=1")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != 200 || !strings.Contains(string(body), "heap profile") {
		t.Errorf("/debug/pprof/heap = %d %.100s", resp.StatusCode, body)
	}
}
