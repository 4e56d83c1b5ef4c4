// Command consumer is an example consumer of the bridge's events: a durable JetStream consumer
// on REDUCTO_EVENTS that decodes each event with package event, fetches a result stored in the
// REDUCTO_RESULTS object store when the event carries result_ref, prints one line per event
// and acks it. Restarted, it carries on after the last event it acked.
//
//	NATS_URL=nats://127.0.0.1:4222 NATS_USER=reader NATS_PASSWORD=... go run ./examples/consumer
//
// Flags: -durable (the consumer's name), -filter (a subject under reducto.job.>), -n (stop
// after n events; 0 runs until interrupted). NATS_CREDS, or NATS_USER and NATS_PASSWORD,
// authenticate; the reader user of docs/security.md has every permission it needs.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"syscall"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/reducto-bridge/reducto-bridge/event"
)

// options are the consumer's settings, from flags.
type options struct {
	durable string // the durable consumer's name
	filter  string // the subjects it reads
	count   int    // stop after this many events; 0 means never
}

func main() {
	var o options
	flag.StringVar(&o.durable, "durable", "example-consumer", "name of the durable consumer on REDUCTO_EVENTS")
	flag.StringVar(&o.filter, "filter", "reducto.job.>", "subjects to read (reducto.job.completed.> for one kind)")
	flag.IntVar(&o.count, "n", 0, "stop after n events (0: run until interrupted)")
	flag.Parse()
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if err := connectAndRun(ctx, o); err != nil && !errors.Is(err, context.Canceled) {
		fmt.Fprintln(os.Stderr, "consumer:", err)
		os.Exit(1)
	}
}

// connectAndRun connects to NATS as the nats CLI's variables say and runs the consumer.
func connectAndRun(ctx context.Context, o options) error {
	url := os.Getenv("NATS_URL")
	if url == "" {
		url = nats.DefaultURL
	}
	var opts []nats.Option
	if creds := os.Getenv("NATS_CREDS"); creds != "" {
		opts = append(opts, nats.UserCredentials(creds))
	} else if user := os.Getenv("NATS_USER"); user != "" {
		opts = append(opts, nats.UserInfo(user, os.Getenv("NATS_PASSWORD")))
	}
	nc, err := nats.Connect(url, opts...)
	if err != nil {
		return err
	}
	defer nc.Drain()
	js, err := jetstream.New(nc)
	if err != nil {
		return err
	}
	return run(ctx, js, o, os.Stdout)
}

// run reads events through the durable consumer (created if it does not exist) and prints one
// line per event to out, until ctx ends or o.count events are done.
func run(ctx context.Context, js jetstream.JetStream, o options, out io.Writer) error {
	cons, err := js.CreateOrUpdateConsumer(ctx, "REDUCTO_EVENTS", jetstream.ConsumerConfig{
		Durable:       o.durable,
		FilterSubject: o.filter,
		AckPolicy:     jetstream.AckExplicitPolicy,
		DeliverPolicy: jetstream.DeliverAllPolicy, // on first creation: every stored event
	})
	if err != nil {
		return fmt.Errorf("consumer %s: %w", o.durable, err)
	}
	msgs, err := cons.Messages()
	if err != nil {
		return err
	}
	defer msgs.Stop()
	for done := 0; o.count == 0 || done < o.count; {
		msg, err := msgs.Next(jetstream.NextContext(ctx))
		if err != nil {
			return err
		}
		ev, err := event.Decode(msg.Data())
		if err != nil {
			// Not an event (see docs/contract.md: only the bridge publishes there). Say so and
			// do not have it redelivered; it stays in the stream.
			fmt.Fprintf(out, "skipped %s: %v\n", msg.Subject(), err)
			msg.Term()
			done++
			continue
		}
		line, err := describe(ctx, js, ev)
		if err != nil {
			// The object store is not reachable right now: try this event again later.
			fmt.Fprintf(out, "retry %s: %v\n", ev.JobID, err)
			msg.Nak()
			continue
		}
		fmt.Fprintln(out, line)
		if err := msg.DoubleAck(ctx); err != nil {
			return fmt.Errorf("ack %s: %w", ev.JobID, err)
		}
		done++
	}
	return nil
}

// describe is the line printed for ev; a result_ref's object is fetched from the object store
// (whose read checks the object's digest).
func describe(ctx context.Context, js jetstream.JetStream, ev *event.Event) (string, error) {
	line := fmt.Sprintf("%s %s status=%s polls=%d", ev.Kind, ev.JobID, ev.Status, ev.Polls)
	if ev.Error != nil {
		line += fmt.Sprintf(" error=%s", ev.Error.Name)
	}
	switch {
	case ev.ResultRef != nil:
		ref := ev.ResultRef
		obs, err := js.ObjectStore(ctx, ref.Bucket)
		if err != nil {
			return "", fmt.Errorf("object store %s: %w", ref.Bucket, err)
		}
		data, err := obs.GetBytes(ctx, ref.Name)
		if err != nil {
			return "", fmt.Errorf("result %s/%s: %w", ref.Bucket, ref.Name, err)
		}
		line += fmt.Sprintf(" result=%d bytes from %s/%s", len(data), ref.Bucket, ref.Name)
	case ev.Result != nil:
		line += fmt.Sprintf(" result=%d bytes inline", len(ev.Result))
	}
	if len(ev.Metadata) > 0 {
		line += " metadata=" + string(ev.Metadata)
	}
	return line, nil
}
