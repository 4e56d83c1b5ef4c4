package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/nats-io/nats-server/v2/server"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/reducto-bridge/reducto-bridge/event"
	"github.com/reducto-bridge/reducto-bridge/internal/natsconf"
	"github.com/reducto-bridge/reducto-bridge/internal/natstest"
	"github.com/reducto-bridge/reducto-bridge/publisher"
)

// notifyingBuffer is a buffer that signals every write, so a test waits for output without
// sleeping.
type notifyingBuffer struct {
	mu    sync.Mutex
	buf   bytes.Buffer
	wrote chan struct{}
}

func (b *notifyingBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	select {
	case b.wrote <- struct{}{}:
	default:
	}
	return b.buf.Write(p)
}

func (b *notifyingBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}

// TestReplay rebuilds the table as the reader user of deploy/nats/nats-server.conf from
// events the bridge's publisher stored, one of each kind, among messages that are not the
// bridge's events: a forged "completed" for a job that then fails, and a body that is no
// event. A second run rebuilds the same table from the start; with -follow a new event adds a
// row.
func TestReplay(t *testing.T) {
	pw := map[string]string{"bridge": "b", "producer": "p", "reader": "r", "operator": "o"}
	for u, p := range pw {
		t.Setenv(strings.ToUpper(u)+"_NATS_PASSWORD", p)
	}
	s := natstest.RunServer(t, natstest.Options{Configure: func(o *server.Options) {
		if err := natsconf.Apply(o, "../../deploy/nats/nats-server.conf"); err != nil {
			t.Fatal(err)
		}
	}})
	connect := func(user string) jetstream.JetStream {
		js, err := jetstream.New(natstest.Connect(t, s, nats.UserInfo(user, pw[user])))
		if err != nil {
			t.Fatal(err)
		}
		return js
	}
	ctx, cancel := context.WithTimeout(t.Context(), 30*time.Second)
	defer cancel()
	pub, err := publisher.Setup(ctx, connect("bridge"), publisher.Options{})
	if err != nil {
		t.Fatal(err)
	}
	operator := connect("operator")
	tracked := time.Date(2026, 11, 29, 14, 0, 0, 0, time.UTC)
	at := func(d time.Duration) time.Time { return tracked.Add(d) }
	publish := func(ev *event.Event) {
		t.Helper()
		if _, err := pub.Publish(ctx, ev); err != nil {
			t.Fatal(err)
		}
	}
	forge := func(subj, body string) {
		t.Helper()
		if _, err := operator.Publish(ctx, subj, []byte(body)); err != nil {
			t.Fatal(err)
		}
	}
	publish(&event.Event{JobID: "job-a", Kind: event.Completed, Status: "Completed", Result: json.RawMessage(`{}`),
		Polls: 3, TrackedAt: tracked, ObservedAt: at(13500 * time.Millisecond)})
	forge("reducto.job.completed.job-b", `{"job_id":"job-b","kind":"completed","status":"Completed"}`)
	forge("reducto.job.expired.job-z", `{"kind":"expired"}`)
	publish(&event.Event{JobID: "job-b", Kind: event.Failed, Status: "Failed", Polls: 2, TrackedAt: tracked,
		ObservedAt: at(4 * time.Second), Error: &event.ErrorInfo{Code: 400, Name: "DOCUMENT_CORRUPT"}})
	publish(&event.Event{JobID: "job-c", Kind: event.Cancelled, Status: "Failed", Polls: 1, TrackedAt: tracked,
		ObservedAt: at(time.Second), Error: &event.ErrorInfo{Name: "JOB_CANCELLED"}})
	publish(&event.Event{JobID: "job-d", Kind: event.Expired, Status: "Pending", Polls: 40, TrackedAt: tracked,
		ObservedAt: at(12 * time.Hour)})

	want := "" +
		"JOB    KIND       STATUS     ERROR             POLLS  TOOK\n" +
		"job-a  completed  Completed                    3      13.5s\n" +
		"job-b  failed     Failed     DOCUMENT_CORRUPT  2      4s\n" +
		"job-c  cancelled  Failed     JOB_CANCELLED     1      1s\n" +
		"job-d  expired    Pending                      40     12h0m0s\n" +
		"4 jobs: 1 completed, 1 failed, 1 cancelled, 1 expired; 2 messages skipped\n"
	reader := connect("reader")
	for run1 := range 2 {
		var out bytes.Buffer
		if err := run(ctx, reader, options{durable: "test", source: "reducto-bridge"}, &out); err != nil {
			t.Fatalf("run %d: %v", run1, err)
		}
		if out.String() != want {
			t.Fatalf("run %d printed\n%s\nwant\n%s", run1, out.String(), want)
		}
	}

	out := &notifyingBuffer{wrote: make(chan struct{}, 1)}
	fctx, stop := context.WithCancel(ctx)
	done := make(chan error, 1)
	go func() {
		done <- run(fctx, reader, options{durable: "test", source: "reducto-bridge", follow: true}, out)
	}()
	waitFor := func(s string) {
		t.Helper()
		for !strings.Contains(out.String(), s) {
			select {
			case <-out.wrote:
			case <-ctx.Done():
				t.Fatalf("no %q in\n%s", s, out.String())
			}
		}
	}
	waitFor("2 messages skipped\n")
	publish(&event.Event{JobID: "job-e", Kind: event.Completed, Status: "Completed", Polls: 2, TrackedAt: tracked, ObservedAt: at(2 * time.Second)})
	waitFor("job-e completed Completed  polls=2 took=2s\n")
	stop()
	if err := <-done; !errors.Is(err, context.Canceled) {
		t.Fatalf("follow ended with %v, want context.Canceled", err)
	}
}
