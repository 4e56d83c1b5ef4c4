package publisher_test

import (
	"testing"
	"time"

	"github.com/reducto-bridge/reducto-bridge/event"
	"github.com/reducto-bridge/reducto-bridge/internal/natstest"
	"github.com/reducto-bridge/reducto-bridge/publisher"
)

// TestPublishClusteredR3 covers the clustered server's other order of checks: it tests the
// Nats-Msg-Id before the expected subject sequence, and refuses a message id that is still
// being replicated (409, "duplicate message id is in process").
func TestPublishClusteredR3(t *testing.T) {
	if testing.Short() {
		t.Skip("starts a three-server cluster")
	}
	servers := natstest.RunCluster(t, 3)
	nc, js := natstest.JetStream(t, servers[0])
	o := publisher.Options{Replicas: 3}
	// The cluster elects its meta leader some time after start; there is no signal for it.
	deadline := time.Now().Add(30 * time.Second)
	var pub *publisher.Publisher
	for {
		var err error
		if pub, err = publisher.Setup(t.Context(), js, o); err == nil {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("setup on the cluster: %v", err)
		}
		time.Sleep(100 * time.Millisecond)
	}
	e := &env{nc: nc, js: js, pub: pub}
	ctx := t.Context()

	first, err := pub.Publish(ctx, &event.Event{JobID: "job-r3", Kind: event.Completed})
	if err != nil {
		t.Fatalf("publish: %v", err)
	}
	for _, k := range []event.Kind{event.Completed, event.Failed} {
		got, err := pub.Publish(ctx, &event.Event{JobID: "job-r3", Kind: k})
		if err != nil {
			t.Fatalf("publish %s again: %v", k, err)
		}
		if want := (publisher.Result{Seq: first.Seq, Duplicate: true, Existing: event.Completed}); got != want {
			t.Errorf("publish %s again: got %+v, want %+v", k, got, want)
		}
	}
	if n := e.count(t, "job-r3"); n != 1 {
		t.Errorf("events for job-r3: got %d, want 1", n)
	}

	outs := publishAtOnce(t, pub, "job-r3-race", []event.Kind{event.Completed, event.Failed}, 10)
	stored := 0
	for _, out := range outs {
		if !out.Duplicate {
			stored++
		}
	}
	if stored != 1 {
		t.Errorf("concurrent publishes that stored an event: got %d, want 1 (%+v)", stored, outs)
	}
	if n := e.count(t, "job-r3-race"); n != 1 {
		t.Errorf("events for job-r3-race: got %d, want 1", n)
	}
	ev, err := pub.Lookup(ctx, "job-r3-race")
	if err != nil || ev == nil {
		t.Fatalf("lookup: got %v, %v, want the event", ev, err)
	}
	st, err := js.Stream(ctx, "REDUCTO_EVENTS")
	if err != nil {
		t.Fatalf("stream: %v", err)
	}
	if got := st.CachedInfo().Config.Replicas; got != 3 {
		t.Errorf("replicas: got %d, want 3", got)
	}
}
