package command

import (
	"context"
	"encoding/json"
	"errors"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/reducto-bridge/reducto-bridge/event"
	"github.com/reducto-bridge/reducto-bridge/internal/natstest"
	"github.com/reducto-bridge/reducto-bridge/internal/reductotest"
	"github.com/reducto-bridge/reducto-bridge/lastpoll"
	"github.com/reducto-bridge/reducto-bridge/publisher"
	"github.com/reducto-bridge/reducto-bridge/subject"
	"github.com/reducto-bridge/reducto-bridge/track"
)

// statusOf sends a P.status request and decodes the reply; code is 200 or the micro error.
func statusOf(t *testing.T, e env, body string) (StatusReply, int, string) {
	t.Helper()
	msg := request(t, e.nc, prefix+".status", []byte(body))
	var r StatusReply
	code, desc := replyCode(t, msg)
	if code == 200 {
		if err := json.Unmarshal(msg.Data, &r); err != nil {
			t.Fatalf("status reply %q: %v", msg.Data, err)
		}
	}
	return r, code, desc
}

// TestStatus reads a job's state from the real track queue and events stream as it goes from
// unknown to tracked to reported, with a forged message on its event subject ignored.
func TestStatus(t *testing.T) {
	ctx := t.Context()
	s := natstest.RunServer(t)
	nc, js := natstest.JetStream(t, s)
	queue, err := track.Setup(ctx, js, track.Options{Prefix: prefix})
	if err != nil {
		t.Fatalf("track.Setup: %v", err)
	}
	pub, err := publisher.Setup(ctx, js, publisher.Options{Prefix: prefix})
	if err != nil {
		t.Fatalf("publisher.Setup: %v", err)
	}
	jobs := &reductotest.Jobs{}
	var mu sync.Mutex
	var lastPoll *lastpoll.Poll // what the replicas answer
	setPoll := func(p *lastpoll.Poll) {
		mu.Lock()
		lastPoll = p
		mu.Unlock()
	}
	askPolls := func(_ context.Context, id string) (lastpoll.Poll, bool) {
		mu.Lock()
		defer mu.Unlock()
		if lastPoll == nil || id != jobID {
			return lastpoll.Poll{}, false
		}
		return *lastPoll, true
	}
	e := startOn(t, nc, natstest.Connect(t, s), jobs, pub, queue.Ensure,
		Options{Status: &StatusSources{Track: queue.Last, Event: pub.Find, Position: queue.Position, LastPoll: askPolls}})
	req := `{"job_id":"` + jobID + `"}`

	// Unknown: a normal reply, nothing tracked, no event.
	r, code, desc := statusOf(t, e, req)
	if code != 200 || r.JobID != jobID || r.Tracked || r.TrackedAt != nil || r.Event != nil {
		t.Fatalf("unknown job: %d %q %+v, want 200 tracked=false, no event", code, desc, r)
	}

	before := time.Now().Add(-time.Second)
	if _, err := queue.Ensure(ctx, jobID, track.Request{Webhook: true, Metadata: json.RawMessage(`{"a":1}`)}); err != nil {
		t.Fatalf("track: %v", err)
	}
	last, err := queue.Last(ctx, jobID)
	if err != nil || last == nil {
		t.Fatalf("track message: %v %v", last, err)
	}
	r, code, desc = statusOf(t, e, req)
	if code != 200 || !r.Tracked || !r.Webhook || r.TrackSequence != last.Sequence || r.Event != nil {
		t.Fatalf("tracked job: %d %q %+v, want tracked, webhook, seq %d, no event", code, desc, r, last.Sequence)
	}
	if r.TrackedAt == nil || r.TrackedAt.Before(before) || r.TrackedAt.After(time.Now().Add(time.Second)) {
		t.Errorf("tracked_at = %v, want about now", r.TrackedAt)
	}

	if r.Moved || r.Deliveries != 0 || r.NextPoll != nil || r.LastPoll != nil {
		t.Errorf("a producer's track message reads as moved, or polled: %+v", r)
	}

	// Polled and parked with NakWithDelay: the last poll of this track message gives its
	// deliveries and next poll; one of an older track message gives only what it saw.
	progress := 0.25
	polled := lastpoll.Poll{Status: "InProgress", Progress: &progress, PolledAt: time.Now().UTC(), Deliveries: 2, Since: last.Time, NextPoll: time.Now().Add(20 * time.Second).UTC()}
	setPoll(&polled)
	r, code, desc = statusOf(t, e, req)
	if code != 200 || r.LastPoll == nil || r.LastPoll.Status != "InProgress" || r.LastPoll.Progress == nil || *r.LastPoll.Progress != 0.25 ||
		r.Deliveries != 2 || r.NextPoll == nil || !r.NextPoll.Equal(polled.NextPoll) || r.Moved {
		t.Fatalf("polled job: %d %q %+v (last poll %+v), want its last poll, 2 deliveries, next poll %v", code, desc, r, r.LastPoll, polled.NextPoll)
	}
	stale := polled
	stale.Since = last.Time.Add(-time.Hour)
	setPoll(&stale)
	if r, _, _ = statusOf(t, e, req); r.LastPoll == nil || r.Deliveries != 0 || r.NextPoll != nil {
		t.Fatalf("polled before a re-track: %+v, want the last poll without deliveries or next poll", r)
	}
	setPoll(&polled)

	// Moved by a bridge (while the budget binds): the copy says where the job stands.
	origin, due := time.Now().Add(-time.Hour).Truncate(time.Millisecond), time.Now().Add(time.Minute).Truncate(time.Millisecond)
	b, err := queue.Consumer().Fetch(1, jetstream.FetchMaxWait(5*time.Second))
	if err != nil {
		t.Fatal(err)
	}
	for m := range b.Messages() {
		if moved, err := queue.Requeue(ctx, m, track.Position{Attempt: 3, TrackedAt: origin, Due: due}); err != nil || !moved {
			t.Fatalf("move: %v %v", moved, err)
		}
		if err := m.Ack(); err != nil {
			t.Fatal(err)
		}
	}
	r, code, desc = statusOf(t, e, req)
	if code != 200 || !r.Tracked || !r.Moved || r.Deliveries != 3 || !r.Webhook || r.TrackedAt == nil || !r.TrackedAt.Equal(origin) || r.NextPoll == nil || !r.NextPoll.Equal(due) {
		t.Fatalf("moved job: %d %q %+v, want moved, 3 deliveries, tracked %v, next poll %v, webhook kept (the message's, not the last poll's)", code, desc, r, origin, due)
	}

	// A message another client published on the job's event subject is not its event.
	if _, err := js.Publish(ctx, subject.Event(prefix, "completed", jobID), []byte(`{"forged":true}`)); err != nil {
		t.Fatalf("forge: %v", err)
	}
	if r, _, _ = statusOf(t, e, req); r.Event != nil {
		t.Fatalf("forged event reported: %+v", r.Event)
	}

	observed := time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)
	res, err := pub.Publish(ctx, &event.Event{JobID: jobID, Kind: event.Failed, Status: "Failed", ObservedAt: observed, Polls: 4})
	if err != nil {
		t.Fatalf("publish: %v", err)
	}
	r, code, desc = statusOf(t, e, req)
	want := StatusEvent{Kind: event.Failed, Sequence: res.Seq, Subject: subject.Event(prefix, "failed", jobID),
		Status: "Failed", ObservedAt: observed, Polls: 4}
	if code != 200 || r.Event == nil || *r.Event != want || !r.Tracked || r.LastPoll != nil {
		t.Fatalf("reported job: %d %q %+v, want tracked and event %+v, no last poll (a replica still has one)", code, desc, r, want)
	}
	if n := len(jobs.Gets()) + len(jobs.Cancels()) + len(jobs.Submits()); n != 0 {
		t.Errorf("status made %d Reducto requests, want 0", n)
	}
}

// TestStatusErrors: bad requests are 400 naming the fault, unreadable streams 503; no
// P.status without its sources.
func TestStatusErrors(t *testing.T) {
	broken := errors.New("stream gone")
	var trackErr, eventErr error
	src := &StatusSources{
		Track: func(context.Context, string) (*jetstream.RawStreamMsg, error) { return nil, trackErr },
		Event: func(context.Context, string) (*event.Event, uint64, error) { return nil, 0, eventErr },
	}
	e := start(t, &reductotest.Jobs{}, nil, (&fakeTracker{}).track, Options{Status: src})
	for _, tt := range []struct {
		name, body      string
		trackErr, evErr error
		code            int
		descContains    string
	}{
		{"not json", `nope`, nil, nil, 400, "bad request"},
		{"no id", `{}`, nil, nil, 400, "missing job_id"},
		{"bad id", `{"job_id":"a.b"}`, nil, nil, 400, "invalid job id"},
		{"id not string", `{"job_id":7}`, nil, nil, 400, "not a string"},
		{"track unreadable", `{"job_id":"j1"}`, broken, nil, 503, "track stream"},
		{"events unreadable", `{"job_id":"j1"}`, nil, broken, 503, "events stream"},
		{"fine", `{"job_id":"j1"}`, nil, nil, 200, ""},
	} {
		t.Run(tt.name, func(t *testing.T) {
			trackErr, eventErr = tt.trackErr, tt.evErr
			_, code, desc := statusOf(t, e, tt.body)
			if code != tt.code || !strings.Contains(desc, tt.descContains) || strings.Contains(desc, "stream gone") {
				t.Errorf("status %s = %d %q, want %d containing %q (and not the cause)", tt.body, code, desc, tt.code, tt.descContains)
			}
		})
	}

	if _, err := Start(e.nc, &reductotest.Jobs{}, nil, (&fakeTracker{}).track, Options{Prefix: "other", Status: &StatusSources{}}); err == nil {
		t.Error("Start with empty StatusSources: no error")
	}
	plain := start(t, &reductotest.Jobs{}, nil, (&fakeTracker{}).track, Options{Prefix: "plain"})
	if _, err := plain.nc.Request("plain.status", []byte(`{"job_id":"j1"}`), 200*time.Millisecond); err == nil {
		t.Error("P.status answered without Options.Status")
	}
}
