package bench

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"math"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/reducto-bridge/reducto-bridge/reducto/reductosim"
	"github.com/reducto-bridge/reducto-bridge/subject"
)

// The flood scenario: -jobs ids Reducto does not know are tracked at once; floodGap later
// (simulator time, counted from when the last of them is stored) floodRealJobs real jobs of
// floodRealDuration are tracked. What is measured is how long the real jobs wait behind the
// backlog of due polls, and what the junk costs.
const (
	floodJobs         = 20_000
	floodRealJobs     = 5
	floodGap          = 10 * time.Second
	floodRealDuration = 5 * time.Second
	floodJunkPrefix   = "flood-junk-"
)

// floodRealJob is one real job of the flood scenario; times are simulator seconds.
type floodRealJob struct {
	ID     string  `json:"id"`
	Kind   string  `json:"kind"`      // its event's kind ("" when none came)
	Events int     `json:"events"`    // events seen for it
	DelayS float64 `json:"delay_s"`   // tracking to its event
	LagS   float64 `json:"lag_s"`     // its end (in the simulator) to its event
	Gets   int64   `json:"get_job_n"` // GET /job requests spent on it
}

// floodResult is the flood scenario's outcome. Times are simulator seconds unless _real.
type floodResult struct {
	Scenario        string         `json:"scenario"`
	Config          *benchConfig   `json:"config"`
	JunkJobs        int            `json:"junk_jobs"`
	JunkStoredReal  float64        `json:"junk_stored_real_s"` // storing every junk track message, real
	JunkReported    int            `json:"junk_reported"`      // junk ids with an event
	JunkFailed      int            `json:"junk_failed"`        // of them, reported failed
	JunkDoneS       float64        `json:"junk_done_s"`        // from the first junk track message to the last junk event
	JunkGets        int64          `json:"junk_get_job_requests"`
	Real            []floodRealJob `json:"real_jobs"`
	RealDelayMaxS   float64        `json:"real_delay_max_s"`
	BoundS          float64        `json:"bound_s"` // 2 x junk / budget: the GETs owed ahead of the real jobs, over the budget
	RateLimited2000 int64          `json:"rate_limited_2000"`
	PeakRSSBytes    int64          `json:"peak_rss_bytes"`
	EndRSSBytes     int64          `json:"end_rss_bytes"`
	TimedOut        bool           `json:"timed_out"`
	WallSeconds     float64        `json:"wall_s"`
}

// floodSeen records the events of the flood scenario: first sighting, kind and count per id.
type floodSeen struct {
	mu    sync.Mutex
	first map[string]time.Time
	kind  map[string]string
	count map[string]int
	want  int
	done  chan struct{}
}

func (s *floodSeen) record(subj string, at time.Time) {
	rest, ok := strings.CutPrefix(subj, benchPrefix+".job.")
	if !ok {
		return
	}
	kind, id, ok := strings.Cut(rest, ".")
	if !ok || id == "" {
		return
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	s.count[id]++
	if _, ok := s.first[id]; ok {
		return
	}
	s.first[id], s.kind[id] = at, kind
	if len(s.first) == s.want {
		close(s.done)
	}
}

func (s *floodSeen) seen(id string) (time.Time, string, int) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.first[id], s.kind[id], s.count[id]
}

func (s *floodSeen) len() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return len(s.first)
}

// floodTimeout is the default real-time bound: four times what the budget needs for two GETs
// per junk id, plus the gap and two simulator minutes, plus a real minute.
func floodTimeout(cfg *benchConfig) time.Duration {
	budget := time.Duration(2 * float64(cfg.Jobs) / cfg.BridgeRate * float64(time.Second))
	return cfg.real(4*budget+floodGap+2*time.Minute) + time.Minute
}

// benchFlood runs the flood scenario against a bridge child process.
func benchFlood(ctx context.Context, cfg *benchConfig, stdout, stderr io.Writer) error {
	began := time.Now()
	if cfg.Timeout == 0 {
		cfg.Timeout = floodTimeout(cfg)
	}
	cfg.TimeoutS = cfg.Timeout.Seconds()
	wl := &workload{
		durations: make([]time.Duration, floodRealJobs),
		pages:     make([]int, floodRealJobs),
		arrivals:  make([]time.Duration, floodRealJobs),
	}
	for i := range floodRealJobs {
		wl.durations[i], wl.pages[i] = floodRealDuration, 1+i
	}
	r, err := newRig(cfg, wl, true)
	if err != nil {
		return err
	}
	defer r.close()
	if err := r.startScenario(ctx, scenarioFlood, nil); err != nil {
		return err
	}
	seen := &floodSeen{first: map[string]time.Time{}, kind: map[string]string{}, count: map[string]int{}, want: cfg.Jobs + floodRealJobs, done: make(chan struct{})}
	sub, err := r.nc.Subscribe(subject.EventsAll(benchPrefix), func(m *nats.Msg) { seen.record(m.Subject, time.Now()) })
	if err != nil {
		return err
	}
	_ = sub.SetPendingLimits(-1, -1)
	defer sub.Unsubscribe()
	if err := r.nc.Flush(); err != nil {
		return err
	}
	fmt.Fprintf(stderr, "bench: flood: %d unknown ids, then %d real jobs of %s %s later; bridge rate %g/s, speed x%g (timeout %s real)\n",
		cfg.Jobs, floodRealJobs, floodRealDuration, floodGap, cfg.BridgeRate, cfg.Speed, cfg.Timeout.Round(time.Second))

	cctx, cancel := context.WithTimeout(ctx, cfg.Timeout)
	defer cancel()
	res := &floodResult{Scenario: scenarioFlood, Config: cfg, JunkJobs: cfg.Jobs, BoundS: 2 * float64(cfg.Jobs) / cfg.BridgeRate}
	start := time.Now()
	futures := make([]jetstream.PubAckFuture, 0, cfg.Jobs)
	for i := range cfg.Jobs {
		f, err := r.js.PublishAsync(subject.Track(benchPrefix, fmt.Sprint(floodJunkPrefix, i)), nil, jetstream.WithStallWait(30*time.Second))
		if err != nil {
			return fmt.Errorf("track junk %d: %w", i, err)
		}
		futures = append(futures, f)
	}
	if err := waitFutures(cctx, futures); err != nil {
		return err
	}
	stored := time.Now()
	res.JunkStoredReal = stored.Sub(start).Seconds()

	t := time.NewTimer(time.Until(stored.Add(cfg.real(floodGap))))
	select {
	case <-cctx.Done():
		t.Stop()
		return fmt.Errorf("before the real jobs: %w", context.Cause(cctx))
	case <-t.C:
	}
	ids := make([]string, floodRealJobs)
	tracked := make([]time.Time, floodRealJobs)
	for i := range floodRealJobs {
		ids[i] = r.sim.Create(wl.spec(i))
		tracked[i] = time.Now()
		if _, err := r.js.Publish(cctx, subject.Track(benchPrefix, ids[i]), nil); err != nil {
			return fmt.Errorf("track real job %d: %w", i, err)
		}
	}
	fmt.Fprintf(stderr, "bench: flood: junk stored in %.1fs real; %d real jobs tracked; waiting for every event ...\n", res.JunkStoredReal, floodRealJobs)

	tick := time.NewTicker(10 * time.Second)
	defer tick.Stop()
wait:
	for {
		select {
		case <-seen.done:
			break wait
		case <-cctx.Done():
			res.TimedOut = true
			fmt.Fprintf(stderr, "bench: flood: %d of %d events before the timeout (%s)\n", seen.len(), seen.want, cfg.Timeout)
			break wait
		case <-r.child.Exited():
			return fmt.Errorf("bridge exited during the run: %v (see %s)", r.child.Err(), r.child.LogPath())
		case <-tick.C:
			fmt.Fprintf(stderr, "bench: flood: %d of %d events after %.0fs real\n", seen.len(), seen.want, time.Since(start).Seconds())
		}
	}

	st := r.sim.Stats()
	res.RateLimited2000 = st.RateLimited2000
	res.JunkGets = st.Requests[reductosim.EndpointGetJob]
	sim := func(d time.Duration) float64 { return d.Seconds() * cfg.Speed }
	var last time.Time
	for i := range cfg.Jobs {
		at, kind, _ := seen.seen(fmt.Sprint(floodJunkPrefix, i))
		if at.IsZero() {
			continue
		}
		res.JunkReported++
		if kind == "failed" {
			res.JunkFailed++
		}
		if at.After(last) {
			last = at
		}
	}
	if !last.IsZero() {
		res.JunkDoneS = sim(last.Sub(start))
	}
	for i, id := range ids {
		at, kind, n := seen.seen(id)
		js := st.Jobs[id]
		res.JunkGets -= js.Gets
		j := floodRealJob{ID: id, Kind: kind, Events: n, Gets: js.Gets, DelayS: math.NaN(), LagS: math.NaN()}
		if !at.IsZero() {
			j.DelayS = sim(at.Sub(tracked[i]))
			res.RealDelayMaxS = max(res.RealDelayMaxS, j.DelayS)
			if !js.Terminal.IsZero() {
				j.LagS = r.tm.lag(at, js.Terminal)
			}
		}
		res.Real = append(res.Real, j)
	}
	r.saveMetrics(ctx, scenarioFlood)
	if err := r.child.stop(time.Minute); err != nil {
		return err
	}
	res.PeakRSSBytes, res.EndRSSBytes = r.child.memory()
	res.WallSeconds = time.Since(began).Seconds()
	return res.write(cfg.Out, stdout)
}

func (f *floodResult) write(dir string, stdout io.Writer) error {
	var md bytes.Buffer
	mb := func(b int64) float64 { return float64(b) / (1 << 20) }
	fmt.Fprintf(&md, "## bridge bench (flood)\n\n`%s`\n\n", strings.Join(f.Config.Args, " "))
	fmt.Fprintf(&md, "%d ids Reducto does not know (404), tracked at once; %s after they are stored, %d real jobs of %s. Simulator seconds (speed x%g), bridge budget %g GET/s, %s; the bound for the real jobs' first poll, 2 GETs per junk id over the budget, is %.0f s. Wall time %.0f s%s.\n\n",
		f.JunkJobs, floodGap, len(f.Real), floodRealDuration, f.Config.Speed, f.Config.BridgeRate, listNote(f.Config), f.BoundS, f.WallSeconds, map[bool]string{true: ", **timed out**"}[f.TimedOut])
	fmt.Fprintln(&md, "| junk ids | reported (failed) | junk done (s) | GET /job on junk | per junk id | real jobs' delay, track to event (s) | max (s) | 429 [CODE 2000] | bridge RSS peak (MB) |")
	fmt.Fprintln(&md, "| ---: | ---: | ---: | ---: | ---: | --- | ---: | ---: | ---: |")
	delays := make([]string, 0, len(f.Real))
	for _, j := range f.Real {
		delays = append(delays, fmt.Sprintf("%.1f", j.DelayS))
	}
	fmt.Fprintf(&md, "| %d | %d (%d) | %.1f | %d | %.2f | %s | %.1f | %d | %.1f |\n\n",
		f.JunkJobs, f.JunkReported, f.JunkFailed, f.JunkDoneS, f.JunkGets, float64(f.JunkGets)/float64(max(1, f.JunkJobs)),
		strings.Join(delays, ", "), f.RealDelayMaxS, f.RateLimited2000, mb(f.PeakRSSBytes))
	if _, err := stdout.Write(md.Bytes()); err != nil {
		return err
	}
	if err := os.WriteFile(filepath.Join(dir, "results.md"), md.Bytes(), 0o644); err != nil {
		return err
	}
	// NaN (a real job without an event) is not JSON: write it as null.
	type realJSON struct {
		floodRealJob
		DelayS *float64 `json:"delay_s"`
		LagS   *float64 `json:"lag_s"`
	}
	num := func(x float64) *float64 {
		if math.IsNaN(x) {
			return nil
		}
		return &x
	}
	out := struct {
		*floodResult
		Real []realJSON `json:"real_jobs"`
	}{floodResult: f}
	for _, j := range f.Real {
		out.Real = append(out.Real, realJSON{floodRealJob: j, DelayS: num(j.DelayS), LagS: num(j.LagS)})
	}
	js, err := json.MarshalIndent(out, "", "  ")
	if err != nil {
		return err
	}
	return os.WriteFile(filepath.Join(dir, "results.json"), append(js, '\n'), 0o644)
}
