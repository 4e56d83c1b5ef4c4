package publisher_test

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/reducto-bridge/reducto-bridge/event"
	"github.com/reducto-bridge/reducto-bridge/internal/natstest"
	"github.com/reducto-bridge/reducto-bridge/publisher"
	"github.com/reducto-bridge/reducto-bridge/subject"
)

const prefix = "reducto"

// env is one embedded server with the streams set up and a Publisher on them.
type env struct {
	nc  *nats.Conn
	js  jetstream.JetStream
	pub *publisher.Publisher
	log *logRecorder
}

func newEnv(t *testing.T, sopts natstest.Options, o publisher.Options) *env {
	t.Helper()
	s := natstest.RunServer(t, sopts)
	nc, js := natstest.JetStream(t, s)
	rec := &logRecorder{}
	o.Logger = slog.New(rec)
	pub, err := publisher.Setup(t.Context(), js, o)
	if err != nil {
		t.Fatalf("setup: %v", err)
	}
	return &env{nc: nc, js: js, pub: pub, log: rec}
}

// count is the number of events the stream holds for a job.
func (e *env) count(t *testing.T, jobID string) uint64 {
	t.Helper()
	st, err := e.js.Stream(t.Context(), subject.EventsStream)
	if err != nil {
		t.Fatalf("stream: %v", err)
	}
	info, err := st.Info(t.Context(), jetstream.WithSubjectFilter(subject.JobEvents(prefix, jobID)))
	if err != nil {
		t.Fatalf("stream info: %v", err)
	}
	var n uint64
	for _, c := range info.State.Subjects {
		n += c
	}
	return n
}

// stored returns the stream's message at seq.
func (e *env) stored(t *testing.T, seq uint64) *jetstream.RawStreamMsg {
	t.Helper()
	st, err := e.js.Stream(t.Context(), subject.EventsStream)
	if err != nil {
		t.Fatalf("stream: %v", err)
	}
	m, err := st.GetMsg(t.Context(), seq)
	if err != nil {
		t.Fatalf("get msg %d: %v", seq, err)
	}
	return m
}

// logRecorder is a slog.Handler that keeps the level and message of every record.
type logRecorder struct {
	mu   sync.Mutex
	recs []string
}

func (r *logRecorder) Enabled(context.Context, slog.Level) bool { return true }
func (r *logRecorder) WithAttrs([]slog.Attr) slog.Handler       { return r }
func (r *logRecorder) WithGroup(string) slog.Handler            { return r }
func (r *logRecorder) Handle(_ context.Context, rec slog.Record) error {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.recs = append(r.recs, rec.Level.String()+" "+rec.Message)
	return nil
}

func (r *logRecorder) has(line string) bool {
	r.mu.Lock()
	defer r.mu.Unlock()
	for _, l := range r.recs {
		if l == line {
			return true
		}
	}
	return false
}

var (
	observed = time.Date(2026, 11, 29, 14, 0, 13, 456_000_000, time.UTC)
	tracked  = time.Date(2026, 11, 29, 14, 0, 0, 123_000_000, time.UTC)
)

func TestSetup(t *testing.T) {
	s := natstest.RunServer(t)
	_, js := natstest.JetStream(t, s)
	ctx := t.Context()

	// A stream made by hand with other settings converges to the explicit ones.
	if _, err := js.CreateStream(ctx, jetstream.StreamConfig{
		Name: subject.EventsStream, Subjects: []string{"other.>"}, MaxAge: time.Hour, DenyPurge: true,
	}); err != nil {
		t.Fatalf("create stream: %v", err)
	}
	o := publisher.Options{Prefix: "acme.reducto", MaxAge: 48 * time.Hour, Duplicates: 5 * time.Minute}
	for i := range 2 { // idempotent
		if _, err := publisher.Setup(ctx, js, o); err != nil {
			t.Fatalf("setup #%d: %v", i+1, err)
		}
	}

	st, err := js.Stream(ctx, subject.EventsStream)
	if err != nil {
		t.Fatalf("stream: %v", err)
	}
	cfg := st.CachedInfo().Config
	checks := []struct {
		name      string
		got, want any
	}{
		{"subjects (the four kinds only)", strings.Join(cfg.Subjects, ","), "acme.reducto.job.completed.*,acme.reducto.job.failed.*,acme.reducto.job.cancelled.*,acme.reducto.job.expired.*"},
		{"retention", cfg.Retention, jetstream.LimitsPolicy},
		{"storage", cfg.Storage, jetstream.FileStorage},
		{"replicas", cfg.Replicas, 1},
		{"max age", cfg.MaxAge, 48 * time.Hour},
		{"duplicates", cfg.Duplicates, 5 * time.Minute},
		{"discard", cfg.Discard, jetstream.DiscardNew},
		{"max bytes", cfg.MaxBytes, int64(-1)},
		{"max msgs", cfg.MaxMsgs, int64(-1)},
		{"allow direct", cfg.AllowDirect, true},
		{"deny delete", cfg.DenyDelete, false},
		{"deny purge (operator's choice kept)", cfg.DenyPurge, true},
	}
	for _, c := range checks {
		if c.got != c.want {
			t.Errorf("stream %s: got %v, want %v", c.name, c.got, c.want)
		}
	}

	obs, err := js.ObjectStore(ctx, subject.ResultsBucket)
	if err != nil {
		t.Fatalf("object store: %v", err)
	}
	status, err := obs.Status(ctx)
	if err != nil {
		t.Fatalf("object store status: %v", err)
	}
	if got, want := status.TTL(), 49*time.Hour; got != want {
		t.Errorf("results TTL: got %v, want %v (events max age + 1h)", got, want)
	}
	if got, want := status.Storage(), jetstream.FileStorage; got != want {
		t.Errorf("results storage: got %v, want %v", got, want)
	}
	if got, want := status.Replicas(), 1; got != want {
		t.Errorf("results replicas: got %v, want %v", got, want)
	}
}

// TestSetupKeepsHandEditedLimits: an operator's `nats stream edit --max-bytes --max-msgs`
// survives the bridge's next start.
func TestSetupKeepsHandEditedLimits(t *testing.T) {
	ctx := t.Context()
	_, js := natstest.JetStream(t, natstest.RunServer(t))
	if _, err := publisher.Setup(ctx, js, publisher.Options{}); err != nil {
		t.Fatal(err)
	}
	st, err := js.Stream(ctx, subject.EventsStream)
	if err != nil {
		t.Fatal(err)
	}
	edited := st.CachedInfo().Config
	edited.MaxBytes, edited.MaxMsgs = 64<<20, 100_000
	if _, err := js.UpdateStream(ctx, edited); err != nil {
		t.Fatal(err)
	}
	if _, err := publisher.Setup(ctx, js, publisher.Options{}); err != nil {
		t.Fatal(err)
	}
	info, err := st.Info(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if c := info.Config; c.MaxBytes != 64<<20 || c.MaxMsgs != 100_000 {
		t.Errorf("after a restart: MaxBytes %d MaxMsgs %d, want the operator's 64 MiB and 100000", c.MaxBytes, c.MaxMsgs)
	}
}

func TestSetupDefaults(t *testing.T) {
	s := natstest.RunServer(t)
	_, js := natstest.JetStream(t, s)
	if _, err := publisher.Setup(t.Context(), js, publisher.Options{}); err != nil {
		t.Fatalf("setup: %v", err)
	}
	st, err := js.Stream(t.Context(), subject.EventsStream)
	if err != nil {
		t.Fatalf("stream: %v", err)
	}
	cfg := st.CachedInfo().Config
	if got, want := strings.Join(cfg.Subjects, " "), "reducto.job.completed.* reducto.job.failed.* reducto.job.cancelled.* reducto.job.expired.*"; got != want {
		t.Errorf("subjects: got %v, want %v", got, want)
	}
	if cfg.MaxAge != publisher.DefaultMaxAge || cfg.Duplicates != publisher.DefaultDuplicates {
		t.Errorf("max age, duplicates: got %v, %v, want %v, %v", cfg.MaxAge, cfg.Duplicates, publisher.DefaultMaxAge, publisher.DefaultDuplicates)
	}
}

func TestOptionsInvalid(t *testing.T) {
	s := natstest.RunServer(t)
	_, js := natstest.JetStream(t, s)
	tests := []struct {
		name string
		o    publisher.Options
	}{
		{"prefix with space", publisher.Options{Prefix: "a b"}},
		{"prefix wildcard", publisher.Options{Prefix: "a.*"}},
		{"replicas 6", publisher.Options{Replicas: 6}},
		{"negative replicas", publisher.Options{Replicas: -1}},
		{"duplicates above max age", publisher.Options{MaxAge: time.Minute, Duplicates: time.Hour}},
		{"duplicates below 100ms", publisher.Options{Duplicates: 10 * time.Millisecond}},
		{"negative max age", publisher.Options{MaxAge: -time.Hour}},
		{"negative max bytes", publisher.Options{MaxBytes: -5}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if _, err := publisher.Setup(t.Context(), js, tt.o); !errors.Is(err, publisher.ErrInvalidOptions) {
				t.Errorf("setup: got %v, want ErrInvalidOptions", err)
			}
		})
	}
	if _, err := publisher.Setup(t.Context(), unconnected{js}, publisher.Options{}); !errors.Is(err, publisher.ErrInvalidOptions) {
		t.Errorf("setup with max payload 0: got %v, want ErrInvalidOptions", err)
	}
}

// unconnected reports a connection that has not learnt the server's max payload yet.
type unconnected struct{ publisher.JetStream }

func (unconnected) Conn() *nats.Conn { return new(nats.Conn) }

func TestPublishMessage(t *testing.T) {
	e := newEnv(t, natstest.Options{}, publisher.Options{Prefix: prefix})
	tests := []struct {
		name     string
		ev       event.Event
		wantSubj string
		wantBody string
	}{
		{
			name: "every field",
			ev: event.Event{
				JobID: "204a39e4-dd10-4c83-a978-0cee4af8cde2", Kind: event.Completed,
				Status: "Completed", Type: "Parse", Reason: "done",
				Error:    &event.ErrorInfo{Code: 400, Name: "DOCUMENT_CORRUPT", Message: "bad pdf"},
				Result:   json.RawMessage(`{"type":"full","chunks":[]}`),
				Metadata: json.RawMessage(`{"tenant":"t1"}`),
				Progress: new(100.0), Duration: new(12.4), NumPages: new(7),
				TrackedAt: tracked, ObservedAt: observed, Polls: 4,
			},
			wantSubj: "reducto.job.completed.204a39e4-dd10-4c83-a978-0cee4af8cde2",
			wantBody: `{"job_id":"204a39e4-dd10-4c83-a978-0cee4af8cde2","kind":"completed","status":"Completed",` +
				`"type":"Parse","reason":"done","error":{"code":400,"name":"DOCUMENT_CORRUPT","message":"bad pdf"},` +
				`"result":{"type":"full","chunks":[]},"metadata":{"tenant":"t1"},"progress":100,"duration":12.4,` +
				`"num_pages":7,"tracked_at":"2026-11-29T14:00:00.123Z","observed_at":"2026-11-29T14:00:13.456Z","polls":4}`,
		},
		{
			name:     "unknowns absent, null metadata dropped, zero progress kept",
			ev:       event.Event{JobID: "j-min", Kind: event.Expired, Metadata: json.RawMessage(" null "), Progress: new(0.0), ObservedAt: observed.In(time.FixedZone("CET", 3600))},
			wantSubj: "reducto.job.expired.j-min",
			wantBody: `{"job_id":"j-min","kind":"expired","progress":0,"observed_at":"2026-11-29T14:00:13.456Z"}`,
		},
		{
			name:     "error without message",
			ev:       event.Event{JobID: "j-gone", Kind: event.Failed, Error: &event.ErrorInfo{Code: 404, Name: "NOT_FOUND"}, ObservedAt: observed},
			wantSubj: "reducto.job.failed.j-gone",
			wantBody: `{"job_id":"j-gone","kind":"failed","error":{"code":404,"name":"NOT_FOUND"},"observed_at":"2026-11-29T14:00:13.456Z"}`,
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			out, err := e.pub.Publish(t.Context(), &tt.ev)
			if err != nil {
				t.Fatalf("publish: %v", err)
			}
			if out.Duplicate || out.Seq == 0 {
				t.Fatalf("outcome: got %+v, want a new sequence, not duplicate", out)
			}
			m := e.stored(t, out.Seq)
			if m.Subject != tt.wantSubj {
				t.Errorf("subject: got %q, want %q", m.Subject, tt.wantSubj)
			}
			if string(m.Data) != tt.wantBody {
				t.Errorf("body:\ngot  %s\nwant %s", m.Data, tt.wantBody)
			}
			id := tt.ev.JobID + ":" + string(tt.ev.Kind)
			wantHdr := map[string]string{
				"Nats-Msg-Id":    id,
				"Content-Type":   "application/json",
				"ce-specversion": "1.0",
				"ce-id":          id,
				"ce-type":        "ai.reducto.job." + string(tt.ev.Kind),
				"ce-source":      "reducto-bridge",
				"ce-subject":     tt.ev.JobID,
				"ce-time":        "2026-11-29T14:00:13.456Z",
			}
			for k, want := range wantHdr {
				if got := m.Header.Get(k); got != want {
					t.Errorf("header %s: got %q, want %q", k, got, want)
				}
			}
		})
	}
}

func TestPublishObservedAtDefaultsToNow(t *testing.T) {
	e := newEnv(t, natstest.Options{}, publisher.Options{})
	before := time.Now().UTC().Truncate(time.Millisecond)
	ev := &event.Event{JobID: "j-now", Kind: event.Completed}
	out, err := e.pub.Publish(t.Context(), ev)
	if err != nil {
		t.Fatalf("publish: %v", err)
	}
	if !ev.ObservedAt.IsZero() {
		t.Errorf("caller's event modified: observed_at %v", ev.ObservedAt)
	}
	m := e.stored(t, out.Seq)
	ceTime, err := time.Parse(time.RFC3339Nano, m.Header.Get("ce-time"))
	if err != nil {
		t.Fatalf("ce-time %q: %v", m.Header.Get("ce-time"), err)
	}
	got, err := event.Decode(m.Data)
	if err != nil {
		t.Fatalf("decode: %v", err)
	}
	if ceTime.Before(before) || !got.ObservedAt.Equal(ceTime) {
		t.Errorf("observed_at %v, ce-time %v: want equal and not before %v", got.ObservedAt, ceTime, before)
	}
}

func TestPublishInvalidEvent(t *testing.T) {
	e := newEnv(t, natstest.Options{}, publisher.Options{})
	tests := []struct {
		name string
		ev   *event.Event
	}{
		{"nil", nil},
		{"empty job id", &event.Event{Kind: event.Completed}},
		{"job id with dot", &event.Event{JobID: "a.b", Kind: event.Completed}},
		{"job id with wildcard", &event.Event{JobID: "*", Kind: event.Completed}},
		{"unknown kind", &event.Event{JobID: "j1", Kind: "done"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if _, err := e.pub.Publish(t.Context(), tt.ev); !errors.Is(err, publisher.ErrInvalidEvent) {
				t.Errorf("got %v, want ErrInvalidEvent", err)
			}
		})
	}
}

func TestPublishAtMostOnce(t *testing.T) {
	tests := []struct {
		name         string
		first, again event.Kind
		wantWarn     bool
	}{
		{"same event twice", event.Completed, event.Completed, false},
		{"other kind after completed", event.Completed, event.Failed, true},
		{"expired after cancelled", event.Cancelled, event.Expired, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			e := newEnv(t, natstest.Options{}, publisher.Options{})
			job := "job-" + strings.ReplaceAll(tt.name, " ", "-")
			// A plain core subscriber sees every message sent on the subject, also one the
			// stream refuses: it must see one event too.
			core, err := e.nc.SubscribeSync(subject.JobEvents(prefix, job))
			if err != nil {
				t.Fatal(err)
			}
			first, err := e.pub.Publish(t.Context(), &event.Event{JobID: job, Kind: tt.first, ObservedAt: observed})
			if err != nil {
				t.Fatalf("first publish: %v", err)
			}
			got, err := e.pub.Publish(t.Context(), &event.Event{JobID: job, Kind: tt.again, ObservedAt: observed.Add(time.Second)})
			if err != nil {
				t.Fatalf("second publish: %v", err)
			}
			want := publisher.Result{Seq: first.Seq, Duplicate: true, Existing: tt.first}
			if got != want {
				t.Errorf("outcome: got %+v, want %+v", got, want)
			}
			if n := e.count(t, job); n != 1 {
				t.Errorf("events for job: got %d, want 1", n)
			}
			if err := e.nc.Flush(); err != nil {
				t.Fatal(err)
			}
			if n, _, _ := core.Pending(); n != 1 {
				t.Errorf("core subscriber received %d messages, want 1", n)
			}
			if got := e.log.has("WARN job already reported with another kind"); got != tt.wantWarn {
				t.Errorf("conflict warning logged: got %v, want %v", got, tt.wantWarn)
			}
		})
	}
}

// TestPublishAfterDuplicateWindow shows that at-most-once does not rest on the Nats-Msg-Id
// window: once the server has forgotten the id, the event is still not stored twice.
func TestPublishAfterDuplicateWindow(t *testing.T) {
	e := newEnv(t, natstest.Options{}, publisher.Options{MaxAge: time.Hour, Duplicates: 100 * time.Millisecond})
	ctx := t.Context()
	const job = "job-window"
	ev := &event.Event{JobID: job, Kind: event.Completed, ObservedAt: observed}
	first, err := e.pub.Publish(ctx, ev)
	if err != nil {
		t.Fatalf("publish: %v", err)
	}
	// The server forgets ids in publish order, so once a probe id published after the event
	// is forgotten, the event's id is too. There is no signal for it: poll with a deadline.
	probe := prefix + ".job.expired.other-job"
	if _, err := e.js.Publish(ctx, probe, nil, jetstream.WithMsgID("probe")); err != nil {
		t.Fatalf("probe: %v", err)
	}
	deadline := time.Now().Add(5 * time.Second)
	for {
		ack, err := e.js.Publish(ctx, probe, nil, jetstream.WithMsgID("probe"))
		if err != nil {
			t.Fatalf("probe: %v", err)
		}
		if !ack.Duplicate {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("duplicate window did not expire within 5s")
		}
		time.Sleep(50 * time.Millisecond)
	}

	for _, k := range []event.Kind{event.Completed, event.Failed} {
		got, err := e.pub.Publish(ctx, &event.Event{JobID: job, Kind: k, ObservedAt: observed})
		if err != nil {
			t.Fatalf("publish %s again: %v", k, err)
		}
		want := publisher.Result{Seq: first.Seq, Duplicate: true, Existing: event.Completed}
		if got != want {
			t.Errorf("publish %s again: got %+v, want %+v", k, got, want)
		}
	}
	if n := e.count(t, job); n != 1 {
		t.Errorf("events for job: got %d, want 1", n)
	}
}

func TestPublishConcurrent(t *testing.T) {
	e := newEnv(t, natstest.Options{}, publisher.Options{})
	const job = "job-race"
	kinds := []event.Kind{event.Completed, event.Failed, event.Cancelled, event.Expired}
	outs := publishAtOnce(t, e.pub, job, kinds, 10)

	var winner event.Kind
	winners := 0
	for i, out := range outs {
		if !out.Duplicate {
			winners++
			winner = kinds[i%len(kinds)]
		}
	}
	if winners != 1 {
		t.Fatalf("publishes that stored an event: got %d, want 1 (%+v)", winners, outs)
	}
	for i, out := range outs {
		if out.Seq != outs[0].Seq || (out.Duplicate && out.Existing != winner) {
			t.Errorf("outcome %d: got %+v, want seq %d and existing %s", i, out, outs[0].Seq, winner)
		}
	}
	if n := e.count(t, job); n != 1 {
		t.Errorf("events for job: got %d, want 1", n)
	}
}

// publishAtOnce starts n publishes of the job's event at the same instant, the i-th of kind
// kinds[i%len(kinds)], and returns their outcomes; any error fails the test.
func publishAtOnce(t *testing.T, pub *publisher.Publisher, job string, kinds []event.Kind, n int) []publisher.Result {
	t.Helper()
	var (
		wg    sync.WaitGroup
		start = make(chan struct{})
		outs  = make([]publisher.Result, n)
		errs  = make([]error, n)
	)
	for i := range n {
		wg.Go(func() {
			<-start
			outs[i], errs[i] = pub.Publish(t.Context(), &event.Event{JobID: job, Kind: kinds[i%len(kinds)], ObservedAt: observed})
		})
	}
	close(start)
	wg.Wait()
	for i, err := range errs {
		if err != nil {
			t.Fatalf("concurrent publish %d: %v", i, err)
		}
	}
	return outs
}

func TestPublishLargeResult(t *testing.T) {
	e := newEnv(t, natstest.Options{MaxPayload: 64 * 1024}, publisher.Options{})
	ctx := t.Context()
	result := json.RawMessage(`{"type":"full","text":"` + strings.Repeat("lorem ipsum ", 20_000) + `"}`)
	const job = "job-large"

	out, err := e.pub.Publish(ctx, &event.Event{JobID: job, Kind: event.Completed, Result: result, Metadata: json.RawMessage(`{"k":1}`), ObservedAt: observed})
	if err != nil {
		t.Fatalf("publish: %v", err)
	}
	m := e.stored(t, out.Seq)
	if int64(len(m.Data)) > e.nc.MaxPayload() {
		t.Errorf("event body: got %d bytes, want at most %d", len(m.Data), e.nc.MaxPayload())
	}
	if bytes.Contains(m.Data, []byte(`"result":`)) {
		t.Errorf("event body still has the result")
	}
	got, err := event.Decode(m.Data)
	if err != nil {
		t.Fatalf("decode: %v", err)
	}
	sum := sha256.Sum256(result)
	want := event.ResultRef{
		Bucket: "REDUCTO_RESULTS", Name: job, Size: uint64(len(result)),
		Digest: "SHA-256=" + base64.URLEncoding.EncodeToString(sum[:]),
	}
	if got.ResultRef == nil || *got.ResultRef != want {
		t.Fatalf("result_ref: got %+v, want %+v", got.ResultRef, want)
	}
	if string(got.Metadata) != `{"k":1}` {
		t.Errorf("metadata: got %s, want {\"k\":1}", got.Metadata)
	}
	obs, err := e.js.ObjectStore(ctx, want.Bucket)
	if err != nil {
		t.Fatalf("object store: %v", err)
	}
	stored, err := obs.GetBytes(ctx, want.Name)
	if err != nil {
		t.Fatalf("get result: %v", err)
	}
	if !bytes.Equal(stored, result) {
		t.Errorf("stored result: got %d bytes, want the original %d bytes", len(stored), len(result))
	}

	t.Run("job already reported: result not overwritten", func(t *testing.T) {
		other := json.RawMessage(`"` + strings.Repeat("x", 100_000) + `"`)
		got, err := e.pub.Publish(ctx, &event.Event{JobID: job, Kind: event.Failed, Result: other, ObservedAt: observed})
		if err != nil {
			t.Fatalf("publish: %v", err)
		}
		if want := (publisher.Result{Seq: out.Seq, Duplicate: true, Existing: event.Completed}); got != want {
			t.Errorf("outcome: got %+v, want %+v", got, want)
		}
		info, err := obs.GetInfo(ctx, job)
		if err != nil {
			t.Fatalf("object info: %v", err)
		}
		if info.Digest != want.Digest {
			t.Errorf("object digest: got %s, want %s (unchanged)", info.Digest, want.Digest)
		}
	})

	t.Run("too large without result", func(t *testing.T) {
		huge := json.RawMessage(`{"blob":"` + strings.Repeat("m", 70*1024) + `"}`)
		_, err := e.pub.Publish(ctx, &event.Event{JobID: "job-huge-meta", Kind: event.Completed, Result: result, Metadata: huge})
		if !errors.Is(err, publisher.ErrEventTooLarge) {
			t.Fatalf("got %v, want ErrEventTooLarge", err)
		}
		if strings.Contains(err.Error(), "mmmm") || strings.Contains(err.Error(), "lorem") {
			t.Errorf("error includes the payload: %.200s", err)
		}
		if n := e.count(t, "job-huge-meta"); n != 0 {
			t.Errorf("events for job: got %d, want 0", n)
		}
	})
}

func TestLookup(t *testing.T) {
	e := newEnv(t, natstest.Options{}, publisher.Options{})
	ctx := t.Context()
	got, err := e.pub.Lookup(ctx, "job-none")
	if err != nil || got != nil {
		t.Fatalf("lookup of unreported job: got %+v, %v, want nil, nil", got, err)
	}
	ev := &event.Event{
		JobID: "job-look", Kind: event.Cancelled, Status: "Cancelled", Polls: 3,
		Metadata: json.RawMessage(`{"a":[1,2]}`), TrackedAt: tracked, ObservedAt: observed,
	}
	if _, err := e.pub.Publish(ctx, ev); err != nil {
		t.Fatalf("publish: %v", err)
	}
	got, err = e.pub.Lookup(ctx, "job-look")
	if err != nil {
		t.Fatalf("lookup: %v", err)
	}
	if !sameEvent(got, ev) {
		t.Errorf("lookup: got %+v, want %+v", got, ev)
	}
	if _, err := e.pub.Lookup(ctx, "a.*"); !errors.Is(err, subject.ErrInvalidJobID) {
		t.Errorf("lookup of invalid id: got %v, want ErrInvalidJobID", err)
	}
}

// sameEvent compares events by their JSON, which is what the contract fixes.
func sameEvent(a, b *event.Event) bool {
	ja, erra := json.Marshal(a)
	jb, errb := json.Marshal(b)
	return erra == nil && errb == nil && bytes.Equal(ja, jb)
}

func TestPercentEncodedHeaders(t *testing.T) {
	e := newEnv(t, natstest.Options{}, publisher.Options{Source: `my bridge/é"100%"`})
	job := "jöb-1"
	out, err := e.pub.Publish(t.Context(), &event.Event{JobID: job, Kind: event.Completed, ObservedAt: observed})
	if err != nil {
		t.Fatalf("publish: %v", err)
	}
	m := e.stored(t, out.Seq)
	tests := []struct{ header, want string }{
		{"ce-source", "my%20bridge/%C3%A9%22100%25%22"},
		{"ce-subject", "j%C3%B6b-1"},
		{"ce-id", "j%C3%B6b-1:completed"},
		{"Nats-Msg-Id", "jöb-1:completed"},
	}
	for _, tt := range tests {
		t.Run(tt.header, func(t *testing.T) {
			if got := m.Header.Get(tt.header); got != tt.want {
				t.Errorf("got %q, want %q", got, tt.want)
			}
		})
	}
}

func TestPublishStreamFull(t *testing.T) {
	e := newEnv(t, natstest.Options{}, publisher.Options{MaxBytes: 2048})
	ctx, cancel := context.WithTimeout(t.Context(), 10*time.Second)
	defer cancel()
	var err error
	published := 0
	for i := range 50 {
		if _, err = e.pub.Publish(ctx, &event.Event{JobID: fmt.Sprintf("job-%d", i), Kind: event.Completed}); err != nil {
			break
		}
		published++
	}
	if !errors.Is(err, publisher.ErrStreamFull) {
		t.Fatalf("after %d events: got %v, want ErrStreamFull", published, err)
	}
	if published == 0 {
		t.Errorf("no event fitted in 2048 bytes")
	}
}

// flakyJS is a real JetStream whose PublishMsg is interposed: do decides what each attempt
// does, and the headers of every attempt that reached the server are recorded.
type flakyJS struct {
	publisher.JetStream
	do func(ctx context.Context, attempt int, send func() (*jetstream.PubAck, error)) (*jetstream.PubAck, error)

	mu    sync.Mutex
	calls int
	sent  []nats.Header
}

func (f *flakyJS) PublishMsg(ctx context.Context, m *nats.Msg, opts ...jetstream.PublishOpt) (*jetstream.PubAck, error) {
	f.mu.Lock()
	f.calls++
	n := f.calls
	f.mu.Unlock()
	send := func() (*jetstream.PubAck, error) {
		ack, err := f.JetStream.PublishMsg(ctx, m, opts...)
		f.mu.Lock()
		f.sent = append(f.sent, m.Header) // the publish options wrote their headers into m
		f.mu.Unlock()
		return ack, err
	}
	return f.do(ctx, n, send)
}

func (f *flakyJS) attempts() (calls int, sent []nats.Header) {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.calls, append([]nats.Header(nil), f.sent...)
}

func TestPublishRetry(t *testing.T) {
	tests := []struct {
		name      string
		do        func(ctx context.Context, attempt int, send func() (*jetstream.PubAck, error)) (*jetstream.PubAck, error)
		want      publisher.Result
		wantCalls int
		wantSent  int
	}{
		{
			name: "ack lost after store",
			do: func(_ context.Context, attempt int, send func() (*jetstream.PubAck, error)) (*jetstream.PubAck, error) {
				ack, err := send()
				if attempt == 1 && err == nil {
					return nil, nats.ErrTimeout
				}
				return ack, err
			},
			want:      publisher.Result{Seq: 1, Duplicate: true, Existing: event.Completed},
			wantCalls: 2, wantSent: 2,
		},
		{
			name: "no stream responders, then stored",
			do: func(_ context.Context, attempt int, send func() (*jetstream.PubAck, error)) (*jetstream.PubAck, error) {
				if attempt < 3 {
					return nil, jetstream.ErrNoStreamResponse
				}
				return send()
			},
			want:      publisher.Result{Seq: 1},
			wantCalls: 3, wantSent: 1,
		},
		{
			name: "attempt deadline, then stored",
			do: func(_ context.Context, attempt int, send func() (*jetstream.PubAck, error)) (*jetstream.PubAck, error) {
				if attempt == 1 {
					return nil, context.DeadlineExceeded
				}
				return send()
			},
			want:      publisher.Result{Seq: 1},
			wantCalls: 2, wantSent: 1,
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			e := newEnv(t, natstest.Options{}, publisher.Options{})
			fake := &flakyJS{JetStream: e.js, do: tt.do}
			pub, err := publisher.Setup(t.Context(), fake, publisher.Options{})
			if err != nil {
				t.Fatalf("new: %v", err)
			}
			got, err := pub.Publish(t.Context(), &event.Event{JobID: "job-retry", Kind: event.Completed, ObservedAt: observed})
			if err != nil {
				t.Fatalf("publish: %v", err)
			}
			if got != tt.want {
				t.Errorf("outcome: got %+v, want %+v", got, tt.want)
			}
			if n := e.count(t, "job-retry"); n != 1 {
				t.Errorf("events for job: got %d, want 1", n)
			}
			calls, sent := fake.attempts()
			if calls != tt.wantCalls || len(sent) != tt.wantSent {
				t.Fatalf("attempts, sent to server: got %d, %d, want %d, %d", calls, len(sent), tt.wantCalls, tt.wantSent)
			}
			for i, h := range sent {
				for k, want := range map[string]string{
					"Nats-Msg-Id":                                 "job-retry:completed",
					"Nats-Expected-Last-Subject-Sequence":         "0",
					"Nats-Expected-Last-Subject-Sequence-Subject": "reducto.job.*.job-retry",
				} {
					if got := h.Get(k); got != want {
						t.Errorf("attempt %d header %s: got %q, want %q", i+1, k, got, want)
					}
				}
			}
		})
	}
}

func TestPublishPermanentErrorNotRetried(t *testing.T) {
	e := newEnv(t, natstest.Options{}, publisher.Options{})
	permanent := &jetstream.APIError{Code: 400, ErrorCode: 10054, Description: "message size exceeds maximum allowed"}
	fake := &flakyJS{JetStream: e.js, do: func(context.Context, int, func() (*jetstream.PubAck, error)) (*jetstream.PubAck, error) {
		return nil, fmt.Errorf("nats: %w", permanent)
	}}
	pub, err := publisher.Setup(t.Context(), fake, publisher.Options{})
	if err != nil {
		t.Fatalf("new: %v", err)
	}
	_, err = pub.Publish(t.Context(), &event.Event{JobID: "job-perm", Kind: event.Completed})
	if !errors.Is(err, jetstream.ErrStreamMessageExceedsMaximum) {
		t.Errorf("got %v, want the API error wrapped", err)
	}
	if n, _ := fake.attempts(); n != 1 {
		t.Errorf("attempts: got %d, want 1", n)
	}
}

func TestPublishContextStopsRetries(t *testing.T) {
	e := newEnv(t, natstest.Options{}, publisher.Options{})
	ctx, cancel := context.WithCancel(t.Context())
	defer cancel()
	fake := &flakyJS{JetStream: e.js, do: func(_ context.Context, attempt int, _ func() (*jetstream.PubAck, error)) (*jetstream.PubAck, error) {
		if attempt == 3 {
			cancel()
		}
		return nil, nats.ErrNoResponders
	}}
	pub, err := publisher.Setup(t.Context(), fake, publisher.Options{Logger: slog.New(e.log)})
	if err != nil {
		t.Fatalf("new: %v", err)
	}
	_, err = pub.Publish(ctx, &event.Event{JobID: "job-cancel", Kind: event.Completed})
	if !errors.Is(err, context.Canceled) || !errors.Is(err, nats.ErrNoResponders) {
		t.Errorf("got %v, want context.Canceled with the last error", err)
	}
	if n, _ := fake.attempts(); n != 3 {
		t.Errorf("attempts: got %d, want 3", n)
	}
	if !e.log.has("WARN event publish failed, retrying") {
		t.Errorf("retry not logged")
	}
	if n := e.count(t, "job-cancel"); n != 0 {
		t.Errorf("events for job: got %d, want 0", n)
	}
}
