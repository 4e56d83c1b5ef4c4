package main

import (
	"bytes"
	"context"
	"encoding/json"
	"strings"
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

// TestConsumer runs the example as the reader user of deploy/nats/nats-server.conf against
// events published by the bridge's own publisher: a completed job whose result went to the
// object store, a failed one, an expired one with metadata; then, restarted, it reads only
// what came after, including a message that is not an event.
func TestConsumer(t *testing.T) {
	pw := map[string]string{"bridge": "b", "producer": "p", "reader": "r", "operator": "o"}
	for u, p := range pw {
		t.Setenv(strings.ToUpper(u)+"_NATS_PASSWORD", p)
	}
	s := natstest.RunServer(t, natstest.Options{MaxPayload: 64 << 10, Configure: func(o *server.Options) {
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
	big, _ := json.Marshal(map[string]string{"chunks": strings.Repeat("x", 200_000)})
	for _, ev := range []*event.Event{
		{JobID: "job-a", Kind: event.Completed, Status: "Completed", Result: big, Polls: 3},
		{JobID: "job-b", Kind: event.Failed, Status: "Failed", Polls: 2,
			Error: &event.ErrorInfo{Code: 400, Name: "DOCUMENT_CORRUPT", Message: "bad pdf"}},
		{JobID: "job-c", Kind: event.Expired, Status: "Pending", Metadata: json.RawMessage(`{"order":17}`), Polls: 9},
	} {
		if _, err := pub.Publish(ctx, ev); err != nil {
			t.Fatal(err)
		}
	}

	reader := connect("reader")
	var out bytes.Buffer
	if err := run(ctx, reader, options{durable: "test", filter: "reducto.job.>", count: 3}, &out); err != nil {
		t.Fatalf("run: %v\n%s", err, out.String())
	}
	want := "completed job-a status=Completed polls=3 result=200013 bytes from REDUCTO_RESULTS/job-a\n" +
		"failed job-b status=Failed polls=2 error=DOCUMENT_CORRUPT\n" +
		"expired job-c status=Pending polls=9 metadata={\"order\":17}\n"
	if out.String() != want {
		t.Fatalf("first run printed\n%s\nwant\n%s", out.String(), want)
	}

	// Restarted, the durable consumer resumes after job-c.
	if err := connect("operator").Conn().Publish("reducto.job.completed.forged", []byte("not json")); err != nil {
		t.Fatal(err)
	}
	if _, err := pub.Publish(ctx, &event.Event{JobID: "job-d", Kind: event.Completed, Status: "Completed",
		Result: json.RawMessage(`{"pages":1}`), Polls: 1}); err != nil {
		t.Fatal(err)
	}
	out.Reset()
	if err := run(ctx, reader, options{durable: "test", filter: "reducto.job.>", count: 2}, &out); err != nil {
		t.Fatalf("second run: %v\n%s", err, out.String())
	}
	want = "skipped reducto.job.completed.forged: malformed event: invalid character 'o' in literal null (expecting 'u')\n" +
		"completed job-d status=Completed polls=1 result=11 bytes inline\n"
	if out.String() != want {
		t.Fatalf("second run printed\n%s\nwant\n%s", out.String(), want)
	}
}
