// Command replay is an example of an event-sourced consumer of the bridge's events: it reads
// REDUCTO_EVENTS from its first event through a durable consumer, rebuilds a table of job
// outcomes in memory (one row per job: kind, status, error, polls, time from tracking to the
// end) and prints it once it has caught up. With -follow it keeps reading and prints each new
// row as its event arrives.
//
//	NATS_URL=nats://127.0.0.1:4222 NATS_USER=reader NATS_PASSWORD=... go run ./examples/replay
//
// Every run starts from the first stored event: the durable consumer is deleted and created
// again. Only the bridge's events count (docs/contract.md section 2): a message without the
// bridge's ce-source (-source, BRIDGE_EVENT_SOURCE), or whose body is not the event its
// subject names, is skipped and counted.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"slices"
	"strings"
	"syscall"
	"text/tabwriter"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/reducto-bridge/reducto-bridge/event"
)

// options are the replay's settings, from flags.
type options struct {
	durable string // the durable consumer's name
	source  string // the bridge's ce-source
	follow  bool   // keep reading after the table is printed
}

func main() {
	var o options
	flag.StringVar(&o.durable, "durable", "example-replay", "name of the durable consumer on REDUCTO_EVENTS (recreated at start)")
	flag.StringVar(&o.source, "source", "reducto-bridge", "the bridge's ce-source (BRIDGE_EVENT_SOURCE)")
	flag.BoolVar(&o.follow, "follow", false, "after the table, print each new outcome as it arrives")
	flag.Parse()
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if err := connectAndRun(ctx, o); err != nil && !errors.Is(err, context.Canceled) {
		fmt.Fprintln(os.Stderr, "replay:", err)
		os.Exit(1)
	}
}

// connectAndRun connects to NATS as the nats CLI's variables say and runs the replay.
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

// outcome is one row of the table: how a job ended.
type outcome struct {
	kind   event.Kind
	status string
	err    string        // the error's name, if any
	polls  int           // GET /job calls the bridge made
	took   time.Duration // tracked_at to observed_at; 0 when tracked_at is unknown
}

// table is the state rebuilt from the events.
type table struct {
	source  string // the percent-encoded ce-source the bridge's events carry
	jobs    map[string]outcome
	skipped int // messages that are not the bridge's events
}

func newTable(source string) *table {
	enc := event.Headers(&event.Event{}, source)[event.HeaderSource][0]
	return &table{source: enc, jobs: map[string]outcome{}}
}

// apply adds the outcome a message reports and returns its job id, or "" when the message is
// not one of the bridge's events (then it counts as skipped).
func (t *table) apply(msg jetstream.Msg) string {
	tok := strings.Split(msg.Subject(), ".")
	ev, err := event.Decode(msg.Data())
	if err != nil || msg.Headers().Get(event.HeaderSource) != t.source || len(tok) < 4 ||
		tok[len(tok)-3] != "job" || string(ev.Kind) != tok[len(tok)-2] || ev.JobID != tok[len(tok)-1] {
		t.skipped++
		return ""
	}
	if _, seen := t.jobs[ev.JobID]; seen {
		return "" // the stream holds one event per job; the first one wins
	}
	o := outcome{kind: ev.Kind, status: ev.Status, polls: ev.Polls}
	if ev.Error != nil {
		o.err = ev.Error.Name
	}
	if !ev.TrackedAt.IsZero() {
		o.took = ev.ObservedAt.Sub(ev.TrackedAt)
	}
	t.jobs[ev.JobID] = o
	return ev.JobID
}

// print writes the table, one row per job sorted by id, and a summary line.
func (t *table) print(out io.Writer) {
	w := tabwriter.NewWriter(out, 0, 0, 2, ' ', 0)
	fmt.Fprintln(w, "JOB\tKIND\tSTATUS\tERROR\tPOLLS\tTOOK")
	ids := make([]string, 0, len(t.jobs))
	for id := range t.jobs {
		ids = append(ids, id)
	}
	slices.Sort(ids)
	count := map[event.Kind]int{}
	for _, id := range ids {
		o := t.jobs[id]
		count[o.kind]++
		fmt.Fprintf(w, "%s\t%s\t%s\t%s\t%d\t%s\n", id, o.kind, o.status, o.err, o.polls, o.took)
	}
	w.Flush()
	fmt.Fprintf(out, "%d jobs: %d completed, %d failed, %d cancelled, %d expired; %d messages skipped\n",
		len(ids), count[event.Completed], count[event.Failed], count[event.Cancelled], count[event.Expired], t.skipped)
}

// run rebuilds the table from the first event of REDUCTO_EVENTS and prints it to out; with
// o.follow it then prints each new outcome until ctx ends.
func run(ctx context.Context, js jetstream.JetStream, o options, out io.Writer) error {
	const stream = "REDUCTO_EVENTS"
	if err := js.DeleteConsumer(ctx, stream, o.durable); err != nil && !errors.Is(err, jetstream.ErrConsumerNotFound) {
		return fmt.Errorf("consumer %s: %w", o.durable, err)
	}
	cons, err := js.CreateConsumer(ctx, stream, jetstream.ConsumerConfig{
		Durable:       o.durable,
		DeliverPolicy: jetstream.DeliverAllPolicy,
		AckPolicy:     jetstream.AckNonePolicy, // a replay reads; nothing to hand back
	})
	if err != nil {
		return fmt.Errorf("consumer %s: %w", o.durable, err)
	}
	info, err := cons.Info(ctx)
	if err != nil {
		return err
	}
	t := newTable(o.source)
	msgs, err := cons.Messages()
	if err != nil {
		return err
	}
	defer msgs.Stop()
	// Caught up when the consumer has nothing pending: the last message delivered says so.
	for pending := info.NumPending; pending > 0; {
		msg, err := msgs.Next(jetstream.NextContext(ctx))
		if err != nil {
			return err
		}
		t.apply(msg)
		meta, err := msg.Metadata()
		if err != nil {
			return err
		}
		pending = meta.NumPending
	}
	t.print(out)
	for o.follow {
		msg, err := msgs.Next(jetstream.NextContext(ctx))
		if err != nil {
			return err
		}
		if id := t.apply(msg); id != "" {
			r := t.jobs[id]
			fmt.Fprintf(out, "%s %s %s %s polls=%d took=%s\n", id, r.kind, r.status, r.err, r.polls, r.took)
		}
	}
	return nil
}
