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

// HeaderMove is the header the bridge sets on a track message it moved to the queue's tail
// ([Queue.Requeue]), so that the job's place in its schedule survives the move: a new message
// starts a new delivery count and has a new timestamp. A producer's track message has none.
// Its value, one line to keep the stream small (1,000,000 moved jobs are held by nats-server):
//
//	v1 <attempt> <step> <tracked_ms> <due_ms> sig=<signature>
//
// attempt is how many deliveries the job had before this message (1: admitted, not yet
// polled; the message's own deliveries count on from it), step its schedule step when it was
// re-tracked with BRIDGE_RETRACK_KEEPS_SCHEDULE, tracked_ms when it was (first) tracked (the
// origin of BRIDGE_JOB_TTL) and due_ms when its next poll is due (0: when delivered), both in
// Unix milliseconds; signature is the first 16 bytes of an HMAC-SHA256 of the rest and the subject, base64url,
// with a key derived from the Reducto API key ([MoveKey]): a forged or copied value is ignored.
const HeaderMove = "Reducto-Bridge-Move"

// maxAttempt bounds the attempt a header may claim, so that no header makes the count wrap.
const maxAttempt = 1 << 32

// Position is where a job stands in its schedule, as one delivery of its track message says.
type Position struct {
	Attempt   uint64    // deliveries of the job so far, this one included (1: admission)
	Step      uint64    // schedule step of a re-track (BRIDGE_RETRACK_KEEPS_SCHEDULE)
	TrackedAt time.Time // the TTL origin
	Due       time.Time // when the next poll is due; zero when the message does not say
	// Requeued: the message is one the bridge moved (it carries a valid HeaderMove), so its
	// timestamp is not the job's track time.
	Requeued bool
}

// Position reads a delivery's position (subj is the message's subject): from HeaderMove on a
// message the bridge moved, else from the delivery itself (stored is the message's timestamp,
// delivered its delivery count). A value that is unreadable or not signed with the queue's key
// for this subject counts as absent, so only a bridge on the same API key can say where a job
// stands; and no value moves the TTL origin after stored.
func (q *Queue) Position(subj string, h nats.Header, stored time.Time, delivered uint64) Position {
	return ReadPosition(q.key, subj, h, stored, delivered)
}

// ReadPosition is [Queue.Position] with the key from [MoveKey].
func ReadPosition(key []byte, subj string, h nats.Header, stored time.Time, delivered uint64) Position {
	p := Position{Attempt: delivered, TrackedAt: stored}
	body, sig, ok := strings.Cut(h.Get(HeaderMove), " sig=")
	if !ok || !hmac.Equal([]byte(sig), []byte(signature(key, subj, body))) {
		return p
	}
	f := strings.Fields(body)
	if len(f) != 5 || f[0] != "v1" {
		return p
	}
	var n [4]int64
	for i, s := range f[1:] {
		v, err := strconv.ParseInt(s, 10, 64)
		if err != nil || v < 0 {
			return p
		}
		n[i] = v
	}
	p.Requeued = true
	p.Attempt = min(uint64(n[0]), maxAttempt) + delivered
	p.Step = min(uint64(n[1]), maxAttempt)
	if at := time.UnixMilli(n[2]); !at.After(stored) {
		p.TrackedAt = at
	}
	if n[3] == 0 {
		return p
	}
	p.Due = time.UnixMilli(n[3])
	if delivered >= 2 && p.Due.Sub(stored) > EarlyMargin {
		// Its first delivery could come before the poll was due (a queue shorter than the
		// delay) and then only waited (see EarlyMargin): not a poll.
		p.Attempt--
	}
	return p
}

// MoveValue is HeaderMove's value for a job on subj at position p (p.Due its next poll),
// signed with key ([MoveKey]).
func MoveValue(key []byte, subj string, p Position) string {
	var due int64 // 0: no due time
	if !p.Due.IsZero() {
		due = p.Due.UnixMilli()
	}
	body := fmt.Sprintf("v1 %d %d %d %d", p.Attempt, p.Step, p.TrackedAt.UnixMilli(), due)
	return body + " sig=" + signature(key, subj, body)
}

// MoveKey derives the key that signs HeaderMove from the Reducto API key: every replica on
// the key (they share its jobs) has it, a producer does not, and the API key cannot be
// recovered from it.
func MoveKey(apiKey string) []byte {
	m := hmac.New(sha256.New, []byte(apiKey))
	m.Write([]byte("reducto-bridge track move v1"))
	return m.Sum(nil)
}

// signature is the MAC of a HeaderMove body for subj: bound to the job, so a value copied
// from another job's message is not taken.
func signature(key []byte, subj, body string) string {
	m := hmac.New(sha256.New, key)
	m.Write([]byte(subj + "\n" + body))
	return base64.RawURLEncoding.EncodeToString(m.Sum(nil)[:16])
}

// EarlyMargin is how early a requeued job may be delivered and still be polled at once; one
// delivered earlier waits until its poll is due, with a NakWithDelay.
const EarlyMargin = 50 * time.Millisecond

// Requeue moves a delivered track message to the tail of the queue: it publishes a copy on
// the job's subject, with the job's position in HeaderMove (p.Attempt the deliveries so far,
// p.Due when the next poll is, zero for when the stream delivers it), which replaces the
// delivered message (one message per subject). The copy is published only while the subject's last message is still the delivered one, so
// a track message published since (a re-track) is never overwritten, and of two replicas
// holding one job only one moves it. It reports whether it moved the message; false with a
// nil error means a newer message holds the job, so the delivered one is gone either way.
// The caller acks the delivery after either.
//
// Nothing is copied from the delivery's NATS headers (Nats-Msg-Id would make the stream
// drop the copy as a duplicate); its other headers (trace context, content type) travel on.
func (q *Queue) Requeue(ctx context.Context, msg jetstream.Msg, p Position) (bool, error) {
	md, err := msg.Metadata()
	if err != nil {
		return false, fmt.Errorf("requeue: %w", err)
	}
	out := &nats.Msg{Subject: msg.Subject(), Header: nats.Header{}, Data: msg.Data()}
	for k, v := range msg.Headers() {
		if strings.HasPrefix(strings.ToLower(k), "nats-") || k == HeaderMove {
			continue
		}
		out.Header[k] = v
	}
	out.Header.Set(HeaderMove, MoveValue(q.key, out.Subject, p))
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
