package cli

import (
	"context"
	"errors"
	"fmt"
	"net/url"
	"strings"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/reducto-bridge/reducto-bridge/event"
	"github.com/reducto-bridge/reducto-bridge/subject"
)

// WatchOptions are the flags of 'bridge watch'.
type WatchOptions struct {
	// Kind limits the events to one kind; empty means every kind.
	Kind event.Kind
	// JSON prints each event's body, one per line, instead of a summary line.
	JSON bool
	// All replays the stream from its first event; otherwise only new events are shown.
	All bool
	// Count stops after that many events; 0 means until ctx ends.
	Count int
}

// Watch tails REDUCTO_EVENTS through an ordered consumer (no durable state on the server) and
// prints each event as it is stored, until ctx ends (nil error) or Count events were shown.
// Messages other clients published on the event subjects (docs/contract.md: not events of this
// bridge) are shown as such, never as events.
func (c *Client) Watch(ctx context.Context, o WatchOptions) error {
	filter := subject.EventsAll(c.Prefix)
	if o.Kind != "" {
		if !o.Kind.Valid() {
			return fmt.Errorf("watch: unknown kind %q (completed, failed, cancelled or expired)", o.Kind)
		}
		filter = c.Prefix + ".job." + string(o.Kind) + ".*"
	}
	policy := jetstream.DeliverNewPolicy
	if o.All {
		policy = jetstream.DeliverAllPolicy
	}
	cons, err := c.JS.OrderedConsumer(ctx, subject.EventsStream, jetstream.OrderedConsumerConfig{
		FilterSubjects: []string{filter},
		DeliverPolicy:  policy,
	})
	if err != nil {
		return fmt.Errorf("watch: consumer on %s: %w", subject.EventsStream, err)
	}
	it, err := cons.Messages()
	if err != nil {
		return fmt.Errorf("watch: %w", err)
	}
	stop := context.AfterFunc(ctx, it.Stop)
	defer stop()
	defer it.Stop()
	for n := 0; o.Count == 0 || n < o.Count; n++ {
		msg, err := it.Next()
		if errors.Is(err, jetstream.ErrMsgIteratorClosed) && ctx.Err() != nil {
			return nil
		}
		if err != nil {
			return fmt.Errorf("watch: %w", err)
		}
		c.printEvent(msg, o.JSON)
	}
	return nil
}

// printEvent prints one stored message of the events stream.
func (c *Client) printEvent(msg jetstream.Msg, asJSON bool) {
	if asJSON {
		fmt.Fprintf(c.Out, "%s\n", msg.Data())
		return
	}
	var seq uint64
	if md, err := msg.Metadata(); err == nil {
		seq = md.Sequence.Stream
	}
	ev, err := event.Decode(msg.Data())
	if err != nil || !strings.HasSuffix(msg.Subject(), "."+ev.JobID) || !c.fromBridge(msg) {
		fmt.Fprintf(c.Out, "%-24s  not an event: %s (sequence %d)\n", "", msg.Subject(), seq)
		return
	}
	line := fmt.Sprintf("%s  %-9s  %s", ev.ObservedAt.Format(time.RFC3339), ev.Kind, ev.JobID)
	if ev.Status != "" {
		line += "  status " + ev.Status
	}
	if ev.Error != nil && ev.Error.Name != "" {
		line += "  error " + ev.Error.Name
	}
	if ev.ResultRef != nil {
		line += fmt.Sprintf("  result in %s (%d bytes)", ev.ResultRef.Bucket, ev.ResultRef.Size)
	}
	if ev.Polls > 0 {
		line += fmt.Sprintf("  %d polls", ev.Polls)
	}
	fmt.Fprintf(c.Out, "%s  seq %d\n", line, seq)
}

// fromBridge reports whether msg carries the bridge's ce-source (Client.Source; any source
// when that is empty).
func (c *Client) fromBridge(msg jetstream.Msg) bool {
	if c.Source == "" {
		return true
	}
	src, err := url.PathUnescape(msg.Headers().Get(event.HeaderSource))
	return err == nil && src == c.Source
}
