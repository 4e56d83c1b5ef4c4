package poller_test

import (
	"sync"
	"testing"
	"time"

	"github.com/reducto-bridge/reducto-bridge/internal/natstest"
	"github.com/reducto-bridge/reducto-bridge/internal/reductotest"
	"github.com/reducto-bridge/reducto-bridge/lastpoll"
	"github.com/reducto-bridge/reducto-bridge/reducto"
)

// pollLog is a poller.Polls that keeps every record and forget.
type pollLog struct {
	mu      sync.Mutex
	records []lastpoll.Poll
	forgot  []string
}

func (l *pollLog) Record(id string, p lastpoll.Poll) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.records = append(l.records, p)
}

func (l *pollLog) Forget(id string) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.forgot = append(l.forgot, id)
}

// TestPollsAreRecorded: each poll that leaves the job unfinished records what it saw (a 429's
// failure, a status and its progress), its delivery count, its track message and the next
// poll; the report forgets the job.
func TestPollsAreRecorded(t *testing.T) {
	e := newEnv(t, 30*time.Second)
	log := &pollLog{}
	e.opts.Polls = log
	half := 0.5
	e.jobs.Script("j",
		reductotest.Answer{Err: &reducto.APIError{StatusCode: 429, RateLimitCode: 2000}},
		reductotest.Answer{Job: &reducto.Job{Status: "InProgress", Progress: &half}},
		reductotest.Answer{Job: &reducto.Job{Status: "Completed", Result: []byte(`{"type":"full"}`)}})
	e.start(t, e.jobs, e.pub)
	e.track(t, "j", "")
	if got := e.next(t); got.subject != "reducto.job.completed.j" {
		t.Fatalf("event %s", got.subject)
	}
	// The event reaches subscribers before the bridge has its PubAck and forgets the job.
	natstest.WaitFor(t, func() bool {
		log.mu.Lock()
		defer log.mu.Unlock()
		return len(log.forgot) > 0
	})
	log.mu.Lock()
	defer log.mu.Unlock()
	if len(log.records) != 2 || len(log.forgot) != 1 || log.forgot[0] != "j" {
		t.Fatalf("records %+v, forgot %v; want 2 records and j forgotten", log.records, log.forgot)
	}
	limited, running := log.records[0], log.records[1]
	if limited.Failure != "rate_limited" || limited.Status != "" || limited.Deliveries != 2 {
		t.Errorf("the 429's record %+v, want failure rate_limited, no status, delivery 2", limited)
	}
	if running.Status != "InProgress" || running.Progress == nil || *running.Progress != 0.5 || running.Failure != "" || running.Deliveries != 3 {
		t.Errorf("the InProgress record %+v, want status InProgress, progress 0.5, delivery 3", running)
	}
	for _, r := range log.records {
		if r.Since.IsZero() || !r.Since.Equal(limited.Since) || !r.NextPoll.After(r.PolledAt) || r.PolledAt.Before(r.Since) {
			t.Errorf("record %+v: want the one track message's time, a next poll after the poll", r)
		}
	}
}
