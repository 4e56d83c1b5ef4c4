package cli

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"strconv"
	"strings"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/nats-io/nats.go/micro"

	"github.com/reducto-bridge/reducto-bridge/command"
	"github.com/reducto-bridge/reducto-bridge/publisher"
	"github.com/reducto-bridge/reducto-bridge/subject"
	"github.com/reducto-bridge/reducto-bridge/track"
)

// RequestTimeout bounds one command request (P.cancel waits for Reducto, up to
// BRIDGE_HTTP_TIMEOUT twice over, so it is generous).
const RequestTimeout = 70 * time.Second

// Client is what the NATS verbs share: a connection, its JetStream context, the subject prefix
// and where to print.
type Client struct {
	NC     *nats.Conn
	JS     jetstream.JetStream
	Prefix string
	// Source is BRIDGE_EVENT_SOURCE: watch shows a message without it as not an event.
	Source string
	Out    io.Writer
}

// NewClient returns a Client on nc for subject prefix prefix.
func NewClient(nc *nats.Conn, prefix string, out io.Writer) (*Client, error) {
	js, err := jetstream.New(nc)
	if err != nil {
		return nil, fmt.Errorf("jetstream: %w", err)
	}
	if prefix == "" {
		prefix = subject.DefaultPrefix
	}
	return &Client{NC: nc, JS: js, Prefix: prefix, Source: publisher.DefaultSource, Out: out}, nil
}

// ServiceError is a command's micro error reply: its code and description.
type ServiceError struct {
	Command string
	Code    int
	Desc    string
}

func (e *ServiceError) Error() string {
	return fmt.Sprintf("%s: %d %s", e.Command, e.Code, e.Desc)
}

// request sends a command and returns its successful reply body, a *ServiceError, or why no
// bridge answered.
func (c *Client) request(ctx context.Context, name, subj string, body []byte) ([]byte, error) {
	ctx, cancel := context.WithTimeout(ctx, RequestTimeout)
	defer cancel()
	msg, err := c.NC.RequestWithContext(ctx, subj, body)
	if errors.Is(err, nats.ErrNoResponders) {
		return nil, fmt.Errorf("%s: no bridge answers on %s (is one running, with BRIDGE_SUBJECT_PREFIX=%s?)", name, subj, c.Prefix)
	}
	if err != nil {
		return nil, fmt.Errorf("%s: %w", name, err)
	}
	if code := msg.Header.Get(micro.ErrorCodeHeader); code != "" {
		n, _ := strconv.Atoi(code)
		return nil, &ServiceError{Command: name, Code: n, Desc: msg.Header.Get(micro.ErrorHeader)}
	}
	return msg.Data, nil
}

// jobBody is the body of P.cancel and P.status.
func jobBody(id string) []byte {
	b, _ := json.Marshal(command.CancelRequest{JobID: id})
	return b
}

// Track publishes a track message for the job (JetStream, acknowledged once stored) with
// optional metadata, and prints the stream sequence.
func (c *Client) Track(ctx context.Context, id string, metadata json.RawMessage, webhook bool) error {
	if err := subject.ValidJobID(id); err != nil {
		return fmt.Errorf("track: %w", err)
	}
	var body []byte
	if len(metadata) > 0 || webhook {
		var err error
		if body, err = json.Marshal(track.Request{Metadata: metadata, Webhook: webhook}); err != nil {
			return fmt.Errorf("track: %w", err)
		}
	}
	ack, err := c.JS.Publish(ctx, subject.Track(c.Prefix, id), body)
	if err != nil {
		return fmt.Errorf("track: publish %s: %w", subject.Track(c.Prefix, id), err)
	}
	fmt.Fprintf(c.Out, "tracked %s (stream %s, sequence %d)\n", id, ack.Stream, ack.Sequence)
	return nil
}

// Cancel sends P.cancel for the job and prints the reply.
func (c *Client) Cancel(ctx context.Context, id string) error {
	if err := subject.ValidJobID(id); err != nil {
		return fmt.Errorf("cancel: %w", err)
	}
	data, err := c.request(ctx, "cancel", subject.Cancel(c.Prefix), jobBody(id))
	if err != nil {
		return err
	}
	var r command.CancelReply
	if err := json.Unmarshal(data, &r); err != nil {
		return fmt.Errorf("cancel: reply %q: %w", data, err)
	}
	fmt.Fprintf(c.Out, "cancel %s for %s; its event will tell how it ended\n", r.Cancel, r.JobID)
	return nil
}

// Status sends P.status for the job and prints the reply: as it came with asJSON, else one
// line per fact.
func (c *Client) Status(ctx context.Context, id string, asJSON bool) error {
	if err := subject.ValidJobID(id); err != nil {
		return fmt.Errorf("status: %w", err)
	}
	data, err := c.request(ctx, "status", subject.Status(c.Prefix), jobBody(id))
	if err != nil {
		return err
	}
	if asJSON {
		fmt.Fprintf(c.Out, "%s\n", data)
		return nil
	}
	var r command.StatusReply
	if err := json.Unmarshal(data, &r); err != nil {
		return fmt.Errorf("status: reply %q: %w", data, err)
	}
	fmt.Fprintf(c.Out, "job      %s\n", r.JobID)
	switch {
	case r.Tracked:
		line := "yes"
		if r.TrackedAt != nil {
			line += ", since " + r.TrackedAt.Format(time.RFC3339)
		}
		line += fmt.Sprintf(" (%s sequence %d)", subject.TrackStream, r.TrackSequence)
		if r.Webhook {
			line += ", webhook announced"
		}
		fmt.Fprintf(c.Out, "tracked  %s\n", line)
		switch {
		case r.Moved:
			next := "at its turn in the stream"
			if r.NextPoll != nil {
				next = "not before " + r.NextPoll.Format(time.RFC3339)
			}
			fmt.Fprintf(c.Out, "queued   %d deliveries so far; next poll %s\n", r.Deliveries, next)
		case r.NextPoll != nil:
			fmt.Fprintf(c.Out, "parked   %d deliveries so far; next poll %s\n", r.Deliveries, r.NextPoll.Format(time.RFC3339))
		}
		if p := r.LastPoll; p != nil {
			line := p.Status
			if p.Progress != nil {
				line += fmt.Sprintf(", progress %g", *p.Progress)
			}
			if p.Failure != "" {
				line = strings.TrimPrefix(line+", no answer: "+p.Failure, ", ")
			}
			fmt.Fprintf(c.Out, "polled   %s at %s\n", line, p.PolledAt.Format(time.RFC3339))
		}
	default:
		fmt.Fprintf(c.Out, "tracked  no\n")
	}
	if e := r.Event; e != nil {
		line := string(e.Kind)
		if e.Status != "" {
			line += " (status " + e.Status + ")"
		}
		line += " at " + e.ObservedAt.Format(time.RFC3339) + fmt.Sprintf(", %s sequence %d", subject.EventsStream, e.Sequence)
		if e.Polls > 0 {
			line += fmt.Sprintf(", %d polls", e.Polls)
		}
		fmt.Fprintf(c.Out, "event    %s\n", line)
	} else {
		fmt.Fprintf(c.Out, "event    none yet\n")
	}
	return nil
}
