// Package track is the REDUCTO_TRACK work queue: the stream that holds one message per
// outstanding job (P.track.<job_id>, docs/contract.md section 1), the durable consumer every
// replica's poller shares, the track body format (encoded by [Queue.Ensure], decoded by
// [ParseBody]), the look-ups the bridge makes on it ([Queue.Last], [Queue.Delete]), and the
// move of a job to the stream's tail with its signed position ([Queue.Requeue],
// [Queue.Position]).
package track

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/reducto-bridge/reducto-bridge/internal/jserr"
	"github.com/reducto-bridge/reducto-bridge/internal/streams"
	"github.com/reducto-bridge/reducto-bridge/subject"
	"github.com/reducto-bridge/reducto-bridge/tracing"
)

// ConsumerName is the durable pull consumer on REDUCTO_TRACK that all replicas share.
const ConsumerName = "reducto-bridge"

// Defaults of zero [Options] fields (config.Defaults() agrees: BRIDGE_STREAM_REPLICAS,
// BRIDGE_ACK_WAIT, BRIDGE_TRACK_MAX_JOBS, BRIDGE_TRACK_MAX_BYTES).
const (
	DefaultReplicas = 1
	DefaultAckWait  = time.Minute
	// DefaultMaxJobs is the stream's MaxMsgs: at most this many outstanding jobs.
	DefaultMaxJobs = 1_000_000
	// DefaultMaxBytes is the stream's MaxBytes, 1 GiB.
	DefaultMaxBytes = 1 << 30
)

// ErrFull: the track stream refused a track because it holds MaxJobs jobs or MaxBytes bytes
// (or the account or server is out of storage). Nothing outstanding was dropped.
var ErrFull = errors.New("track stream " + subject.TrackStream + " is full")

// dedupWindow is the track stream's Nats-Msg-Id window. Tracking does not rely on it: the
// stream keeps one message per job subject.
const dedupWindow = 2 * time.Minute

// Options are the settings of the track stream and its consumer.
type Options struct {
	// Prefix is the subject prefix P (BRIDGE_SUBJECT_PREFIX); default subject.DefaultPrefix.
	Prefix string
	// Replicas of the stream and the consumer (1 on a single server, 3 on a cluster);
	// default 1.
	Replicas int
	// AckWait is how long a replica may hold a job before NATS hands it to another one. It
	// must exceed one poll: a wait for the rate budget, the HTTP timeout and the publish.
	// Default 1m.
	AckWait time.Duration
	// MaxJobs caps the outstanding jobs (the stream's MaxMsgs); default DefaultMaxJobs,
	// negative for unlimited. A full stream refuses new tracks (discard new).
	MaxJobs int64
	// MaxBytes caps the stream's size; default DefaultMaxBytes, negative for unlimited.
	MaxBytes int64
	// MoveKey signs the headers of the messages [Queue.Requeue] moves ([MoveKey] of the
	// Reducto API key, the same on every replica); nil signs with an empty key.
	MoveKey []byte
}

// JetStream is the part of jetstream.JetStream the queue uses.
type JetStream interface {
	Stream(ctx context.Context, name string) (jetstream.Stream, error)
	CreateOrUpdateStream(ctx context.Context, cfg jetstream.StreamConfig) (jetstream.Stream, error)
	CreateOrUpdateConsumer(ctx context.Context, stream string, cfg jetstream.ConsumerConfig) (jetstream.Consumer, error)
	Publish(ctx context.Context, subject string, payload []byte, opts ...jetstream.PublishOpt) (*jetstream.PubAck, error)
	PublishMsg(ctx context.Context, msg *nats.Msg, opts ...jetstream.PublishOpt) (*jetstream.PubAck, error)
}

// Queue is the track work queue [Setup] created. It is safe for concurrent use.
type Queue struct {
	js     JetStream
	prefix string
	stream jetstream.Stream
	ccfg   jetstream.ConsumerConfig // the consumer's configuration, for [Queue.Recreate]
	key    []byte                   // signs moved messages' headers

	mu   sync.Mutex
	cons jetstream.Consumer
}

// Setup creates or updates the REDUCTO_TRACK work-queue stream and the shared durable
// consumer, and returns the queue built on them. It is idempotent and safe to run from every
// replica at start-up.
//
// The stream keeps one message per job subject: tracking a job that is still outstanding
// replaces its message (so there is never a second poll loop), and its discard policy is
// "new", so a full stream (MaxJobs messages or MaxBytes bytes) refuses new tracks rather than
// silently dropping outstanding ones. A limit an operator tightened by hand (MaxMsgs,
// MaxBytes...) survives: the tighter of it and the option wins (internal/streams).
//
// The consumer has no BackOff: delays come from NakWithDelay (combining both distorts the
// delay). MaxAckPending is unlimited because every parked job (NAK'd with a delay) counts
// toward it; concurrency is bounded by the poller's workers instead. A consumer of an older
// version (filtered on P.track.>) is updated in place: nothing delivered or parked is lost. MaxDeliver is unlimited
// because a job ends by its event or by BRIDGE_JOB_TTL, not by a delivery count.
func Setup(ctx context.Context, js JetStream, o Options) (*Queue, error) {
	if js == nil {
		return nil, errors.New("set up track queue: nil jetstream")
	}
	if o.Prefix == "" {
		o.Prefix = subject.DefaultPrefix
	}
	if o.Replicas < 1 {
		o.Replicas = DefaultReplicas
	}
	if o.AckWait <= 0 {
		o.AckWait = DefaultAckWait
	}
	if o.MaxJobs == 0 {
		o.MaxJobs = DefaultMaxJobs
	}
	if o.MaxBytes == 0 {
		o.MaxBytes = DefaultMaxBytes
	}
	stream, err := streams.Ensure(ctx, js, jetstream.StreamConfig{
		Name:              subject.TrackStream,
		Description:       "reducto-bridge: outstanding Reducto jobs, one message per job (work queue)",
		Subjects:          []string{subject.TrackAll(o.Prefix)},
		Retention:         jetstream.WorkQueuePolicy,
		Storage:           jetstream.FileStorage,
		Replicas:          o.Replicas,
		Discard:           jetstream.DiscardNew,
		MaxMsgsPerSubject: 1,
		MaxMsgs:           max(o.MaxJobs, -1),
		MaxBytes:          max(o.MaxBytes, -1),
		Duplicates:        dedupWindow,
	})
	if err != nil {
		return nil, err
	}
	// No filter subject: the stream holds track subjects only, and a filter (even one equal
	// to the stream's subjects) makes nats-server count pending messages subject by subject:
	// with 1,000,000 jobs waiting, 93% of a core and 36 deliveries/s, against 9% and 100/s
	// without (docs/operations.md, "How jobs wait").
	ccfg := jetstream.ConsumerConfig{
		Durable:       ConsumerName,
		Description:   "reducto-bridge pollers (shared by all replicas)",
		DeliverPolicy: jetstream.DeliverAllPolicy,
		AckPolicy:     jetstream.AckExplicitPolicy,
		AckWait:       o.AckWait,
		MaxDeliver:    -1,
		MaxAckPending: -1,
		Replicas:      o.Replicas,
	}
	cons, err := js.CreateOrUpdateConsumer(ctx, subject.TrackStream, ccfg)
	if err != nil {
		return nil, fmt.Errorf("create consumer %s: %w", ConsumerName, err)
	}
	return &Queue{js: js, prefix: o.Prefix, stream: stream, ccfg: ccfg, cons: cons, key: o.MoveKey}, nil
}

// Consumer is the shared durable consumer the pollers fetch track messages from: the one
// [Setup] created, or the latest [Queue.Recreate] made.
func (q *Queue) Consumer() jetstream.Consumer {
	q.mu.Lock()
	defer q.mu.Unlock()
	return q.cons
}

// Recreate creates the shared consumer again, with the configuration [Setup] gave it, and
// makes it the one [Queue.Consumer] returns. The poller calls it when fetching finds the
// consumer gone (deleted by hand, say). It is idempotent: when the consumer exists (another
// replica recreated it first) it is left as it is. The stream keeps every job that was not
// acked, so the new consumer delivers them again; the stream itself is not recreated.
func (q *Queue) Recreate(ctx context.Context) error {
	cons, err := q.js.CreateOrUpdateConsumer(ctx, subject.TrackStream, q.ccfg)
	if err != nil {
		return fmt.Errorf("recreate consumer %s: %w", ConsumerName, err)
	}
	q.mu.Lock()
	q.cons = cons
	q.mu.Unlock()
	return nil
}

// ErrNotTrackSubject: a message on the track stream whose subject is not P.track.<token>.
var ErrNotTrackSubject = errors.New("not a track subject")

// JobID returns the job id of a track message's subject, or why it is unusable: the subject
// is not P.track.<id> ([ErrNotTrackSubject]), or the id is not a valid subject token
// (subject.ErrInvalidJobID).
func (q *Queue) JobID(subj string) (string, error) {
	id, ok := subject.TrackJobID(q.prefix, subj)
	if !ok {
		return "", ErrNotTrackSubject
	}
	if err := subject.ValidJobID(id); err != nil {
		return "", err
	}
	return id, nil
}

// Ensure tracks a job unless it already has a track message: it publishes req to
// P.track.<id> on the condition that the subject holds no message. It reports whether it
// published. The cancel and submit commands and webhooks use it; an existing track (and its
// metadata) is never replaced. A full stream makes it fail with [ErrFull].
func (q *Queue) Ensure(ctx context.Context, id string, req Request) (bool, error) {
	if err := subject.ValidJobID(id); err != nil {
		return false, err
	}
	body, err := req.encode()
	if err != nil {
		return false, err
	}
	msg := &nats.Msg{Subject: subject.Track(q.prefix, id), Header: nats.Header{}, Data: body}
	tracing.Inject(ctx, msg.Header) // a submit's or cancel's trace context, for polls and event
	_, err = q.js.PublishMsg(ctx, msg, jetstream.WithExpectLastSequencePerSubject(0))
	// Either refusal means the job is tracked: the subject holds a track message, or (on a
	// replicated stream) another track of the job is being stored right now.
	if jserr.WrongLastSequence(err) || jserr.SubjectInFlight(err) {
		return false, nil
	}
	if jserr.StreamFull(err) {
		return false, fmt.Errorf("track job %s: %w: %w", id, ErrFull, err)
	}
	if err != nil {
		return false, fmt.Errorf("track job %s: %w", id, err)
	}
	return true, nil
}

// Last returns the job's track message, or nil when it has none.
func (q *Queue) Last(ctx context.Context, id string) (*jetstream.RawStreamMsg, error) {
	msg, err := q.stream.GetLastMsgForSubject(ctx, subject.Track(q.prefix, id))
	if errors.Is(err, jetstream.ErrMsgNotFound) {
		return nil, nil
	}
	return msg, err
}

// Delete removes the track message at stream sequence seq (a reported job's, found by
// [Queue.Last]).
func (q *Queue) Delete(ctx context.Context, seq uint64) error {
	return q.stream.DeleteMsg(ctx, seq)
}
