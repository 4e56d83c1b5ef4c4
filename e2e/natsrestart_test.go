package e2e

import (
	"fmt"
	"net/http"
	"testing"
	"time"

	"github.com/reducto-bridge/reducto-bridge/reducto/reductosim"
)

// TestNATSRestart stops the NATS server mid-run (jobs finishing while it is down), checks
// that /readyz answers 503 during the outage and 200 again once the server is back on the
// same port and store directory, without restarting the bridge; nothing may be lost or
// doubled.
func TestNATSRestart(t *testing.T) {
	start := time.Now()
	rng := seeded(t)
	jobs, spread, outages := 200, 2*time.Second, 2
	outage := 2 * time.Second
	if longForm {
		jobs, spread, outages = 1500, 40*time.Second, 6
		outage = 5 * time.Second
	}
	ns := startNATS(t)
	_, js := connect(t, ns.url())
	// Slow answers keep polls in flight, so that some jobs finish while NATS is down and
	// their events wait for it.
	r := startReducto(t, reductosim.Options{Faults: reductosim.Faults{Slow: 0.5, SlowDelay: 400 * time.Millisecond}})
	b := newBridge(t, "bridge", bridgeEnv(ns.url(), r.url))
	b.startReady()
	runs := run{runs: 1}

	// The producer keeps tracking jobs through the outages, retrying until its publishes
	// get a PubAck, as a real producer would.
	w := newWorkload(t, r, js)
	produced := w.produce(t.Context(), rng, jobs, spread)
	var windows [][2]time.Time
	for i := range outages {
		// Jobs keep finishing at a steady rate (durations up to 6s); take NATS away while
		// some are being published and others tracked.
		time.Sleep(time.Duration(300+rng.IntN(700)) * time.Millisecond)
		ns.shutdown()
		runs.outages++
		down := time.Now()
		body := b.waitReadyz(http.StatusServiceUnavailable, 10*time.Second)
		if code, _ := b.get("/healthz"); code != http.StatusOK {
			t.Errorf("outage %d: /healthz: got %d, want 200 (the process runs)", i, code)
		}
		time.Sleep(time.Until(down.Add(outage))) // the outage lasts this long
		if !b.running() {
			t.Fatalf("outage %d: bridge exited with status %d", i, b.exitCode())
		}
		ns.restart()
		windows = append(windows, [2]time.Time{down, time.Now()})
		b.waitReady(30 * time.Second)
		t.Logf("outage %d: /readyz said %q; ready again %s after the restart", i, body, time.Since(down.Add(outage)).Round(10*time.Millisecond))
	}
	if err := <-produced; err != nil {
		t.Fatal(err)
	}
	all := w.all()
	settle(t, js, len(all), 90*time.Second)
	rep := audit(t, js, r, all, nil)
	// The outages must have caught jobs finishing: events the bridge observed while NATS was
	// down, published once it was back.
	during := 0
	for _, es := range rep.events {
		for _, e := range es {
			for _, w := range windows {
				if e.observed.After(w[0]) && e.observed.Before(w[1]) {
					during++
				}
			}
		}
	}
	if during == 0 {
		t.Errorf("no job finished while NATS was down: the outages tested nothing")
	}
	if code := b.term(10 * time.Second); code != 0 {
		t.Errorf("bridge exit status after SIGTERM: got %d, want 0", code)
	}
	rep.figure(t, "nats-restart", runs, start, fmt.Sprintf("outage=%s observed-while-down=%d publish-retries=%d paused=%d", outage, during,
		b.countLog("event publish failed, retrying"), b.countLog("publishing events fails; pausing polls")))
}
