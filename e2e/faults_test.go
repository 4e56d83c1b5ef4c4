package e2e

import (
	"context"
	"fmt"
	"math/rand/v2"
	"net/http"
	"testing"
	"time"

	"github.com/reducto-bridge/reducto-bridge/reducto/reductosim"
)

// faultCase is one Reducto misbehaviour, run on its own NATS server, simulator and bridge.
type faultCase struct {
	name string
	sim  reductosim.Options
	env  map[string]string // bridge variables on top of bridgeEnv
	jobs int               // mixed jobs (see workload.addMixed)
	// add, when set, adds the case's own jobs instead.
	add func(ctx context.Context, w *workload, rng *rand.Rand) error
	// on and off, when set, alternate while the jobs run: a fault burst, then quiet.
	on, off         reductosim.Faults
	onFor, offFor   time.Duration
	accept          func(r *reducto) func(*job, event) bool
	check           func(t *testing.T, r *reducto, all []*job, rep report)
	faultsSeen      func(st reductosim.Stats) int64 // must be > 0: the fault did happen
	faultsSeenLabel string
}

// TestReductoFaults runs the bridge against a simulator that misbehaves: bursts of
// 500/502/503, code-less 429s, [CODE 2000] 429s with and without Retry-After, malformed
// bodies, answers slower than BRIDGE_HTTP_TIMEOUT, jobs that never finish (expired) and jobs
// deleted mid-flight (404 or 409, then 410). Every job must end with exactly one event of the
// kind its simulated outcome calls for.
func TestReductoFaults(t *testing.T) {
	n, heavy := 60, 300
	if longForm {
		n, heavy = 400, 1000
	}
	status := func(codes ...int) func(reductosim.Stats) int64 {
		return func(st reductosim.Stats) int64 {
			var s int64
			for _, c := range codes {
				s += st.Statuses[c]
			}
			return s
		}
	}
	cases := []faultCase{
		{
			name: "502-503-bursts", jobs: n,
			on: reductosim.Faults{Err502: 0.35, Err503: 0.35}, onFor: 400 * time.Millisecond, offFor: 400 * time.Millisecond,
			faultsSeen: status(502, 503), faultsSeenLabel: "502+503",
		},
		{
			// A 500 on GET /job says nothing about the job: with 40% of answers 500 and 5%
			// 502/503/504, no job may end other than as simulated, and every completed
			// event carries its result.
			name: "5xx-heavy", jobs: heavy,
			on:         reductosim.Faults{Err500: 0.40, Err502: 0.02, Err503: 0.02, Err504: 0.01},
			onFor:      time.Hour,
			check:      checkResults,
			faultsSeen: status(500), faultsSeenLabel: "500",
		},
		{
			// Every answer about these jobs has optional fields of unexpected JSON types
			// (num_pages 3.0, duration "12.5", progress "50", error.code 400.0): every job
			// still ends as simulated, with its result, rather than being unreadable until
			// it expires.
			name:       "odd-types",
			add:        addOddTypes(n),
			check:      checkResults,
			faultsSeen: func(st reductosim.Stats) int64 { return st.OddTypes }, faultsSeenLabel: "odd-typed",
		},
		{
			name: "shed-429", jobs: n,
			on: reductosim.Faults{Shed429: 0.5}, onFor: 600 * time.Millisecond, offFor: 900 * time.Millisecond,
			faultsSeen: func(st reductosim.Stats) int64 { return st.Shed429 }, faultsSeenLabel: "code-less 429",
		},
		{
			name: "code-2000", jobs: n,
			sim:        reductosim.Options{JobRateLimit: 40, RateBurst: 10},
			faultsSeen: func(st reductosim.Stats) int64 { return st.RateLimited2000 }, faultsSeenLabel: "[CODE 2000] 429",
		},
		{
			name: "code-2000-retry-after", jobs: n,
			sim:        reductosim.Options{JobRateLimit: 40, RateBurst: 10, RetryAfter: time.Second},
			check:      checkRetryAfter(time.Second),
			faultsSeen: func(st reductosim.Stats) int64 { return st.RateLimited2000 }, faultsSeenLabel: "[CODE 2000] 429 with Retry-After",
		},
		{
			name: "malformed", jobs: n,
			on: reductosim.Faults{Malformed: 0.3}, onFor: 500 * time.Millisecond, offFor: 500 * time.Millisecond,
			faultsSeen: func(st reductosim.Stats) int64 { return st.Faults }, faultsSeenLabel: "malformed",
		},
		{
			name: "slow", jobs: n,
			on: reductosim.Faults{Slow: 0.3, SlowDelay: httpTimeout * 3 / 2}, onFor: time.Hour,
			faultsSeen: status(reductosim.StatusClientClosed), faultsSeenLabel: "timed out (499)",
		},
		{
			name: "never-and-deleted",
			env:  map[string]string{"BRIDGE_JOB_TTL": "3s"},
			add:  addNeverAndDeleted,
			faultsSeen: func(st reductosim.Stats) int64 {
				return st.Statuses[http.StatusNotFound] + st.Statuses[http.StatusConflict] + st.Statuses[http.StatusGone]
			},
			faultsSeenLabel: "404/409/410",
		},
	}
	for _, fc := range cases {
		t.Run(fc.name, func(t *testing.T) {
			t.Parallel()
			runFaultCase(t, fc)
		})
	}
}

func runFaultCase(t *testing.T, fc faultCase) {
	start := time.Now()
	rng := seeded(t)
	ns := startNATS(t)
	_, js := connect(t, ns.url())
	r := startReducto(t, fc.sim)
	env := bridgeEnv(ns.url(), r.url)
	for k, v := range fc.env {
		env[k] = v
	}
	b := newBridge(t, "bridge", env)
	b.startReady()

	// The burster alternates the fault with quiet periods until the jobs are settled.
	stop := make(chan struct{})
	done := make(chan struct{})
	go func() {
		defer close(done)
		if fc.onFor == 0 {
			return
		}
		defer r.sim.SetFaults(reductosim.Faults{})
		for {
			r.sim.SetFaults(fc.on)
			select {
			case <-stop:
				return
			case <-time.After(fc.onFor):
			}
			r.sim.SetFaults(fc.off)
			select {
			case <-stop:
				return
			case <-time.After(fc.offFor):
			}
		}
	}()
	stopBurster := func() {
		select {
		case <-stop:
		default:
			close(stop)
		}
		<-done
	}
	t.Cleanup(stopBurster)

	w := newWorkload(t, r, js)
	if fc.add != nil {
		if err := fc.add(t.Context(), w, rng); err != nil {
			t.Fatal(err)
		}
	} else if err := <-w.produce(t.Context(), rng, fc.jobs, 2*time.Second); err != nil {
		t.Fatal(err)
	}
	all := w.all()
	settle(t, js, len(all), 120*time.Second)
	stopBurster()
	var accept func(*job, event) bool
	if fc.accept != nil {
		accept = fc.accept(r)
	}
	rep := audit(t, js, r, all, accept)
	st := r.sim.Stats()
	seen := fc.faultsSeen(st)
	if seen == 0 {
		t.Errorf("no %s answer was given: the case tested nothing", fc.faultsSeenLabel)
	}
	if fc.check != nil {
		fc.check(t, r, all, rep)
	}
	if code := b.term(10 * time.Second); code != 0 {
		t.Errorf("bridge exit status after SIGTERM: got %d, want 0", code)
	}
	kinds := map[string]int{}
	for _, es := range rep.events {
		for _, e := range es {
			kinds[e.kind]++
		}
	}
	rep.figure(t, "faults/"+fc.name, run{runs: 1}, start, fmt.Sprintf("%s answers=%d events=%v statuses=%v", fc.faultsSeenLabel, seen, kinds, st.Statuses))
}

// checkResults checks that every completed event carries its result (inline or by
// reference).
func checkResults(t *testing.T, _ *reducto, all []*job, rep report) {
	missing := 0
	for _, j := range all {
		for _, e := range rep.events[j.id] {
			if e.kind == completed && !e.result {
				missing++
			}
		}
	}
	if missing > 0 {
		t.Errorf("%d completed events without a result", missing)
	}
}

// addOddTypes adds n jobs whose every GET /job answer has optional fields of unexpected JSON
// types: most complete, a sixth fail (their error code written 400.0).
func addOddTypes(n int) func(ctx context.Context, w *workload, rng *rand.Rand) error {
	return func(ctx context.Context, w *workload, rng *rand.Rand) error {
		for i := range n {
			spec := reductosim.JobSpec{Duration: time.Duration(100+rng.IntN(2000)) * time.Millisecond, OddTypes: true}
			kind, errs := completed, []string(nil)
			if i%6 == 5 {
				spec.Outcome, kind, errs = reductosim.OutcomeFail, failed, []string{reductosim.DefaultErrorName}
			}
			if _, err := w.add(ctx, spec, kind, errs...); err != nil {
				return err
			}
		}
		return nil
	}
}

// checkRetryAfter checks that after a 429 carrying Retry-After, the job's next GET waited at
// least that long (a small tolerance for timer slack).
func checkRetryAfter(ra time.Duration) func(t *testing.T, r *reducto, all []*job, rep report) {
	return func(t *testing.T, r *reducto, all []*job, _ report) {
		floor := ra - 50*time.Millisecond
		var early []string
		n := 0
		for _, j := range all {
			gs := r.rec.of(j.id)
			for i := 0; i+1 < len(gs); i++ {
				if gs[i].status != http.StatusTooManyRequests {
					continue
				}
				n++
				if gap := gs[i+1].at.Sub(gs[i].at); gap < floor {
					early = append(early, fmt.Sprintf("%s: next GET %s after a 429", j.id, gap.Round(time.Millisecond)))
				}
			}
		}
		if len(early) > 0 {
			t.Errorf("%d of %d polls after a 429 with Retry-After %s came sooner:\n  %v", len(early), n, ra, early[:min(len(early), 15)])
		}
	}
}

// addNeverAndDeleted adds jobs that never finish (expired after BRIDGE_JOB_TTL), jobs deleted
// while running (404 or 409 for a while, then 410: failed, NOT_FOUND or JOB_DELETED), and
// ordinary ones finishing well within the TTL.
func addNeverAndDeleted(ctx context.Context, w *workload, rng *rand.Rand) error {
	uniform := func(lo, hi time.Duration) time.Duration { return lo + time.Duration(rng.Int64N(int64(hi-lo))) }
	scale := 1
	if longForm {
		scale = 5
	}
	type group struct {
		count int
		spec  func() reductosim.JobSpec
		kind  string
		errs  []string
		after func(j *job)
	}
	groups := []group{
		{count: 8, spec: func() reductosim.JobSpec { return reductosim.JobSpec{Outcome: reductosim.OutcomeNever} }, kind: expired},
		{count: 8, spec: func() reductosim.JobSpec { return reductosim.JobSpec{Duration: time.Minute} }, kind: failed,
			errs: []string{"NOT_FOUND", "JOB_DELETED"},
			after: func(j *job) {
				w.after(uniform(300*time.Millisecond, 1200*time.Millisecond), func() { w.r.sim.Delete(j.id, http.StatusNotFound, 150*time.Millisecond) })
			}},
		{count: 8, spec: func() reductosim.JobSpec { return reductosim.JobSpec{Duration: time.Minute} }, kind: failed,
			errs: []string{"JOB_DELETED"},
			after: func(j *job) {
				w.after(uniform(300*time.Millisecond, 1200*time.Millisecond), func() { w.r.sim.Delete(j.id, http.StatusConflict, 300*time.Millisecond) })
			}},
		{count: 16, spec: func() reductosim.JobSpec {
			return reductosim.JobSpec{Duration: uniform(100*time.Millisecond, 1500*time.Millisecond)}
		}, kind: completed},
		{count: 4, spec: func() reductosim.JobSpec {
			return reductosim.JobSpec{Duration: uniform(100*time.Millisecond, 1500*time.Millisecond), Outcome: reductosim.OutcomeFail}
		}, kind: failed, errs: []string{reductosim.DefaultErrorName}},
	}
	var order []int
	for gi, g := range groups {
		for range g.count * scale {
			order = append(order, gi)
		}
	}
	rng.Shuffle(len(order), func(i, j int) { order[i], order[j] = order[j], order[i] })
	for _, gi := range order {
		g := groups[gi]
		j, err := w.add(ctx, g.spec(), g.kind, g.errs...)
		if err != nil {
			return err
		}
		if g.after != nil {
			g.after(j)
		}
	}
	return nil
}
