package track_test

import (
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/reducto-bridge/reducto-bridge/internal/natstest"
	"github.com/reducto-bridge/reducto-bridge/subject"
	"github.com/reducto-bridge/reducto-bridge/track"
)

func TestPosition(t *testing.T) {
	const subj = "reducto.track.j"
	stored := time.Date(2026, 12, 1, 12, 0, 0, 0, time.UTC)
	origin := stored.Add(-time.Hour)
	due := stored.Add(time.Minute)
	key := track.MoveKey("the-api-key")
	moved := func(p track.Position) nats.Header {
		return nats.Header{track.HeaderMove: {track.MoveValue(key, subj, p)}}
	}
	raw := func(v string) nats.Header { return nats.Header{track.HeaderMove: {v}} }
	valid := track.MoveValue(key, subj, track.Position{Attempt: 7, TrackedAt: origin, Due: stored})
	body, sig, _ := strings.Cut(valid, " sig=")
	producer := track.Position{Attempt: 3, TrackedAt: stored}
	tests := []struct {
		name string
		h    nats.Header
		want track.Position
	}{
		{"a producer's message", nil, producer},
		{"other headers only", nats.Header{"traceparent": {"00-abc"}}, producer},
		{"moved, due when stored", moved(track.Position{Attempt: 7, TrackedAt: origin, Due: stored}),
			track.Position{Attempt: 10, TrackedAt: origin, Due: stored, Requeued: true}},
		{"moved, due after stored: one delivery was a wait, not a poll", moved(track.Position{Attempt: 7, TrackedAt: origin, Due: due}),
			track.Position{Attempt: 9, TrackedAt: origin, Due: due, Requeued: true}},
		{"moved at admission: no due time, every delivery counts", moved(track.Position{Attempt: 1, TrackedAt: origin}),
			track.Position{Attempt: 4, TrackedAt: origin, Requeued: true}},
		{"moved with a step", moved(track.Position{Attempt: 1, Step: 4, TrackedAt: origin, Due: stored}),
			track.Position{Attempt: 4, Step: 4, TrackedAt: origin, Due: stored, Requeued: true}},
		{"an origin after the message's own time is not taken", moved(track.Position{Attempt: 1, TrackedAt: stored.Add(time.Second), Due: stored}),
			track.Position{Attempt: 4, TrackedAt: stored, Due: stored, Requeued: true}},
		{"a huge attempt cannot wrap", moved(track.Position{Attempt: 1<<63 - 1, TrackedAt: origin, Due: stored}),
			track.Position{Attempt: 1<<32 + 3, TrackedAt: origin, Due: stored, Requeued: true}},
		{"no signature: a producer's", raw(body), producer},
		{"signed with another API key's key: a producer's",
			nats.Header{track.HeaderMove: {track.MoveValue(track.MoveKey("another"), subj, track.Position{Attempt: 7, TrackedAt: origin})}}, producer},
		{"copied from another job's message: a producer's",
			nats.Header{track.HeaderMove: {track.MoveValue(key, "reducto.track.other", track.Position{Attempt: 7, TrackedAt: origin})}}, producer},
		{"a field changed after signing: a producer's", raw(strings.Replace(body, " 7 ", " 8 ", 1) + " sig=" + sig), producer},
		{"signed but not a v1 value: a producer's", raw(track.MoveValue(key, subj, track.Position{})[2:]), producer},
		{"garbage", raw("v1 x y z w sig=???"), producer},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := track.ReadPosition(key, subj, tt.h, stored, 3)
			if !got.TrackedAt.Equal(tt.want.TrackedAt) || !got.Due.Equal(tt.want.Due) {
				t.Errorf("times: got tracked %v due %v, want %v, %v", got.TrackedAt, got.Due, tt.want.TrackedAt, tt.want.Due)
			}
			got.TrackedAt, got.Due, tt.want.TrackedAt, tt.want.Due = time.Time{}, time.Time{}, time.Time{}, time.Time{}
			if got != tt.want {
				t.Errorf("got %+v, want %+v", got, tt.want)
			}
		})
	}
	if n := len(track.HeaderMove) + len(valid); n > 100 {
		t.Errorf("the move header takes %d bytes; every moved job holds one in nats-server", n)
	}
}

// fetchOne takes the next delivery from the queue's consumer.
func fetchOne(t *testing.T, q *track.Queue) jetstream.Msg {
	t.Helper()
	b, err := q.Consumer().Fetch(1, jetstream.FetchMaxWait(5*time.Second))
	if err != nil {
		t.Fatal(err)
	}
	for m := range b.Messages() {
		return m
	}
	t.Fatalf("no delivery: %v", b.Error())
	return nil
}

// TestRequeue: a moved message replaces the delivered one at the tail of the stream, keeps
// its body and non-NATS headers, carries the job's position, and is delivered after the
// jobs tracked before the move; a re-track in between is never overwritten.
func TestRequeue(t *testing.T) {
	ctx := t.Context()
	js, q := setup(t)
	origin := time.Now().Add(-time.Minute).UTC()
	for _, id := range []string{"a", "b"} {
		m := nats.NewMsg(subject.Track(prefix, id))
		m.Data = []byte(`{"metadata":{"n":1}}`)
		m.Header.Set("traceparent", "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01")
		m.Header.Set(jetstream.MsgIDHeader, "producer-"+id) // must not make the copy a duplicate
		if _, err := js.PublishMsg(ctx, m); err != nil {
			t.Fatal(err)
		}
	}
	a := fetchOne(t, q)
	if a.Subject() != subject.Track(prefix, "a") {
		t.Fatalf("first delivery %s", a.Subject())
	}
	due := time.Now().Add(30 * time.Second).UTC()
	moved, err := q.Requeue(ctx, a, track.Position{Attempt: 5, Step: 2, TrackedAt: origin, Due: due})
	if err != nil || !moved {
		t.Fatalf("Requeue = %v, %v; want moved", moved, err)
	}
	if err := a.Ack(); err != nil {
		t.Fatal(err)
	}
	// b (tracked before the move) comes first, then a's copy.
	if b := fetchOne(t, q); b.Subject() != subject.Track(prefix, "b") {
		t.Fatalf("second delivery %s, want b's", b.Subject())
	}
	c := fetchOne(t, q)
	if c.Subject() != subject.Track(prefix, "a") || string(c.Data()) != `{"metadata":{"n":1}}` {
		t.Fatalf("copy: %s %q", c.Subject(), c.Data())
	}
	if h := c.Headers(); h.Get("traceparent") == "" || h.Get(jetstream.MsgIDHeader) != "" {
		t.Errorf("copy headers %v: want the trace context kept and no Nats-Msg-Id", h)
	}
	md, err := c.Metadata()
	if err != nil {
		t.Fatal(err)
	}
	pos := q.Position(c.Subject(), c.Headers(), md.Timestamp, md.NumDelivered)
	if pos.Attempt != 6 || pos.Step != 2 || !pos.TrackedAt.Equal(origin.Truncate(time.Millisecond)) || !pos.Due.Equal(due.Truncate(time.Millisecond)) || !pos.Requeued {
		t.Errorf("copy's position %+v, want attempt 6, step 2, tracked %v, due %v", pos, origin, due)
	}
	st, err := js.Stream(ctx, subject.TrackStream)
	if err != nil {
		t.Fatal(err)
	}
	if n := st.CachedInfo().State.Msgs; n != 2 {
		t.Errorf("stream holds %d messages, want 2 (one per job)", n)
	}

	// A re-track after the delivery: the move must not overwrite it.
	retrack := nats.NewMsg(subject.Track(prefix, "a"))
	retrack.Data = []byte(`{"metadata":{"n":2}}`)
	if _, err := js.PublishMsg(ctx, retrack); err != nil {
		t.Fatal(err)
	}
	moved, err = q.Requeue(ctx, c, track.Position{Attempt: 6, TrackedAt: origin, Due: due})
	if err != nil || moved {
		t.Fatalf("Requeue after a re-track = %v, %v; want not moved, no error", moved, err)
	}
	last, err := q.Last(ctx, "a")
	if err != nil || last == nil {
		t.Fatal(last, err)
	}
	if string(last.Data) != `{"metadata":{"n":2}}` || last.Header.Get(track.HeaderMove) != "" {
		t.Errorf("job a's message: %q %v, want the re-track untouched", last.Data, last.Header)
	}
}

// TestSetupUpdatesFilteredConsumer: the consumer of an older bridge, filtered on P.track.>,
// loses its filter at the next Setup and keeps every job, delivered, parked or not yet
// delivered.
func TestSetupUpdatesFilteredConsumer(t *testing.T) {
	ctx := t.Context()
	_, js := natstest.JetStream(t, natstest.RunServer(t))
	q, err := track.Setup(ctx, js, track.Options{Prefix: prefix})
	if err != nil {
		t.Fatal(err)
	}
	old := q.Consumer().CachedInfo().Config
	old.FilterSubject = subject.TrackAll(prefix)
	if _, err := js.UpdateConsumer(ctx, subject.TrackStream, old); err != nil {
		t.Fatal(err)
	}
	for _, id := range []string{"a", "b", "c"} {
		if _, err := js.Publish(ctx, subject.Track(prefix, id), nil); err != nil {
			t.Fatal(err)
		}
	}
	parked := fetchOne(t, q)
	if err := parked.NakWithDelay(200 * time.Millisecond); err != nil {
		t.Fatal(err)
	}
	q, err = track.Setup(ctx, js, track.Options{Prefix: prefix})
	if err != nil {
		t.Fatal(err)
	}
	info, err := q.Consumer().Info(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if info.Config.FilterSubject != "" || len(info.Config.FilterSubjects) > 0 {
		t.Errorf("filter %q %v after Setup, want none", info.Config.FilterSubject, info.Config.FilterSubjects)
	}
	seen := map[string]bool{}
	for len(seen) < 3 {
		m := fetchOne(t, q)
		seen[m.Subject()] = true
		if err := m.Ack(); err != nil {
			t.Fatal(err)
		}
	}
}

// TestRequeueOnFullStream: a move replaces the job's message, so a stream at MaxJobs (discard
// new) still takes it.
func TestRequeueOnFullStream(t *testing.T) {
	ctx := t.Context()
	_, js := natstest.JetStream(t, natstest.RunServer(t))
	q, err := track.Setup(ctx, js, track.Options{Prefix: prefix, MaxJobs: 2})
	if err != nil {
		t.Fatal(err)
	}
	for _, id := range []string{"a", "b"} {
		if _, err := js.Publish(ctx, subject.Track(prefix, id), nil); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := js.Publish(ctx, subject.Track(prefix, "c"), nil); err == nil {
		t.Fatal("a third job fit a stream of 2")
	}
	m := fetchOne(t, q)
	if moved, err := q.Requeue(ctx, m, track.Position{Attempt: 1, TrackedAt: time.Now(), Due: time.Now()}); err != nil || !moved {
		t.Fatalf("Requeue on a full stream = %v, %v; want moved", moved, err)
	}
}
