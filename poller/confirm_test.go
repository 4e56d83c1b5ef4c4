package poller_test

import (
	"context"
	"encoding/json"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/reducto-bridge/reducto-bridge/event"
	"github.com/reducto-bridge/reducto-bridge/internal/natstest"
	"github.com/reducto-bridge/reducto-bridge/internal/reductotest"
	"github.com/reducto-bridge/reducto-bridge/poller"
	"github.com/reducto-bridge/reducto-bridge/reducto"
)

var notFound = reductotest.Answer{Err: &reducto.APIError{StatusCode: 404, Message: "Job not found"}}

// TestFlappingJobsNeverFailAcrossReplicas: two pollers share the consumer, and each job's
// answers alternate 404, Pending, 404, Pending... before it completes. With the confirmation
// in process memory, a replica that saw a 404 and then, at a later delivery, another one
// (the Pending in between having gone to the other replica) failed the job. Confirmation now
// lives in one delivery, so every job completes.
func TestFlappingJobsNeverFailAcrossReplicas(t *testing.T) {
	e := newEnv(t, 30*time.Second)
	e.opts.InitialInterval = 5 * time.Millisecond
	e.opts.MaxInterval = 10 * time.Millisecond
	const jobs = 20
	var script []reductotest.Answer
	for range 6 {
		script = append(script, notFound, reductotest.Status("Pending"))
	}
	script = append(script, reductotest.Status("Completed"))
	for i := range jobs {
		e.jobs.Script(fmt.Sprint("flap", i), script...)
	}
	e.start(t, e.jobs, e.pub)
	e.start(t, e.jobs, e.pub)
	for i := range jobs {
		e.track(t, fmt.Sprint("flap", i), "")
	}
	for range jobs {
		if m := e.next(t); m.ev.Kind != event.Completed {
			t.Errorf("%s: %s (%+v), want completed", m.ev.JobID, m.ev.Kind, m.ev.Error)
		}
	}
	for i := range jobs {
		if n := e.jobs.Polls(fmt.Sprint("flap", i)); n != len(script) {
			t.Errorf("flap%d polled %d times, want %d (one per scripted answer)", i, n, len(script))
		}
	}
}

// TestConfirmationHoldsTheDelivery: the wait before the confirming GET is longer than
// AckWait, yet JetStream does not hand the job to anyone else meanwhile (InProgress), and the
// second 404 fails the job within the same delivery, after exactly two GETs.
func TestConfirmationHoldsTheDelivery(t *testing.T) {
	e := newEnv(t, 300*time.Millisecond)
	e.opts.InitialInterval = time.Second // the confirmation wait: more than 3 AckWaits
	e.opts.MaxInterval = time.Second
	e.jobs.Script("gone", notFound)
	e.start(t, e.jobs, e.pub)
	e.start(t, e.jobs, e.pub) // a second replica that would take a redelivered job
	e.track(t, "gone", "")
	m := e.next(t)
	if m.ev.Kind != event.Failed || m.ev.Error == nil || m.ev.Error.Name != "NOT_FOUND" {
		t.Fatalf("event %s %+v, want failed NOT_FOUND", m.ev.Kind, m.ev.Error)
	}
	calls := e.jobs.PollTimes("gone")
	if len(calls) != 2 {
		t.Fatalf("%d GETs, want 2 (the answer and its confirmation)", len(calls))
	}
	if gap := calls[1].Sub(calls[0]); gap < e.opts.InitialInterval {
		t.Errorf("confirmed %v after the first 404, want >= %v", gap, e.opts.InitialInterval)
	}
}

// TestAuthFailing: a rejected key is reported (AuthFailing) and never fails a job; the
// first accepted answer clears it.
func TestAuthFailing(t *testing.T) {
	e := newEnv(t, 30*time.Second)
	e.opts.MaxInterval = 20 * time.Millisecond
	e.jobs.Script("k", reductotest.Answer{Err: &reducto.APIError{StatusCode: 403}})
	p, err := poller.New(e.queue, e.jobs, e.pub, e.opts)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { defer close(done); p.Run(ctx) }()
	t.Cleanup(func() { cancel(); <-done })
	if _, failing := p.AuthFailing(); failing {
		t.Fatal("auth failing before any poll")
	}
	e.track(t, "k", "")
	e.quiet(t, "k", 3)
	since, failing := p.AuthFailing()
	if !failing || since.IsZero() {
		t.Fatalf("AuthFailing = %v, %v after 403s, want true", since, failing)
	}
	e.jobs.Script("k", reductotest.Status("Completed"))
	if m := e.next(t); m.ev.Kind != event.Completed {
		t.Errorf("kind %s, want completed", m.ev.Kind)
	}
	if _, failing := p.AuthFailing(); failing {
		t.Error("auth still failing after an accepted answer")
	}
}

// TestHintReportsThroughTheSharedStep: a webhook-triggered event runs the crash failpoint
// like a polled one, and a webhook while publishing is paused spends no GET.
func TestHintReportsThroughTheSharedStep(t *testing.T) {
	e := newEnv(t, 30*time.Second)
	e.opts.InitialInterval = time.Hour
	e.opts.MaxInterval = time.Hour
	var mu sync.Mutex
	var afterPublish []string
	e.opts.AfterPublish = func(id string) {
		mu.Lock()
		afterPublish = append(afterPublish, id)
		mu.Unlock()
	}
	rp := &refusingPublisher{EventPublisher: e.pub}
	p, err := poller.New(e.queue, e.jobs, rp, e.opts)
	if err != nil {
		t.Fatal(err)
	}
	ctx := t.Context()

	e.jobs.Script("h1", reductotest.Status("Completed"))
	if err := p.Hint(ctx, "h1", json.RawMessage(`{"m":1}`)); err != nil {
		t.Fatal(err)
	}
	if m := e.next(t); m.ev.JobID != "h1" || m.ev.Kind != event.Completed {
		t.Fatalf("event %s %s", m.ev.JobID, m.ev.Kind)
	}
	mu.Lock()
	got := append([]string(nil), afterPublish...)
	mu.Unlock()
	if len(got) != 1 || got[0] != "h1" {
		t.Errorf("failpoint saw %v, want [h1]", got)
	}

	// A refused publish closes the gate; the next webhook leaves its job to the schedule.
	rp.set(true)
	e.jobs.Script("h2", reductotest.Status("Completed"))
	e.jobs.Script("h3", reductotest.Status("Completed"))
	if err := p.Hint(ctx, "h2", nil); err != nil {
		t.Fatal(err)
	}
	natstest.WaitFor(t, func() bool { return trackCount(t, e, "h2") == 1 })
	if err := p.Hint(ctx, "h3", nil); err != nil {
		t.Fatal(err)
	}
	if n := e.jobs.Polls("h3"); n != 0 {
		t.Errorf("webhook during a publish pause made %d GETs, want 0", n)
	}
	natstest.WaitFor(t, func() bool { return trackCount(t, e, "h3") == 1 })
}

// TestConfirmationWaitsDoNotHoldWorkers: a job waiting to confirm a permanent answer sends
// no request, so it gives its worker slot back: with 2 slots, 10 unknown ids all wait at
// once (their first GETs all come before any confirming one) instead of 2 at a time in 5
// rounds, and no more than the waiting places (8 per slot) plus the slots ever wait. The
// count is read from the order of the GETs, not from their times.
func TestConfirmationWaitsDoNotHoldWorkers(t *testing.T) {
	for _, tc := range []struct {
		concurrency, jobs, wantMin, wantMax int
	}{
		{concurrency: 2, jobs: 10, wantMin: 5, wantMax: 10},    // all 10 but for a stall of about a second
		{concurrency: 1, jobs: 12, wantMin: 2, wantMax: 8 + 1}, // 8 places, and 1 job waiting with its slot
	} {
		t.Run(fmt.Sprint("concurrency", tc.concurrency), func(t *testing.T) {
			e := newEnv(t, 30*time.Second)
			e.opts.InitialInterval = time.Second // the confirmation wait
			e.opts.MaxInterval = time.Second
			e.opts.Concurrency = tc.concurrency
			e.jobs.Default = notFound
			e.start(t, e.jobs, e.pub)
			for i := range tc.jobs {
				e.track(t, fmt.Sprint("junk", i), "")
			}
			for range tc.jobs {
				if m := e.next(t); m.ev.Kind != event.Failed || m.ev.Error == nil || m.ev.Error.Name != "NOT_FOUND" {
					t.Fatalf("%s: %s %+v, want failed NOT_FOUND", m.ev.JobID, m.ev.Kind, m.ev.Error)
				}
			}
			seen := map[string]int{}
			waiting, most := 0, 0
			for _, c := range e.jobs.Gets() {
				switch seen[c.ID]++; seen[c.ID] {
				case 1:
					waiting++
					most = max(most, waiting)
				case 2:
					waiting--
				default:
					t.Errorf("%s: more than 2 GETs", c.ID)
				}
			}
			if most < tc.wantMin || most > tc.wantMax {
				t.Errorf("at most %d jobs waited for their confirmation at once, want %d to %d (concurrency %d)",
					most, tc.wantMin, tc.wantMax, tc.concurrency)
			}
		})
	}
}
