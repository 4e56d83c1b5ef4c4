package bridge

import (
	"log/slog"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/reducto-bridge/reducto-bridge/internal/natstest"
	"github.com/reducto-bridge/reducto-bridge/reducto/reductosim"
	"github.com/reducto-bridge/reducto-bridge/subject"
	"github.com/reducto-bridge/reducto-bridge/track"
)

// getLog records when each job was asked for (GET /job/{id}) at the simulator.
type getLog struct {
	next http.Handler
	mu   sync.Mutex
	at   map[string][]time.Time
}

func (g *getLog) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if id, ok := strings.CutPrefix(r.URL.Path, "/job/"); ok && r.Method == http.MethodGet {
		g.mu.Lock()
		g.at[id] = append(g.at[id], time.Now())
		g.mu.Unlock()
	}
	g.next.ServeHTTP(w, r)
}

func (g *getLog) times(id string) []time.Time {
	g.mu.Lock()
	defer g.mu.Unlock()
	return slices.Clone(g.at[id])
}

// TestFairScheduleWhenTheBudgetBinds is issue 13's fairness criterion, scaled down: 400 jobs
// that never finish are tracked at once with a 50/s budget and a schedule of 200 ms up to
// 1 s, so the budget binds (it could cycle only 50 jobs every second); 5 more come 2 s later.
// Every job must be first polled within outstanding / budget + 10% (plus the initial interval
// and a margin) of its tracking, the later ones too, and no job may wait more than twice that
// between two polls, and the jobs must wait in the stream (moved to its tail), not parked in
// the consumer. Before the fair interval (every poll at least outstanding / 90% of the budget
// after the previous one), JetStream served the due re-polls first and the later jobs were
// never polled at all.
func TestFairScheduleWhenTheBudgetBinds(t *testing.T) {
	const (
		budget  = 50.0
		first   = 400
		later   = 5
		initial = 200 * time.Millisecond
		margin  = time.Second
	)
	h := newHarness(t, natstest.Options{}, reductosim.Options{})
	gets := &getLog{next: h.sim, at: map[string][]time.Time{}}
	srv := httptest.NewServer(gets)
	t.Cleanup(srv.Close)
	cfg := h.config()
	cfg.BaseURL = srv.URL
	cfg.RateLimit = budget
	cfg.ListSweep = false // per-job polls are what is measured
	cfg.PollInitialInterval = initial
	cfg.PollMaxInterval = time.Second
	cfg.LogLevel = slog.LevelInfo
	h.start(cfg)

	// cycle is the bound: outstanding / budget + 10%.
	cycle := time.Duration(float64(first+later) / budget * 1.1 * float64(time.Second))
	firstBound := cycle + initial + margin
	gapBound := 2 * cycle

	tracked := map[string]time.Time{}
	var ids, lateIDs []string
	trackOne := func() string {
		id := h.sim.Create(reductosim.JobSpec{Duration: 24 * time.Hour})
		tracked[id] = time.Now()
		h.track(id, `{}`)
		return id
	}
	start := time.Now()
	for range first {
		ids = append(ids, trackOne())
	}
	<-time.After(time.Until(start.Add(2 * time.Second))) // the scenario: later jobs come 2 s after
	for range later {
		lateIDs = append(lateIDs, trackOne())
	}
	all := append(slices.Clone(ids), lateIDs...)

	// Done when every early job has been polled twice and every later one once; on the old
	// schedule the later ones never are, so give up after the bounds (and a margin).
	done := func() bool {
		for _, id := range ids {
			if len(gets.times(id)) < 2 {
				return false
			}
		}
		for _, id := range lateIDs {
			if len(gets.times(id)) < 1 {
				return false
			}
		}
		return true
	}
	deadline := start.Add(2*time.Second + firstBound + gapBound)
	cons, err := h.js.Consumer(t.Context(), subject.TrackStream, track.ConsumerName)
	if err != nil {
		t.Fatal(err)
	}
	// Once every job has had its first poll (the first cycle), the jobs wait in the stream,
	// moved to its tail, not parked by NAKs. During the first cycle some may be: a job
	// admitted before the once-a-second count has seen the burst is parked until its poll.
	maxAckPending, steady := 0, start.Add(firstBound)
	for !done() && time.Now().Before(deadline) {
		if info, err := cons.Info(t.Context()); err == nil && time.Now().After(steady) {
			maxAckPending = max(maxAckPending, info.NumAckPending)
		}
		time.Sleep(20 * time.Millisecond)
	}
	end := time.Now()

	var total, never, lateFirst, longGap int
	var worstFirst, worstGap time.Duration
	for _, id := range all {
		ts := gets.times(id)
		total += len(ts)
		if len(ts) == 0 {
			never++
			if never <= 5 {
				t.Errorf("job %s (tracked at +%v) never polled in %v", id, tracked[id].Sub(start).Round(time.Millisecond), end.Sub(tracked[id]).Round(time.Millisecond))
			}
			continue
		}
		if d := ts[0].Sub(tracked[id]); d > firstBound {
			if lateFirst++; lateFirst <= 5 {
				t.Errorf("job %s first polled %v after tracking, want at most %v", id, d.Round(time.Millisecond), firstBound)
			}
		} else {
			worstFirst = max(worstFirst, d)
		}
		// Every gap, the open one up to the end included.
		for i, at := range append(ts[1:], end) {
			if d := at.Sub(ts[i]); d > gapBound {
				if longGap++; longGap <= 5 {
					t.Errorf("job %s waited %v between polls, want at most %v", id, d.Round(time.Millisecond), gapBound)
				}
			} else {
				worstGap = max(worstGap, d)
			}
		}
	}
	rate := float64(total) / end.Sub(start).Seconds()
	t.Logf("%d jobs, budget %.0f/s: %d GET /job in %v (%.1f/s); never polled %d, first poll late %d, long gaps %d; worst first poll %v (bound %v), worst gap %v (bound %v)",
		len(all), budget, total, end.Sub(start).Round(time.Millisecond), rate, never, lateFirst, longGap,
		worstFirst.Round(time.Millisecond), firstBound, worstGap.Round(time.Millisecond), gapBound)
	if rate > budget*1.1 {
		t.Errorf("%.1f GET /job per second, want at most the budget %.0f/s +10%%", rate, budget)
	}
	if limit := 2 * cfg.Concurrency; maxAckPending > limit {
		t.Errorf("up to %d jobs ack pending (parked in the consumer) after the first cycle, want at most %d (twice the workers): while the budget binds they wait in the stream", maxAckPending, limit)
	}
	if rate < budget*0.6 {
		t.Errorf("%.1f GET /job per second: the budget (%.0f/s) does not bind, the test proves nothing", rate, budget)
	}
}
