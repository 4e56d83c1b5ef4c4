package command_test

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http/httptest"
	"os"
	"time"

	"github.com/nats-io/nats-server/v2/server"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/nats-io/nats.go/micro"

	"github.com/reducto-bridge/reducto-bridge/command"
	"github.com/reducto-bridge/reducto-bridge/publisher"
	"github.com/reducto-bridge/reducto-bridge/reducto"
	"github.com/reducto-bridge/reducto-bridge/reducto/reductosim"
	"github.com/reducto-bridge/reducto-bridge/track"
)

// The commands are NATS requests. This example wires the service as the bridge does (the
// Reducto client against the simulator, the track queue, the publisher, on an embedded
// JetStream server), then submits a job, cancels it, and sends a bad request, as any NATS
// client (or `nats req`) would.
func ExampleStart() {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()

	// Reducto: the simulator, with jobs that run for an hour unless cancelled.
	sim, err := reductosim.New(reductosim.Options{APIKey: "key", Spec: func(string, []byte) reductosim.JobSpec {
		return reductosim.JobSpec{Duration: time.Hour}
	}})
	if err != nil {
		fmt.Println(err)
		return
	}
	defer sim.Close()
	api := httptest.NewServer(sim)
	defer api.Close()
	client, err := reducto.New(api.URL, "key")
	if err != nil {
		fmt.Println(err)
		return
	}

	nc, stop, err := embeddedNATS()
	if err != nil {
		fmt.Println(err)
		return
	}
	defer stop()
	js, err := jetstream.New(nc)
	if err != nil {
		fmt.Println(err)
		return
	}
	queue, err := track.Setup(ctx, js, track.Options{})
	if err != nil {
		fmt.Println(err)
		return
	}
	pub, err := publisher.Setup(ctx, js, publisher.Options{})
	if err != nil {
		fmt.Println(err)
		return
	}
	svc, err := command.Start(nc, client, pub, queue.Ensure, command.Options{})
	if err != nil {
		fmt.Println(err)
		return
	}
	defer svc.Stop()

	// A client submits a parse job with metadata; the bridge tracks it.
	reply, err := nc.RequestWithContext(ctx, "reducto.submit",
		[]byte(`{"endpoint":"parse","body":{"input":"https://example.com/a.pdf"},"metadata":{"order":17}}`))
	if err != nil {
		fmt.Println(err)
		return
	}
	var submitted command.SubmitReply
	if err := json.Unmarshal(reply.Data, &submitted); err != nil {
		fmt.Println(err)
		return
	}
	last, err := queue.Last(ctx, submitted.JobID)
	if err != nil {
		fmt.Println(err)
		return
	}
	fmt.Println("submitted; tracked with", string(last.Data))

	// Then cancels it: Reducto is asked, and the job's terminal event will follow.
	reply, err = nc.RequestWithContext(ctx, "reducto.cancel", fmt.Appendf(nil, `{"job_id":%q}`, submitted.JobID))
	if err != nil {
		fmt.Println(err)
		return
	}
	var cancelled command.CancelReply
	if err := json.Unmarshal(reply.Data, &cancelled); err != nil {
		fmt.Println(err)
		return
	}
	fmt.Println("cancel:", cancelled.Cancel, "same job:", cancelled.JobID == submitted.JobID)

	// A bad request gets a micro error: code and description in headers, empty body.
	reply, err = nc.RequestWithContext(ctx, "reducto.cancel", []byte(`{"job_id":"a.b"}`))
	if err != nil {
		fmt.Println(err)
		return
	}
	fmt.Println(reply.Header.Get(micro.ErrorCodeHeader), reply.Header.Get(micro.ErrorHeader) != "", len(reply.Data))
	// Output:
	// submitted; tracked with {"metadata":{"order":17}}
	// cancel: requested same job: true
	// 400 true 0
}

// embeddedNATS starts a JetStream server in a temporary directory, in process (no socket),
// and returns a connection to it.
func embeddedNATS() (*nats.Conn, func(), error) {
	dir, err := os.MkdirTemp("", "command-example-")
	if err != nil {
		return nil, nil, err
	}
	ns, err := server.NewServer(&server.Options{JetStream: true, StoreDir: dir, DontListen: true, NoLog: true, NoSigs: true})
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
	return nc, func() { nc.Close(); stopServer() }, nil
}
