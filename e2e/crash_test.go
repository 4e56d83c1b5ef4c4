package e2e

import (
	"fmt"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/reducto-bridge/reducto-bridge/reducto/reductosim"
)

// TestCrashKill kills the bridge with SIGKILL several times and restarts it: every other kill
// at a random moment, the others in a burst of completions (many jobs finishing at the same
// instant, triggered by the burst's first events), where publishes and acks are in flight.
// Every job must get exactly one event, and a plain core subscriber must see each event once
// (the bridge looks for an existing event before publishing).
func TestCrashKill(t *testing.T) {
	start := time.Now()
	rng := seeded(t)
	jobs, spread, kills := 200, 8*time.Second, 6
	if longForm {
		jobs, spread, kills = 2000, 60*time.Second, 25
	}
	ns := startNATS(t)
	nc, js := connect(t, ns.url())
	r := startReducto(t, reductosim.Options{})
	env := bridgeEnv(ns.url(), r.url)
	// A dedup window shorter than AckWait: a job redelivered after a crash is published
	// again long after its first publish, so only the bridge's own checks (the lookup and the
	// expected last subject sequence) can keep it to one event.
	env["BRIDGE_DUPLICATE_WINDOW"] = "500ms"
	// A budget that lets a burst finish as fast as the machine can, so that many jobs are
	// between their poll and their ack at the kill.
	env["BRIDGE_RATE_LIMIT"] = "1000"
	env["BRIDGE_RATE_LIMIT_ALL"] = "2000"
	b := newBridge(t, "bridge", env)
	b.startReady()
	runs := run{runs: 1}

	// Bursts: many jobs finishing at the same instant; a kill fires on a burst's 3rd event.
	type burst struct {
		fired chan struct{}
		seen  atomic.Int32
		once  sync.Once
	}
	var (
		burstMu sync.Mutex
		burstOf = make(map[string]*burst)
	)
	core := subscribeEvents(t, nc, func(id string) {
		burstMu.Lock()
		bu := burstOf[id]
		burstMu.Unlock()
		if bu != nil && bu.seen.Add(1) == 3 {
			bu.once.Do(func() { close(bu.fired) })
		}
	})
	w := newWorkload(t, r, js)
	burstSize := min(jobs/4, 100)
	newBurst := func() *burst {
		bu := &burst{fired: make(chan struct{})}
		for range burstSize {
			j, err := w.add(t.Context(), reductosim.JobSpec{Duration: 2500 * time.Millisecond}, completed)
			if err != nil {
				t.Fatal(err)
			}
			burstMu.Lock()
			burstOf[j.id] = bu
			burstMu.Unlock()
		}
		return bu
	}
	produced := w.produce(t.Context(), rng, jobs, spread)
	next := newBurst()
	bursts := 1
	for i := range kills {
		if i%2 == 1 {
			select {
			case <-next.fired:
			case <-time.After(30 * time.Second):
				t.Fatal("a burst's first events did not come within 30s")
			}
		} else {
			time.Sleep(time.Duration(200+rng.IntN(1300)) * time.Millisecond)
		}
		b.kill()
		runs.kills++
		if i%2 == 1 && i+2 <= kills {
			next = newBurst() // for the next burst-triggered kill
			bursts++
		}
		time.Sleep(time.Duration(rng.IntN(300)) * time.Millisecond) // down for a moment
		b.startReady()
		runs.runs++
	}
	if err := <-produced; err != nil {
		t.Fatal(err)
	}
	all := w.all()
	settle(t, js, len(all), 90*time.Second)
	rep := audit(t, js, r, all, nil)
	if reps := core.repeats(); len(reps) > 0 {
		t.Errorf("a core subscriber saw %d events more than once: %v", len(reps), reps[:min(len(reps), 10)])
	}
	if code := b.term(10 * time.Second); code != 0 {
		t.Errorf("bridge exit status after SIGTERM: got %d, want 0", code)
	}
	rep.figure(t, "crash-kill", runs, start, fmt.Sprintf("bursts=%d of %d jobs", bursts, burstSize))
}

// TestCrashAfterPublish runs the bridge with the crash failpoint: a tenth of the event
// publishes kill the process after the PubAck and before the track ack, the worst moment.
// The test restarts it each time it dies with status 86. Every job must still get exactly
// one event.
func TestCrashAfterPublish(t *testing.T) {
	start := time.Now()
	rng := seeded(t)
	jobs, spread, minCrashes := 100, 3*time.Second, 2
	if longForm {
		jobs, spread, minCrashes = 1000, 30*time.Second, 20
	}
	ns := startNATS(t)
	nc, js := connect(t, ns.url())
	r := startReducto(t, reductosim.Options{})
	env := bridgeEnv(ns.url(), r.url)
	env["BRIDGE_DUPLICATE_WINDOW"] = "500ms"
	env["BRIDGE_TEST_CRASH_AFTER_PUBLISH"] = "0.1"
	b := newBridge(t, "bridge", env)
	b.startReady()
	core := subscribeEvents(t, nc, nil)

	sup := superviseCrashes(t, b)
	w := newWorkload(t, r, js)
	if err := <-w.produce(t.Context(), rng, jobs, spread); err != nil {
		t.Fatal(err)
	}
	all := w.all()
	settle(t, js, len(all), 120*time.Second)
	got := sup.stop()
	rep := audit(t, js, r, all, nil)
	if reps := core.repeats(); len(reps) > 0 {
		t.Errorf("a core subscriber saw %d events more than once: %v", len(reps), reps[:min(len(reps), 10)])
	}
	if got.crashes < minCrashes {
		t.Errorf("injected crashes: got %d, want at least %d (is the failpoint wired?)", got.crashes, minCrashes)
	}
	if n := b.countLog("injected crash after publish, before ack"); n != got.crashes {
		t.Errorf("crash log lines: got %d, want %d (one per exit 86)", n, got.crashes)
	}
	rep.figure(t, "crash-after-publish", got, start, "p=0.1")
}

// supervisor restarts a bridge whenever it dies of the injected crash (exit 86); any other
// exit fails the test.
type supervisor struct {
	mu   sync.Mutex
	runs run
	quit chan struct{}
	done chan struct{}
	once sync.Once
}

// superviseCrashes starts a supervisor for b; its stop runs at cleanup, before the bridge's
// own cleanup kills the process.
func superviseCrashes(t *testing.T, b *bridgeProc) *supervisor {
	s := &supervisor{runs: run{runs: 1}, quit: make(chan struct{}), done: make(chan struct{})}
	t.Cleanup(func() { s.stop() })
	go func() {
		defer close(s.done)
		for {
			select {
			case <-s.quit:
				return
			case <-b.exited():
			}
			if code := b.exitCode(); code != crashExitCode {
				t.Errorf("bridge exited with status %d, want only injected crashes (%d)", code, crashExitCode)
				return
			}
			s.mu.Lock()
			s.runs.crashes++
			s.runs.runs++
			s.mu.Unlock()
			if err := b.launch(); err != nil {
				t.Error(err)
				return
			}
		}
	}()
	return s
}

// stop ends the supervision and returns what it counted.
func (s *supervisor) stop() run {
	s.once.Do(func() { close(s.quit) })
	<-s.done
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.runs
}
