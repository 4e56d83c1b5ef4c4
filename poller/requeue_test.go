package poller_test

import (
	"context"
	"sync"
	"testing"
	"time"

	"github.com/nats-io/nats.go"

	"github.com/reducto-bridge/reducto-bridge/internal/reductotest"
	"github.com/reducto-bridge/reducto-bridge/reducto"
	"github.com/reducto-bridge/reducto-bridge/subject"
	"github.com/reducto-bridge/reducto-bridge/track"
)

// headerWatch is a JobGetter that, at each GET, records the job's track message as the
// stream holds it then: whether the bridge moved it (HeaderAttempt) and what it says.
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
		if h.Get(track.HeaderAttempt) != "" {
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
		// its delay, at most earlyMargin (50 ms) short.
		if gap := times[i].Sub(times[i-1]); gap < cycle-60*time.Millisecond {
			t.Errorf("poll %d came %v after the previous one, want about the fair cycle %v", i+1, gap, cycle)
		}
	}
	if n := trackPending(t, e); n != 0 {
		t.Errorf("%d track messages left after the event", n)
	}
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

// TestForgedDueCannotHideAJob: a track message claiming a poll due in a year is still polled
// at the TTL and reported expired.
func TestForgedDueCannotHideAJob(t *testing.T) {
	e := newEnv(t, 30*time.Second)
	e.opts.JobTTL = 300 * time.Millisecond
	e.jobs.Script("hidden", reductotest.Answer{Job: &reducto.Job{Status: "Pending"}})
	e.start(t, e.jobs, e.pub)
	m := nats.NewMsg(subject.Track(prefix, "hidden"))
	m.Header.Set(track.HeaderAttempt, "1")
	m.Header.Set(track.HeaderDue, time.Now().Add(365*24*time.Hour).Format(time.RFC3339Nano))
	if _, err := e.js.PublishMsg(t.Context(), m); err != nil {
		t.Fatal(err)
	}
	if got := e.next(t); got.subject != "reducto.job.expired.hidden" {
		t.Fatalf("event %s, want expired", got.subject)
	}
}
