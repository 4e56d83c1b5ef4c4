package event_test

import (
	"context"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"os"
	"strings"
	"time"

	"github.com/nats-io/nats-server/v2/server"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/reducto-bridge/reducto-bridge/event"
	"github.com/reducto-bridge/reducto-bridge/publisher"
)

// A consumer reads an event message body with Decode. The kind is also the third token of the
// subject (reducto.job.<kind>.<job_id>), so a consumer can filter by subject and still check
// the body.
func ExampleDecode() {
	body := []byte(`{"job_id":"7f3c","kind":"failed","status":"Failed","type":"Parse",` +
		`"error":{"code":400,"name":"DOCUMENT_CORRUPT","message":"bad pdf","job_id":"7f3c"},` +
		`"metadata":{"order":17},"tracked_at":"2026-11-29T14:00:00.123Z",` +
		`"observed_at":"2026-11-29T14:00:13.456Z","polls":4}`)
	ev, err := event.Decode(body)
	if err != nil {
		fmt.Println("not an event:", err)
		return
	}
	fmt.Println(ev.JobID, ev.Kind, ev.Status, ev.Type)
	fmt.Println("error:", ev.Error.Code, ev.Error.Name, ev.Error.Message)
	fmt.Println("error object as Reducto sent it:", string(ev.Error.Raw))
	fmt.Println("metadata:", string(ev.Metadata))
	fmt.Println("took:", ev.ObservedAt.Sub(ev.TrackedAt), "in", ev.Polls, "polls")

	if _, err := event.Decode([]byte(`{"kind":"completed"}`)); err != nil {
		fmt.Println(err)
	}
	// Output:
	// 7f3c failed Failed Parse
	// error: 400 DOCUMENT_CORRUPT bad pdf
	// error object as Reducto sent it: {"code":400,"name":"DOCUMENT_CORRUPT","message":"bad pdf","job_id":"7f3c"}
	// metadata: {"order":17}
	// took: 13.333s in 4 polls
	// malformed event: no job_id
}

// Headers are the CloudEvents attributes every event carries (values percent-encoded).
func ExampleHeaders() {
	ev := &event.Event{
		JobID:      "7f3c",
		Kind:       event.Completed,
		ObservedAt: time.Date(2026, 11, 29, 14, 0, 13, 456_000_000, time.UTC),
	}
	h := event.Headers(ev, "reducto-bridge")
	for _, k := range []string{event.HeaderID, event.HeaderType, event.HeaderSource, event.HeaderSubject, event.HeaderTime,
		event.HeaderDataContentType, event.HeaderDataSchema} {
		fmt.Printf("%s: %s\n", k, h[k][0])
	}
	fmt.Println("Nats-Msg-Id:", event.MsgID(ev.JobID, ev.Kind))
	// Output:
	// ce-id: 7f3c:completed
	// ce-type: ai.reducto.job.completed
	// ce-source: reducto-bridge
	// ce-subject: 7f3c
	// ce-time: 2026-11-29T14:00:13.456Z
	// ce-datacontenttype: application/json
	// ce-dataschema: urn:reducto-bridge:schema:event:v1
	// Nats-Msg-Id: 7f3c:completed
}

// A result too large for one NATS message is in the object store: the event carries
// result_ref instead of result. This example runs an embedded JetStream server, has the
// bridge's publisher report a job with a 200 kB result, and then does what a consumer does:
// read the event from the stream, decode it, and fetch the result that result_ref names.
func ExampleResultRef() {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	js, stop, err := embeddedJetStream()
	if err != nil {
		fmt.Println(err)
		return
	}
	defer stop()

	// The bridge's side.
	pub, err := publisher.Setup(ctx, js, publisher.Options{})
	if err != nil {
		fmt.Println(err)
		return
	}
	result, _ := json.Marshal(map[string]string{"chunks": strings.Repeat("lorem ipsum ", 200_000/12)})
	if _, err := pub.Publish(ctx, &event.Event{JobID: "job-42", Kind: event.Completed, Status: "Completed", Result: result}); err != nil {
		fmt.Println(err)
		return
	}

	// The consumer's side: the job's event is the last message on reducto.job.*.job-42.
	stream, err := js.Stream(ctx, "REDUCTO_EVENTS")
	if err != nil {
		fmt.Println(err)
		return
	}
	msg, err := stream.GetLastMsgForSubject(ctx, "reducto.job.*.job-42")
	if err != nil {
		fmt.Println(err)
		return
	}
	ev, err := event.Decode(msg.Data)
	if err != nil {
		fmt.Println(err)
		return
	}
	fmt.Println(msg.Subject, "result inline:", ev.Result != nil)
	ref := ev.ResultRef
	fmt.Println("result_ref:", ref.Bucket, ref.Name, ref.Size, "bytes")

	obs, err := js.ObjectStore(ctx, ref.Bucket)
	if err != nil {
		fmt.Println(err)
		return
	}
	data, err := obs.GetBytes(ctx, ref.Name)
	if err != nil {
		fmt.Println(err)
		return
	}
	sum := sha256.Sum256(data)
	fmt.Println("fetched", len(data), "bytes; digest matches:", ref.Digest == "SHA-256="+base64.URLEncoding.EncodeToString(sum[:]))
	// Output:
	// reducto.job.completed.job-42 result inline: false
	// result_ref: REDUCTO_RESULTS job-42 200005 bytes
	// fetched 200005 bytes; digest matches: true
}

// embeddedJetStream starts a JetStream server in a temporary directory, in process (no
// socket), with a 64 KiB max payload, and returns a JetStream context connected to it.
func embeddedJetStream() (jetstream.JetStream, func(), error) {
	dir, err := os.MkdirTemp("", "event-example-")
	if err != nil {
		return nil, nil, err
	}
	ns, err := server.NewServer(&server.Options{
		JetStream: true, StoreDir: dir, DontListen: true, NoLog: true, NoSigs: true, MaxPayload: 64 << 10,
	})
	if err != nil {
		os.RemoveAll(dir)
		return nil, nil, err
	}
	ns.Start()
	stopServer := func() {
		ns.Shutdown()
		ns.WaitForShutdown()
		os.RemoveAll(dir)
	}
	if !ns.ReadyForConnections(10 * time.Second) {
		stopServer()
		return nil, nil, fmt.Errorf("nats server not ready")
	}
	nc, err := nats.Connect(ns.ClientURL(), nats.InProcessServer(ns))
	if err != nil {
		stopServer()
		return nil, nil, err
	}
	stop := func() {
		nc.Close()
		stopServer()
	}
	js, err := jetstream.New(nc)
	if err != nil {
		stop()
		return nil, nil, err
	}
	return js, stop, nil
}
