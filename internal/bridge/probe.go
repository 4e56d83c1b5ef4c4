package bridge

import (
	"context"
	"fmt"
	"sync"
	"sync/atomic"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/reducto-bridge/reducto-bridge/subject"
)

// probeEvery bounds how often /readyz and /metrics ask JetStream about the streams: however
// many requests arrive, at most one probe (two stream look-ups) per interval.
const probeEvery = time.Second

// streamProbe caches whether both streams answer and how many jobs are outstanding, so that
// an unauthenticated flood of /readyz or /metrics requests costs JetStream nothing more.
type streamProbe struct {
	js  jetstream.JetStream
	now func() time.Time

	mu          sync.Mutex // held during a probe: concurrent callers wait for its result
	at          time.Time
	err         error
	outstanding uint64
	oldest      time.Time     // the track stream's first message time (zero when empty)
	last        atomic.Uint64 // outstanding, readable while a probe holds mu
}

// state returns the latest probe's result, probing first when it is older than probeEvery.
func (p *streamProbe) state(ctx context.Context) (outstanding uint64, err error) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if now := p.now(); p.at.IsZero() || now.Sub(p.at) >= probeEvery {
		p.outstanding, p.oldest, p.err = p.probe(ctx)
		p.at = p.now()
		p.last.Store(p.outstanding)
	}
	return p.outstanding, p.err
}

// cached returns the latest probe's outstanding count without probing (0 before the first
// probe): for callers that must not wait on JetStream. The list sweep probes at every sweep.
func (p *streamProbe) cached() uint64 { return p.last.Load() }

// tracked returns the latest probe's outstanding count and the time the oldest outstanding
// job was tracked, probing first when it is older than probeEvery: the list sweep's input.
func (p *streamProbe) tracked(ctx context.Context) (uint64, time.Time, error) {
	n, err := p.state(ctx)
	p.mu.Lock()
	defer p.mu.Unlock()
	return n, p.oldest, err
}

func (p *streamProbe) probe(ctx context.Context) (uint64, time.Time, error) {
	ctx, cancel := context.WithTimeout(ctx, 2*time.Second)
	defer cancel()
	var outstanding uint64
	var oldest time.Time
	for _, name := range []string{subject.TrackStream, subject.EventsStream} {
		s, err := p.js.Stream(ctx, name)
		if err != nil {
			return 0, time.Time{}, fmt.Errorf("stream %s: %w", name, err)
		}
		if name == subject.TrackStream {
			st := s.CachedInfo().State
			outstanding = st.Msgs
			if st.Msgs > 0 {
				oldest = st.FirstTime
			}
		}
	}
	return outstanding, oldest, nil
}
