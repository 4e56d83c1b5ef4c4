package bridge

import (
	"context"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/micro"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/sdk/trace/tracetest"
	"go.opentelemetry.io/otel/trace"

	"github.com/reducto-bridge/reducto-bridge/internal/natstest"
	"github.com/reducto-bridge/reducto-bridge/reducto/reductosim"
	"github.com/reducto-bridge/reducto-bridge/subject"
	"github.com/reducto-bridge/reducto-bridge/tracing"
)

const (
	inTraceID = "4bf92f3577b34da6a3ce929d0e0e4736"
	inSpanID  = "00f067aa0ba902b7"
)

// seenRequest is one request the simulator got: its method, path and trace headers.
type seenRequest struct {
	method, path                     string
	traceparent, tracestate, baggage string
}

// recordingSim puts a handler recording every request's trace headers in front of the
// harness's simulator and returns its URL and the recorded requests.
func recordingSim(t *testing.T, h *harness) (string, func() []seenRequest) {
	var (
		mu   sync.Mutex
		seen []seenRequest
	)
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		mu.Lock()
		seen = append(seen, seenRequest{r.Method, r.URL.Path, r.Header.Get("traceparent"), r.Header.Get("tracestate"), r.Header.Get("baggage")})
		mu.Unlock()
		h.sim.ServeHTTP(w, r)
	}))
	t.Cleanup(srv.Close)
	return srv.URL, func() []seenRequest {
		mu.Lock()
		defer mu.Unlock()
		return append([]seenRequest(nil), seen...)
	}
}

// traceHeaders are the headers of a client whose span inSpanID of trace inTraceID sends.
func traceHeaders() nats.Header {
	return nats.Header{
		"traceparent": {"00-" + inTraceID + "-" + inSpanID + "-01"},
		"tracestate":  {"vendor=opaque"},
		"baggage":     {"tenant=acme"},
	}
}

// traceOf parses a traceparent header: trace id and parent (span) id.
func traceOf(t *testing.T, tp string) (traceID, spanID string) {
	t.Helper()
	p := strings.Split(tp, "-")
	if len(p) != 4 || len(p[1]) != 32 || len(p[2]) != 16 {
		t.Fatalf("traceparent %q is not W3C", tp)
	}
	return p[1], p[2]
}

// getJobs returns the recorded GET /job requests of job id.
func getJobs(seen []seenRequest, id string) []seenRequest {
	var out []seenRequest
	for _, r := range seen {
		if r.method == http.MethodGet && r.path == "/job/"+id {
			out = append(out, r)
		}
	}
	return out
}

// TestTraceContextFromTrackMessageToEvent: without OTEL variables (no span recorded), the
// track message's trace context reaches every GET /job of the job and the event's headers
// unchanged.
func TestTraceContextFromTrackMessageToEvent(t *testing.T) {
	t.Setenv(tracing.EnvEndpoint, "")
	t.Setenv(tracing.EnvTracesEndpoint, "")
	h := newHarness(t, natstest.Options{}, reductosim.Options{Clock: reductosim.RealClock()})
	url, seen := recordingSim(t, h)
	cfg := h.config()
	cfg.BaseURL = url
	b := h.start(cfg)
	if b.tracer.Enabled() {
		t.Fatal("tracing enabled without OTEL_EXPORTER_OTLP_* variables")
	}

	traced := h.sim.Create(reductosim.JobSpec{Duration: 200 * time.Millisecond, NumPages: 1})
	plain := h.sim.Create(reductosim.JobSpec{Duration: 200 * time.Millisecond, NumPages: 1})
	msg := &nats.Msg{Subject: subject.Track("reducto", traced), Header: traceHeaders(), Data: []byte(`{}`)}
	if _, err := h.js.PublishMsg(t.Context(), msg); err != nil {
		t.Fatal(err)
	}
	h.track(plain, "")
	got := h.collect(traced, plain)

	ev := got[traced]
	for k, v := range traceHeaders() {
		if ev.Header.Get(k) != v[0] {
			t.Errorf("event header %s = %q, want %q", k, ev.Header.Get(k), v[0])
		}
	}
	polls := getJobs(seen(), traced)
	if len(polls) == 0 {
		t.Fatal("the simulator saw no GET /job of the traced job")
	}
	for i, r := range polls {
		if r.traceparent != traceHeaders().Get("traceparent") || r.tracestate != "vendor=opaque" || r.baggage != "tenant=acme" {
			t.Errorf("GET /job %d of the traced job carried %+v", i, r)
		}
	}
	for _, k := range []string{"traceparent", "tracestate", "baggage"} {
		if v := got[plain].Header.Get(k); v != "" {
			t.Errorf("the untraced job's event has %s %q", k, v)
		}
	}
	for _, r := range getJobs(seen(), plain) {
		if r.traceparent != "" || r.baggage != "" {
			t.Errorf("a GET /job of the untraced job carried %+v", r)
		}
	}
}

// TestTraceSpansWithParents: with a tracer recording (as OTEL_EXPORTER_OTLP_ENDPOINT would
// make), each poll is a GET /job client span and the publish a producer span, both children of
// the track message's span; Reducto sees the poll span and the event names the publish span.
// No attribute or status carries a secret.
func TestTraceSpansWithParents(t *testing.T) {
	h := newHarness(t, natstest.Options{}, reductosim.Options{Clock: reductosim.RealClock()})
	url, seen := recordingSim(t, h)
	cfg := h.config()
	cfg.BaseURL = url
	cfg.WebhookToken = "hook-token-secret"
	rec := tracetest.NewSpanRecorder()
	tp := sdktrace.NewTracerProvider(sdktrace.WithSpanProcessor(rec))
	h.startTuned(cfg, func(b *Bridge) { b.tracer = tracing.New(tp) })

	id := h.sim.Create(reductosim.JobSpec{Duration: 200 * time.Millisecond, NumPages: 1})
	msg := &nats.Msg{Subject: subject.Track("reducto", id), Header: traceHeaders(), Data: []byte(`{"metadata":{"k":"v"}}`)}
	if _, err := h.js.PublishMsg(t.Context(), msg); err != nil {
		t.Fatal(err)
	}
	ev := h.collect(id)[id]
	natstest.WaitFor(t, func() bool {
		for _, s := range rec.Ended() {
			if s.Name() == spanPublish {
				return true
			}
		}
		return false
	})

	gets, publishes := map[string]sdktrace.ReadOnlySpan{}, map[string]sdktrace.ReadOnlySpan{}
	for _, s := range rec.Ended() {
		if s.SpanContext().TraceID().String() != inTraceID || s.Parent().SpanID().String() != inSpanID || !s.Parent().IsRemote() {
			t.Errorf("span %s: trace %s parent %s, want a child of %s/%s", s.Name(), s.SpanContext().TraceID(), s.Parent().SpanID(), inTraceID, inSpanID)
		}
		switch s.Name() {
		case spanGetJob:
			gets[s.SpanContext().SpanID().String()] = s
			if s.SpanKind() != trace.SpanKindClient {
				t.Errorf("GET /job span kind %v", s.SpanKind())
			}
		case spanPublish:
			publishes[s.SpanContext().SpanID().String()] = s
		}
		for _, a := range s.Attributes() {
			v := a.Value.Emit()
			if strings.Contains(v, testKey) || strings.Contains(v, "hook-token-secret") || strings.Contains(v, `"k"`) {
				t.Errorf("span %s attribute %s = %q carries a secret or metadata", s.Name(), a.Key, v)
			}
		}
		if strings.Contains(s.Status().Description, testKey) {
			t.Errorf("span %s status carries the API key", s.Name())
		}
	}
	polls := getJobs(seen(), id)
	if len(gets) != len(polls) || len(publishes) != 1 {
		t.Fatalf("%d GET /job spans for %d polls, %d publish spans, want one per poll and 1", len(gets), len(polls), len(publishes))
	}
	for _, r := range polls {
		tid, sid := traceOf(t, r.traceparent)
		if tid != inTraceID || gets[sid] == nil {
			t.Errorf("GET /job carried %q: not a GET /job span of the trace", r.traceparent)
		}
	}
	tid, sid := traceOf(t, ev.Header.Get("traceparent"))
	if tid != inTraceID || publishes[sid] == nil {
		t.Errorf("event traceparent %q does not name the publish span", ev.Header.Get("traceparent"))
	}
}

// TestTraceContextFromSubmitRequest: a P.submit request's trace context reaches Reducto's
// submit, the job's track message, its polls and its event.
func TestTraceContextFromSubmitRequest(t *testing.T) {
	h := newHarness(t, natstest.Options{}, reductosim.Options{
		Clock: reductosim.RealClock(),
		Spec: func(string, []byte) reductosim.JobSpec {
			return reductosim.JobSpec{Duration: 200 * time.Millisecond, NumPages: 1}
		},
	})
	url, seen := recordingSim(t, h)
	cfg := h.config()
	cfg.BaseURL = url
	h.start(cfg)

	req := &nats.Msg{Subject: subject.Submit("reducto"), Header: traceHeaders(), Data: []byte(`{"endpoint":"parse","body":{"input":"https://x/1.pdf"}}`)}
	ctx, cancel := context.WithTimeout(t.Context(), 10*time.Second)
	defer cancel()
	resp, err := h.nc.RequestMsgWithContext(ctx, req)
	if err != nil || resp.Header.Get(micro.ErrorCodeHeader) != "" {
		t.Fatalf("submit: %v %v", err, resp.Header)
	}
	var r struct {
		JobID string `json:"job_id"`
	}
	if err := json.Unmarshal(resp.Data, &r); err != nil {
		t.Fatal(err)
	}
	ev := h.collect(r.JobID)[r.JobID]
	want := traceHeaders().Get("traceparent")
	if got := ev.Header.Get("traceparent"); got != want {
		t.Errorf("event traceparent %q, want %q", got, want)
	}
	var submits int
	for _, s := range seen() {
		if s.method == http.MethodPost {
			submits++
			if s.traceparent != want || s.baggage != "tenant=acme" {
				t.Errorf("submit %s carried %+v", s.path, s)
			}
		}
	}
	polls := getJobs(seen(), r.JobID)
	if submits != 1 || len(polls) == 0 {
		t.Fatalf("%d submits, %d polls seen", submits, len(polls))
	}
	for _, p := range polls {
		if p.traceparent != want {
			t.Errorf("GET /job carried %q, want %q", p.traceparent, want)
		}
	}
}

// TestTraceContextFromCancelRequest: a P.cancel request's trace context reaches Reducto's
// GET /job and POST /cancel, and the cancelled event of the job the cancel tracked.
func TestTraceContextFromCancelRequest(t *testing.T) {
	h := newHarness(t, natstest.Options{}, reductosim.Options{Clock: reductosim.RealClock()})
	url, seen := recordingSim(t, h)
	cfg := h.config()
	cfg.BaseURL = url
	h.start(cfg)

	id := h.sim.Create(reductosim.JobSpec{Duration: time.Hour, NumPages: 1})
	req := &nats.Msg{Subject: subject.Cancel("reducto"), Header: traceHeaders(), Data: []byte(`{"job_id":"` + id + `"}`)}
	ctx, cancel := context.WithTimeout(t.Context(), 10*time.Second)
	defer cancel()
	resp, err := h.nc.RequestMsgWithContext(ctx, req)
	if err != nil || resp.Header.Get(micro.ErrorCodeHeader) != "" {
		t.Fatalf("cancel: %v %v", err, resp.Header)
	}
	ev := h.collect(id)[id]
	want := traceHeaders().Get("traceparent")
	if got := ev.Header.Get("traceparent"); got != want {
		t.Errorf("event traceparent %q, want %q", got, want)
	}
	var cancels int
	for _, s := range seen() {
		if s.path == "/cancel/"+id || s.path == "/job/"+id {
			cancels += map[bool]int{true: 1}[s.method == http.MethodPost]
			if s.traceparent != want || s.tracestate != "vendor=opaque" {
				t.Errorf("%s %s carried %+v", s.method, s.path, s)
			}
		}
	}
	if cancels != 1 {
		t.Errorf("%d POST /cancel seen, want 1", cancels)
	}
}

// TestRetrackedJobKeepsNewestTraceContext: a job tracked again with another trace context is
// polled, and reported, with the newest one.
func TestRetrackedJobKeepsNewestTraceContext(t *testing.T) {
	h := newHarness(t, natstest.Options{}, reductosim.Options{Clock: reductosim.RealClock()})
	url, seen := recordingSim(t, h)
	cfg := h.config()
	cfg.BaseURL = url
	h.start(cfg)

	id := h.sim.Create(reductosim.JobSpec{Duration: time.Hour, NumPages: 1})
	first, newest := traceHeaders(), nats.Header{"traceparent": {"00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01"}}
	polledWith := func(tp string) bool {
		for _, r := range getJobs(seen(), id) {
			if r.traceparent == tp {
				return true
			}
		}
		return false
	}
	for _, hd := range []nats.Header{first, newest} {
		if _, err := h.js.PublishMsg(t.Context(), &nats.Msg{Subject: subject.Track("reducto", id), Header: hd, Data: []byte(`{}`)}); err != nil {
			t.Fatal(err)
		}
		natstest.WaitFor(t, func() bool { return polledWith(hd.Get("traceparent")) })
	}
	h.sim.Cancel(id)
	ev := h.collect(id)[id]
	if got := ev.Header.Get("traceparent"); got != newest.Get("traceparent") {
		t.Errorf("event traceparent %q, want the newest track's %q", got, newest.Get("traceparent"))
	}
	if got := ev.Header.Get("baggage"); got != "" {
		t.Errorf("event baggage %q: the newest track message had none", got)
	}
}

// TestWebhookHintOfTracedJobCarriesContext: a webhook for a job tracked with a trace context
// makes its GET /job and event carry the track message's context.
func TestWebhookHintOfTracedJobCarriesContext(t *testing.T) {
	h := newHarness(t, natstest.Options{}, reductosim.Options{Clock: reductosim.RealClock()})
	url, seen := recordingSim(t, h)
	addr := natstest.FreeAddr(t)
	cfg := h.config()
	cfg.BaseURL = url
	cfg.HTTPAddr = addr
	cfg.PublicURL = "http://" + addr
	cfg.WebhookToken = "hook-token"
	h.start(cfg)

	id := h.sim.Create(reductosim.JobSpec{Duration: time.Hour, NumPages: 1})
	// webhook: true, so the schedule's first poll is BRIDGE_WEBHOOK_POLL_INTERVAL away.
	if _, err := h.js.PublishMsg(t.Context(), &nats.Msg{Subject: subject.Track("reducto", id), Header: traceHeaders(), Data: []byte(`{"webhook":true}`)}); err != nil {
		t.Fatal(err)
	}
	h.sim.Cancel(id)
	resp, err := http.Post("http://"+addr+"/webhooks/reducto?token=hook-token", "application/json", strings.NewReader(`{"job_id":"`+id+`","status":"Cancelled"}`))
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	ev := h.collect(id)[id]
	want := traceHeaders().Get("traceparent")
	if got := ev.Header.Get("traceparent"); got != want {
		t.Errorf("event traceparent %q, want %q", got, want)
	}
	polls := getJobs(seen(), id)
	if len(polls) != 1 || polls[0].traceparent != want {
		t.Errorf("GET /job requests %+v, want one carrying %q", polls, want)
	}
}
