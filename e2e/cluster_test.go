package e2e

import (
	"context"
	"fmt"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/reducto-bridge/reducto-bridge/reducto/reductosim"
)

// TestClusterLeaderLoss runs two bridges on a three-node JetStream cluster with streams of
// three replicas, and shuts down the node leading REDUCTO_EVENTS mid-run (in the long form,
// it then restarts it and takes down each stream's leader in turn). Nothing may be lost or
// doubled.
func TestClusterLeaderLoss(t *testing.T) {
	start := time.Now()
	rng := seeded(t)
	jobs, spread, rounds := 150, 3*time.Second, 1
	if longForm {
		jobs, spread, rounds = 1200, 30*time.Second, 4
	}
	c := startCluster(t, 3)
	nc, js := connect(t, c.urls())
	// The cluster elects its JetStream meta leader seconds after start (no signal): wait for
	// it here, so that the bridges' stream set-up does not sit in 10s timeouts meanwhile.
	deadline := time.Now().Add(60 * time.Second)
	for {
		ctx, cancel := context.WithTimeout(t.Context(), time.Second)
		_, err := js.AccountInfo(ctx)
		cancel()
		if err == nil {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("jetstream on the cluster not available within 60s: %v", err)
		}
		time.Sleep(100 * time.Millisecond)
	}
	core := subscribeEvents(t, nc, nil)
	r := startReducto(t, reductosim.Options{Faults: reductosim.Faults{Slow: 0.2, SlowDelay: 200 * time.Millisecond}})
	var bs []*bridgeProc
	for i := range 2 {
		env := bridgeEnv(c.urls(), r.replicaURL(i+1))
		env["BRIDGE_STREAM_REPLICAS"] = "3"
		b := newBridge(t, "replica"+strconv.Itoa(i+1), env)
		// One at a time: a replica looking a stream up while the other creates it (and its
		// leader is being elected) waits out a 10s set-up timeout; and concurrent set-ups
		// trip a data race inside nats-server (see testReplicas).
		b.start()
		b.waitReady(90 * time.Second)
		bs = append(bs, b)
	}
	runs := run{runs: 2}
	for _, name := range []string{trackStream, eventsStream} {
		st, err := js.Stream(t.Context(), name)
		if err != nil {
			t.Fatalf("stream %s: %v", name, err)
		}
		if got := st.CachedInfo().Config.Replicas; got != 3 {
			t.Errorf("stream %s replicas: got %d, want 3", name, got)
		}
	}

	w := newWorkload(t, r, js)
	produced := w.produce(t.Context(), rng, jobs, spread)
	var log []string
	var firstDown time.Time
	for i := range rounds {
		// Mid-run: some events published, many jobs outstanding.
		time.Sleep(time.Duration(1000+rng.IntN(1000)) * time.Millisecond)
		stream := eventsStream
		if i%2 == 1 {
			stream = trackStream
		}
		leader := waitLeader(t, js, stream, "")
		node := c.node(leader)
		if node == nil {
			t.Fatalf("stream %s leader %q is not one of the cluster's nodes", stream, leader)
		}
		node.shutdown()
		runs.outages++
		down := time.Now()
		if firstDown.IsZero() {
			firstDown = down
		}
		next := waitLeader(t, js, stream, leader)
		log = append(log, fmt.Sprintf("%s leader %s down, new leader %s after %s", stream, leader, next, time.Since(down).Round(10*time.Millisecond)))
		if longForm {
			// Bring it back and let it catch up before the next round.
			time.Sleep(2 * time.Second)
			node.restart()
		}
	}
	if err := <-produced; err != nil {
		t.Fatal(err)
	}
	all := w.all()
	settle(t, js, len(all), 120*time.Second)
	rep := audit(t, js, r, all, nil)
	before, after := 0, 0
	for _, es := range rep.events {
		for _, e := range es {
			if e.at.Before(firstDown) {
				before++
			} else {
				after++
			}
		}
	}
	if before == 0 || after == 0 {
		t.Errorf("events before the first node loss: %d, after: %d; want some of both (mid-run)", before, after)
	}
	for i, b := range bs {
		if !b.running() {
			t.Errorf("replica %d exited with status %d", i+1, b.exitCode())
			continue
		}
		if code := b.term(15 * time.Second); code != 0 {
			t.Errorf("replica %d exit status after SIGTERM: got %d, want 0", i+1, code)
		}
	}
	rep.figure(t, "cluster", runs, start, fmt.Sprintf("core repeats %d; %s", len(core.repeats()), strings.Join(log, "; ")))
}

// waitLeader waits until the stream has a leader other than not, and returns its name.
func waitLeader(t *testing.T, js jetstream.JetStream, stream, not string) string {
	t.Helper()
	deadline := time.Now().Add(60 * time.Second)
	for {
		leader, err := streamLeader(t.Context(), js, stream)
		if err == nil && leader != "" && leader != not {
			return leader
		}
		if time.Now().After(deadline) {
			t.Fatalf("stream %s: no leader other than %q within 60s (last %q, %v)", stream, not, leader, err)
		}
		time.Sleep(50 * time.Millisecond)
	}
}
