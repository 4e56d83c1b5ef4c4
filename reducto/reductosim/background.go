package reductosim

import (
	"math"
	"math/rand/v2"
	"sync"
	"sync/atomic"
	"time"
)

// Background is account traffic that nobody tracks: jobs the simulator creates by itself, as
// other users of the same API key would submit them. They are listed by GET /jobs, answer
// GET /job and count in [Stats] (as [Stats.BackgroundJobs] and [JobStats.Background]), but no
// client knows their ids unless it reads them from the listing.
type Background struct {
	// Rate is how many jobs arrive per simulator second, as a Poisson process. 0 means none.
	Rate float64
	// Spec decides how each background job behaves. Nil means the duration model of submitted
	// jobs: [Options.Spec] (or the default) for a /parse_async submission of
	// {"input":"https://example.com/background.pdf"}.
	Spec func() JobSpec
}

// backgroundInput is the body a background job is created as, when it follows Options.Spec.
const backgroundInput = `{"input":"https://example.com/background.pdf"}`

// background generates [Background] jobs lazily: every request (and every [Server.Stats])
// first creates the jobs whose arrival time has passed on the simulator clock, each with its
// own arrival instant as created_at. The listing is thus the same as if a goroutine had
// created them on time, and a [FakeClock] makes it deterministic.
type background struct {
	next atomic.Int64 // UnixNano of the next arrival; math.MaxInt64 when off
	n    atomic.Int64 // jobs created

	mu   sync.Mutex
	rate float64
	spec func() JobSpec
	rng  *rand.Rand
	at   time.Time // the next arrival, when rate > 0
}

func (b *background) init(seed1, seed2 uint64) {
	b.rng = rand.New(rand.NewPCG(seed1^0x6a09e667f3bcc909, seed2^0xbb67ae8584caa73b))
	b.next.Store(math.MaxInt64)
}

// SetBackground replaces the untracked account traffic, from the current simulator time on;
// a zero Rate stops it. Jobs already created stay.
func (s *Server) SetBackground(bg Background) {
	s.bg.mu.Lock()
	defer s.bg.mu.Unlock()
	s.bg.rate, s.bg.spec = 0, bg.Spec
	s.bg.next.Store(math.MaxInt64)
	if bg.Rate > 0 && !math.IsInf(bg.Rate, 0) {
		s.bg.rate = bg.Rate
		s.bg.at = s.clock.Now()
		s.bg.advance()
	}
}

// advance draws the next arrival after at. Called with mu held and rate > 0.
func (b *background) advance() {
	gap := b.rng.ExpFloat64() / b.rate * float64(time.Second)
	b.at = b.at.Add(time.Duration(max(gap, 1)))
	b.next.Store(b.at.UnixNano())
}

// catchUp creates every background job due by now. Without traffic due it is one atomic load.
func (s *Server) catchUp(now time.Time) {
	if now.UnixNano() < s.bg.next.Load() {
		return
	}
	s.bg.mu.Lock()
	defer s.bg.mu.Unlock()
	for s.bg.rate > 0 && !s.bg.at.After(now) {
		var spec JobSpec
		switch {
		case s.bg.spec != nil:
			spec = s.bg.spec()
		case s.spec != nil:
			spec = s.spec("/parse_async", []byte(backgroundInput))
		default:
			spec = s.defaultSpec("/parse_async", []byte(backgroundInput))
		}
		if spec.Type == "" {
			spec.Type = TypeParse
		}
		s.newJobAt(s.bg.at, spec, backgroundInput, nil, nil, true)
		s.bg.n.Add(1)
		s.bg.advance()
	}
}
