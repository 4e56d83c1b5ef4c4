package bridge

import (
	"context"
	"fmt"
	"sync"
	"sync/atomic"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/reducto-bridge/reducto-bridge/subject"
	"github.com/reducto-bridge/reducto-bridge/sweep"
	"github.com/reducto-bridge/reducto-bridge/track"
)

// probeEvery bounds how often /readyz and /metrics ask JetStream about the streams: however
// many requests arrive, at most one probe (two stream look-ups) per interval.
const probeEvery = time.Second

// streamProbe caches whether both streams answer and how many jobs are outstanding, so that
// an unauthenticated flood of /readyz or /metrics requests costs JetStream nothing more.
type streamProbe struct {
	js  jetstream.JetStream
	now func() time.Time
	key []byte // track.MoveKey: reads the origin of a moved message

	mu          sync.Mutex // held during a probe: concurrent callers wait for its result
	at          time.Time
	err         error
	outstanding uint64
	oldest      time.Time     // the track stream's first job's track time (zero when empty)
	newest      time.Time     // its last message time (zero when empty)
	last        atomic.Uint64 // outstanding, readable while a probe holds mu
}

// state returns the latest probe's result, probing first when it is older than probeEvery.
func (p *streamProbe) state(ctx context.Context) (outstanding uint64, err error) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if now := p.now(); p.at.IsZero() || now.Sub(p.at) >= probeEvery {
		p.refresh(ctx)
	}
	return p.outstanding, p.err
}

// refresh probes now. p.mu is held.
func (p *streamProbe) refresh(ctx context.Context) {
	p.outstanding, p.oldest, p.newest, p.err = p.probe(ctx)
	p.at = p.now()
	p.last.Store(p.outstanding)
}

// keepFresh probes every probeEvery until ctx ends, so that cached stays at most that old
// for the poller, which asks it at every delivery.
func (p *streamProbe) keepFresh(ctx context.Context) {
	t := time.NewTicker(probeEvery)
	defer t.Stop()
	for {
		_, _ = p.state(ctx)
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
	}
}

// cached returns the latest probe's outstanding count without probing (0 before the first
// probe): for callers that must not wait on JetStream. The list sweep probes at every sweep.
func (p *streamProbe) cached() uint64 { return p.last.Load() }

// tracked probes now and returns the outstanding count and the times the oldest and the
// newest outstanding job were tracked: the list sweep's input, at most one probe per sweep
// (it skips the pages of jobs created after the newest, so a cached probe would miss jobs
// tracked since).
func (p *streamProbe) tracked(ctx context.Context) (sweep.Tracked, error) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.refresh(ctx)
	return sweep.Tracked{Count: p.outstanding, Oldest: p.oldest, Newest: p.newest}, p.err
}

func (p *streamProbe) probe(ctx context.Context) (outstanding uint64, oldest, newest time.Time, err error) {
	ctx, cancel := context.WithTimeout(ctx, 2*time.Second)
	defer cancel()
	for _, name := range []string{subject.TrackStream, subject.EventsStream} {
		s, err := p.js.Stream(ctx, name)
		if err != nil {
			return 0, time.Time{}, time.Time{}, fmt.Errorf("stream %s: %w", name, err)
		}
		if name == subject.TrackStream {
			st := s.CachedInfo().State
			outstanding = st.Msgs
			if st.Msgs > 0 {
				oldest, newest = st.FirstTime, st.LastTime
				oldest = firstOrigin(ctx, s, st.FirstSeq, oldest, p.key)
			}
		}
	}
	return outstanding, oldest, newest, nil
}

// firstOrigin is when the job of the track stream's first message was tracked, when that
// message is one the bridge moved to the queue's tail (its timestamp is the move's): the
// stream keeps the jobs it moved in their order, so the first message's job is about the
// oldest. Otherwise, or when the message cannot be read (acked meanwhile), first.
func firstOrigin(ctx context.Context, s jetstream.Stream, seq uint64, first time.Time, key []byte) time.Time {
	msg, err := s.GetMsg(ctx, seq)
	if err != nil {
		return first
	}
	if pos := track.ReadPosition(key, msg.Subject, msg.Header, msg.Time, 1); pos.TrackedAt.Before(first) {
		return pos.TrackedAt
	}
	return first
}
