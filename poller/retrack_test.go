package poller_test

import (
	"context"
	"errors"
	"net/http/httptest"
	"strconv"
	"sync/atomic"
	"testing"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/reducto-bridge/reducto-bridge/reducto"
	"github.com/reducto-bridge/reducto-bridge/reducto/reductosim"
	"github.com/reducto-bridge/reducto-bridge/track"
)

// retrackEnv is an env whose poller polls the simulator, for one job that never finishes.
type retrackEnv struct {
	*env
	sim    *reductosim.Server
	client *reducto.Client
	id     string
}

func newRetrackEnv(t *testing.T) *retrackEnv {
	t.Helper()
	const key = "retrack-key"
	sim, err := reductosim.New(reductosim.Options{APIKey: key, Seed: 1})
	if err != nil {
		t.Fatal(err)
	}
	hs := httptest.NewServer(sim)
	t.Cleanup(hs.Close)
	t.Cleanup(sim.Close)
	client, err := reducto.New(hs.URL, key, reducto.WithRetries(0))
	if err != nil {
		t.Fatal(err)
	}
	e := newEnv(t, 30*time.Second)
	// Polls fall 600ms, 1.8s, 4.2s, 6.6s... after tracking.
	e.opts.InitialInterval = 600 * time.Millisecond
	e.opts.Multiplier = 2
	e.opts.MaxInterval = 2400 * time.Millisecond
	e.opts.Jitter = 0
	id := sim.Create(reductosim.JobSpec{Duration: time.Hour})
	return &retrackEnv{env: e, sim: sim, client: client, id: id}
}

// gets is how many GET /job the simulator answered.
func (r *retrackEnv) gets() int64 { return r.sim.Stats().Requests[reductosim.EndpointGetJob] }

// storedAt is when the stream stored the job's current track message.
func (r *retrackEnv) storedAt(t *testing.T) time.Time {
	t.Helper()
	m, err := r.queue.Last(t.Context(), r.id)
	if err != nil || m == nil {
		t.Fatalf("track message of %s: %v %v", r.id, m, err)
	}
	return m.Time
}

// TestRetrackKeepsSchedule: a job re-tracked every 200 ms. With the option, it is polled on
// its backoff schedule counted from its first track and expires at that track's TTL, and its
// first track time is forgotten once reported. Without it, every re-track restarts the job:
// no poll while the re-tracks go on, and the TTL counts from the last one.
func TestRetrackKeepsSchedule(t *testing.T) {
	const every = 200 * time.Millisecond

	t.Run("on", func(t *testing.T) {
		r := newRetrackEnv(t)
		r.opts.JobTTL = 4 * time.Second
		origins, err := track.SetupOrigins(t.Context(), r.js, track.OriginsOptions{JobTTL: r.opts.JobTTL})
		if err != nil {
			t.Fatal(err)
		}
		counted := &countingOrigins{Origins: origins}
		r.opts.Origins = counted
		r.start(t, r.client, r.pub)
		r.track(t, r.id, `{"metadata":{"n":0}}`)
		first := r.storedAt(t)

		tick := time.NewTicker(every)
		defer tick.Stop()
		deadline := time.After(15 * time.Second)
		retracks := 0
		for {
			select {
			case m := <-r.events:
				got := r.gets()
				t.Logf("expired %v after the first track; GET /job = %d over %d re-tracks; KV: %d claims, %d reads at polls",
					m.ev.ObservedAt.Sub(first), got, retracks, counted.claims.Load(), counted.firsts.Load())
				if m.subject != "reducto.job.expired."+r.id {
					t.Fatalf("event %s, want expired", m.subject)
				}
				if !m.ev.TrackedAt.Equal(first.Truncate(time.Millisecond)) {
					t.Errorf("tracked_at %v, want the first track's %v", m.ev.TrackedAt, first)
				}
				if age := m.ev.ObservedAt.Sub(first); age < r.opts.JobTTL {
					t.Errorf("expired %v after the first track, want >= TTL %v", age, r.opts.JobTTL)
				}
				// The schedule's polls up to the TTL fall at 0.6, 1.8 and 4.2 s. A poll due just
				// as a re-track replaces the message moves to the next point, so 2 is allowed;
				// more than 3 means the re-tracks reset the schedule.
				if got < 2 || got > 3 {
					t.Errorf("GET /job = %d over %d re-tracks, want the schedule's 3 (2 at least)", got, retracks)
				}
				if string(m.ev.Metadata) == `{"n":0}` && retracks > 0 {
					t.Errorf("metadata %s, want the latest re-track's", m.ev.Metadata)
				}
				// Forgotten once reported (the ack comes just after the event).
				kv, err := r.js.KeyValue(t.Context(), track.OriginsBucket)
				if err != nil {
					t.Fatal(err)
				}
				for wait := time.Now().Add(5 * time.Second); ; time.Sleep(10 * time.Millisecond) {
					_, err := kv.Get(t.Context(), r.id)
					if errors.Is(err, jetstream.ErrKeyNotFound) {
						break
					}
					if time.Now().After(wait) {
						t.Fatalf("first track time still kept after the report: %v", err)
					}
				}
				return
			case <-tick.C:
				retracks++
				r.track(t, r.id, `{"metadata":{"n":`+strconv.Itoa(retracks)+`}}`)
			case <-deadline:
				t.Fatalf("no event within 15s of re-tracking every %v; GET /job = %d", every, r.gets())
			}
		}
	})

	t.Run("off: each re-track restarts the job", func(t *testing.T) {
		r := newRetrackEnv(t)
		r.opts.JobTTL = 1500 * time.Millisecond
		r.start(t, r.client, r.pub)
		tick := time.NewTicker(every)
		defer tick.Stop()
		for i := range 12 { // 2.4 s, longer than the TTL and than the first two polls
			r.track(t, r.id, `{"metadata":{"n":`+strconv.Itoa(i)+`}}`)
			select {
			case m := <-r.events:
				t.Fatalf("event %s while re-tracking", m.subject)
			case <-tick.C:
			}
		}
		last := r.storedAt(t)
		m := r.next(t)
		if m.subject != "reducto.job.expired."+r.id {
			t.Fatalf("event %s, want expired", m.subject)
		}
		if !m.ev.TrackedAt.Equal(last.Truncate(time.Millisecond)) {
			t.Errorf("tracked_at %v, want the last track's %v (the TTL restarts)", m.ev.TrackedAt, last)
		}
	})
}

// countingOrigins counts the calls the poller makes on the bucket.
type countingOrigins struct {
	*track.Origins
	claims, firsts atomic.Int64
}

func (c *countingOrigins) Claim(ctx context.Context, id string, at time.Time) (time.Time, error) {
	c.claims.Add(1)
	return c.Origins.Claim(ctx, id, at)
}

func (c *countingOrigins) First(ctx context.Context, id string, at time.Time) (time.Time, error) {
	c.firsts.Add(1)
	return c.Origins.First(ctx, id, at)
}
