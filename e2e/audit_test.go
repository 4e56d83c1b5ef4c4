package e2e

import (
	"context"
	"encoding/json"
	"fmt"
	"math/rand/v2"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/reducto-bridge/reducto-bridge/reducto/reductosim"
)

// Stream names and subjects of the contract, with the default prefix.
const (
	trackStream  = "REDUCTO_TRACK"
	eventsStream = "REDUCTO_EVENTS"
	eventsAll    = "reducto.job.>"
)

// Event kinds.
const (
	completed = "completed"
	failed    = "failed"
	cancelled = "cancelled"
	expired   = "expired"
)

// job is one tracked job and the terminal event it must end with.
type job struct {
	id      string
	kind    string   // the expected kind
	errs    []string // error names a failed event may carry; empty means any
	tracked time.Time
	seq     uint64 // the track message's stream sequence
}

// workload creates jobs in the simulator and tracks them through JetStream, as a producer
// would; it remembers what each job must end with.
type workload struct {
	t  testing.TB
	r  *reducto
	js jetstream.JetStream

	mu     sync.Mutex
	jobs   []*job
	timers []*time.Timer
}

func newWorkload(t testing.TB, r *reducto, js jetstream.JetStream) *workload {
	w := &workload{t: t, r: r, js: js}
	t.Cleanup(func() {
		w.mu.Lock()
		defer w.mu.Unlock()
		for _, tm := range w.timers {
			tm.Stop()
		}
	})
	return w
}

// add creates a job with spec and tracks it; the job must end with an event of kind (and,
// for failed, one of errs when given).
func (w *workload) add(ctx context.Context, spec reductosim.JobSpec, kind string, errs ...string) (*job, error) {
	return w.addWebhook(ctx, spec, "", kind, errs...)
}

// addWebhook is add for a job that announces its end by a direct webhook to hookURL, tracked
// with {"webhook": true} so that its polls are only the safety net. An empty hookURL is add.
func (w *workload) addWebhook(ctx context.Context, spec reductosim.JobSpec, hookURL, kind string, errs ...string) (*job, error) {
	var opts []reductosim.CreateOption
	if hookURL != "" {
		opts = append(opts, reductosim.WithDirectWebhook(hookURL))
	}
	j := &job{id: w.r.sim.Create(spec, opts...), kind: kind, errs: errs}
	w.mu.Lock()
	n := len(w.jobs)
	w.jobs = append(w.jobs, j)
	w.mu.Unlock()
	body := fmt.Appendf(nil, `{"metadata":{"e2e":%d},"webhook":%t}`, n, hookURL != "")
	// A JetStream publish gets a PubAck once the job is stored: retry until it does (the
	// NATS scenarios may have a server down or a leader being elected).
	deadline := time.Now().Add(30 * time.Second)
	var seq uint64
	for {
		pctx, cancel := context.WithTimeout(ctx, 2*time.Second)
		ack, err := w.js.Publish(pctx, "reducto.track."+j.id, body)
		cancel()
		if err == nil {
			seq = ack.Sequence
			break
		}
		if ctx.Err() != nil || time.Now().After(deadline) {
			return nil, fmt.Errorf("track job %s: %w", j.id, err)
		}
		time.Sleep(50 * time.Millisecond)
	}
	w.mu.Lock()
	j.tracked, j.seq = time.Now(), seq
	w.mu.Unlock()
	return j, nil
}

// after runs f after d, unless the test has ended.
func (w *workload) after(d time.Duration, f func()) {
	w.mu.Lock()
	defer w.mu.Unlock()
	w.timers = append(w.timers, time.AfterFunc(d, f))
}

// addMixed adds a job of a random kind and duration: most complete within 3s (some with URL
// results), some fail, some are cancelled mid-run, some take up to 6s.
func (w *workload) addMixed(ctx context.Context, rng *rand.Rand) (*job, error) {
	uniform := func(lo, hi time.Duration) time.Duration { return lo + time.Duration(rng.Int64N(int64(hi-lo))) }
	spec := reductosim.JobSpec{Queue: uniform(0, 300*time.Millisecond), Duration: uniform(100*time.Millisecond, 3*time.Second)}
	switch r := rng.Float64(); {
	case r < 0.70:
		return w.add(ctx, spec, completed)
	case r < 0.75:
		spec.Outcome = reductosim.OutcomeCompleteURL
		return w.add(ctx, spec, completed)
	case r < 0.87:
		spec.Outcome = reductosim.OutcomeFail
		return w.add(ctx, spec, failed, reductosim.DefaultErrorName)
	case r < 0.94:
		spec.Outcome = reductosim.OutcomeNever
		j, err := w.add(ctx, spec, cancelled)
		if err == nil {
			w.after(uniform(300*time.Millisecond, 3*time.Second), func() { w.r.sim.Cancel(j.id) })
		}
		return j, err
	default:
		spec.Duration = uniform(3*time.Second, 6*time.Second)
		return w.add(ctx, spec, completed)
	}
}

// produce adds n mixed jobs spread evenly over d, in its own goroutine; the returned channel
// yields nil or the first error once it is done.
func (w *workload) produce(ctx context.Context, rng *rand.Rand, n int, d time.Duration) <-chan error {
	done := make(chan error, 1)
	rng = rand.New(rand.NewPCG(rng.Uint64(), rng.Uint64())) // the caller keeps using its own
	go func() {
		start := time.Now()
		for i := range n {
			if _, err := w.addMixed(ctx, rng); err != nil {
				done <- err
				return
			}
			// Pacing, not synchronisation: job i is tracked about i*d/n after the start.
			if wait := time.Until(start.Add(time.Duration(i+1) * d / time.Duration(n))); wait > 0 {
				select {
				case <-ctx.Done():
					done <- ctx.Err()
					return
				case <-time.After(wait):
				}
			}
		}
		done <- nil
	}()
	return done
}

func (w *workload) all() []*job {
	w.mu.Lock()
	defer w.mu.Unlock()
	return slices.Clone(w.jobs)
}

func ids(jobs []*job) []string {
	out := make([]string, len(jobs))
	for i, j := range jobs {
		out[i] = j.id
	}
	return out
}

// settle waits until the events stream holds at least n events and the track stream is
// empty (every track message acked), polling the stream counts since nothing signals it. It
// gives up at the deadline, or when the track stream has stayed empty for 5s with events
// still missing (a correct bridge acks only after the event, so they will never come); the
// audit then reports what is missing.
func settle(t testing.TB, js jetstream.JetStream, n int, timeout time.Duration) {
	t.Helper()
	ctx := t.Context()
	deadline := time.Now().Add(timeout)
	var emptySince time.Time
	var events, track uint64
	for {
		ev, err1 := streamMsgs(ctx, js, eventsStream)
		tr, err2 := streamMsgs(ctx, js, trackStream)
		if err1 == nil && err2 == nil {
			events, track = ev, tr
			if events >= uint64(n) && track == 0 {
				return
			}
			if track == 0 {
				if emptySince.IsZero() {
					emptySince = time.Now()
				} else if time.Since(emptySince) > 5*time.Second {
					t.Errorf("track stream empty but only %d events for %d jobs", events, n)
					return
				}
			} else {
				emptySince = time.Time{}
			}
		}
		if time.Now().After(deadline) {
			t.Errorf("not settled within %s: %d events for %d jobs, %d track messages left", timeout, events, n, track)
			return
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// event is one stored terminal event.
type event struct {
	seq      uint64
	kind     string
	jobID    string
	errName  string
	result   bool      // the event carries a result or a result_ref
	at       time.Time // when the stream stored it
	observed time.Time // when the bridge saw the terminal state (observed_at)
}

// readEvents reads every message of REDUCTO_EVENTS with an ordered consumer.
func readEvents(t testing.TB, js jetstream.JetStream) []event {
	t.Helper()
	ctx, cancel := context.WithTimeout(t.Context(), 60*time.Second)
	defer cancel()
	total, err := streamMsgs(ctx, js, eventsStream)
	if err != nil {
		t.Fatalf("events stream: %v", err)
	}
	cons, err := js.OrderedConsumer(ctx, eventsStream, jetstream.OrderedConsumerConfig{})
	if err != nil {
		t.Fatalf("ordered consumer: %v", err)
	}
	var out []event
	for uint64(len(out)) < total {
		batch, err := cons.Fetch(1000, jetstream.FetchMaxWait(2*time.Second))
		if err != nil {
			t.Fatalf("fetch events (%d of %d read): %v", len(out), total, err)
		}
		for m := range batch.Messages() {
			out = append(out, decodeEvent(t, m))
		}
		if err := batch.Error(); err != nil && ctx.Err() != nil {
			t.Fatalf("fetch events (%d of %d read): %v", len(out), total, err)
		}
	}
	return out
}

func decodeEvent(t testing.TB, m jetstream.Msg) event {
	var ev event
	if md, err := m.Metadata(); err == nil {
		ev.seq, ev.at = md.Sequence.Stream, md.Timestamp
	}
	// reducto.job.<kind>.<job_id>: job ids never contain a dot.
	parts := strings.Split(m.Subject(), ".")
	if len(parts) == 4 {
		ev.kind, ev.jobID = parts[2], parts[3]
	} else {
		t.Errorf("event subject %q is not reducto.job.<kind>.<id>", m.Subject())
	}
	var body struct {
		JobID string `json:"job_id"`
		Kind  string `json:"kind"`
		Error *struct {
			Name string `json:"name"`
		} `json:"error"`
		ObservedAt time.Time       `json:"observed_at"`
		Result     json.RawMessage `json:"result"`
		ResultRef  json.RawMessage `json:"result_ref"`
	}
	if err := json.Unmarshal(m.Data(), &body); err != nil {
		t.Errorf("event %s: body is not JSON: %v", m.Subject(), err)
	}
	if body.JobID != ev.jobID || body.Kind != ev.kind {
		t.Errorf("event %s: body says job %q kind %q", m.Subject(), body.JobID, body.Kind)
	}
	if body.Error != nil {
		ev.errName = body.Error.Name
	}
	ev.observed = body.ObservedAt
	ev.result = len(body.Result) > 0 || len(body.ResultRef) > 0
	return ev
}

// report is the outcome of an audit.
type report struct {
	jobs, lost, doubled, wrong, unknown int
	accepted                            int     // events of another kind the scenario accepted
	getsMean                            float64 // GET /job answered by the simulator, per job
	getsMax                             int64
	attemptsMean                        float64 // GET /job requests seen by the recorder (faults and 429s included)
	// moved is how many track messages the bridges published beyond one per job: moves of
	// jobs to the queue's tail while the budget bound (0: every job waited with NakWithDelay).
	moved  int64
	events map[string][]event
}

// audit checks that every job has exactly one terminal event of the expected kind, and that
// the stream holds no event for a job nobody tracked. accept, when not nil, may accept an
// event of another kind (a scenario where a fault can legitimately change the outcome).
func audit(t testing.TB, js jetstream.JetStream, r *reducto, jobs []*job, accept func(*job, event) bool) report {
	t.Helper()
	evs := readEvents(t, js)
	rep := report{jobs: len(jobs), events: make(map[string][]event)}
	if s, err := js.Stream(t.Context(), trackStream); err == nil {
		rep.moved = int64(s.CachedInfo().State.LastSeq) - int64(len(jobs))
	}
	for _, ev := range evs {
		rep.events[ev.jobID] = append(rep.events[ev.jobID], ev)
	}
	stats := r.sim.Stats()
	var problems []string
	known := make(map[string]bool, len(jobs))
	var gets, attempts int64
	for _, j := range jobs {
		known[j.id] = true
		g := stats.Jobs[j.id].Gets
		gets += g
		rep.getsMax = max(rep.getsMax, g)
		attempts += int64(len(r.rec.of(j.id)))
		es := rep.events[j.id]
		switch {
		case len(es) == 0:
			rep.lost++
			problems = append(problems, fmt.Sprintf("LOST job %s (want %s): no event", j.id, j.kind))
			continue
		case len(es) > 1:
			rep.doubled++
			var kinds []string
			for _, e := range es {
				kinds = append(kinds, fmt.Sprintf("%s@seq%d", e.kind, e.seq))
			}
			problems = append(problems, fmt.Sprintf("DOUBLED job %s: %d events %v", j.id, len(es), kinds))
		}
		for _, e := range es {
			ok := e.kind == j.kind && (len(j.errs) == 0 || slices.Contains(j.errs, e.errName))
			if !ok && accept != nil && accept(j, e) {
				ok = true
				rep.accepted++
			}
			if !ok {
				rep.wrong++
				problems = append(problems, fmt.Sprintf("WRONG job %s: event %s (error %q), want %s %v", j.id, e.kind, e.errName, j.kind, j.errs))
			}
		}
	}
	for id := range rep.events {
		if !known[id] {
			rep.unknown++
			problems = append(problems, "UNKNOWN event for untracked job "+id)
		}
	}
	if len(jobs) > 0 {
		rep.getsMean = float64(gets) / float64(len(jobs))
		rep.attemptsMean = float64(attempts) / float64(len(jobs))
	}
	if len(problems) > 0 {
		shown := problems[:min(len(problems), 25)]
		t.Errorf("audit: %d jobs, %d lost, %d doubled, %d wrong kind, %d unknown:\n  %s", len(jobs), rep.lost, rep.doubled, rep.wrong, rep.unknown, strings.Join(shown, "\n  "))
	}
	return rep
}

// run counts what a scenario did to the bridges and NATS.
type run struct {
	runs    int // bridge processes started
	kills   int // kill -9
	crashes int // injected crashes (exit 86)
	outages int // NATS servers or nodes stopped
}

// figure logs the scenario's one-line summary.
func (rep report) figure(t testing.TB, scenario string, r run, start time.Time, extra string) {
	t.Helper()
	t.Logf("FIGURE %s: jobs=%d runs=%d kills=%d crashes=%d outages=%d lost=%d doubled=%d wrong=%d accepted=%d GETs/job mean=%.2f max=%d (requests/job %.2f) moved=%d time=%s %s",
		scenario, rep.jobs, r.runs, r.kills, r.crashes, r.outages, rep.lost, rep.doubled, rep.wrong, rep.accepted,
		rep.getsMean, rep.getsMax, rep.attemptsMean, rep.moved, time.Since(start).Round(100*time.Millisecond), extra)
}

// coreCounter counts the events a plain core-NATS subscriber sees, per job.
type coreCounter struct {
	mu     sync.Mutex
	counts map[string]int
	notify func(jobID string)
}

func subscribeEvents(t testing.TB, nc *nats.Conn, notify func(jobID string)) *coreCounter {
	t.Helper()
	c := &coreCounter{counts: make(map[string]int), notify: notify}
	sub, err := nc.Subscribe(eventsAll, func(m *nats.Msg) {
		parts := strings.Split(m.Subject, ".")
		if len(parts) != 4 {
			return
		}
		c.mu.Lock()
		c.counts[parts[3]]++
		c.mu.Unlock()
		if c.notify != nil {
			c.notify(parts[3])
		}
	})
	if err != nil {
		t.Fatalf("subscribe %s: %v", eventsAll, err)
	}
	if err := sub.SetPendingLimits(-1, -1); err != nil {
		t.Fatalf("pending limits: %v", err)
	}
	if err := nc.Flush(); err != nil {
		t.Fatalf("flush: %v", err)
	}
	t.Cleanup(func() { _ = sub.Unsubscribe() })
	return c
}

// repeats returns the jobs a core subscriber saw more than once.
func (c *coreCounter) repeats() []string {
	c.mu.Lock()
	defer c.mu.Unlock()
	var out []string
	for id, n := range c.counts {
		if n > 1 {
			out = append(out, fmt.Sprintf("%s x%d", id, n))
		}
	}
	slices.Sort(out)
	return out
}

// getsAfter returns the first GET of a job at or after t (ok false when there is none).
func getsAfter(gs []getRecord, t time.Time) (getRecord, bool) {
	for _, g := range gs {
		if !g.at.Before(t) {
			return g, true
		}
	}
	return getRecord{}, false
}
