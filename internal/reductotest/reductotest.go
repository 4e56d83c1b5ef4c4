// Package reductotest provides Jobs, a scripted fake of the Reducto job API (GetJob, CancelJob,
// Submit) for tests of the packages that call it. It records every call with its time and can
// signal calls on channels, so tests wait on signals rather than sleeps. It starts no HTTP
// server: for the wire protocol, see package reducto/reductosim.
package reductotest

import (
	"context"
	"encoding/json"
	"sync"
	"time"

	"github.com/reducto-bridge/reducto-bridge/reducto"
)

// Answer is one scripted reply to GetJob: Err when set, else a copy of Job with its ID set to
// the requested id. The zero Answer is a Pending job.
type Answer struct {
	Job *reducto.Job
	Err error
}

// Status answers a job in status s.
func Status(s reducto.Status) Answer { return Answer{Job: &reducto.Job{Status: s}} }

// Fail answers err.
func Fail(err error) Answer { return Answer{Err: err} }

// Call is one call Jobs received.
type Call struct {
	ID       string           // the job id; empty for Submit
	Endpoint reducto.Endpoint // Submit only
	Body     string           // Submit only: the body as sent
	At       time.Time
}

// Jobs is a fake Reducto job source. The zero value is ready: GetJob answers a Pending job,
// CancelJob succeeds, Submit returns the job id "job-1". Set the fields before the first call.
//
// GetJob answers from the job's script (see [Jobs.Script]), or Default for a job without one;
// GetJobFunc, when set, replaces both. CancelJobFunc and SubmitFunc replace the default
// CancelJob and Submit. Every call is recorded before it is answered.
type Jobs struct {
	// Default answers GetJob for a job that has no script.
	Default Answer
	// GetJobFunc, CancelJobFunc and SubmitFunc, when set, answer the call instead of the
	// script or the defaults.
	GetJobFunc    func(ctx context.Context, id string) (*reducto.Job, error)
	CancelJobFunc func(ctx context.Context, id string) error
	SubmitFunc    func(ctx context.Context, e reducto.Endpoint, body json.RawMessage) (string, error)
	// Polled and Cancelled, when set, receive the id of every GetJob and CancelJob call, sent
	// before the call is answered. A send never blocks the caller: when the channel is full
	// the signal is dropped, so give it a buffer for every signal the test awaits.
	Polled    chan string
	Cancelled chan string

	mu      sync.Mutex
	script  map[string][]Answer
	polls   map[string][]time.Time // GetJob call times by id
	gets    []Call
	cancels []Call
	submits []Call
}

// Script sets the answers GetJob gives for id, one per call; the last one repeats. It may be
// called while the code under test runs, and replaces the script given before; the position
// in the script is the number of GetJob calls for id so far.
func (f *Jobs) Script(id string, answers ...Answer) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.script == nil {
		f.script = map[string][]Answer{}
	}
	f.script[id] = answers
}

// GetJob records the call and answers it.
func (f *Jobs) GetJob(ctx context.Context, id string) (*reducto.Job, error) {
	f.mu.Lock()
	if f.polls == nil {
		f.polls = map[string][]time.Time{}
	}
	now := time.Now()
	n := len(f.polls[id])
	f.polls[id] = append(f.polls[id], now)
	f.gets = append(f.gets, Call{ID: id, At: now})
	s := f.script[id]
	f.mu.Unlock()
	signal(f.Polled, id)
	if f.GetJobFunc != nil {
		return f.GetJobFunc(ctx, id)
	}
	a := f.Default
	if len(s) > 0 {
		a = s[min(n, len(s)-1)]
	}
	if a.Err != nil {
		return nil, a.Err
	}
	j := reducto.Job{Status: reducto.StatusPending}
	if a.Job != nil {
		j = *a.Job
	}
	j.ID = id
	return &j, nil
}

// CancelJob records the call and answers it.
func (f *Jobs) CancelJob(ctx context.Context, id string) error {
	f.mu.Lock()
	f.cancels = append(f.cancels, Call{ID: id, At: time.Now()})
	f.mu.Unlock()
	signal(f.Cancelled, id)
	if f.CancelJobFunc != nil {
		return f.CancelJobFunc(ctx, id)
	}
	return nil
}

// Submit records the call and answers it.
func (f *Jobs) Submit(ctx context.Context, e reducto.Endpoint, body json.RawMessage) (string, error) {
	f.mu.Lock()
	f.submits = append(f.submits, Call{Endpoint: e, Body: string(body), At: time.Now()})
	f.mu.Unlock()
	if f.SubmitFunc != nil {
		return f.SubmitFunc(ctx, e, body)
	}
	return "job-1", nil
}

// Gets, Cancels and Submits return the calls received so far, in order.
func (f *Jobs) Gets() []Call    { return f.recorded(&f.gets) }
func (f *Jobs) Cancels() []Call { return f.recorded(&f.cancels) }
func (f *Jobs) Submits() []Call { return f.recorded(&f.submits) }

// Polls returns the number of GetJob calls for id so far.
func (f *Jobs) Polls(id string) int {
	f.mu.Lock()
	defer f.mu.Unlock()
	return len(f.polls[id])
}

// PollTimes returns the times of the GetJob calls for id so far, in order.
func (f *Jobs) PollTimes(id string) []time.Time {
	f.mu.Lock()
	defer f.mu.Unlock()
	return append([]time.Time(nil), f.polls[id]...)
}

func (f *Jobs) recorded(calls *[]Call) []Call {
	f.mu.Lock()
	defer f.mu.Unlock()
	return append([]Call(nil), *calls...)
}

func signal(c chan string, id string) {
	if c == nil {
		return
	}
	select {
	case c <- id:
	default:
	}
}
