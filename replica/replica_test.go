package replica

import (
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats.go"

	"github.com/reducto-bridge/reducto-bridge/internal/natstest"
	"github.com/reducto-bridge/reducto-bridge/subject"
)

func TestSetJoinDeathAndGoodbye(t *testing.T) {
	t0 := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	s := NewSet("aaaaaaaaaaaaaaaa", 3*time.Second)
	if n := s.Live(t0); n != 1 {
		t.Fatalf("alone: live = %d, want 1 (itself)", n)
	}
	if s.Heard("aaaaaaaaaaaaaaaa", t0) || s.Live(t0) != 1 {
		t.Fatal("its own announcement counted as another replica")
	}
	if !s.Heard("bbbbbbbbbbbbbbbb", t0) || s.Live(t0) != 2 {
		t.Fatal("a new replica not counted")
	}
	if s.Heard("bbbbbbbbbbbbbbbb", t0.Add(time.Second)) {
		t.Error("a known replica reported as new")
	}
	s.Heard("cccccccccccccccc", t0.Add(time.Second))
	if n := s.Live(t0.Add(4 * time.Second)); n != 3 {
		t.Errorf("b and c heard 3s ago (within the window): live = %d, want 3", n)
	}
	if n := s.Live(t0.Add(4100 * time.Millisecond)); n != 1 {
		t.Errorf("both silent for more than the window: live = %d, want 1", n)
	}
	s.Heard("dddddddddddddddd", t0.Add(5*time.Second))
	if !s.Left("dddddddddddddddd") || s.Live(t0.Add(5*time.Second)) != 1 {
		t.Error("a goodbye did not remove the replica at once")
	}
}

func TestSetIsBounded(t *testing.T) {
	t0 := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	s := NewSet("self", time.Second)
	for i := range 3 * maxPeers {
		s.Heard(fmt.Sprintf("%016x", i), t0)
	}
	if n := s.Live(t0); n != maxPeers+1 {
		t.Errorf("after a flood of ids: live = %d, want the bound %d", n, maxPeers+1)
	}
	// Once the flood is silent for the window, real replicas are counted again.
	if !s.Heard("feedfeedfeedfeed", t0.Add(2*time.Second)) || s.Live(t0.Add(2*time.Second)) != 2 {
		t.Error("a real replica not counted after the flood expired")
	}
}

// TestTrackersFindEachOther runs three trackers on one server: they count each other, a
// goodbye is seen at once, a replica that dies silently drops out after the window, and a
// tracker on another key's subject is not counted.
func TestTrackersFindEachOther(t *testing.T) {
	s := natstest.RunServer(t)
	subj := subject.Replicas("reducto", "sk-one")
	type obs struct {
		tr   *Tracker
		live chan int
	}
	start := func(nc *nats.Conn, subj string) obs {
		o := obs{live: make(chan int, 100)}
		var err error
		o.tr, err = Start(nc, Options{Subject: subj, Interval: 50 * time.Millisecond, Window: 2 * time.Second,
			OnChange: func(n int) { o.live <- n }})
		if err != nil {
			t.Fatal(err)
		}
		return o
	}
	waitLive := func(o obs, want int) {
		t.Helper()
		timeout := time.After(20 * time.Second)
		for {
			select {
			case n := <-o.live:
				if n == want {
					return
				}
			case <-timeout:
				t.Fatalf("live count never reached %d (now %d)", want, o.tr.Live())
			}
		}
	}
	a := start(natstest.Connect(t, s), subj)
	defer a.tr.Stop()
	other := start(natstest.Connect(t, s), subject.Replicas("reducto", "sk-two"))
	defer other.tr.Stop()
	b := start(natstest.Connect(t, s), subj)
	ncC := natstest.Connect(t, s)
	c := start(ncC, subj)
	waitLive(a, 3)
	waitLive(b, 3)
	waitLive(c, 3)

	b.tr.Stop() // goodbye: gone at once, well within the window
	stopped := time.Now()
	waitLive(a, 2)
	if d := time.Since(stopped); d > 1500*time.Millisecond {
		t.Errorf("goodbye took %v to be seen, want well under the 2s window", d)
	}

	ncC.Close() // dies without a goodbye: gone after the window
	waitLive(a, 1)
	if n := other.tr.Live(); n != 1 {
		t.Errorf("a replica of another key counts %d replicas, want 1", n)
	}
}

// TestSubjectHidesKey: the announcement subject names the key by a hash only.
func TestSubjectHidesKey(t *testing.T) {
	const key = "sk-live-0123456789"
	got := subject.Replicas("reducto", key)
	if len(got) != len("reducto.bridge.replicas.")+16 || got[:24] != "reducto.bridge.replicas." {
		t.Errorf("subject %q, want reducto.bridge.replicas.<16 hex>", got)
	}
	if subject.Replicas("reducto", key+"x") == got {
		t.Error("two keys share a subject")
	}
	for i := 4; i <= len(key); i++ {
		for j := 0; j+i <= len(key); j++ {
			if sub := key[j : j+i]; len(sub) >= 6 && strings.Contains(got, sub) {
				t.Errorf("subject %q contains %q of the key", got, sub)
			}
		}
	}
}
