package poller

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/reducto-bridge/reducto-bridge/subject"
)

// ConsumerName is the durable pull consumer on REDUCTO_TRACK that all replicas share.
const ConsumerName = "reducto-bridge"

// SetupOptions are the settings of the track stream and its consumer.
type SetupOptions struct {
	Prefix   string
	Replicas int // stream replicas (1 on a single server, 3 on a cluster)
	// AckWait is how long a replica may hold a job before NATS hands it to another one. It
	// must exceed one poll: a wait for the rate budget, the HTTP timeout and the publish.
	AckWait time.Duration
}

// Setup creates or updates the REDUCTO_TRACK work-queue stream and the shared durable
// consumer, and returns the consumer.
//
// The stream keeps one message per job subject: tracking a job that is still outstanding
// replaces its message (so there is never a second poll loop), and its discard policy is
// "new", so a full stream refuses new tracks rather than silently dropping outstanding ones.
//
// The consumer has no BackOff: delays come from NakWithDelay (combining both distorts the
// delay, see DESIGN.md). MaxAckPending is unlimited because every parked job (NAK'd with a
// delay) counts toward it; concurrency is bounded by the poller's workers instead. MaxDeliver
// is unlimited because a job ends by its event or by BRIDGE_JOB_TTL, not by a delivery count.
func Setup(ctx context.Context, js jetstream.JetStream, o SetupOptions) (jetstream.Consumer, error) {
	if o.Replicas < 1 {
		o.Replicas = 1
	}
	if o.AckWait <= 0 {
		o.AckWait = time.Minute
	}
	_, err := js.CreateOrUpdateStream(ctx, jetstream.StreamConfig{
		Name:              subject.TrackStream,
		Description:       "reducto-bridge: outstanding Reducto jobs, one message per job (work queue)",
		Subjects:          []string{subject.TrackAll(o.Prefix)},
		Retention:         jetstream.WorkQueuePolicy,
		Storage:           jetstream.FileStorage,
		Replicas:          o.Replicas,
		Discard:           jetstream.DiscardNew,
		MaxMsgsPerSubject: 1,
		Duplicates:        2 * time.Minute,
	})
	if err != nil {
		return nil, fmt.Errorf("create stream %s: %w", subject.TrackStream, err)
	}
	cons, err := js.CreateOrUpdateConsumer(ctx, subject.TrackStream, jetstream.ConsumerConfig{
		Durable:       ConsumerName,
		Description:   "reducto-bridge pollers (shared by all replicas)",
		FilterSubject: subject.TrackAll(o.Prefix),
		DeliverPolicy: jetstream.DeliverAllPolicy,
		AckPolicy:     jetstream.AckExplicitPolicy,
		AckWait:       o.AckWait,
		MaxDeliver:    -1,
		MaxAckPending: -1,
		Replicas:      o.Replicas,
	})
	if err != nil {
		return nil, fmt.Errorf("create consumer %s: %w", ConsumerName, err)
	}
	return cons, nil
}

// TrackRequest is the optional body of a track message.
type TrackRequest struct {
	// Metadata is echoed in the job's events.
	Metadata json.RawMessage `json:"metadata,omitempty"`
	// Webhook says that Reducto will announce the job's end by webhook to this bridge, so the
	// poll schedule is only a safety net and may be sparse (an extension of the contract).
	Webhook bool `json:"webhook,omitempty"`
}

// EnsureTracked tracks a job unless it already has a track message: it publishes req to
// P.track.<id> on the condition that the subject holds no message. It reports whether it
// published. The cancel and submit commands and webhooks use it; an existing track (and its
// metadata) is never replaced.
func EnsureTracked(ctx context.Context, js jetstream.JetStream, prefix, id string, req TrackRequest) (bool, error) {
	if err := subject.ValidJobID(id); err != nil {
		return false, err
	}
	var body []byte
	if len(req.Metadata) > 0 || req.Webhook {
		var err error
		if body, err = json.Marshal(req); err != nil {
			return false, fmt.Errorf("encode track body: %w", err)
		}
	}
	_, err := js.Publish(ctx, subject.Track(prefix, id), body, jetstream.WithExpectLastSequencePerSubject(0))
	if isWrongLastSequence(err) {
		return false, nil
	}
	if err != nil {
		return false, fmt.Errorf("track job %s: %w", id, err)
	}
	return true, nil
}

// isWrongLastSequence reports a refused conditional publish: the subject already holds a
// message. Replicated streams report it with a different code.
func isWrongLastSequence(err error) bool {
	var apiErr *jetstream.APIError
	return errors.As(err, &apiErr) && (apiErr.ErrorCode == jetstream.JSErrCodeStreamWrongLastSequence ||
		apiErr.ErrorCode == jetstream.JSErrCodeStreamWrongLastSequenceConstant)
}
