package track

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/reducto-bridge/reducto-bridge/internal/jserr"
)

// Headers the bridge sets on a track message it moved to the queue's tail ([Queue.Requeue]),
// so that the job's place in its schedule survives the move: a new message starts a new
// delivery count and has a new timestamp. A producer's track message carries none of them.
const (
	// HeaderAttempt is how many deliveries the job had before this message (1: admitted,
	// not yet polled); the message's own deliveries count on from it.
	HeaderAttempt = "Reducto-Bridge-Attempt"
	// HeaderStep is the job's schedule step when it was re-tracked with
	// BRIDGE_RETRACK_KEEPS_SCHEDULE (absent when 0).
	HeaderStep = "Reducto-Bridge-Step"
	// HeaderTrackedAt is when the job was (first) tracked, RFC 3339 with nanoseconds: the
	// origin of BRIDGE_JOB_TTL.
	HeaderTrackedAt = "Reducto-Bridge-Tracked-At"
	// HeaderDue is when the job's next poll is due, RFC 3339 with nanoseconds: a message
	// delivered earlier (the queue was shorter than the poll's delay) waits until then.
	HeaderDue = "Reducto-Bridge-Due"
)

// maxAttempt bounds the attempt a header may claim, so that no header makes the count wrap.
const maxAttempt = 1 << 32

// Position is where a job stands in its schedule, as one delivery of its track message says.
type Position struct {
	Attempt   uint64    // deliveries of the job so far, this one included (1: admission)
	Step      uint64    // schedule step of a re-track (BRIDGE_RETRACK_KEEPS_SCHEDULE)
	TrackedAt time.Time // the TTL origin
	Due       time.Time // when the next poll is due; zero when the message does not say
	// Requeued: the message is one the bridge moved (it carries HeaderAttempt), so its
	// timestamp is not the job's track time.
	Requeued bool
}

// PositionOf reads a delivery's position: from the headers of a requeued message, else from
// the delivery itself (stored is the message's timestamp, delivered its delivery count).
// Unreadable headers count as absent, and no header moves the TTL origin after stored.
func PositionOf(h nats.Header, stored time.Time, delivered uint64) Position {
	p := Position{Attempt: delivered, TrackedAt: stored}
	base, err := strconv.ParseUint(h.Get(HeaderAttempt), 10, 64)
	if err != nil {
		return p
	}
	p.Requeued = true
	p.Attempt = min(base, maxAttempt) + delivered
	if step, err := strconv.ParseUint(h.Get(HeaderStep), 10, 64); err == nil {
		p.Step = min(step, maxAttempt)
	}
	if at, err := time.Parse(time.RFC3339Nano, h.Get(HeaderTrackedAt)); err == nil && !at.After(stored) {
		p.TrackedAt = at
	}
	if due, err := time.Parse(time.RFC3339Nano, h.Get(HeaderDue)); err == nil {
		p.Due = due
		if delivered >= 2 && due.Sub(stored) > EarlyMargin {
			// Its first delivery could come before the poll was due (a queue shorter than
			// the delay) and then only waited (see EarlyMargin): not a poll.
			p.Attempt--
		}
	}
	return p
}

// EarlyMargin is how early a requeued job may be delivered and still be polled at once; one
// delivered earlier waits until its poll is due, with a NakWithDelay.
const EarlyMargin = 50 * time.Millisecond

// Requeue moves a delivered track message to the tail of the queue: it publishes a copy on
// the job's subject, with the job's position in the headers (p.Attempt the deliveries so far,
// due when the next poll is), which replaces the delivered message (one message per subject).
// The copy is published only while the subject's last message is still the delivered one, so
// a track message published since (a re-track) is never overwritten, and of two replicas
// holding one job only one moves it. It reports whether it moved the message; false with a
// nil error means a newer message holds the job, so the delivered one is gone either way.
// The caller acks the delivery after either.
//
// Nothing is copied from the delivery's NATS headers (Nats-Msg-Id would make the stream
// drop the copy as a duplicate); its other headers (trace context, content type) travel on.
func (q *Queue) Requeue(ctx context.Context, msg jetstream.Msg, p Position, due time.Time) (bool, error) {
	md, err := msg.Metadata()
	if err != nil {
		return false, fmt.Errorf("requeue: %w", err)
	}
	out := &nats.Msg{Subject: msg.Subject(), Header: nats.Header{}, Data: msg.Data()}
	for k, v := range msg.Headers() {
		if strings.HasPrefix(strings.ToLower(k), "nats-") || strings.HasPrefix(k, "Reducto-Bridge-") {
			continue
		}
		out.Header[k] = v
	}
	out.Header.Set(HeaderAttempt, strconv.FormatUint(p.Attempt, 10))
	if p.Step > 0 {
		out.Header.Set(HeaderStep, strconv.FormatUint(p.Step, 10))
	}
	out.Header.Set(HeaderTrackedAt, p.TrackedAt.UTC().Format(time.RFC3339Nano))
	out.Header.Set(HeaderDue, due.UTC().Format(time.RFC3339Nano))
	_, err = q.js.PublishMsg(ctx, out, jetstream.WithExpectLastSequencePerSubject(md.Sequence.Stream))
	switch {
	case err == nil:
		return true, nil
	case jserr.WrongLastSequence(err) || jserr.SubjectInFlight(err):
		// A re-track, another replica's move, or this one's earlier attempt that landed.
		return false, nil
	case jserr.StreamFull(err):
		return false, fmt.Errorf("requeue %s: %w: %w", msg.Subject(), ErrFull, err)
	case errors.Is(err, context.Canceled):
		return false, err
	}
	return false, fmt.Errorf("requeue %s: %w", msg.Subject(), err)
}
