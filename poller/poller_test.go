package poller_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/nats-io/nats-server/v2/server"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"go.uber.org/goleak"

	"github.com/reducto-bridge/reducto-bridge/event"
	"github.com/reducto-bridge/reducto-bridge/internal/natstest"
	"github.com/reducto-bridge/reducto-bridge/internal/reductotest"
	"github.com/reducto-bridge/reducto-bridge/poller"
	"github.com/reducto-bridge/reducto-bridge/publisher"
	"github.com/reducto-bridge/reducto-bridge/reducto"
	"github.com/reducto-bridge/reducto-bridge/subject"
	"github.com/reducto-bridge/reducto-bridge/track"
)

const prefix = "reducto"

// newJobs is the fake Reducto of these tests: a job without a script is not found, and every
// poll is signalled on Polled.
func newJobs() *reductotest.Jobs {
	return &reductotest.Jobs{
		Default: reductotest.Fail(&reducto.APIError{Op: "get job", StatusCode: 404, Message: "Job not found"}),
		Polled:  make(chan string, 1000),
	}
}

// env is a JetStream server, the streams, a real publisher and a subscription to every event.
type env struct {
	js     jetstream.JetStream
	pub    *publisher.Publisher
	queue  *track.Queue
	jobs   *reductotest.Jobs
	events chan *eventMsg
	opts   poller.Options
}

type eventMsg struct {
	subject string
	header  map[string][]string
	ev      *event.Event
}

func newEnv(t *testing.T, ackWait time.Duration) *env {
	t.Helper()
	return newEnvOn(t, natstest.RunServer(t), ackWait)
}

// newEnvOn is newEnv on a server the test started.
func newEnvOn(t *testing.T, s *server.Server, ackWait time.Duration) *env {
	t.Helper()
	nc, js := natstest.JetStream(t, s)
	ctx := t.Context()
	po := publisher.Options{Prefix: prefix, Source: "test", MaxAge: time.Hour, Duplicates: time.Minute}
	pub, err := publisher.Setup(ctx, js, po)
	if err != nil {
		t.Fatal(err)
	}
	queue, err := track.Setup(ctx, js, track.Options{Prefix: prefix, AckWait: ackWait})
	if err != nil {
		t.Fatal(err)
	}
	e := &env{js: js, pub: pub, queue: queue, jobs: newJobs(), events: make(chan *eventMsg, 100)}
	sub, err := nc.Subscribe(subject.EventsAll(prefix), func(m *nats.Msg) {
		ev, err := event.Decode(m.Data)
		if err != nil {
			t.Errorf("undecodable event on %s: %v", m.Subject, err)
			return
		}
		e.events <- &eventMsg{subject: m.Subject, header: m.Header, ev: ev}
	})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { sub.Unsubscribe() })
	e.opts = poller.Options{
		InitialInterval: 20 * time.Millisecond,
		MaxInterval:     100 * time.Millisecond,
		Multiplier:      2,
		JobTTL:          time.Hour,
		Concurrency:     4,
		DrainTimeout:    5 * time.Second,
		Logger:          slog.New(slog.DiscardHandler),
	}
	return e
}

// start runs a poller until the test ends (or the returned stop is called).
func (e *env) start(t *testing.T, jobs poller.JobGetter, events poller.EventPublisher) (stop func()) {
	_, stop = e.run(t, jobs, events)
	return stop
}

// run is start that also returns the poller.
func (e *env) run(t *testing.T, jobs poller.JobGetter, events poller.EventPublisher) (*poller.Poller, func()) {
	t.Helper()
	p, err := poller.New(e.queue, jobs, events, e.opts)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() {
		defer close(done)
		p.Run(ctx)
	}()
	var once sync.Once
	stop := func() {
		once.Do(func() {
			cancel()
			<-done
		})
	}
	t.Cleanup(stop)
	return p, stop
}

func (e *env) track(t *testing.T, id, body string) {
	t.Helper()
	if _, err := e.js.Publish(t.Context(), subject.Track(prefix, id), []byte(body)); err != nil {
		t.Fatalf("track %s: %v", id, err)
	}
}

// next waits for the next event.
func (e *env) next(t *testing.T) *eventMsg {
	t.Helper()
	select {
	case m := <-e.events:
		return m
	case <-time.After(10 * time.Second):
		t.Fatal("no event within 10s")
		return nil
	}
}

// quiet asserts that no further event arrives while the poller keeps working: it waits for
// the fake to be polled n more times (a signal, not a sleep), then checks the event channel.
func (e *env) quiet(t *testing.T, id string, n int) {
	t.Helper()
	target := e.jobs.Polls(id) + n
	deadline := time.After(10 * time.Second)
	for e.jobs.Polls(id) < target {
		select {
		case <-e.jobs.Polled:
		case m := <-e.events:
			t.Fatalf("unexpected event %s", m.subject)
		case <-deadline:
			t.Fatalf("job %s polled %d times, want %d", id, e.jobs.Polls(id), target)
		}
	}
	select {
	case m := <-e.events:
		t.Fatalf("unexpected event %s", m.subject)
	default:
	}
}

// storedEvents counts the events the stream holds for a job.
func (e *env) storedEvents(t *testing.T, id string) uint64 {
	t.Helper()
	s, err := e.js.Stream(t.Context(), subject.EventsStream)
	if err != nil {
		t.Fatal(err)
	}
	info, err := s.Info(t.Context(), jetstream.WithSubjectFilter(subject.JobEvents(prefix, id)))
	if err != nil {
		t.Fatal(err)
	}
	var n uint64
	for _, c := range info.State.Subjects {
		n += c
	}
	return n
}

func TestTerminalOutcomes(t *testing.T) {
	e := newEnv(t, 30*time.Second)
	result := json.RawMessage(`{"job_id":"j","usage":{"num_pages":7},"result":{"type":"full","chunks":[{"content":"x"}]}}`)
	tests := []struct {
		name    string
		answers []reductotest.Answer
		body    string
		kind    event.Kind
		check   func(t *testing.T, m *eventMsg)
	}{
		{
			name: "completed",
			answers: []reductotest.Answer{reductotest.Status("Pending"), reductotest.Status("Idle"), {Job: &reducto.Job{
				Status: "Completed", Type: "Parse", Progress: new(float64(100)), Duration: new(12.4), NumPages: new(7), Result: result,
			}}},
			body: `{"metadata":{"tenant":"acme","ids":[1,2]}}`,
			kind: event.Completed,
			check: func(t *testing.T, m *eventMsg) {
				if string(m.ev.Result) != string(result) {
					t.Errorf("result = %s, want verbatim %s", m.ev.Result, result)
				}
				if string(m.ev.Metadata) != `{"tenant":"acme","ids":[1,2]}` {
					t.Errorf("metadata = %s", m.ev.Metadata)
				}
				if m.ev.Status != "Completed" || m.ev.Type != "Parse" || *m.ev.NumPages != 7 || *m.ev.Duration != 12.4 || *m.ev.Progress != 100 {
					t.Errorf("passthrough fields wrong: %+v", m.ev)
				}
				if m.ev.Polls != 3 {
					t.Errorf("polls = %d, want 3", m.ev.Polls)
				}
				if m.ev.TrackedAt.IsZero() || !m.ev.ObservedAt.After(m.ev.TrackedAt) {
					t.Errorf("tracked_at %v, observed_at %v", m.ev.TrackedAt, m.ev.ObservedAt)
				}
			},
		},
		{
			name: "failed",
			answers: []reductotest.Answer{{Job: &reducto.Job{Status: "Failed", Reason: "corrupt",
				Error: &reducto.JobError{Code: 400, Name: "DOCUMENT_CORRUPT", Message: "could not open"}}}},
			kind: event.Failed,
			check: func(t *testing.T, m *eventMsg) {
				if m.ev.Error == nil || m.ev.Error.Name != "DOCUMENT_CORRUPT" || m.ev.Error.Code != 400 || m.ev.Reason != "corrupt" {
					t.Errorf("error = %+v reason %q", m.ev.Error, m.ev.Reason)
				}
				if m.ev.Metadata != nil {
					t.Errorf("metadata = %s, want none", m.ev.Metadata)
				}
			},
		},
		{name: "cancelled status", answers: []reductotest.Answer{reductotest.Status("Cancelled")}, kind: event.Cancelled},
		{
			name:    "cancelled as failed",
			answers: []reductotest.Answer{reductotest.Status("InProgress"), {Job: &reducto.Job{Status: "Failed", Error: &reducto.JobError{Name: "JOB_CANCELLED"}}}},
			kind:    event.Cancelled,
		},
		{
			name:    "not found confirmed twice",
			answers: []reductotest.Answer{{Err: &reducto.APIError{StatusCode: 404, Message: "Job not found"}}},
			kind:    event.Failed,
			check: func(t *testing.T, m *eventMsg) {
				if m.ev.Error == nil || m.ev.Error.Name != "NOT_FOUND" || m.ev.Error.Code != 404 {
					t.Errorf("error = %+v, want NOT_FOUND 404", m.ev.Error)
				}
				if m.ev.Polls != 2 {
					t.Errorf("polls = %d, want 2 (confirmed on the second)", m.ev.Polls)
				}
			},
		},
		{
			name:    "deleted: 409 then 410",
			answers: []reductotest.Answer{{Err: &reducto.APIError{StatusCode: 409}}, {Err: &reducto.APIError{StatusCode: 410}}},
			kind:    event.Failed,
			check: func(t *testing.T, m *eventMsg) {
				if m.ev.Error == nil || m.ev.Error.Name != "JOB_DELETED" || m.ev.Error.Code != 410 {
					t.Errorf("error = %+v, want JOB_DELETED 410", m.ev.Error)
				}
			},
		},
		{
			name:    "one 404 then found",
			answers: []reductotest.Answer{{Err: &reducto.APIError{StatusCode: 404}}, reductotest.Status("Pending"), reductotest.Status("Completed")},
			kind:    event.Completed,
		},
		{
			name: "transient errors then completed",
			answers: []reductotest.Answer{
				{Err: &reducto.APIError{StatusCode: 503}},
				{Err: &reducto.APIError{StatusCode: 429, RateLimitCode: 2000}},
				{Err: fmt.Errorf("get job: %w", reducto.ErrMalformedResponse)},
				{Err: &reducto.APIError{StatusCode: 500}}, // a 5xx says nothing about the job
				reductotest.Status("Completed"),
			},
			kind: event.Completed,
		},
		{
			name: "500s in a row never fail the job",
			answers: []reductotest.Answer{
				{Err: &reducto.APIError{StatusCode: 500}},
				{Err: &reducto.APIError{StatusCode: 500}},
				{Err: &reducto.APIError{StatusCode: 500}},
				{Err: &reducto.APIError{StatusCode: 500}},
				reductotest.Status("Completed"),
			},
			kind: event.Completed,
		},
		{
			name: "404 flapping with Pending never fails the job",
			answers: []reductotest.Answer{
				{Err: &reducto.APIError{StatusCode: 404}}, reductotest.Status("Pending"),
				{Err: &reducto.APIError{StatusCode: 404}}, reductotest.Status("Pending"),
				{Err: &reducto.APIError{StatusCode: 404}}, reductotest.Status("Completed"),
			},
			kind: event.Completed,
		},
		{
			name: "permanent errors not in a row do not fail the job",
			answers: []reductotest.Answer{
				{Err: &reducto.APIError{StatusCode: 500}},
				{Err: &reducto.APIError{StatusCode: 503}},
				{Err: &reducto.APIError{StatusCode: 500}},
				reductotest.Status("Completed"),
			},
			kind: event.Completed,
		},
		{
			name:    "permanent error confirmed",
			answers: []reductotest.Answer{{Err: &reducto.APIError{StatusCode: 422, Message: "bad id"}}},
			kind:    event.Failed,
			check: func(t *testing.T, m *eventMsg) {
				if m.ev.Error == nil || m.ev.Error.Name != "HTTP_422" || m.ev.Error.Message != "bad id" {
					t.Errorf("error = %+v", m.ev.Error)
				}
			},
		},
		{
			name:    "malformed body still tracks",
			answers: []reductotest.Answer{reductotest.Status("Completed")},
			body:    `{"metadata": not json`,
			kind:    event.Completed,
			check: func(t *testing.T, m *eventMsg) {
				if m.ev.Metadata != nil {
					t.Errorf("metadata = %s, want none", m.ev.Metadata)
				}
			},
		},
		{name: "body not an object", answers: []reductotest.Answer{reductotest.Status("Completed")}, body: `[1,2]`, kind: event.Completed},
		{name: "unknown keys ignored", answers: []reductotest.Answer{reductotest.Status("Completed")}, body: `{"priority":1,"metadata":"m"}`, kind: event.Completed},
	}
	e.start(t, e.jobs, e.pub)
	for i, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			id := fmt.Sprintf("job-%d", i)
			e.jobs.Script(id, tt.answers...)
			e.track(t, id, tt.body)
			m := e.next(t)
			if want := subject.Event(prefix, string(tt.kind), id); m.subject != want {
				t.Fatalf("event subject = %s, want %s", m.subject, want)
			}
			if m.ev.JobID != id || m.ev.Kind != tt.kind {
				t.Errorf("event job %s kind %s", m.ev.JobID, m.ev.Kind)
			}
			if got := m.header["Nats-Msg-Id"]; len(got) != 1 || got[0] != id+":"+string(tt.kind) {
				t.Errorf("Nats-Msg-Id = %v", got)
			}
			if tt.check != nil {
				tt.check(t, m)
			}
			// A core subscriber may see the event before the stream has stored it.
			natstest.WaitFor(t, func() bool { return e.storedEvents(t, id) >= 1 })
			if n := e.storedEvents(t, id); n != 1 {
				t.Errorf("stream holds %d events for %s, want 1", n, id)
			}
		})
	}
}

func TestUnauthorizedNeverFailsJobs(t *testing.T) {
	e := newEnv(t, 30*time.Second)
	e.jobs.Script("j", reductotest.Answer{Err: &reducto.APIError{StatusCode: 401}})
	e.opts.MaxInterval = 20 * time.Millisecond
	e.start(t, e.jobs, e.pub)
	e.track(t, "j", "")
	e.quiet(t, "j", 4)
	// Fixing the key lets the job finish.
	e.jobs.Script("j", reductotest.Status("Completed"))
	if m := e.next(t); m.ev.Kind != event.Completed {
		t.Errorf("kind = %s, want completed", m.ev.Kind)
	}
}

func TestExpired(t *testing.T) {
	e := newEnv(t, 30*time.Second)
	e.opts.JobTTL = 150 * time.Millisecond
	e.jobs.Script("slow", reductotest.Answer{Job: &reducto.Job{Status: "InProgress", Progress: new(float64(40)), Type: "Parse"}})
	e.jobs.Script("erroring", reductotest.Answer{Err: &reducto.APIError{StatusCode: 503}})
	e.start(t, e.jobs, e.pub)
	e.track(t, "slow", `{"metadata":{"k":1}}`)
	m := e.next(t)
	if m.subject != "reducto.job.expired.slow" || m.ev.Status != "InProgress" || *m.ev.Progress != 40 || string(m.ev.Metadata) != `{"k":1}` {
		t.Errorf("expired event %s: %+v", m.subject, m.ev)
	}
	if age := m.ev.ObservedAt.Sub(m.ev.TrackedAt); age < 150*time.Millisecond {
		t.Errorf("expired after %v, want >= TTL 150ms", age)
	}
	e.track(t, "erroring", "")
	if m := e.next(t); m.subject != "reducto.job.expired.erroring" {
		t.Errorf("subject = %s, want expired for a job whose polls keep failing", m.subject)
	}
}

func TestTrackTwiceAndAfterReport(t *testing.T) {
	e := newEnv(t, 30*time.Second)
	e.jobs.Script("dup", reductotest.Status("Pending"))
	e.start(t, e.jobs, e.pub)
	// Track three times while outstanding: the stream keeps one message per job.
	for range 3 {
		e.track(t, "dup", `{"metadata":"latest"}`)
	}
	e.quiet(t, "dup", 2)
	s, _ := e.js.Stream(t.Context(), subject.TrackStream)
	info, _ := s.Info(t.Context())
	if info.State.Msgs != 1 {
		t.Errorf("track stream holds %d messages, want 1", info.State.Msgs)
	}
	e.jobs.Script("dup", reductotest.Status("Completed"))
	if m := e.next(t); m.ev.Kind != event.Completed || string(m.ev.Metadata) != `"latest"` {
		t.Errorf("event %s metadata %s", m.ev.Kind, m.ev.Metadata)
	}
	// Tracking a job already reported costs no Reducto request and publishes nothing. A core
	// subscriber can see the event before the stream has stored it: wait for the store, or
	// the re-track may be admitted before the event can be looked up.
	natstest.WaitFor(t, func() bool { return e.storedEvents(t, "dup") == 1 })
	before := e.jobs.Polls("dup")
	e.track(t, "dup", "")
	natstest.WaitFor(t, func() bool { return trackPending(t, e) == 0 })
	if got := e.jobs.Polls("dup"); got != before {
		t.Errorf("re-track after report polled Reducto %d times, want 0", got-before)
	}
	if n := e.storedEvents(t, "dup"); n != 1 {
		t.Errorf("stream holds %d events, want 1", n)
	}
	select {
	case m := <-e.events:
		t.Errorf("second event %s", m.subject)
	default:
	}
}

func TestInvalidSubjectIsDropped(t *testing.T) {
	e := newEnv(t, 30*time.Second)
	e.start(t, e.jobs, e.pub)
	long := strings.Repeat("x", 300)
	e.track(t, long, "")
	e.jobs.Script("ok", reductotest.Status("Completed"))
	e.track(t, "ok", "")
	if m := e.next(t); m.ev.JobID != "ok" {
		t.Errorf("event for %s", m.ev.JobID)
	}
	natstest.WaitFor(t, func() bool { return trackPending(t, e) == 0 })
	if e.jobs.Polls(long) != 0 {
		t.Error("polled a job id that is not a valid token")
	}
}

func TestBackoffSpacing(t *testing.T) {
	e := newEnv(t, 30*time.Second)
	e.opts.InitialInterval = 40 * time.Millisecond
	e.opts.MaxInterval = 160 * time.Millisecond
	e.opts.Multiplier = 2
	e.jobs.Script("b", reductotest.Status("Pending"), reductotest.Status("Pending"), reductotest.Status("Pending"), reductotest.Status("Pending"), reductotest.Status("Pending"), reductotest.Status("Completed"))
	tracked := time.Now()
	e.start(t, e.jobs, e.pub)
	e.track(t, "b", "")
	e.next(t)
	calls := e.jobs.PollTimes("b")
	if len(calls) != 6 {
		t.Fatalf("polls = %d, want 6", len(calls))
	}
	// Lower bounds only: a loaded machine may be late, never early.
	want := []time.Duration{40, 80, 160, 160, 160, 160}
	prev := tracked
	for i, c := range calls {
		if gap := c.Sub(prev); gap < want[i]*time.Millisecond*9/10 {
			t.Errorf("poll %d came %v after the previous, want >= %dms", i+1, gap, want[i])
		}
		prev = c
	}
}

// crashingPublisher publishes, then fails the first publish as if the process died before it
// could ack: the event is in the stream, the track message is not acked.
type crashingPublisher struct {
	poller.EventPublisher
	mu      sync.Mutex
	crashed bool
}

func (c *crashingPublisher) Publish(ctx context.Context, ev *event.Event) (publisher.Result, error) {
	out, err := c.EventPublisher.Publish(ctx, ev)
	c.mu.Lock()
	defer c.mu.Unlock()
	if err == nil && !c.crashed {
		c.crashed = true
		return out, errors.New("simulated crash after publish")
	}
	return out, err
}

func TestPublishedButNotAckedYieldsOneEvent(t *testing.T) {
	e := newEnv(t, 30*time.Second)
	e.jobs.Script("c", reductotest.Status("Completed"))
	e.start(t, e.jobs, &crashingPublisher{EventPublisher: e.pub})
	e.track(t, "c", "")
	e.next(t)
	natstest.WaitFor(t, func() bool { return trackPending(t, e) == 0 })
	if n := e.storedEvents(t, "c"); n != 1 {
		t.Errorf("stream holds %d events, want 1", n)
	}
	if got := e.jobs.Polls("c"); got != 2 {
		t.Errorf("polls = %d, want 2 (the retry re-polled and found the event published)", got)
	}
}

// TestStopBetweenPublishAndAck stops a poller whose publish landed but whose ack never
// happened, starts a new one, and checks that no second event appears.
func TestStopBetweenPublishAndAck(t *testing.T) {
	e := newEnv(t, time.Second) // AckWait 1s: the unacked message comes back quickly
	e.jobs.Script("s", reductotest.Status("Completed"))
	published := make(chan struct{})
	release := make(chan struct{})
	hang := &hangingPublisher{EventPublisher: e.pub, published: published, release: release}
	e.opts.DrainTimeout = 50 * time.Millisecond
	stop := e.start(t, e.jobs, hang)
	e.track(t, "s", "")
	<-published
	e.next(t)
	// Stop: the drain timeout cancels the in-flight handler before it acks.
	stopped := make(chan struct{})
	go func() { stop(); close(stopped) }()
	<-stopped
	close(release)
	e.start(t, e.jobs, e.pub)
	natstest.WaitFor(t, func() bool { return trackPending(t, e) == 0 })
	if n := e.storedEvents(t, "s"); n != 1 {
		t.Errorf("stream holds %d events, want 1", n)
	}
	if got := e.jobs.Polls("s"); got < 2 {
		t.Errorf("polls = %d, want the restarted poller to have re-polled", got)
	}
}

// hangingPublisher publishes, signals, then blocks until its context ends (the drain timeout).
type hangingPublisher struct {
	poller.EventPublisher
	once      sync.Once
	published chan struct{}
	release   chan struct{}
}

func (h *hangingPublisher) Publish(ctx context.Context, ev *event.Event) (publisher.Result, error) {
	out, err := h.EventPublisher.Publish(ctx, ev)
	first := false
	h.once.Do(func() { first = true })
	if first {
		close(h.published)
		<-ctx.Done()
		return out, ctx.Err()
	}
	return out, err
}

func TestRunLeaksNothing(t *testing.T) {
	e := newEnv(t, 30*time.Second)
	for i := range 20 {
		e.jobs.Script(fmt.Sprint("g", i), reductotest.Status("Pending"))
		e.track(t, fmt.Sprint("g", i), "")
	}
	// The server and connections belong to the test; only the poller's goroutines must go.
	baseline := goleak.IgnoreCurrent()
	stop := e.start(t, e.jobs, e.pub)
	for range 20 {
		<-e.jobs.Polled
	}
	stop()
	goleak.VerifyNone(t, baseline)
}

// blockingJobs holds every poll until its context ends, so jobs stay in flight.
type blockingJobs struct{ started chan string }

func (b *blockingJobs) GetJob(ctx context.Context, id string) (*reducto.Job, error) {
	b.started <- id
	<-ctx.Done()
	return nil, ctx.Err()
}

func TestShutdownHandsBackJobs(t *testing.T) {
	e := newEnv(t, time.Hour) // a job not handed back would wait an hour
	e.opts.Concurrency = 1    // one job in flight, one buffered by the iterator
	e.opts.InitialInterval = time.Millisecond
	e.opts.DrainTimeout = 50 * time.Millisecond
	blocking := &blockingJobs{started: make(chan string, 10)}
	stop := e.start(t, blocking, e.pub)
	e.track(t, "h1", "")
	e.track(t, "h2", "")
	<-blocking.started // one poll is in flight, the other job waits in the buffer
	stop()
	e.jobs.Script("h1", reductotest.Status("Completed"))
	e.jobs.Script("h2", reductotest.Status("Completed"))
	e.start(t, e.jobs, e.pub)
	got := map[string]bool{e.next(t).ev.JobID: true, e.next(t).ev.JobID: true}
	if !got["h1"] || !got["h2"] {
		t.Errorf("events for %v, want h1 and h2", got)
	}
}

func trackPending(t *testing.T, e *env) uint64 {
	s, err := e.js.Stream(t.Context(), subject.TrackStream)
	if err != nil {
		t.Fatal(err)
	}
	info, err := s.Info(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	return info.State.Msgs
}

// refusingPublisher fails every publish while refusing is set, like a full events stream.
type refusingPublisher struct {
	poller.EventPublisher
	mu       sync.Mutex
	refusing bool
	refused  int
}

func (r *refusingPublisher) Publish(ctx context.Context, ev *event.Event) (publisher.Result, error) {
	r.mu.Lock()
	refusing := r.refusing
	if refusing {
		r.refused++
	}
	r.mu.Unlock()
	if refusing {
		return publisher.Result{}, fmt.Errorf("publish: %w", publisher.ErrStreamFull)
	}
	return r.EventPublisher.Publish(ctx, ev)
}

func (r *refusingPublisher) set(refusing bool) {
	r.mu.Lock()
	r.refusing = refusing
	r.mu.Unlock()
}

func (r *refusingPublisher) count() int {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.refused
}

// TestBackPressurePausesPolls: while events cannot be published, the poller stops taking jobs
// (instead of re-polling finished jobs every few milliseconds), and resumes afterwards.
func TestBackPressurePausesPolls(t *testing.T) {
	e := newEnv(t, 30*time.Second)
	e.opts.Concurrency = 2
	e.opts.InitialInterval = 5 * time.Millisecond
	e.opts.MaxInterval = 5 * time.Millisecond
	ids := make([]string, 10)
	for i := range ids {
		ids[i] = fmt.Sprint("bp", i)
		e.jobs.Script(ids[i], reductotest.Status("Completed"))
	}
	rp := &refusingPublisher{EventPublisher: e.pub, refusing: true}
	p, _ := e.run(t, e.jobs, rp)
	start := time.Now()
	for _, id := range ids {
		e.track(t, id, "")
	}
	// Pauses of 0.5s, 1s, 2s: by the third refusal 1.5s have passed.
	natstest.WaitFor(t, func() bool { return rp.count() >= 3*e.opts.Concurrency })
	elapsed := time.Since(start)
	polls := 0
	for _, id := range ids {
		polls += e.jobs.Polls(id)
	}
	// Without the pause, 10 finished jobs re-polled every ~5ms would make hundreds of polls.
	if max := 4 * e.opts.Concurrency * 2; polls > max {
		t.Errorf("%d polls in %v while publishing failed, want at most %d", polls, elapsed, max)
	}
	if elapsed < 500*time.Millisecond {
		t.Errorf("three rounds of refusals within %v: no pause", elapsed)
	}
	if since, err, failing := p.PublishFailing(); !failing || since.IsZero() || !errors.Is(err, publisher.ErrStreamFull) {
		t.Errorf("PublishFailing = %v, %v, %v while publishes are refused", since, err, failing)
	}
	rp.set(false)
	got := map[string]bool{}
	for range ids {
		got[e.next(t).ev.JobID] = true
	}
	if len(got) != len(ids) {
		t.Errorf("events for %d jobs after recovery, want %d", len(got), len(ids))
	}
	if _, _, failing := p.PublishFailing(); failing {
		t.Error("PublishFailing still true after publishes succeeded")
	}
}
