// Package publisher publishes the bridge's terminal job events to the JetStream stream
// REDUCTO_EVENTS (docs/contract.md section 2) and guarantees that the stream holds at most one
// terminal event per job, ever: across retries, kinds, bridge crashes and replicas, and beyond
// the stream's duplicate window. It builds an event's message (the subject, and the headers
// and JSON body that package event defines), and moves results too large for one NATS
// message to the REDUCTO_RESULTS object store (claim check). It knows NATS, not Reducto's
// HTTP API.
package publisher

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"slices"
	"strings"
	"time"

	"github.com/cenkalti/backoff/v4"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/reducto-bridge/reducto-bridge/event"
	"github.com/reducto-bridge/reducto-bridge/internal/jserr"
	"github.com/reducto-bridge/reducto-bridge/internal/redact"
	"github.com/reducto-bridge/reducto-bridge/subject"
	"github.com/reducto-bridge/reducto-bridge/tracing"
)

// Errors returned by [Publisher.Publish], matched with errors.Is.
var (
	// ErrInvalidEvent: the event lacks a valid job id or kind; nothing was published.
	ErrInvalidEvent = errors.New("invalid event")
	// ErrStreamFull: the server refused the event because the stream, the account or the
	// server's storage is at its limits. Nothing was stored; the caller should pause
	// (back-pressure) and publish again later.
	ErrStreamFull = errors.New("events stream full")
	// ErrEventTooLarge: the event exceeds the server's max payload even without its result
	// (huge metadata, reason or error message). Nothing was published.
	ErrEventTooLarge = errors.New("event too large")
)

const (
	// attemptTimeout bounds one publish attempt, so that a request lost in a reconnect
	// buffer is retried (with the same message id) rather than awaited forever.
	attemptTimeout = 5 * time.Second
	// payloadMargin keeps an event clear of the server's max payload.
	payloadMargin = 256
	// maxChunk is the object store's default chunk size; chunkMargin leaves room for a
	// chunk message's subject and headers under a smaller max payload.
	maxChunk    = 128 * 1024
	chunkMargin = 1024
)

// JetStream is the part of jetstream.JetStream the publisher uses.
type JetStream interface {
	// Conn is the connection, for the server's max payload.
	Conn() *nats.Conn
	Stream(ctx context.Context, name string) (jetstream.Stream, error)
	CreateOrUpdateStream(ctx context.Context, cfg jetstream.StreamConfig) (jetstream.Stream, error)
	CreateOrUpdateObjectStore(ctx context.Context, cfg jetstream.ObjectStoreConfig) (jetstream.ObjectStore, error)
	PublishMsg(ctx context.Context, msg *nats.Msg, opts ...jetstream.PublishOpt) (*jetstream.PubAck, error)
}

// Publisher publishes terminal events on the stream and bucket [Setup] created. It is safe
// for concurrent use.
type Publisher struct {
	js         JetStream
	stream     jetstream.Stream      // REDUCTO_EVENTS
	results    jetstream.ObjectStore // REDUCTO_RESULTS
	maxPayload int64                 // the server's max_payload, bytes
	prefix     string
	source     string
	log        *slog.Logger
	redact     *redact.Redactor // nil: nothing to redact
}

// Result is what the events stream holds for the job after [Publisher.Publish].
type Result struct {
	// Seq is the stream sequence of the job's event: the new one, or the one already stored.
	Seq uint64
	// Duplicate reports that the stream already held an event for this job (possibly from an
	// earlier attempt of this very publish whose acknowledgement was lost), so none was added.
	Duplicate bool
	// Existing is the kind of the event already stored when Duplicate; it may differ from
	// the kind just published (the first report of a job wins).
	Existing event.Kind
}

// Publish publishes ev as P.job.<kind>.<job_id> and reports what the stream holds for the job.
//
// The stream is asked to store the event only if it holds no event for the job yet, whatever
// its kind (Nats-Expected-Last-Subject-Sequence 0 on P.job.*.<job_id>); the server checks that
// atomically, so concurrent publishers, crashed-and-restarted bridges and later kinds never
// add a second event, however long ago the first was stored. When the stream already holds
// one, Publish returns Result{Duplicate: true, Existing: <its kind>} and a nil error.
//
// A failed attempt that may nevertheless have been stored (timeout, no responders, a
// reconnecting connection) is retried with the same Nats-Msg-Id and the same expectation,
// with exponential backoff until ctx ends. ev is not modified. A result too large for one
// message is stored in REDUCTO_RESULTS under the job id first (see [event.ResultRef]).
func (p *Publisher) Publish(ctx context.Context, ev *event.Event) (Result, error) {
	if ev == nil {
		return Result{}, fmt.Errorf("%w: nil", ErrInvalidEvent)
	}
	if err := subject.ValidJobID(ev.JobID); err != nil {
		return Result{}, fmt.Errorf("%w: %w", ErrInvalidEvent, err)
	}
	if !ev.Kind.Valid() {
		return Result{}, fmt.Errorf("%w: job %s: unknown kind %q", ErrInvalidEvent, ev.JobID, ev.Kind)
	}
	e := *ev
	e.ObservedAt = eventTime(e.ObservedAt)
	e.Error = p.redactError(e.Error)
	id := event.MsgID(e.JobID, e.Kind)
	subj := subject.Event(p.prefix, string(e.Kind), e.JobID)
	log := p.log.With("job_id", e.JobID, "subject", subj)

	// Look first: the stream would refuse a second event anyway, but a refused message still
	// reaches core NATS subscribers of the subject (nats sub), who would see a duplicate. This
	// also keeps a stored large result, which the reported event's digest refers to.
	out, found, foreign, lerr := p.existing(ctx, &e, log)
	if found {
		return out, nil
	}
	msg, err := p.message(ctx, &e, subj)
	if errors.Is(err, ErrEventTooLarge) && hasResult(&e) {
		if lerr != nil {
			return Result{}, fmt.Errorf("publish event %s: %w", id, lerr)
		}
		// A captured URL result is in the store already (ResultRef set): only Reducto's
		// small url object has to go, not the stored result to be replaced by it.
		if e.ResultRef == nil {
			if e.ResultRef, err = p.storeResult(ctx, &e); err != nil {
				return Result{}, fmt.Errorf("publish event %s: %w", id, err)
			}
		}
		e.Result = nil
		msg, err = p.message(ctx, &e, subj)
	}
	if err != nil {
		return Result{}, fmt.Errorf("publish event %s: %w", id, err)
	}
	return p.publish(ctx, msg, &e, foreign, log)
}

// message builds the NATS message of e, with ctx's trace context (package tracing), or fails
// with ErrEventTooLarge.
func (p *Publisher) message(ctx context.Context, e *event.Event, subj string) (*nats.Msg, error) {
	body, err := e.MarshalJSON()
	if err != nil {
		return nil, fmt.Errorf("marshal event: %w", err)
	}
	msg := &nats.Msg{Subject: subj, Header: nats.Header(event.Headers(e, p.source)), Data: body}
	tracing.Inject(ctx, msg.Header)
	// Measure with the JetStream headers the publish options add, as the client and the
	// server count headers toward max_payload.
	probe := copyMsg(msg)
	probe.Header.Set(jetstream.MsgIDHeader, event.MsgID(e.JobID, e.Kind))
	probe.Header.Set(jetstream.ExpectedLastSubjSeqHeader, "0")
	probe.Header.Set(jetstream.ExpectedLastSubjSeqSubjHeader, subject.JobEvents(p.prefix, e.JobID))
	size := int64(probe.Size() - len(probe.Subject))
	if limit := p.maxPayload - payloadMargin; size > limit {
		return nil, fmt.Errorf("%w: %d bytes with headers, limit %d", ErrEventTooLarge, size, limit)
	}
	return msg, nil
}

// storeResult puts e's result into the results bucket under the job id. Putting the same name
// again replaces the object, which makes a retried Publish harmless.
func (p *Publisher) storeResult(ctx context.Context, e *event.Event) (*event.ResultRef, error) {
	ref, err := p.PutResult(ctx, e.JobID, bytes.NewReader(e.Result))
	if err != nil {
		return nil, fmt.Errorf("store result of %d bytes: %w", len(e.Result), err)
	}
	return ref, nil
}

// PutResult streams r into the results bucket REDUCTO_RESULTS under name (a job id) and says
// where it is, for an event's result_ref: how large results and captured URL results
// (package capture) are stored. Putting a name again replaces its object; a put that fails
// (r's error is returned as it is, wrapped) leaves no partial object and keeps the old one.
func (p *Publisher) PutResult(ctx context.Context, name string, r io.Reader) (*event.ResultRef, error) {
	meta := jetstream.ObjectMeta{
		Name: name,
		// The object store's default chunk (128 KiB) exceeds a server's smaller max payload.
		Opts: &jetstream.ObjectMetaOptions{ChunkSize: uint32(min(maxChunk, p.maxPayload-chunkMargin))},
	}
	info, err := p.results.Put(ctx, meta, r)
	if err != nil {
		return nil, fmt.Errorf("store result in %s: %w", subject.ResultsBucket, err)
	}
	return &event.ResultRef{Bucket: subject.ResultsBucket, Name: info.Name, Size: info.Size, Digest: info.Digest}, nil
}

// publish sends msg until the stream has stored it or refused it for good.
func (p *Publisher) publish(ctx context.Context, msg *nats.Msg, e *event.Event, foreign uint64, log *slog.Logger) (Result, error) {
	id := event.MsgID(e.JobID, e.Kind)
	var (
		out     Result
		attempt int
		lastErr error
		// expect is the job's last message sequence the publish is conditioned on: 0 (no
		// message yet), or the sequence of a message on the job's subjects that is not an
		// event of this bridge (a forgery must not suppress the real event).
		expect = foreign
	)
	op := func() error {
		attempt++
		actx, cancel := context.WithTimeout(ctx, attemptTimeout)
		defer cancel()
		opts := []jetstream.PublishOpt{
			jetstream.WithMsgID(id),
			jetstream.WithExpectLastSequenceForSubject(expect, subject.JobEvents(p.prefix, e.JobID)),
		}
		ack, err := p.js.PublishMsg(actx, copyMsg(msg), opts...)
		switch {
		case err == nil:
			out = Result{Seq: ack.Sequence, Duplicate: ack.Duplicate}
			if ack.Duplicate {
				// Same Nats-Msg-Id, so the stored event is of this very kind. A clustered
				// stream checks the id before the expected sequence, so it answers this way.
				out.Existing = e.Kind
				log.Debug("job already reported", "seq", ack.Sequence)
			}
			return nil
		case jserr.WrongLastSequence(err):
			o, found, foreign, lerr := p.existing(actx, e, log)
			if lerr != nil {
				lastErr = lerr
				return lastErr
			}
			if !found && foreign > 0 {
				// Only messages that are not this bridge's events: publish after the last one.
				expect = foreign
				lastErr = errors.New("the job's event subjects hold only messages that are not events of this bridge")
				return lastErr
			}
			if !found {
				// Refused because of an event we cannot see yet (a direct get served by a
				// lagging replica) or that was removed since: ask the stream again.
				lastErr = errors.New("stream refused the event but returned no event for the job")
				return lastErr
			}
			out = o
			return nil
		case ctx.Err() != nil:
			return backoff.Permanent(err)
		case isStreamFull(err):
			return backoff.Permanent(fmt.Errorf("%w: %w", ErrStreamFull, err))
		case isTransient(err):
			lastErr = err
			return err
		default:
			return backoff.Permanent(err)
		}
	}
	notify := func(err error, wait time.Duration) {
		log.Warn("event publish failed, retrying", "attempt", attempt, "retry_in", wait, "error", err)
	}
	b := backoff.NewExponentialBackOff(
		backoff.WithInitialInterval(100*time.Millisecond),
		backoff.WithMultiplier(2),
		backoff.WithRandomizationFactor(0.2),
		backoff.WithMaxInterval(5*time.Second),
		backoff.WithMaxElapsedTime(0), // bounded by ctx only
	)
	if err := backoff.RetryNotify(op, backoff.WithContext(b, ctx), notify); err != nil {
		if cerr := ctx.Err(); cerr != nil && lastErr != nil {
			return Result{}, fmt.Errorf("publish event %s: %w after %d attempts, last error: %w", id, cerr, attempt, lastErr)
		}
		return Result{}, fmt.Errorf("publish event %s: %w", id, err)
	}
	return out, nil
}

// existing returns the result describing the event the stream already holds for e's job,
// found=false when it holds none. Messages on the job's subjects that are not events of this
// bridge (see [Publisher.genuine]) do not count; foreign is the last one's sequence.
func (p *Publisher) existing(ctx context.Context, e *event.Event, log *slog.Logger) (out Result, found bool, foreign uint64, err error) {
	raw, foreign, err := p.lastGenuine(ctx, e.JobID, log)
	if err != nil || raw == nil {
		return Result{}, false, foreign, err
	}
	kind := p.kindOf(raw.Subject, e.JobID)
	if kind != e.Kind {
		log.Warn("job already reported with another kind", "kind", e.Kind, "existing", kind, "seq", raw.Sequence)
	} else {
		log.Debug("job already reported", "seq", raw.Sequence)
	}
	return Result{Seq: raw.Sequence, Duplicate: true, Existing: kind}, true, foreign, nil
}

// genuine reports whether a stored message is an event of this bridge for jobID: it carries
// this bridge's ce-source, and its body decodes as an event of that job and of the kind its
// subject names. Anything else on P.job.<kind>.<id> was published by another client: the
// NATS permissions in docs/security.md keep it out; when they are not in place, it must
// neither count as the job's event nor block the real one.
func (p *Publisher) genuine(raw *jetstream.RawStreamMsg, jobID string) bool {
	if raw.Header.Get(event.HeaderSource) != percentSource(p.source) {
		return false
	}
	ev, err := event.Decode(raw.Data)
	return err == nil && ev.JobID == jobID && ev.Kind == p.kindOf(raw.Subject, jobID)
}

// percentSource is ce-source as the headers carry it (percent-encoded).
func percentSource(source string) string {
	return event.Headers(&event.Event{}, source)[event.HeaderSource][0]
}

// maxForeign bounds how many messages on one job's subjects are examined for a genuine event.
const maxForeign = 64

// lastGenuine returns the job's last genuine event message (nil when there is none) and the
// sequence of the job's last message when that one is not genuine (0 otherwise). The common
// case costs one direct get; only when the last message is foreign are the job's messages read
// (at most maxForeign of them, newest last).
func (p *Publisher) lastGenuine(ctx context.Context, jobID string, log *slog.Logger) (*jetstream.RawStreamMsg, uint64, error) {
	raw, err := p.last(ctx, jobID)
	if err != nil || raw == nil {
		return nil, 0, err
	}
	if p.genuine(raw, jobID) {
		return raw, 0, nil
	}
	foreign := raw.Sequence
	log.Warn("a message on the job's event subject is not an event of this bridge; ignored (restrict publishing to P.job.>, see docs/security.md)",
		"job_id", jobID, "subject", raw.Subject, "seq", raw.Sequence)
	var found *jetstream.RawStreamMsg
	seq := uint64(0)
	for range maxForeign {
		m, err := p.stream.GetMsg(ctx, seq+1, jetstream.WithGetMsgSubject(subject.JobEvents(p.prefix, jobID)))
		if errors.Is(err, jetstream.ErrMsgNotFound) {
			break
		}
		if err != nil {
			return nil, 0, fmt.Errorf("read events of job %s: %w", jobID, err)
		}
		if m.Sequence >= foreign {
			break
		}
		if p.genuine(m, jobID) {
			found = m
			break
		}
		seq = m.Sequence
	}
	if found != nil {
		return found, 0, nil
	}
	return nil, foreign, nil
}

// kindOf extracts <kind> from P.job.<kind>.<job_id>.
func (p *Publisher) kindOf(subj, jobID string) event.Kind {
	rest, _ := strings.CutPrefix(subj, p.prefix+".job.")
	kind, _ := strings.CutSuffix(rest, "."+jobID)
	return event.Kind(kind)
}

// Lookup returns the terminal event already stored for a job, or (nil, nil) when there is none.
func (p *Publisher) Lookup(ctx context.Context, jobID string) (*event.Event, error) {
	ev, _, err := p.Find(ctx, jobID)
	return ev, err
}

// Find is [Publisher.Lookup] that also returns the event's sequence in REDUCTO_EVENTS (0 when
// there is no event). Messages on the job's subjects that other clients published are skipped,
// as they are when publishing.
func (p *Publisher) Find(ctx context.Context, jobID string) (*event.Event, uint64, error) {
	if err := subject.ValidJobID(jobID); err != nil {
		return nil, 0, fmt.Errorf("look up event: %w", err)
	}
	raw, _, err := p.lastGenuine(ctx, jobID, p.log.With("job_id", jobID))
	if err != nil || raw == nil {
		return nil, 0, err
	}
	ev, err := event.Decode(raw.Data)
	if err != nil {
		return nil, 0, fmt.Errorf("look up event of job %s: seq %d: %w", jobID, raw.Sequence, err)
	}
	return ev, raw.Sequence, nil
}

// last returns the job's last stored event message, or nil when there is none.
func (p *Publisher) last(ctx context.Context, jobID string) (*jetstream.RawStreamMsg, error) {
	// The server resolves a wildcard last-by-subject (P.job.*.<id>), direct get or not.
	raw, err := p.stream.GetLastMsgForSubject(ctx, subject.JobEvents(p.prefix, jobID))
	if errors.Is(err, jetstream.ErrMsgNotFound) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("get last event of job %s: %w", jobID, err)
	}
	return raw, nil
}

// copyMsg returns a message that shares nothing mutable with m: the publish options write
// headers into the message they are given, and every attempt must send the same ones.
func copyMsg(m *nats.Msg) *nats.Msg {
	h := make(nats.Header, len(m.Header)+3)
	for k, v := range m.Header {
		h[k] = slices.Clone(v)
	}
	return &nats.Msg{Subject: m.Subject, Header: h, Data: m.Data}
}

// isStreamFull reports a refusal because storage limits are reached.
func isStreamFull(err error) bool {
	switch jserr.Code(err) {
	case jserr.StreamStoreFailed, jserr.InsufficientResources,
		jserr.AccountResourcesExceeded, jserr.StorageResourcesExceeded:
		// StreamStoreFailed is "maximum messages/bytes exceeded" here: the stream has no
		// MaxMsgSize and Publish keeps events under the max payload.
		return true
	}
	return false
}

// isTransient reports a failure after which the event may or may not be stored, or that a
// later attempt can overcome. Retrying is safe because the message id and the expectation
// are the same on every attempt.
func isTransient(err error) bool {
	var apiErr *jetstream.APIError
	if errors.As(err, &apiErr) {
		switch {
		case apiErr.ErrorCode == jserr.DuplicateMsgInProcess, jserr.SubjectInFlight(err):
			// A clustered stream answers so while another publish of the same id, or for
			// the same job, is being replicated; the next attempt sees it stored, or not.
			return true
		case apiErr.ErrorCode == jserr.ClusterNotAvailable:
			return true
		}
		return false
	}
	return errors.Is(err, context.DeadlineExceeded) ||
		errors.Is(err, nats.ErrTimeout) ||
		errors.Is(err, nats.ErrNoResponders) ||
		errors.Is(err, jetstream.ErrNoStreamResponse) ||
		errors.Is(err, nats.ErrConnectionReconnecting) ||
		errors.Is(err, nats.ErrReconnectBufExceeded) ||
		errors.Is(err, nats.ErrDisconnected) ||
		errors.Is(err, nats.ErrStaleConnection)
}

// eventTime is the time written into ce-time and observed_at; a zero time becomes now.
func eventTime(t time.Time) time.Time {
	if t.IsZero() {
		return time.Now().UTC()
	}
	return t.UTC()
}

// hasResult reports whether e carries a result: a JSON null is no result, as the event's
// JSON leaves it out.
func hasResult(e *event.Event) bool {
	return len(e.Result) > 0 && !bytes.Equal(bytes.TrimSpace(e.Result), []byte("null"))
}

// redactError returns info with the bridge's secrets replaced in Reducto's message and error
// object (the placeholder keeps the object valid JSON: it replaces text inside its strings).
// info itself is not modified.
func (p *Publisher) redactError(info *event.ErrorInfo) *event.ErrorInfo {
	if info == nil || p.redact == nil {
		return info
	}
	out := *info
	out.Name = p.redact.String(out.Name)
	out.Message = p.redact.String(out.Message)
	if out.Raw != nil {
		out.Raw = json.RawMessage(p.redact.String(string(out.Raw)))
	}
	return &out
}
