package lastpoll_test

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/nats-io/nats.go"

	"github.com/reducto-bridge/reducto-bridge/internal/natstest"
	"github.com/reducto-bridge/reducto-bridge/lastpoll"
)

func TestBookIsBounded(t *testing.T) {
	b := lastpoll.NewBook(3)
	at := time.Date(2026, 12, 1, 0, 0, 0, 0, time.UTC)
	for i := range 10 {
		b.Record(fmt.Sprint("job", i), lastpoll.Poll{Status: "Pending", PolledAt: at})
		if b.Len() > 3 {
			t.Fatalf("%d jobs held after %d records, want at most 3", b.Len(), i+1)
		}
	}
	if _, ok := b.Get("job9"); !ok {
		t.Error("the newest job was not kept")
	}
	// A known job is updated in place, never evicting another.
	b.Record("job9", lastpoll.Poll{Status: "InProgress", PolledAt: at.Add(time.Second)})
	if p, _ := b.Get("job9"); p.Status != "InProgress" || b.Len() != 3 {
		t.Errorf("job9 = %+v, %d held; want InProgress, 3", p, b.Len())
	}
	b.Forget("job9")
	if _, ok := b.Get("job9"); ok || b.Len() != 2 {
		t.Errorf("job9 still held after Forget (%d held)", b.Len())
	}
}

// TestAskFindsTheNewestPoll: three replicas on one subject, two of which polled the job; Ask
// from the third returns the newer poll, and an answer that does not decode (a client other
// than a bridge) is ignored.
func TestAskFindsTheNewestPoll(t *testing.T) {
	s := natstest.RunServer(t)
	const subj = "reducto.bridge.polls.0123456789abcdef"
	at := time.Date(2026, 12, 1, 10, 0, 0, 0, time.UTC)
	progress := 0.4
	older := lastpoll.Poll{Status: "Pending", PolledAt: at, Deliveries: 3, Since: at.Add(-time.Minute), NextPoll: at.Add(30 * time.Second)}
	newer := lastpoll.Poll{Status: "InProgress", Progress: &progress, PolledAt: at.Add(10 * time.Second), Deliveries: 4, Since: at.Add(-time.Minute), NextPoll: at.Add(40 * time.Second)}

	books := []*lastpoll.Book{lastpoll.NewBook(0), lastpoll.NewBook(0), lastpoll.NewBook(0)}
	books[0].Record("j", older)
	books[1].Record("j", newer)
	live := func() int { return 4 } // the three replicas and the rogue client below
	var peers []*lastpoll.Peers
	for _, b := range books {
		nc := natstest.Connect(t, s)
		p, err := lastpoll.Serve(nc, subj, b, live)
		if err != nil {
			t.Fatal(err)
		}
		// The server has the subscription after a round trip (a replica's is long there).
		if err := nc.Flush(); err != nil {
			t.Fatal(err)
		}
		peers = append(peers, p)
	}
	rogue := natstest.Connect(t, s)
	rsub, err := rogue.Subscribe(subj, func(m *nats.Msg) {
		_ = m.Respond([]byte(`{"status":"Completed","polled_at":"not a time"}`))
	})
	if err != nil {
		t.Fatal(err)
	}
	if err := rogue.Flush(); err != nil {
		t.Fatal(err)
	}

	got, ok := peers[2].Ask(t.Context(), "j")
	if !ok || got.Status != "InProgress" || got.Progress == nil || *got.Progress != 0.4 || got.Deliveries != 4 ||
		!got.PolledAt.Equal(newer.PolledAt) || !got.NextPoll.Equal(newer.NextPoll) || !got.Since.Equal(newer.Since) {
		t.Errorf("Ask = %+v, %v; want the newer poll %+v", got, ok, newer)
	}
	if got, ok := peers[0].Ask(t.Context(), "nobody-polled-this"); ok {
		t.Errorf("Ask of an unknown job = %+v, want none", got)
	}
	if _, ok := peers[0].Ask(t.Context(), "not.a.job"); ok {
		t.Error("Ask of an invalid id found a poll")
	}
	_ = rsub.Unsubscribe()
	for _, p := range peers {
		p.Stop()
	}
}

// TestAskIsBounded: replicas counted live that never answer (they died without a goodbye) are
// waited for AskWait, not for the caller's whole deadline, and the answers that did come
// still count.
func TestAskIsBounded(t *testing.T) {
	s := natstest.RunServer(t)
	const subj = "reducto.bridge.polls.fedcba9876543210"
	b := lastpoll.NewBook(0)
	b.Record("j", lastpoll.Poll{Status: "Pending", PolledAt: time.Now()})
	p, err := lastpoll.Serve(natstest.Connect(t, s), subj, b, func() int { return 5 })
	if err != nil {
		t.Fatal(err)
	}
	defer p.Stop()
	ctx, cancel := context.WithTimeout(t.Context(), time.Minute)
	defer cancel()
	start := time.Now()
	got, ok := p.Ask(ctx, "j")
	if !ok || got.Status != "Pending" {
		t.Errorf("Ask = %+v, %v; want this replica's own poll", got, ok)
	}
	if waited := time.Since(start); waited > 30*time.Second {
		t.Errorf("Ask waited %v for replicas that do not answer: the caller's deadline, not AskWait (%v)", waited, lastpoll.AskWait)
	}
}
