package sweep

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"time"

	"github.com/nats-io/nats.go/jetstream"
)

// Bucket is the JetStream KV bucket that holds the sweeper leases, one key per API key.
const Bucket = "REDUCTO_BRIDGE"

// DefaultLeasePeriod is the lease period p: a holder renews every p/3, its lease stays valid
// for 4p/5 after each renewal, and the other replicas look every p/10, so a dead holder's
// replacement pages within p of its last renewal.
const DefaultLeasePeriod = 5 * time.Second

// LeaseKey is the lease's key for an API key: sweeper.<first 16 hex digits of its SHA-256>.
// The key itself never leaves the process.
func LeaseKey(apiKey string) string {
	sum := sha256.Sum256([]byte(apiKey))
	return "sweeper." + hex.EncodeToString(sum[:])[:16]
}

// SetupBucket creates or updates the lease bucket (history 1, file storage).
func SetupBucket(ctx context.Context, js jetstream.JetStream, replicas int) (jetstream.KeyValue, error) {
	if replicas < 1 {
		replicas = 1
	}
	kv, err := js.CreateOrUpdateKeyValue(ctx, jetstream.KeyValueConfig{
		Bucket:      Bucket,
		Description: "reducto-bridge: sweeper leases, one per API key",
		History:     1,
		Storage:     jetstream.FileStorage,
		Replicas:    replicas,
	})
	if err != nil {
		return nil, fmt.Errorf("set up kv bucket %s: %w", Bucket, err)
	}
	return kv, nil
}

// Coverage is what the sweeper holding the lease tells the other replicas: whether its
// sweeps are healthy, and the horizon above which a tracked job's end is found by the list.
type Coverage struct {
	Healthy bool `json:"healthy"`
	// All: the latest sweep reached the end of the list; the horizon does not matter.
	All bool `json:"all,omitempty"`
	// Horizon: jobs tracked at or after it are covered.
	Horizon time.Time `json:"horizon"`
}

// leaseValue is the lease key's value.
type leaseValue struct {
	Holder   string    `json:"holder"`
	Expires  time.Time `json:"expires"`
	Coverage Coverage  `json:"coverage"`
}

// Lease is one replica's side of the sweeper lease: taken with Create (or Update on the
// revision of an expired value), renewed with Update(revision), released with a Delete on
// the revision at a clean shutdown. Expiry is the value's timestamp (set by the holder's
// clock: replicas' clocks must agree to well within the period). Safe for concurrent use.
type Lease struct {
	kv     jetstream.KeyValue
	key    string
	holder string
	period time.Duration
	now    func() time.Time
	log    *slog.Logger

	mu       sync.Mutex
	held     bool
	rev      uint64
	renewed  time.Time
	theirs   Coverage  // the holder's coverage, when another replica holds the lease
	theirsTo time.Time // valid until the holder's lease expires
}

// NewLease returns this replica's side of the lease on key in kv; period 0 means
// [DefaultLeasePeriod].
func NewLease(kv jetstream.KeyValue, key string, period time.Duration, log *slog.Logger) *Lease {
	if period <= 0 {
		period = DefaultLeasePeriod
	}
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	id := make([]byte, 8)
	rand.Read(id)
	return &Lease{kv: kv, key: key, holder: hex.EncodeToString(id), period: period, now: time.Now, log: log}
}

// Held reports whether this replica holds the lease.
func (l *Lease) Held() bool {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.held
}

// theirCoverage is the holder's published coverage while another replica holds a valid
// lease.
func (l *Lease) theirCoverage() (Coverage, bool) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.held || !l.now().Before(l.theirsTo) {
		return Coverage{}, false
	}
	return l.theirs, true
}

// run takes, renews and watches the lease until ctx ends, publishing cov() with each
// renewal; onChange is called when this replica gains or loses it.
func (l *Lease) run(ctx context.Context, cov func() Coverage, onChange func(held bool)) {
	t := time.NewTicker(l.period / 10)
	defer t.Stop()
	for {
		before := l.Held()
		l.tick(ctx, cov())
		if after := l.Held(); after != before {
			onChange(after)
		}
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
	}
}

// tick is one step: a holder renews when a third of the period has passed; another replica
// reads the value and takes the lease when it is absent or expired.
func (l *Lease) tick(ctx context.Context, cov Coverage) {
	ctx, cancel := context.WithTimeout(ctx, l.period/2)
	defer cancel()
	l.mu.Lock()
	held, rev, renewed := l.held, l.rev, l.renewed
	l.mu.Unlock()
	now := l.now()
	value := func() []byte {
		b, _ := json.Marshal(leaseValue{Holder: l.holder, Expires: now.Add(l.period * 4 / 5), Coverage: cov})
		return b
	}
	if held {
		if now.Sub(renewed) < l.period/3 {
			return
		}
		nrev, err := l.kv.Update(ctx, l.key, value(), rev)
		l.mu.Lock()
		defer l.mu.Unlock()
		if err != nil {
			// Taken over, or NATS out of reach: stop paging. If the value is still this
			// replica's, the next tick takes it back.
			l.held = false
			l.log.Warn("sweeper lease lost", "key", l.key, "error", err)
			return
		}
		l.rev, l.renewed = nrev, now
		return
	}
	e, err := l.kv.Get(ctx, l.key)
	switch {
	case errors.Is(err, jetstream.ErrKeyNotFound), errors.Is(err, jetstream.ErrKeyDeleted):
		l.take(ctx, now, 0, value())
	case err != nil:
		l.log.Debug("read sweeper lease failed", "key", l.key, "error", err)
	default:
		var v leaseValue
		if jerr := json.Unmarshal(e.Value(), &v); jerr != nil || !now.Before(v.Expires) || v.Holder == l.holder {
			l.take(ctx, now, e.Revision(), value())
			return
		}
		l.mu.Lock()
		l.theirs, l.theirsTo = v.Coverage, v.Expires
		l.mu.Unlock()
	}
}

// take creates the key (rev 0) or replaces the expired value at rev.
func (l *Lease) take(ctx context.Context, now time.Time, rev uint64, value []byte) {
	var nrev uint64
	var err error
	if rev == 0 {
		nrev, err = l.kv.Create(ctx, l.key, value)
	} else {
		nrev, err = l.kv.Update(ctx, l.key, value, rev)
	}
	if err != nil {
		// Another replica was faster: it holds the lease now.
		l.log.Debug("sweeper lease taken by another replica", "key", l.key, "error", err)
		return
	}
	l.mu.Lock()
	l.held, l.rev, l.renewed = true, nrev, now
	l.mu.Unlock()
	l.log.Info("sweeper lease taken: this replica pages GET /jobs", "key", l.key)
}

// release deletes the key at its revision, so that another replica takes over at once.
func (l *Lease) release(ctx context.Context) {
	l.mu.Lock()
	held, rev := l.held, l.rev
	l.held = false
	l.mu.Unlock()
	if !held {
		return
	}
	ctx, cancel := context.WithTimeout(ctx, l.period/2)
	defer cancel()
	if err := l.kv.Delete(ctx, l.key, jetstream.LastRevision(rev)); err != nil {
		l.log.Debug("release sweeper lease failed", "key", l.key, "error", err)
	}
}
