package track

import (
	"context"
	"encoding/base64"
	"errors"
	"fmt"
	"time"

	"github.com/nats-io/nats.go/jetstream"
)

// OriginsBucket is the JetStream KV bucket of first track times (BRIDGE_RETRACK_KEEPS_SCHEDULE):
// one key per outstanding job, whose value is when the job was first tracked. Its stream is
// KV_REDUCTO_TRACKED.
const OriginsBucket = "REDUCTO_TRACKED"

// OriginsMargin is how much longer than the job TTL a first track time is kept: a job is
// reported expired at its TTL, so a key older than that is a leftover (a report whose delete
// was lost), and the bucket's TTL removes it.
const OriginsMargin = time.Hour

// OriginsOptions are the settings of the bucket.
type OriginsOptions struct {
	// JobTTL is BRIDGE_JOB_TTL; keys live JobTTL + OriginsMargin. Required.
	JobTTL time.Duration
	// Replicas of the bucket's stream; default 1.
	Replicas int
}

// KeyValueCreator is the part of jetstream.JetStream [SetupOrigins] uses.
type KeyValueCreator interface {
	CreateOrUpdateKeyValue(ctx context.Context, cfg jetstream.KeyValueConfig) (jetstream.KeyValue, error)
}

// Origins keeps each outstanding job's first track time, so that tracking the job again does
// not restart its TTL and poll schedule. Construct it with [SetupOrigins]; it is safe for
// concurrent use.
type Origins struct {
	kv jetstream.KeyValue
}

// SetupOrigins creates or updates the bucket OriginsBucket (history 1, file storage, keys
// expire JobTTL + OriginsMargin after they are written) and returns it.
func SetupOrigins(ctx context.Context, js KeyValueCreator, o OriginsOptions) (*Origins, error) {
	if o.JobTTL <= 0 {
		return nil, errors.New("set up bucket " + OriginsBucket + ": job TTL required")
	}
	if o.Replicas <= 0 {
		o.Replicas = DefaultReplicas
	}
	kv, err := js.CreateOrUpdateKeyValue(ctx, jetstream.KeyValueConfig{
		Bucket:      OriginsBucket,
		Description: "reducto-bridge: first track time of each outstanding job",
		History:     1,
		TTL:         o.JobTTL + OriginsMargin,
		Storage:     jetstream.FileStorage,
		Replicas:    o.Replicas,
	})
	if err != nil {
		return nil, fmt.Errorf("set up bucket %s: %w", OriginsBucket, err)
	}
	return &Origins{kv: kv}, nil
}

// Claim records at as the job's first track time unless one is recorded, and returns the
// recorded one (at itself when it was the first). One KV call for a new job, two otherwise.
func (o *Origins) Claim(ctx context.Context, id string, at time.Time) (time.Time, error) {
	key := originKey(id)
	_, err := o.kv.Create(ctx, key, encodeOrigin(at))
	if err == nil {
		return at, nil
	}
	if !errors.Is(err, jetstream.ErrKeyExists) {
		return at, fmt.Errorf("record first track time: %w", err)
	}
	first, err := o.get(ctx, key)
	if errors.Is(err, jetstream.ErrKeyNotFound) {
		// Forgotten in between (the job was just reported): this track starts afresh.
		return at, nil
	}
	return first, err
}

// First returns the job's recorded first track time, recording at when there is none (the
// key expired, or the job was tracked before the bucket existed). One KV call when recorded.
func (o *Origins) First(ctx context.Context, id string, at time.Time) (time.Time, error) {
	first, err := o.get(ctx, originKey(id))
	if errors.Is(err, jetstream.ErrKeyNotFound) {
		return o.Claim(ctx, id, at)
	}
	return first, err
}

// Forget removes the job's first track time (once the job is reported).
func (o *Origins) Forget(ctx context.Context, id string) error {
	if err := o.kv.Delete(ctx, originKey(id)); err != nil {
		return fmt.Errorf("forget first track time: %w", err)
	}
	return nil
}

func (o *Origins) get(ctx context.Context, key string) (time.Time, error) {
	e, err := o.kv.Get(ctx, key)
	if err != nil {
		if errors.Is(err, jetstream.ErrKeyNotFound) {
			return time.Time{}, err
		}
		return time.Time{}, fmt.Errorf("read first track time: %w", err)
	}
	first, err := time.Parse(time.RFC3339Nano, string(e.Value()))
	if err != nil {
		return time.Time{}, fmt.Errorf("read first track time: bad value: %w", err)
	}
	return first, nil
}

func encodeOrigin(t time.Time) []byte { return []byte(t.UTC().Format(time.RFC3339Nano)) }

// originKey is the job id when it is a valid KV key (Reducto's UUIDs are), else "b64." and
// its unpadded base64url form: a job id may hold characters KV keys may not, but never a
// dot, so the two forms cannot collide.
func originKey(id string) string {
	for i := 0; i < len(id); i++ {
		c := id[i]
		if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '-' || c == '_' || c == '=' || c == '/') {
			return "b64." + base64.RawURLEncoding.EncodeToString([]byte(id))
		}
	}
	return id
}
