package command

import (
	"context"
	"fmt"
	"sync/atomic"
	"testing"
	"time"

	"github.com/nats-io/nats.go"

	"github.com/reducto-bridge/reducto-bridge/internal/natstest"
	"github.com/reducto-bridge/reducto-bridge/internal/reductotest"
)

// TestShutdownBounded: with one command stuck on Reducto and 200 more queued behind it,
// Shutdown returns once its context ends (it would otherwise wait for every command, each up
// to Options.Timeout), and every request still gets a reply.
func TestShutdownBounded(t *testing.T) {
	jobs := &reductotest.Jobs{Cancelled: make(chan string, 1)}
	jobs.CancelJobFunc = func(ctx context.Context, _ string) error {
		<-ctx.Done() // Reducto never answers
		return ctx.Err()
	}
	tracker := &fakeTracker{}
	e := start(t, jobs, nil, tracker.track, Options{Concurrency: 1, Timeout: time.Hour})

	var replies atomic.Int64
	inbox := nats.NewInbox()
	sub, err := e.nc.Subscribe(inbox, func(*nats.Msg) { replies.Add(1) })
	if err != nil {
		t.Fatal(err)
	}
	defer sub.Unsubscribe()
	const n = 201
	for i := range n {
		if err := e.nc.PublishRequest(prefix+".cancel", inbox, fmt.Appendf(nil, `{"job_id":"job-%d"}`, i)); err != nil {
			t.Fatal(err)
		}
	}
	if err := e.nc.Flush(); err != nil {
		t.Fatal(err)
	}
	recv(t, jobs.Cancelled, "the first cancel reaching Reducto")

	ctx, cancel := context.WithTimeout(context.Background(), 200*time.Millisecond)
	defer cancel()
	done := make(chan error, 1)
	go func() { done <- e.svc.Shutdown(ctx) }()
	select {
	case err := <-done:
		if err == nil {
			t.Error("Shutdown cut commands short but reported no error")
		}
	case <-time.After(30 * time.Second):
		t.Fatal("Shutdown did not return within 30s of its 200ms bound")
	}
	natstest.WaitFor(t, func() bool { return replies.Load() == n })
	if got := len(jobs.Cancels()); got > 2 {
		t.Errorf("%d cancels reached Reducto after the bound, want the one in flight (and at most one more)", got)
	}
}
