package poller_test

import (
	"context"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/reducto-bridge/reducto-bridge/event"
	"github.com/reducto-bridge/reducto-bridge/internal/natstest"
	"github.com/reducto-bridge/reducto-bridge/internal/reductotest"
	"github.com/reducto-bridge/reducto-bridge/reducto"
	"github.com/reducto-bridge/reducto-bridge/subject"
	"github.com/reducto-bridge/reducto-bridge/track"
)

// headerWatch is a JobGetter that, at each GET, records the job's track message as the
// stream holds it then: whether the bridge moved it (HeaderMove).
type headerWatch struct {
	next  *reductotest.Jobs
	queue *track.Queue
	mu    sync.Mutex
	seen  []nats.Header
}

func (w *headerWatch) GetJob(ctx context.Context, id string) (*reducto.Job, error) {
	if m, err := w.queue.Last(ctx, id); err == nil && m != nil {
		w.mu.Lock()
		w.seen = append(w.seen, m.Header)
		w.mu.Unlock()
	}
	return w.next.GetJob(ctx, id)
}

func (w *headerWatch) moved() int {
	w.mu.Lock()
	defer w.mu.Unlock()
	n := 0
	for _, h := range w.seen {
		if h.Get(track.HeaderMove) != "" {
			n++
		}
	}
	return n
}

// binding makes the budget bind: 2 outstanding jobs at 10 GETs/s give a fair cycle of
// 2 / (0.9 x 10) = 222 ms, above the test schedule's 100 ms longest interval.
func binding(e *env) time.Duration {
	e.opts.Outstanding = func() uint64 { return 2 }
	e.opts.PollRate = func() float64 { return 10 }
	return 222 * time.Millisecond
}

// TestRequeueWhileBudgetBinds: while the budget binds, an unfinished job's track message is
// moved to the queue's tail instead of parked with NakWithDelay; the move keeps the job's
// TTL origin, metadata, trace context and poll count, and the job still waits a fair cycle
// between polls when the queue is shorter than that (the stream hands it back at once).
func TestRequeueWhileBudgetBinds(t *testing.T) {
	e := newEnv(t, 30*time.Second)
	cycle := binding(e)
	pending := reductotest.Answer{Job: &reducto.Job{Status: "Pending"}}
	e.jobs.Script("j", pending, pending, pending, pending, reductotest.Answer{Job: &reducto.Job{Status: "Completed", Result: []byte(`{"type":"full"}`)}})
	w := &headerWatch{next: e.jobs, queue: e.queue}
	e.start(t, w, e.pub)

	before := time.Now()
	m := nats.NewMsg(subject.Track(prefix, "j"))
	m.Data = []byte(`{"metadata":{"k":1}}`)
	m.Header.Set("traceparent", "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01")
	if _, err := e.js.PublishMsg(t.Context(), m); err != nil {
		t.Fatal(err)
	}
	after := time.Now()
	got := e.next(t)
	if got.subject != "reducto.job.completed.j" || string(got.ev.Metadata) != `{"k":1}` {
		t.Fatalf("event %s %s", got.subject, got.ev.Metadata)
	}
	if got.ev.TrackedAt.Before(before.Add(-time.Millisecond)) || got.ev.TrackedAt.After(after.Add(time.Millisecond)) {
		t.Errorf("tracked_at %v, want the track message's time (in %v..%v), not a move's", got.ev.TrackedAt, before, after)
	}
	if got.ev.Polls != 5 {
		t.Errorf("polls %d, want 5", got.ev.Polls)
	}
	if tp := got.header["traceparent"]; len(tp) == 0 || tp[0][3:35] != "0af7651916cd43dd8448eb211c80319c" {
		t.Errorf("event traceparent %v, want the track message's trace id", tp)
	}
	// Every poll but the first found the message moved (admission moved it too).
	if n := w.moved(); n != 5 {
		t.Errorf("%d of 5 polls found the job's message moved, want 5", n)
	}
	times := e.jobs.PollTimes("j")
	for i := 1; i < len(times); i++ {
		// A moved job is handed back at once (the queue holds only it) and waits out
		// half its delay, at most track.EarlyMargin (50 ms) short.
		if gap := times[i].Sub(times[i-1]); gap < cycle/2-60*time.Millisecond {
			t.Errorf("poll %d came %v after the previous one, want at least half the fair cycle %v", i+1, gap, cycle)
		}
	}
	// The event is published before the delivery is acked: wait for the ack to land.
	natstest.WaitFor(t, func() bool { return trackPending(t, e) == 0 })
}

// TestRequeuedJobExpiresAtItsOrigin: the TTL counts from the first track, however often the
// job's message was moved (each move is a new message with a new timestamp).
func TestRequeuedJobExpiresAtItsOrigin(t *testing.T) {
	e := newEnv(t, 30*time.Second)
	binding(e)
	e.opts.JobTTL = 900 * time.Millisecond
	e.jobs.Script("slow", reductotest.Answer{Job: &reducto.Job{Status: "InProgress"}})
	w := &headerWatch{next: e.jobs, queue: e.queue}
	e.start(t, w, e.pub)
	e.track(t, "slow", "")
	got := e.next(t)
	if got.subject != "reducto.job.expired.slow" {
		t.Fatalf("event %s, want expired", got.subject)
	}
	age := got.ev.ObservedAt.Sub(got.ev.TrackedAt)
	if age < 900*time.Millisecond || age > 3*time.Second {
		t.Errorf("expired %v after tracking, want at the TTL (900ms) plus at most a cycle", age)
	}
	if w.moved() < 2 {
		t.Errorf("the job was moved before %d polls, want at least 2 (the test would not test moves)", w.moved())
	}
}

// TestMovedHeadersCannotHideOrExpireAJob: a signed due time a year away is still polled at the
// TTL and reported expired; an unsigned track time a day ago (a producer's forgery) is
// ignored, so the job is not expired by it.
func TestMovedHeadersCannotHideOrExpireAJob(t *testing.T) {
	e := newEnv(t, 30*time.Second)
	e.opts.JobTTL = 300 * time.Millisecond
	e.jobs.Script("hidden", reductotest.Answer{Job: &reducto.Job{Status: "Pending"}})
	e.start(t, e.jobs, e.pub)
	m := nats.NewMsg(subject.Track(prefix, "hidden"))
	m.Header.Set(track.HeaderMove, track.MoveValue(nil, m.Subject, // the test queue's key
		track.Position{Attempt: 1, TrackedAt: time.Now(), Due: time.Now().Add(365 * 24 * time.Hour)}))
	if _, err := e.js.PublishMsg(t.Context(), m); err != nil {
		t.Fatal(err)
	}
	if got := e.next(t); got.subject != "reducto.job.expired.hidden" {
		t.Fatalf("event %s, want expired", got.subject)
	}
}

func TestForgedTrackTimeIsIgnored(t *testing.T) {
	e := newEnv(t, 30*time.Second)
	e.opts.JobTTL = time.Hour
	p := reductotest.Status("Pending")
	e.jobs.Script("victim", p, reductotest.Answer{Job: &reducto.Job{Status: "Completed", Result: []byte(`{"type":"full"}`)}})
	e.start(t, e.jobs, e.pub)
	m := nats.NewMsg(subject.Track(prefix, "victim"))
	m.Header.Set(track.HeaderMove, track.MoveValue(track.MoveKey("a guess at the key"), m.Subject,
		track.Position{Attempt: 1, TrackedAt: time.Now().Add(-24 * time.Hour), Due: time.Now()}))
	if _, err := e.js.PublishMsg(t.Context(), m); err != nil {
		t.Fatal(err)
	}
	got := e.next(t)
	if got.subject != "reducto.job.completed.victim" {
		t.Fatalf("event %s, want completed: a forged track time must not expire the job", got.subject)
	}
	if time.Since(got.ev.TrackedAt) > time.Minute {
		t.Errorf("tracked_at %v: the forged header was taken", got.ev.TrackedAt)
	}
}

// TestUpgradeReportsJobsParkedTheOldWay: jobs parked by a bridge of the previous version
// (its consumer filtered on P.track.>, each job delivered and NAK'd with a delay, some not
// yet delivered) are each reported exactly once by the new one, which updates the consumer
// in place and, as the budget binds, moves them to the queue's tail.
func TestUpgradeReportsJobsParkedTheOldWay(t *testing.T) {
	const jobs = 20
	e := newEnv(t, 30*time.Second)
	ctx := t.Context()
	old := e.queue.Consumer().CachedInfo().Config
	old.FilterSubject = subject.TrackAll(prefix)
	if _, err := e.js.UpdateConsumer(ctx, subject.TrackStream, old); err != nil {
		t.Fatal(err)
	}
	ids := make([]string, jobs)
	for i := range ids {
		ids[i] = "old-" + strconv.Itoa(i)
		e.track(t, ids[i], `{"metadata":{"i":`+strconv.Itoa(i)+`}}`)
		// Two answers while parked, then done.
		p := reductotest.Status("Pending")
		e.jobs.Script(ids[i], p, p, reductotest.Answer{Job: &reducto.Job{Status: "Completed", Result: []byte(`{"type":"full"}`)}})
	}
	// The old bridge admitted 15 of them: delivered once and parked with NakWithDelay.
	b, err := e.queue.Consumer().Fetch(15, jetstream.FetchMaxWait(5*time.Second))
	if err != nil {
		t.Fatal(err)
	}
	parked := 0
	for m := range b.Messages() {
		if err := m.NakWithDelay(300 * time.Millisecond); err != nil {
			t.Fatal(err)
		}
		parked++
	}
	if parked != 15 {
		t.Fatalf("parked %d the old way, want 15", parked)
	}

	// The upgrade: Setup as the new bridge runs it, then its poller, with the budget binding.
	q, err := track.Setup(ctx, e.js, track.Options{Prefix: prefix, AckWait: 30 * time.Second})
	if err != nil {
		t.Fatal(err)
	}
	if f := q.Consumer().CachedInfo().Config.FilterSubject; f != "" {
		t.Fatalf("consumer still filtered on %q", f)
	}
	e.queue = q
	binding(e)
	w := &headerWatch{next: e.jobs, queue: q}
	e.start(t, w, e.pub)
	got := map[string]int{}
	for range jobs {
		m := e.next(t)
		if m.ev.Kind != event.Completed {
			t.Errorf("event %s, want completed", m.subject)
		}
		got[m.ev.JobID]++
	}
	for _, id := range ids {
		if got[id] != 1 {
			t.Errorf("job %s reported %d times, want once", id, got[id])
		}
		natstest.WaitFor(t, func() bool { return e.storedEvents(t, id) == 1 })
	}
	if w.moved() == 0 {
		t.Error("no job was moved to the queue's tail: the new mechanism was not exercised")
	}
	natstest.WaitFor(t, func() bool { return trackPending(t, e) == 0 })
	select {
	case m := <-e.events:
		t.Errorf("extra event %s", m.subject)
	case <-time.After(200 * time.Millisecond):
	}
}
