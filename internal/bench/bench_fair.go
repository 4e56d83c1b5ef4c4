package bench

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"time"
)

// The fair scenario (issue 13's fairness criterion): -jobs jobs that never finish are tracked
// at once on the default schedule (2 s up to 30 s), no list sweep, the bridge's budget
// binding; fairLate more are tracked fairLateAfter later. It runs until every early job has
// been polled twice and every late one once (or 3 cycles), and reports the first-poll delays,
// the longest gap between two polls of a job (the open one up to the end included), and
// the bound: outstanding / budget + 10%.
const (
	fairJobs      = 100_000
	fairLate      = 100
	fairLateAfter = 60 * time.Second // simulator time after the early jobs are stored
)

// fairResult is the fair scenario's outcome; times are simulator seconds.
type fairResult struct {
	Scenario      string       `json:"scenario"`
	Config        *benchConfig `json:"config"`
	EarlyJobs     int          `json:"early_jobs"`
	LateJobs      int          `json:"late_jobs"`
	BudgetPerS    float64      `json:"budget_per_s"` // simulator seconds
	BoundS        float64      `json:"bound_s"`      // (early + late) / budget x 1.1
	Never         int          `json:"never_polled"` // jobs never polled by the end
	FirstEarlyMax float64      `json:"first_poll_early_max_s"`
	FirstLateMax  float64      `json:"first_poll_late_max_s"`
	FirstLateP50  float64      `json:"first_poll_late_p50_s"`
	GapMax        float64      `json:"gap_max_s"`
	GapP99        float64      `json:"gap_p99_s"`
	LateFirst     int          `json:"first_poll_over_bound"` // jobs first polled later than BoundS after tracking
	LongGaps      int          `json:"gaps_over_twice_bound"`
	GetsPerS      float64      `json:"get_job_per_s"`
	RateLimited   int64        `json:"rate_limited_2000"`
	Done          bool         `json:"done"` // every early job polled twice and every late one once
	RunS          float64      `json:"run_s"`
	WallSeconds   float64      `json:"wall_s"`
}

// pollLog records, per job, the arrival of every answered GET /job/{id} (first and last, and
// the longest gap so far).
type pollLog struct {
	mu   sync.Mutex
	jobs map[string]*polls
	n    int
}

type polls struct {
	first, last time.Time
	count       int
	maxGap      time.Duration
}

func (g *pollLog) wrap(h http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, req *http.Request) {
		at := time.Now()
		sw := &statusWriter{ResponseWriter: w, code: http.StatusOK}
		h.ServeHTTP(sw, req)
		id, ok := strings.CutPrefix(req.URL.Path, "/job/")
		if req.Method != http.MethodGet || !ok || id == "" || strings.Contains(id, "/") || sw.code != http.StatusOK {
			return
		}
		g.mu.Lock()
		defer g.mu.Unlock()
		g.n++
		p := g.jobs[id]
		if p == nil {
			g.jobs[id] = &polls{first: at, last: at, count: 1}
			return
		}
		p.maxGap = max(p.maxGap, at.Sub(p.last))
		p.last, p.count = at, p.count+1
	})
}

// done reports whether every early job has 2 polls and every late one 1.
func (g *pollLog) done(early, late []string) bool {
	g.mu.Lock()
	defer g.mu.Unlock()
	for _, id := range early {
		if p := g.jobs[id]; p == nil || p.count < 2 {
			return false
		}
	}
	for _, id := range late {
		if g.jobs[id] == nil {
			return false
		}
	}
	return true
}

// sim converts a real duration into simulator time.
func (c *benchConfig) sim(d time.Duration) time.Duration {
	return time.Duration(float64(d) * c.Speed)
}

// benchFair runs the fair scenario.
func benchFair(ctx context.Context, cfg *benchConfig, stdout, stderr io.Writer) error {
	began := time.Now()
	budget := cfg.BridgeRate // simulator seconds
	n := cfg.Jobs
	total := n + fairLate
	bound := time.Duration(float64(total) / budget * 1.1 * float64(time.Second))
	if cfg.Timeout == 0 {
		cfg.Timeout = 5*time.Minute + cfg.real(fairLateAfter+3*bound)
	}
	cfg.TimeoutS = cfg.Timeout.Seconds()
	ctx, cancel := context.WithTimeout(ctx, cfg.Timeout)
	defer cancel()
	wl := neverEnding(total)
	log := &pollLog{jobs: map[string]*polls{}}
	r, err := newRigWith(cfg, wl, rigOptions{withNATS: true, wrapSim: log.wrap})
	if err != nil {
		return err
	}
	defer r.close()
	if err := r.startScenario(ctx, scenarioFair, func(env map[string]string) { env["BRIDGE_LIST_SWEEP"] = "false" }); err != nil {
		return err
	}
	fmt.Fprintf(stderr, "bench: fair: %d jobs that never finish tracked at once, %d more %s later; default schedule, no list sweep, budget %g/s; bound %s (simulator time) ...\n",
		n, fairLate, fairLateAfter, budget, bound)

	tracked := make(map[string]time.Time, total)
	start := time.Now()
	early, err := r.trackJobs(ctx, wl, 0, n, tracked)
	if err != nil {
		return err
	}
	if err := r.waitFor(ctx, cfg.real(fairLateAfter)); err != nil {
		return err
	}
	late, err := r.trackJobs(ctx, wl, n, total, tracked)
	if err != nil {
		return err
	}
	deadline := start.Add(cfg.real(fairLateAfter + 3*bound))
	t := time.NewTicker(time.Second)
	defer t.Stop()
	res := &fairResult{Scenario: scenarioFair, Config: cfg, EarlyJobs: n, LateJobs: fairLate, BudgetPerS: budget, BoundS: bound.Seconds()}
	lastReport := time.Now()
	for !res.Done && time.Now().Before(deadline) {
		select {
		case <-ctx.Done():
			return context.Cause(ctx)
		case <-r.child.Exited():
			return fmt.Errorf("bridge exited: %v (see %s)", r.child.Err(), r.child.LogPath())
		case <-t.C:
		}
		res.Done = log.done(early, late)
		if time.Since(lastReport) >= 30*time.Second {
			lastReport = time.Now()
			log.mu.Lock()
			fmt.Fprintf(stderr, "bench: fair: %d of %d jobs polled, %d GET /job, %.0f s (simulator)\n", len(log.jobs), total, log.n, cfg.sim(time.Since(start)).Seconds())
			log.mu.Unlock()
		}
	}
	end := time.Now()
	res.RunS = cfg.sim(end.Sub(start)).Seconds()
	log.mu.Lock()
	var gaps, lateFirsts []float64
	for g, group := range [][]string{early, late} {
		for _, id := range group {
			p := log.jobs[id]
			if p == nil {
				res.Never++
				continue
			}
			first := cfg.sim(p.first.Sub(tracked[id])).Seconds()
			if first > res.BoundS {
				res.LateFirst++
			}
			gap := cfg.sim(max(p.maxGap, end.Sub(p.last))).Seconds()
			gaps = append(gaps, gap)
			if gap > 2*res.BoundS {
				res.LongGaps++
			}
			res.GapMax = max(res.GapMax, gap)
			if g == 1 {
				lateFirsts = append(lateFirsts, first)
				res.FirstLateMax = max(res.FirstLateMax, first)
			} else {
				res.FirstEarlyMax = max(res.FirstEarlyMax, first)
			}
		}
	}
	res.GetsPerS = float64(log.n) / res.RunS
	log.mu.Unlock()
	res.GapP99 = summarize(gaps).P99
	res.FirstLateP50 = summarize(lateFirsts).P50
	res.RateLimited = r.sim.Stats().RateLimited2000
	r.saveMetrics(ctx, scenarioFair)
	if err := r.child.stop(time.Minute); err != nil {
		return err
	}
	res.WallSeconds = time.Since(began).Seconds()
	return res.write(cfg.Out, stdout)
}

func (s *fairResult) write(dir string, stdout io.Writer) error {
	var md strings.Builder
	fmt.Fprintf(&md, "## bridge bench -scenario fair\n\n")
	fmt.Fprintf(&md, "%d jobs that never finish tracked at once, %d more %s later; default schedule, no list sweep; budget %g GET /job/s; clock x%g (simulator seconds). Bound: outstanding / budget + 10%% = %.0f s.\n\n",
		s.EarlyJobs, s.LateJobs, fairLateAfter, s.BudgetPerS, s.Config.Speed, s.BoundS)
	fmt.Fprintln(&md, "| jobs | done | never polled | first poll max, early (s) | first poll p50 / max, late (s) | over the bound | longest gap p99 / max (s) | gaps over 2x bound | GET/s | 429s | run (s) |")
	fmt.Fprintln(&md, "| ---: | --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |")
	fmt.Fprintf(&md, "| %d | %v | %d | %.0f | %.0f / %.0f | %d | %.0f / %.0f | %d | %.1f | %d | %.0f |\n",
		s.EarlyJobs+s.LateJobs, s.Done, s.Never, s.FirstEarlyMax, s.FirstLateP50, s.FirstLateMax, s.LateFirst, s.GapP99, s.GapMax, s.LongGaps, s.GetsPerS, s.RateLimited, s.RunS)
	if err := os.WriteFile(filepath.Join(dir, "results.md"), []byte(md.String()), 0o644); err != nil {
		return err
	}
	js, err := json.MarshalIndent(s, "", "  ")
	if err != nil {
		return err
	}
	if err := os.WriteFile(filepath.Join(dir, "results.json"), js, 0o644); err != nil {
		return err
	}
	_, err = io.WriteString(stdout, md.String())
	return err
}
