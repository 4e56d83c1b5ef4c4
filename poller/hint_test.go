package poller_test

import (
	"context"
	"encoding/json"
	"errors"
	"testing"
	"time"

	"github.com/reducto-bridge/reducto-bridge/event"
	"github.com/reducto-bridge/reducto-bridge/internal/natstest"
	"github.com/reducto-bridge/reducto-bridge/internal/reductotest"
	"github.com/reducto-bridge/reducto-bridge/poller"
	"github.com/reducto-bridge/reducto-bridge/reducto"
	"github.com/reducto-bridge/reducto-bridge/subject"
)

func TestHint(t *testing.T) {
	e := newEnv(t, 30*time.Second)
	// Parked jobs wait an hour: only a hint can finish them within the test.
	e.opts.InitialInterval = time.Hour
	e.opts.MaxInterval = time.Hour
	p, err := poller.New(e.queue, e.jobs, e.pub, e.opts)
	if err != nil {
		t.Fatal(err)
	}
	e.start(t, e.jobs, e.pub)
	ctx := t.Context()

	t.Run("tracked job: one GET, event, track message removed", func(t *testing.T) {
		e.jobs.Script("w1", reductotest.Status("Completed"))
		e.track(t, "w1", `{"metadata":{"from":"track"}}`)
		natstest.WaitFor(t, func() bool { return trackCount(t, e, "w1") == 1 })
		if err := p.Hint(ctx, "w1", json.RawMessage(`{"from":"webhook"}`)); err != nil {
			t.Fatal(err)
		}
		m := e.next(t)
		if m.ev.JobID != "w1" || m.ev.Kind != event.Completed || string(m.ev.Metadata) != `{"from":"track"}` {
			t.Errorf("event %s %s metadata %s, want w1 completed with the track's metadata", m.ev.JobID, m.ev.Kind, m.ev.Metadata)
		}
		if got := e.jobs.Polls("w1"); got != 1 {
			t.Errorf("GETs = %d, want 1", got)
		}
		natstest.WaitFor(t, func() bool { return trackCount(t, e, "w1") == 0 })
	})
	t.Run("replayed webhook: no GET, no event", func(t *testing.T) {
		before := e.jobs.Polls("w1")
		if err := p.Hint(ctx, "w1", nil); err != nil {
			t.Fatal(err)
		}
		if e.jobs.Polls("w1") != before {
			t.Error("a replayed webhook polled Reducto")
		}
		if n := e.storedEvents(t, "w1"); n != 1 {
			t.Errorf("%d events, want 1", n)
		}
	})
	t.Run("untracked finished job: reported with the webhook's metadata", func(t *testing.T) {
		e.jobs.Script("w2", reductotest.Answer{Job: &reducto.Job{Status: "Failed", Error: &reducto.JobError{Name: "DOCUMENT_EMPTY"}}})
		if err := p.Hint(ctx, "w2", json.RawMessage(`{"from":"webhook"}`)); err != nil {
			t.Fatal(err)
		}
		m := e.next(t)
		if m.ev.JobID != "w2" || m.ev.Kind != event.Failed || string(m.ev.Metadata) != `{"from":"webhook"}` {
			t.Errorf("event %s %s metadata %s", m.ev.JobID, m.ev.Kind, m.ev.Metadata)
		}
	})
	t.Run("untracked unfinished job: tracked", func(t *testing.T) {
		e.jobs.Script("w3", reductotest.Status("Pending"))
		if err := p.Hint(ctx, "w3", json.RawMessage(`{"k":3}`)); err != nil {
			t.Fatal(err)
		}
		natstest.WaitFor(t, func() bool { return trackCount(t, e, "w3") == 1 })
	})
	t.Run("untracked job, Reducto down: tracked", func(t *testing.T) {
		e.jobs.Script("w4", reductotest.Answer{Err: &reducto.APIError{StatusCode: 503}})
		if err := p.Hint(ctx, "w4", nil); err != nil {
			t.Fatal(err)
		}
		natstest.WaitFor(t, func() bool { return trackCount(t, e, "w4") == 1 })
	})
	t.Run("invalid id", func(t *testing.T) {
		if err := p.Hint(ctx, "a.b", nil); !errors.Is(err, subject.ErrInvalidJobID) {
			t.Errorf("err = %v, want ErrInvalidJobID", err)
		}
	})
}

// trackCount is the number of track messages the stream holds for a job.
func trackCount(t *testing.T, e *env, id string) int {
	t.Helper()
	s, err := e.js.Stream(t.Context(), subject.TrackStream)
	if err != nil {
		t.Fatal(err)
	}
	_, err = s.GetLastMsgForSubject(t.Context(), subject.Track(prefix, id))
	if err != nil {
		return 0
	}
	return 1
}

// linearJobs reports jobs whose progress grows linearly with real time until they complete.
type linearJobs struct {
	*reductotest.Jobs
	start    time.Time
	duration time.Duration
}

func (l *linearJobs) GetJob(ctx context.Context, id string) (*reducto.Job, error) {
	l.Jobs.GetJob(ctx, id) // count the call
	elapsed := time.Since(l.start)
	if elapsed >= l.duration {
		return &reducto.Job{ID: id, Status: "Completed", Type: "Parse"}, nil
	}
	p := 100 * float64(elapsed) / float64(l.duration)
	return &reducto.Job{ID: id, Status: "Pending", Type: "Parse", Progress: &p}, nil
}

// TestProgressPredictsTheEnd: with linear progress, two polls give the rate and the third lands
// just after the end, where the backoff alone would need six.
func TestProgressPredictsTheEnd(t *testing.T) {
	e := newEnv(t, 30*time.Second)
	e.opts.InitialInterval = 100 * time.Millisecond
	e.opts.Multiplier = 1.5
	e.opts.MaxInterval = 2 * time.Second
	jobs := &linearJobs{Jobs: e.jobs, start: time.Now(), duration: 2 * time.Second}
	e.start(t, jobs, e.pub)
	e.track(t, "lin", "")
	m := e.next(t)
	lag := time.Since(jobs.start) - jobs.duration
	if got := e.jobs.Polls("lin"); got > 4 {
		t.Errorf("polls = %d, want at most 4 (backoff alone needs 6)", got)
	}
	if lag > time.Second {
		t.Errorf("event %v after the end, want well under a second", lag)
	}
	if m.ev.Kind != event.Completed {
		t.Errorf("kind = %s", m.ev.Kind)
	}
}

// TestWebhookJobsArePolledSparsely: a job that will be announced by webhook is not polled on
// the normal schedule; the webhook's hint reports it with one request.
func TestWebhookJobsArePolledSparsely(t *testing.T) {
	e := newEnv(t, 30*time.Second)
	e.opts.InitialInterval = 10 * time.Millisecond
	e.opts.MaxInterval = 20 * time.Millisecond
	e.opts.WebhookPollInterval = time.Hour
	p, err := poller.New(e.queue, e.jobs, e.pub, e.opts)
	if err != nil {
		t.Fatal(err)
	}
	e.jobs.Script("hooked", reductotest.Status("Pending"))
	e.jobs.Script("plain", reductotest.Status("Pending"))
	e.start(t, e.jobs, e.pub)
	e.track(t, "hooked", `{"metadata":{"m":1},"webhook":true}`)
	e.track(t, "plain", "")
	// While the plain job is polled ten times, the hooked one is not polled at all.
	e.quiet(t, "plain", 10)
	if got := e.jobs.Polls("hooked"); got != 0 {
		t.Errorf("job expecting a webhook polled %d times, want 0", got)
	}
	e.jobs.Script("hooked", reductotest.Status("Completed"))
	if err := p.Hint(t.Context(), "hooked", nil); err != nil {
		t.Fatal(err)
	}
	if m := e.next(t); m.ev.JobID != "hooked" || string(m.ev.Metadata) != `{"m":1}` {
		t.Errorf("event %s metadata %s", m.ev.JobID, m.ev.Metadata)
	}
	if got := e.jobs.Polls("hooked"); got != 1 {
		t.Errorf("requests for the hooked job = %d, want 1", got)
	}
}

// TestHintTracked is the list sweep's hint: only a job with a track message costs a GET; a
// job the GET finds unfinished stays tracked with no event (the list's status may be stale).
func TestHintTracked(t *testing.T) {
	e := newEnv(t, 30*time.Second)
	e.opts.InitialInterval = time.Hour
	e.opts.MaxInterval = time.Hour
	p, err := poller.New(e.queue, e.jobs, e.pub, e.opts)
	if err != nil {
		t.Fatal(err)
	}
	e.start(t, e.jobs, e.pub)
	ctx := t.Context()

	t.Run("untracked job: no GET, no track, no event", func(t *testing.T) {
		e.jobs.Script("l1", reductotest.Status("Completed"))
		reported, err := p.HintTracked(ctx, "l1")
		if err != nil || reported {
			t.Fatalf("HintTracked = %v, %v; want false, nil", reported, err)
		}
		if got := e.jobs.Polls("l1"); got != 0 {
			t.Errorf("GETs = %d, want 0", got)
		}
		if trackCount(t, e, "l1") != 0 || e.storedEvents(t, "l1") != 0 {
			t.Error("an untracked job was tracked or reported")
		}
	})
	t.Run("tracked finished job: one GET, event, track message removed", func(t *testing.T) {
		e.jobs.Script("l2", reductotest.Status("Completed"))
		e.track(t, "l2", `{"metadata":{"k":2}}`)
		natstest.WaitFor(t, func() bool { return trackCount(t, e, "l2") == 1 })
		reported, err := p.HintTracked(ctx, "l2")
		if err != nil || !reported {
			t.Fatalf("HintTracked = %v, %v; want true, nil", reported, err)
		}
		m := e.next(t)
		if m.ev.JobID != "l2" || m.ev.Kind != event.Completed || string(m.ev.Metadata) != `{"k":2}` {
			t.Errorf("event %s %s %s", m.ev.JobID, m.ev.Kind, m.ev.Metadata)
		}
		if got := e.jobs.Polls("l2"); got != 1 {
			t.Errorf("GETs = %d, want 1", got)
		}
		natstest.WaitFor(t, func() bool { return trackCount(t, e, "l2") == 0 })
		// Listed again: already reported, no GET.
		if reported, err := p.HintTracked(ctx, "l2"); err != nil || reported {
			// The track message is gone: nothing to do, nothing to report.
			t.Errorf("second HintTracked = %v, %v", reported, err)
		}
		if got := e.jobs.Polls("l2"); got != 1 {
			t.Errorf("GETs after a second hint = %d, want 1", got)
		}
	})
	t.Run("tracked, list stale: GET says running, no event, still tracked", func(t *testing.T) {
		e.jobs.Script("l3", reductotest.Status("Pending"))
		e.track(t, "l3", `{}`)
		natstest.WaitFor(t, func() bool { return trackCount(t, e, "l3") == 1 })
		reported, err := p.HintTracked(ctx, "l3")
		if err != nil || reported {
			t.Fatalf("HintTracked = %v, %v; want false, nil", reported, err)
		}
		if trackCount(t, e, "l3") != 1 || e.storedEvents(t, "l3") != 0 {
			t.Error("a running job lost its track message or got an event")
		}
	})
	t.Run("tracked, deleted (404): no event from one answer", func(t *testing.T) {
		e.track(t, "l4", `{}`)
		natstest.WaitFor(t, func() bool { return trackCount(t, e, "l4") == 1 })
		if reported, err := p.HintTracked(ctx, "l4"); err != nil || reported {
			t.Fatalf("HintTracked = %v, %v; want false, nil", reported, err)
		}
		if trackCount(t, e, "l4") != 1 || e.storedEvents(t, "l4") != 0 {
			t.Error("a 404 from a hint failed the job unconfirmed")
		}
	})
}

// coverOnly covers the listed jobs.
type coverOnly map[string]bool

func (c coverOnly) Covers(id string, _ time.Time) bool { return c[id] }

func (c coverOnly) Done(string) {}

// TestCoveredJobsPolledAsSafetyNet: a job the list sweep covers is first polled (and then
// polled again) only after SweptPollInterval; an uncovered one keeps its backoff.
func TestCoveredJobsPolledAsSafetyNet(t *testing.T) {
	e := newEnv(t, 30*time.Second)
	e.opts.InitialInterval = 20 * time.Millisecond
	e.opts.MaxInterval = 40 * time.Millisecond
	e.opts.SweptPollInterval = time.Hour
	e.opts.Coverage = coverOnly{"c1": true}
	e.jobs.Script("c1", reductotest.Status("Pending"))
	e.jobs.Script("c2", reductotest.Status("Pending"))
	e.start(t, e.jobs, e.pub)
	e.track(t, "c1", `{}`)
	e.track(t, "c2", `{}`)
	natstest.WaitFor(t, func() bool { return e.jobs.Polls("c2") >= 5 })
	if got := e.jobs.Polls("c1"); got != 0 {
		t.Errorf("covered job polled %d times while the uncovered one was polled 5 times", got)
	}
}
