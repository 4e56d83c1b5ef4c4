package e2e

import (
	"fmt"
	"io"
	"math/rand/v2"
	"net/http"
	"net/http/httptest"
	"strconv"
	"testing"
	"time"

	"github.com/reducto-bridge/reducto-bridge/reducto/reductosim"
)

// TestReplicasFlapping: two replicas share the work, and every job's answers go 404,
// Pending, 404, Pending... until it completes (the simulator's Flap). A 404 fails a job only
// when a second answer in the same delivery confirms it, so none may fail, whichever replica
// sees which answer.
func TestReplicasFlapping(t *testing.T) {
	start := time.Now()
	rng := seeded(t)
	jobs := 60
	if longForm {
		jobs = 400
	}
	ns := startNATS(t)
	_, js := connect(t, ns.url())
	r := startReducto(t, reductosim.Options{})
	for i := range 2 {
		env := bridgeEnv(ns.url(), r.replicaURL(i+1))
		newBridge(t, "replica"+strconv.Itoa(i+1), env).startReady() // one at a time, see TestReplicas
	}
	w := newWorkload(t, r, js)
	for range jobs {
		spec := reductosim.JobSpec{Duration: time.Duration(300+rng.IntN(2700)) * time.Millisecond, Flap: true}
		if _, err := w.add(t.Context(), spec, completed); err != nil {
			t.Fatal(err)
		}
	}
	all := w.all()
	settle(t, js, len(all), 120*time.Second)
	rep := audit(t, js, r, all, nil)
	st := r.sim.Stats()
	if st.Flaps == 0 {
		t.Error("no flapping 404 was answered: the case tested nothing")
	}
	replicas := map[int]int{}
	for _, j := range all {
		for _, g := range r.rec.of(j.id) {
			replicas[g.replica]++
		}
	}
	if len(replicas) < 2 {
		t.Errorf("GETs by replica %v: want both replicas polling", replicas)
	}
	rep.figure(t, "replicas-flapping", run{runs: 2}, start, fmt.Sprintf("flapping_404s=%d gets_by_replica=%v", st.Flaps, replicas))
}

// TestWebhookCrashAfterPublish: every event comes from a webhook (the safety-net poll is an
// hour away), and a fifth of the publishes kill the bridge after the PubAck and before the
// track message is removed. The simulator retries an undelivered webhook, the bridge
// restarts, and every job must still have exactly one event, with about one GET per job.
func TestWebhookCrashAfterPublish(t *testing.T) {
	start := time.Now()
	rng := seeded(t)
	jobs, minCrashes := 60, 2
	if longForm {
		jobs, minCrashes = 400, 10
	}
	ns := startNATS(t)
	nc, js := connect(t, ns.url())
	const token = "e2e-webhook-token"
	r := startReducto(t, reductosim.Options{WebhookRetries: 12, WebhookRetryWait: 100 * time.Millisecond})
	env := bridgeEnv(ns.url(), r.url)
	env["BRIDGE_WEBHOOK_TOKEN"] = token
	env["BRIDGE_WEBHOOK_POLL_INTERVAL"] = "1h"
	env["BRIDGE_DUPLICATE_WINDOW"] = "500ms"
	env["BRIDGE_TEST_CRASH_AFTER_PUBLISH"] = "0.2"
	b := newBridge(t, "bridge", env)
	b.startReady()
	core := subscribeEvents(t, nc, nil)
	// The bridge gets a new HTTP port at every start; the relay is the stable webhook URL.
	relay := httptest.NewServer(http.HandlerFunc(func(rw http.ResponseWriter, req *http.Request) {
		addr := b.Addr()
		out, err := http.NewRequestWithContext(req.Context(), req.Method, "http://"+addr+req.URL.RequestURI(), req.Body)
		if err != nil {
			http.Error(rw, err.Error(), http.StatusBadGateway)
			return
		}
		out.Header = req.Header.Clone()
		resp, err := http.DefaultClient.Do(out)
		if err != nil {
			http.Error(rw, "bridge unreachable", http.StatusBadGateway)
			return
		}
		defer resp.Body.Close()
		rw.WriteHeader(resp.StatusCode)
		_, _ = io.Copy(rw, resp.Body)
	}))
	t.Cleanup(relay.Close)
	hookURL := relay.URL + "/webhooks/reducto?token=" + token

	sup := superviseCrashes(t, b)

	w := newWorkload(t, r, js)
	for i := range jobs {
		spec := reductosim.JobSpec{Duration: time.Duration(200+rng.IntN(2800)) * time.Millisecond}
		kind := completed
		if i%6 == 5 {
			spec.Outcome, kind = reductosim.OutcomeFail, failed
		}
		if _, err := w.addWebhook(t.Context(), spec, hookURL, kind); err != nil {
			t.Fatal(err)
		}
		time.Sleep(time.Duration(rand.IntN(30)) * time.Millisecond) // pacing only
	}
	all := w.all()
	settle(t, js, len(all), 120*time.Second)
	got := sup.stop()
	rep := audit(t, js, r, all, nil)
	if reps := core.repeats(); len(reps) > 0 {
		t.Errorf("a core subscriber saw %d events more than once: %v", len(reps), reps[:min(len(reps), 10)])
	}
	if got.crashes < minCrashes {
		t.Errorf("injected crashes: got %d, want at least %d (is the failpoint on the webhook path?)", got.crashes, minCrashes)
	}
	// With polls an hour away, only the webhook path can have reported.
	viaWebhook := b.countLog("job finished (webhook)")
	if viaWebhook == 0 {
		t.Error("no event was reported through a webhook")
	}
	if rep.getsMean > 1.5 {
		t.Errorf("GETs per job %.2f, want about 1 (webhooks, not polls)", rep.getsMean)
	}
	rep.figure(t, "webhook-crash-after-publish", got, start, fmt.Sprintf("p=0.2 webhook_log_lines=%d", viaWebhook))
}
