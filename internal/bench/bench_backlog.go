package bench

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"math/rand/v2"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/reducto-bridge/reducto-bridge/reducto/reductosim"
	"github.com/reducto-bridge/reducto-bridge/subject"
)

// The backlog scenario: -jobs jobs are tracked at once, with exponential running times of
// mean backlogMean, so that 1% of the jobs still outstanding end per simulator minute, none
// reporting progress. Once every job is tracked and admitted, a window of -window (simulator
// time) is measured: the detection lag of every job that ended in it.
const backlogMean = 100 * time.Minute

// backlogGrace bounds (simulator time) how long after the window the bench waits for the
// events of jobs that ended in it; a job not detected by then counts as undetected.
const backlogGrace = 5 * time.Minute

// backlogResult is the backlog scenario's outcome. Times are simulator seconds unless _real.
type backlogResult struct {
	Scenario         string       `json:"scenario"`
	Config           *benchConfig `json:"config"`
	Jobs             int          `json:"jobs"`
	TrackSeconds     float64      `json:"track_real_s"`    // publishing every track message, real
	AdmitSeconds     float64      `json:"admitted_real_s"` // until every job was admitted, real, from the start
	EndedBeforeStart int          `json:"ended_before_window"`
	WindowEnded      int          `json:"window_jobs_ended"`    // jobs whose end lies in the window
	WindowDetected   int          `json:"window_jobs_detected"` // of them, with an event seen
	Lag              dist         `json:"lag_s"`                // their detection lag
	Ended            int          `json:"jobs_ended"`           // every job ended by the window's end
	EndedOneEvent    int          `json:"jobs_ended_with_exactly_one_event"`
	EventsNotEnded   int64        `json:"events_for_running_jobs"` // events of jobs not ended: must be 0
	UntrackedEvents  int64        `json:"events_untracked_jobs"`   // must be 0
	GetPerSecond     float64      `json:"get_job_per_s"`           // in the window, per simulator second, 429s included
	ListPerSecond    float64      `json:"get_jobs_per_s"`
	AllPerSecond     float64      `json:"all_requests_per_s"`
	RateLimited2000  int64        `json:"rate_limited_2000"` // the whole run
	RateLimited1000  int64        `json:"rate_limited_1000"`
	Shed429          int64        `json:"shed_429"`
	BackgroundJobs   int64        `json:"background_jobs"`
	BridgeRSSPeak    int64        `json:"bridge_rss_peak_bytes"`
	BridgeRSSEnd     int64        `json:"bridge_rss_end_bytes"`
	BenchRSSPeak     int64        `json:"bench_process_rss_peak_bytes"` // this process: nats-server, simulator, bench
	TimedOut         bool         `json:"timed_out"`
	WallSeconds      float64      `json:"wall_s"`
}

// drawBacklog draws the backlog's jobs: exponential running times of mean backlogMean, no
// progress.
func drawBacklog(cfg *benchConfig) *workload {
	seed := uint64(cfg.Seed)
	rng := rand.New(rand.NewPCG(seed, seed^0x6a09e667f3bcc908))
	wl := &workload{
		durations: make([]time.Duration, cfg.Jobs),
		pages:     make([]int, cfg.Jobs),
		arrivals:  make([]time.Duration, cfg.Jobs),
		progress:  reductosim.ProgressNone,
	}
	for i := range cfg.Jobs {
		wl.durations[i] = time.Duration(rng.ExpFloat64() * float64(backlogMean)).Round(time.Millisecond)
		wl.pages[i] = 1 + rng.IntN(40)
	}
	return wl
}

// backlogBackground is -background for the backlog: b untracked jobs per tracked job that
// ends, so b times the backlog's rate of ends (jobs / backlogMean), with -background's
// duration model and no progress.
func backlogBackground(cfg *benchConfig) reductosim.Background {
	c := *cfg
	c.Arrival = float64(cfg.Jobs) / backlogMean.Seconds()
	c.Progress = "none"
	return backgroundTraffic(&c)
}

// benchBacklog tracks -jobs jobs at once and measures, over -window, how late the bridge
// sees the ones that end.
func benchBacklog(ctx context.Context, cfg *benchConfig, stdout, stderr io.Writer) error {
	began := time.Now()
	wl := drawBacklog(cfg)
	if cfg.Timeout == 0 {
		cfg.Timeout = 20*time.Minute + cfg.real(cfg.Window+backlogGrace)
	}
	cfg.TimeoutS = cfg.Timeout.Seconds()
	ctx, cancel := context.WithTimeout(ctx, cfg.Timeout)
	defer cancel()
	r, err := newRig(cfg, wl, true)
	if err != nil {
		return err
	}
	defer r.close()
	if err := r.startScenario(ctx, scenarioBacklog, nil); err != nil {
		return err
	}
	n := len(wl.durations)
	u := &tally{ids: make([]string, n), det: newDetector(n)}
	sub, err := r.nc.Subscribe(subject.EventsAll(benchPrefix), func(m *nats.Msg) {
		at := time.Now()
		if id, ok := eventJobID(m.Subject); ok {
			u.det.record(id, at)
		}
	})
	if err != nil {
		return err
	}
	_ = sub.SetPendingLimits(-1, -1)
	defer sub.Unsubscribe()
	if err := r.nc.Flush(); err != nil {
		return err
	}
	fmt.Fprintf(stderr, "bench: backlog: tracking %d jobs (exponential, mean %s, no progress: 1%% of the outstanding end per minute), %s, speed x%g ...\n",
		n, backlogMean, listNote(cfg), cfg.Speed)

	res := &backlogResult{Scenario: scenarioBacklog, Config: cfg, Jobs: n}
	r.sim.SetBackground(backlogBackground(cfg))
	start := time.Now()
	futures := make([]jetstream.PubAckFuture, 0, n)
	for i := range n {
		u.ids[i] = r.sim.Create(wl.spec(i))
		f, err := r.js.PublishAsync(subject.Track(benchPrefix, u.ids[i]), nil, jetstream.WithStallWait(30*time.Second))
		if err != nil {
			return fmt.Errorf("track %s: %w", u.ids[i], err)
		}
		futures = append(futures, f)
	}
	if err := waitFutures(ctx, futures); err != nil {
		return err
	}
	res.TrackSeconds = time.Since(start).Seconds()
	fmt.Fprintf(stderr, "bench: backlog: %d track messages stored in %.1fs; waiting for the bridge to admit them ...\n", n, res.TrackSeconds)
	if err := r.waitDelivered(ctx, n, stderr); err != nil {
		return err
	}
	res.AdmitSeconds = time.Since(start).Seconds()

	// The window: [w0, w1] on the simulator clock.
	w0 := r.clock.Now()
	st0 := r.sim.Stats()
	fmt.Fprintf(stderr, "bench: backlog: all admitted after %.1fs real; measuring %s (simulator) ...\n", res.AdmitSeconds, cfg.Window)
	if err := r.waitFor(ctx, cfg.real(cfg.Window)); err != nil {
		return fmt.Errorf("during the window: %w", err)
	}
	w1 := r.clock.Now()
	st1 := r.sim.Stats()
	secs := w1.Sub(w0).Seconds()
	rate := func(ep string) float64 { return float64(st1.Requests[ep]-st0.Requests[ep]) / secs }
	res.GetPerSecond, res.ListPerSecond = rate(reductosim.EndpointGetJob), rate(reductosim.EndpointJobs)
	res.AllPerSecond = float64(allRequests(st1)-allRequests(st0)) / secs

	// The jobs that ended by w1, and of them those in the window; wait (bounded) for their events.
	var inWindow, ended []string
	for _, id := range u.ids {
		js := st1.Jobs[id]
		if js.Terminal.IsZero() || js.Terminal.After(w1) {
			continue
		}
		ended = append(ended, id)
		if js.Terminal.Before(w0) {
			res.EndedBeforeStart++
		} else {
			inWindow = append(inWindow, id)
		}
	}
	if err := r.waitDetected(ctx, u.det, ended, cfg.real(backlogGrace)); err != nil {
		res.TimedOut = true
		fmt.Fprintf(stderr, "bench: backlog: %v\n", err)
	}
	var lags []float64
	for _, id := range inWindow {
		at, _ := u.det.seen(id)
		if at.IsZero() {
			continue
		}
		res.WindowDetected++
		lag := r.tm.lag(at, st1.Jobs[id].Terminal)
		if lag < -clockTolerance.Seconds()*cfg.Speed {
			return fmt.Errorf("time conversion check failed: job %s detected %.3fs before it ended", id, -lag)
		}
		lags = append(lags, lag)
	}
	res.WindowEnded, res.Ended, res.Lag = len(inWindow), len(ended), summarize(lags)

	// Events as REDUCTO_EVENTS stores them: exactly one per ended job, none for a job that
	// has not ended (the simulator is read after the stream, so a job with an event is
	// terminal by then) and none for an untracked one.
	stored, err := r.storedEvents(ctx, u)
	if err != nil {
		return err
	}
	st := r.sim.Stats()
	for _, id := range ended {
		if stored[id] == 1 {
			res.EndedOneEvent++
		}
	}
	for _, id := range u.ids {
		if st.Jobs[id].Terminal.IsZero() {
			res.EventsNotEnded += int64(stored[id])
		}
	}
	res.UntrackedEvents = untrackedEvents(stored, u.ids)
	res.RateLimited2000, res.RateLimited1000, res.Shed429 = st.RateLimited2000, st.RateLimited1000, st.Shed429
	res.BackgroundJobs = st.BackgroundJobs
	if hwm, _, ok := procMemory(os.Getpid()); ok {
		res.BenchRSSPeak = hwm << 10
	}
	r.saveMetrics(ctx, scenarioBacklog)
	if err := r.child.stop(time.Minute); err != nil {
		return err
	}
	res.BridgeRSSPeak, res.BridgeRSSEnd = r.child.memory()
	res.WallSeconds = time.Since(began).Seconds()
	return res.write(cfg.Out, stdout)
}

// waitDelivered waits until the track consumer has no message left to deliver: each was
// admitted, or deleted first because the list sweep reported its job (then it is never
// delivered, so admissions alone may stay short of n). Jobs end meanwhile, so the
// ack-pending count is not a condition here.
func (r *rig) waitDelivered(ctx context.Context, n int, progress io.Writer) error {
	return r.waitConsumer(ctx, n, progress, func(info *jetstream.ConsumerInfo, admitted float64) bool {
		return info.NumPending == 0 && admitted > 0
	})
}

// waitFor waits d (real time), the measurement window, unless ctx ends or the bridge exits.
func (r *rig) waitFor(ctx context.Context, d time.Duration) error {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return context.Cause(ctx)
	case <-r.child.Exited():
		return fmt.Errorf("bridge exited: %v (see %s)", r.child.Err(), r.child.LogPath())
	case <-t.C:
		return nil
	}
}

// waitDetected waits until det has seen every one of ids, for at most grace (real time).
// The detector has no signal for a subset, so it is polled.
func (r *rig) waitDetected(ctx context.Context, det *detector, ids []string, grace time.Duration) error {
	deadline := time.NewTimer(grace)
	defer deadline.Stop()
	t := time.NewTicker(50 * time.Millisecond)
	defer t.Stop()
	for {
		missing := 0
		for _, id := range ids {
			if at, _ := det.seen(id); at.IsZero() {
				missing++
			}
		}
		if missing == 0 {
			return nil
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("%d ended jobs without an event: %w", missing, context.Cause(ctx))
		case <-deadline.C:
			return fmt.Errorf("%d ended jobs without an event %s after the window", missing, grace)
		case <-t.C:
		}
	}
}

func (b *backlogResult) write(dir string, stdout io.Writer) error {
	var md bytes.Buffer
	mb := func(x int64) float64 { return float64(x) / (1 << 20) }
	c := b.Config
	fmt.Fprintf(&md, "## bridge bench (backlog)\n\n`%s`\n\n", strings.Join(c.Args, " "))
	fmt.Fprintf(&md, "%d jobs tracked at once, running times exponential (mean %s: 1%% of the outstanding end per simulator minute), no progress; %g untracked jobs per ended tracked job (%d created); %s; simulator limits %g/s GET /job, %g/s all; bridge budget %g/s GET /job, %g/s all; clock compressed x%g (figures in simulator time). Tracked in %.1f s, admitted after %.1f s (real); window %s from then. Wall time %.0f s%s.\n\n",
		b.Jobs, backlogMean, c.Background, b.BackgroundJobs, listNote(c), c.RateLimit, c.GlobalRate, c.BridgeRate, c.BridgeRateAll, c.Speed,
		b.TrackSeconds, b.AdmitSeconds, c.Window, b.WallSeconds, map[bool]string{true: ", **events missing after the grace period**"}[b.TimedOut])
	fmt.Fprintln(&md, "| ended in window | detected | lag p50 (s) | p90 (s) | p99 (s) | max (s) | ended by window end | exactly one event | events for running jobs | untracked events | GET /job per s | GET /jobs per s | all per s | 429s (2000/1000/shed) | bridge RSS peak (MB) | bench process RSS peak: NATS server + simulator (MB) |")
	fmt.Fprintln(&md, "| ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |")
	fmt.Fprintf(&md, "| %d | %d | %.2f | %.2f | %.2f | %.2f | %d | %d | %d | %d | %.1f | %.2f | %.1f | %d/%d/%d | %.1f | %.1f |\n\n",
		b.WindowEnded, b.WindowDetected, b.Lag.P50, b.Lag.P90, b.Lag.P99, b.Lag.Max, b.Ended, b.EndedOneEvent, b.EventsNotEnded, b.UntrackedEvents,
		b.GetPerSecond, b.ListPerSecond, b.AllPerSecond, b.RateLimited2000, b.RateLimited1000, b.Shed429, mb(b.BridgeRSSPeak), mb(b.BenchRSSPeak))
	fmt.Fprintln(&md, "- Lag: from a job's end in the simulator to the bench seeing its event on `reducto.job.>`, for the jobs that ended in the window. Request rates: in the window, 429s included. 429s: the whole run.")
	fmt.Fprintln(&md, "- Memory: VmHWM of the bridge child process, and of the bench process, which hosts the embedded nats-server, the simulator and the bench's bookkeeping.")
	if _, err := stdout.Write(md.Bytes()); err != nil {
		return err
	}
	if err := os.WriteFile(filepath.Join(dir, "results.md"), md.Bytes(), 0o644); err != nil {
		return err
	}
	js, err := json.MarshalIndent(b, "", "  ")
	if err != nil {
		return err
	}
	return os.WriteFile(filepath.Join(dir, "results.json"), append(js, '\n'), 0o644)
}
