package track

import (
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/base64"
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
	// HeaderSignature is an HMAC-SHA256 of the others, with a key derived from the Reducto
	// API key ([MoveKey]): headers a producer forged are ignored.
	HeaderSignature = "Reducto-Bridge-Signature"
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

// Position reads a delivery's position: from the headers of a message the bridge moved
// (signed with the queue's key), else from the delivery itself (stored is the message's
// timestamp, delivered its delivery count). Headers without a valid signature, or unreadable,
// count as absent, so only a bridge on the same API key can say where a job stands; and no
// header moves the TTL origin after stored.
func (q *Queue) Position(h nats.Header, stored time.Time, delivered uint64) Position {
	return ReadPosition(q.key, h, stored, delivered)
}

// ReadPosition is [Queue.Position] for the key from [MoveKey].
func ReadPosition(key []byte, h nats.Header, stored time.Time, delivered uint64) Position {
	p := Position{Attempt: delivered, TrackedAt: stored}
	sig, err := base64.RawURLEncoding.DecodeString(h.Get(HeaderSignature))
	if err != nil || !hmac.Equal(sig, sign(key, h)) {
		return p
	}
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

// MoveKey derives the key that signs moved messages' headers from the Reducto API key: every
// replica on the key (they share its jobs) has it, a producer does not, and the API key
// cannot be recovered from it.
func MoveKey(apiKey string) []byte {
	m := hmac.New(sha256.New, []byte(apiKey))
	m.Write([]byte("reducto-bridge track move v1"))
	return m.Sum(nil)
}

// Sign sets h's HeaderSignature for its position headers, with key ([MoveKey]).
func Sign(key []byte, h nats.Header) {
	h.Set(HeaderSignature, base64.RawURLEncoding.EncodeToString(sign(key, h)))
}

// sign is the MAC of the position headers in h.
func sign(key []byte, h nats.Header) []byte {
	m := hmac.New(sha256.New, key)
	for _, k := range []string{HeaderAttempt, HeaderStep, HeaderTrackedAt, HeaderDue} {
		v := h.Get(k)
		m.Write([]byte(strconv.Itoa(len(v)) + ":" + v + ";"))
	}
	return m.Sum(nil)
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
	Sign(q.key, out.Header)
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
