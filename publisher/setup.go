package publisher

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/reducto-bridge/reducto-bridge/event"
	"github.com/reducto-bridge/reducto-bridge/internal/redact"
	"github.com/reducto-bridge/reducto-bridge/internal/streams"
	"github.com/reducto-bridge/reducto-bridge/subject"
)

// Defaults applied by [Setup] to zero [Options] fields. config.Defaults() agrees with them
// (BRIDGE_EVENT_SOURCE, BRIDGE_STREAM_REPLICAS, BRIDGE_EVENTS_MAX_AGE, BRIDGE_DUPLICATE_WINDOW,
// BRIDGE_EVENTS_MAX_BYTES).
const (
	DefaultSource     = "reducto-bridge"
	DefaultReplicas   = 1
	DefaultMaxAge     = 720 * time.Hour
	DefaultDuplicates = time.Hour
	// DefaultMaxBytes is no byte limit of the bridge's: the events are bounded by MaxAge.
	DefaultMaxBytes = 0
)

// resultsGrace makes claim-checked results outlive their events: a result is stored before
// its event, and the event's publish may be retried for a while (a NATS outage) before the
// stream stores it, which starts the event's MaxAge clock.
const resultsGrace = time.Hour

// minDuplicates is the smallest duplicate window the server accepts.
const minDuplicates = 100 * time.Millisecond

// ErrInvalidOptions is returned by [Setup] for unusable [Options], and when the connection
// does not know the server's max payload yet.
var ErrInvalidOptions = errors.New("invalid publisher options")

// Options configures the events stream, the results bucket and the [Publisher]. Zero fields
// take the defaults above.
type Options struct {
	// Prefix is the subject prefix P (BRIDGE_SUBJECT_PREFIX); default subject.DefaultPrefix.
	Prefix string
	// Source is the CloudEvents ce-source (BRIDGE_EVENT_SOURCE); default "reducto-bridge".
	Source string
	// Replicas of REDUCTO_EVENTS and REDUCTO_RESULTS, 1-5; default 1.
	Replicas int
	// MaxAge is how long events are kept; default 720h (30 days). Results are kept one hour
	// longer.
	MaxAge time.Duration
	// Duplicates is the stream's Nats-Msg-Id window, at least 100ms and at most MaxAge;
	// default 1h (capped at MaxAge). At-most-one does not depend on it (see Publish).
	Duplicates time.Duration
	// MaxBytes caps the events stream's size (BRIDGE_EVENTS_MAX_BYTES); 0 sets no limit of the
	// bridge's (unlimited on a new stream, what an operator set with `nats stream edit` on an
	// existing one). A limit an operator tightened below MaxBytes survives (internal/streams:
	// the tighter wins). The stream discards new
	// messages when full, so Publish then fails with ErrStreamFull instead of the server
	// silently dropping old events (which would let a re-tracked job be reported twice).
	MaxBytes int64
	// Logger receives warnings (retries, conflicting kinds); nil discards.
	Logger *slog.Logger
	// Redact removes the bridge's secrets from an event's error (Reducto's message and its
	// error object), should Reducto quote one the bridge sent; nil leaves it as it is.
	Redact *redact.Redactor
}

// withDefaults returns o with zero fields defaulted, or an error naming every bad field.
func (o Options) withDefaults() (Options, error) {
	if o.Prefix == "" {
		o.Prefix = subject.DefaultPrefix
	}
	if o.Source == "" {
		o.Source = DefaultSource
	}
	if o.Replicas == 0 {
		o.Replicas = DefaultReplicas
	}
	if o.MaxAge == 0 {
		o.MaxAge = DefaultMaxAge
	}
	if o.Duplicates == 0 {
		o.Duplicates = min(DefaultDuplicates, o.MaxAge)
	}
	if o.Logger == nil {
		o.Logger = slog.New(slog.DiscardHandler)
	}
	var errs []error
	if err := subject.ValidPrefix(o.Prefix); err != nil {
		errs = append(errs, err)
	}
	if o.Replicas < 1 || o.Replicas > 5 {
		errs = append(errs, fmt.Errorf("replicas %d, want 1-5", o.Replicas))
	}
	if o.MaxAge < 0 {
		errs = append(errs, fmt.Errorf("max age %s is negative", o.MaxAge))
	}
	if o.Duplicates < minDuplicates || o.Duplicates > o.MaxAge {
		errs = append(errs, fmt.Errorf("duplicates window %s, want %s to max age %s", o.Duplicates, minDuplicates, o.MaxAge))
	}
	if o.MaxBytes < 0 {
		errs = append(errs, fmt.Errorf("max bytes %d is negative", o.MaxBytes))
	}
	if len(errs) > 0 {
		return o, fmt.Errorf("%w: %w", ErrInvalidOptions, errors.Join(errs...))
	}
	return o, nil
}

// Setup creates or updates the events stream REDUCTO_EVENTS and the results object store
// REDUCTO_RESULTS with explicit settings, so that a stream created by hand or by an older
// version converges to them, and returns the [Publisher] built on them. It is idempotent and
// safe to run from every replica at start-up. An event that would exceed the server's
// max_payload (js.Conn().MaxPayload(), known once connected) has its result moved to the
// object store.
//
// Deleting and purging events stays allowed: DenyDelete and DenyPurge cannot be switched off
// again once set (short of deleting the stream), and an operator must be able to remove an
// event, for instance one whose result or metadata holds data that has to be erased. The
// bridge itself never deletes an event, so at-most-one-event-per-job holds against the
// bridge's own retries, crashes and replicas; an operator who deletes a job's event and
// re-tracks the job gets a new event, deliberately. If an operator has turned either flag on,
// Setup keeps it on; so it does with every limit it leaves unset, and with a limit tightened
// below the bridge's (internal/streams): a MaxBytes or MaxMsgs set with `nats stream edit`
// survives a restart.
func Setup(ctx context.Context, js JetStream, o Options) (*Publisher, error) {
	o, err := o.withDefaults()
	if err != nil {
		return nil, err
	}
	if js == nil {
		return nil, fmt.Errorf("%w: nil jetstream", ErrInvalidOptions)
	}
	stream, err := streams.Ensure(ctx, js, eventsConfig(o))
	if err != nil {
		return nil, err
	}
	results, err := js.CreateOrUpdateObjectStore(ctx, resultsConfig(o))
	if err != nil {
		return nil, fmt.Errorf("create or update object store %s: %w", subject.ResultsBucket, err)
	}
	maxPayload := js.Conn().MaxPayload()
	if maxPayload <= 2*chunkMargin {
		return nil, fmt.Errorf("%w: max payload %d bytes (not connected yet?)", ErrInvalidOptions, maxPayload)
	}
	return &Publisher{
		js:         js,
		stream:     stream,
		results:    results,
		maxPayload: maxPayload,
		prefix:     o.Prefix,
		source:     o.Source,
		log:        o.Logger,
		redact:     o.Redact,
	}, nil
}

// eventsConfig is the events stream's configuration for defaulted options.
func eventsConfig(o Options) jetstream.StreamConfig {
	// Limits left at zero are the operator's (internal/streams keeps them): unlimited on a new
	// stream, whatever `nats stream edit` set on an existing one.
	return jetstream.StreamConfig{
		Name:        subject.EventsStream,
		Description: "reducto-bridge terminal job events, at most one per job",
		Subjects:    subject.EventKinds(o.Prefix, string(event.Completed), string(event.Failed), string(event.Cancelled), string(event.Expired)),
		Retention:   jetstream.LimitsPolicy,
		Storage:     jetstream.FileStorage,
		Replicas:    o.Replicas,
		MaxAge:      o.MaxAge,
		Duplicates:  o.Duplicates,
		MaxBytes:    max(o.MaxBytes, 0),
		Discard:     jetstream.DiscardNew,
		AllowDirect: true, // Lookup's last-message-by-subject reads are served by any replica
	}
}

// resultsConfig is the results bucket's configuration for defaulted options.
func resultsConfig(o Options) jetstream.ObjectStoreConfig {
	return jetstream.ObjectStoreConfig{
		Bucket:      subject.ResultsBucket,
		Description: "reducto-bridge job results too large for their event",
		TTL:         o.MaxAge + resultsGrace,
		Storage:     jetstream.FileStorage,
		Replicas:    o.Replicas,
	}
}
