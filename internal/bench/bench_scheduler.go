package bench

import (
	"bytes"
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

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/reducto-bridge/reducto-bridge/internal/bridgeproc"
	"github.com/reducto-bridge/reducto-bridge/reducto/reductosim"
	"github.com/reducto-bridge/reducto-bridge/subject"
	"github.com/reducto-bridge/reducto-bridge/track"
)

// The scheduler scenario (issue 13, "measure first"): -jobs jobs that never finish are tracked
// at a steady pace over one interval (-at-once: all at once) and polled on a fixed interval
// (no backoff, no jitter, no list sweep), by default -jobs / (90% of -bridge-rate) + 1%, so
// that the polls use what the fair floor allows and every poll parks the job again with
// NakWithDelay. Tracked at once, the first polls fall due together and are paced by the
// budget, and every later cycle keeps that spacing: polls fall due at the budget's own rate,
// and each one's lateness includes the wait for it. nats-server runs as its own process ('bridge nats-server'); over -window
// (real time, from when every job is admitted and has been polled once) the bench measures
// its CPU and RSS and the bridge's, the latency of a JetStream API request, the polls per
// second and each poll's lateness at the simulator.
const (
	schedulerJobs     = 10_000
	schedulerWindow   = time.Minute
	schedulerDuration = 10_000 * time.Hour // longer than any run: the jobs never finish
	// apiProbeEvery is how often the bench times a JetStream API request in the window.
	apiProbeEvery = 100 * time.Millisecond
	// schedulerSettle is the wait before the window when the budget binds (real time).
	schedulerSettle = time.Minute
)

// procFigures are one process's figures over the window.
type procFigures struct {
	Pid          int     `json:"pid"`
	CPUPercent   float64 `json:"cpu_percent_of_a_core"` // (utime + stime) over the window, per real second
	RSSBytes     int64   `json:"rss_bytes"`             // VmRSS at the window's end
	PeakRSSBytes int64   `json:"peak_rss_bytes"`        // VmHWM at the window's end
}

// schedulerResult is the scheduler scenario's outcome; times are real.
type schedulerResult struct {
	Scenario      string       `json:"scenario"`
	Config        *benchConfig `json:"config"`
	Jobs          int          `json:"jobs"`
	IntervalS     float64      `json:"interval_s"`   // each job's poll interval
	BudgetPerS    float64      `json:"budget_per_s"` // BRIDGE_RATE_LIMIT as the child got it
	TrackSeconds  float64      `json:"track_s"`      // storing every track message
	AdmitSeconds  float64      `json:"admitted_s"`   // until every job was admitted, from the start
	IntakePerS    float64      `json:"intake_per_s"` // jobs admitted per second
	WarmupSeconds float64      `json:"warmup_s"`     // from admission until every job had been polled once
	WindowSeconds float64      `json:"window_s"`     // the measurement window as it ran
	AckPending    int          `json:"ack_pending"`  // the track consumer's, at the window's end
	Pending       uint64       `json:"pending"`      // jobs waiting in the stream (moved to its tail), then
	// Binding: the budget cannot poll every job at the interval, so the bridge moves them to
	// the queue's tail (polled round robin, a cycle of CycleS) instead of parking them.
	Binding        bool          `json:"binding"`
	CycleS         float64       `json:"fair_cycle_s"` // N / (90% of the budget), real seconds
	NATS           procFigures   `json:"nats_server"`  // the nats-server process
	Bridge         procFigures   `json:"bridge"`       // the bridge child process (the first replica)
	Replicas       int           `json:"replicas"`     // bridge processes on the key
	Others         []procFigures `json:"other_replicas,omitempty"`
	APILatencyMs   dist          `json:"api_latency_ms"`   // JetStream consumer info, every 100 ms
	APIErrors      int           `json:"api_errors"`       // probes that failed
	PollsPerS      float64       `json:"polls_per_s"`      // answered GET /job per second in the window
	PollLatenessMs dist          `json:"poll_lateness_ms"` // gap between two GETs of a job minus the interval
	AtOnce         bool          `json:"at_once"`          // tracked at once, not paced over an interval
	Moved          bool          `json:"moved"`            // tracked as moved already (the steady state of a binding budget)
	BudgetWaits    float64       `json:"budget_waits"`     // requests that waited for the budget in the window, every replica
	BudgetWaitS    float64       `json:"budget_wait_s"`    // the time they waited, summed
	WallSeconds    float64       `json:"wall_s"`
}

// getRecorder wraps the simulator's handler and records, per job, the arrival of its last
// answered (200) GET /job/{id}: one time per job. Within the window it keeps the gap between
// each job's consecutive GETs and counts the GETs.
type getRecorder struct {
	mu       sync.Mutex
	last     map[string]time.Time
	inWindow bool
	polls    int
	gaps     []time.Duration
}

func newGetRecorder() *getRecorder { return &getRecorder{last: map[string]time.Time{}} }

// statusWriter remembers the status a handler answers with.
type statusWriter struct {
	http.ResponseWriter
	code int
}

func (w *statusWriter) WriteHeader(code int) {
	w.code = code
	w.ResponseWriter.WriteHeader(code)
}

// wrap is h, recording every answered GET /job/{id}.
func (g *getRecorder) wrap(h http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, req *http.Request) {
		at := time.Now()
		sw := &statusWriter{ResponseWriter: w, code: http.StatusOK}
		h.ServeHTTP(sw, req)
		id, ok := strings.CutPrefix(req.URL.Path, "/job/")
		if req.Method == http.MethodGet && ok && id != "" && !strings.Contains(id, "/") && sw.code == http.StatusOK {
			g.record(id, at)
		}
	})
}

func (g *getRecorder) record(id string, at time.Time) {
	g.mu.Lock()
	defer g.mu.Unlock()
	if prev, ok := g.last[id]; ok && g.inWindow {
		g.gaps = append(g.gaps, at.Sub(prev))
	}
	if g.inWindow {
		g.polls++
	}
	g.last[id] = at
}

// polled is how many jobs have had an answered GET.
func (g *getRecorder) polled() int {
	g.mu.Lock()
	defer g.mu.Unlock()
	return len(g.last)
}

// window starts (true) or ends (false) the window; ending it returns its GETs and gaps.
func (g *getRecorder) window(on bool) (polls int, gaps []time.Duration) {
	g.mu.Lock()
	defer g.mu.Unlock()
	g.inWindow = on
	if on {
		g.polls, g.gaps = 0, nil
	}
	return g.polls, g.gaps
}

// schedulerInterval is each job's poll interval in simulator time: -interval, or -jobs over
// 90% of the budget, so that the polls use what the bridge's fair floor lets them (a shorter
// interval would be raised to that floor, and every gap measured late by the difference).
func schedulerInterval(cfg *benchConfig) time.Duration {
	if cfg.Interval > 0 {
		return cfg.Interval
	}
	// 1% above the floor, so that the budget does not bind: at the floor itself a rounding
	// could tip the bridge into moving jobs to the queue's tail instead of parking them.
	return time.Duration(float64(cfg.Jobs) / (schedulerShare * cfg.BridgeRate) * 1.01 * float64(time.Second))
}

// schedulerShare is the share of the budget the scheduler scenario's polls take by default:
// the poller's fair share.
const schedulerShare = 0.9

// startReplicas starts n more bridges on the rig's key (r.replicas, stopped by r.close if
// not before), with the scenario's environment (tune), each on a free address and logging to
// its own file, and waits until they are ready.
func (r *rig) startReplicas(ctx context.Context, n int, tune func(env map[string]string)) error {
	for i := range n {
		addr, err := bridgeproc.FreeAddr()
		if err != nil {
			return err
		}
		env := r.bridgeEnv(addr)
		tune(env)
		c, err := startChild(r.cfg.bridgeCmd, addr, env, r.cfg.bridgeEnv, filepath.Join(r.cfg.Out, fmt.Sprintf("%s-replica%d-bridge.log", r.cfg.Scenario, i+2)))
		if err != nil {
			return err
		}
		r.replicas = append(r.replicas, c)
		rctx, cancel := context.WithTimeout(ctx, time.Minute)
		err = c.waitReady(rctx)
		cancel()
		if err != nil {
			return err
		}
	}
	return nil
}

// neverEnding is a workload of n one-page jobs that never finish (no progress).
func neverEnding(n int) *workload {
	wl := &workload{durations: make([]time.Duration, n), pages: make([]int, n), arrivals: make([]time.Duration, n), progress: reductosim.ProgressNone}
	for i := range n {
		wl.durations[i], wl.pages[i] = schedulerDuration, 1
	}
	return wl
}

// benchScheduler runs the scheduler scenario.
func benchScheduler(ctx context.Context, cfg *benchConfig, stdout, stderr io.Writer) error {
	began := time.Now()
	interval := cfg.real(schedulerInterval(cfg))
	window := cfg.real(cfg.Window)
	if cfg.Timeout == 0 {
		cfg.Timeout = 10*time.Minute + 3*interval + window
	}
	cfg.TimeoutS, cfg.IntervalS, cfg.WindowS = cfg.Timeout.Seconds(), schedulerInterval(cfg).Seconds(), cfg.Window.Seconds()
	ctx, cancel := context.WithTimeout(ctx, cfg.Timeout)
	defer cancel()
	n := cfg.Jobs
	wl := neverEnding(n)
	rec := newGetRecorder()
	r, err := newRigWith(cfg, wl, rigOptions{withNATS: true, natsProcess: true, wrapSim: rec.wrap})
	if err != nil {
		return err
	}
	defer r.close()
	tune := func(env map[string]string) {
		env["BRIDGE_POLL_INITIAL_INTERVAL"] = interval.String()
		env["BRIDGE_POLL_MAX_INTERVAL"] = interval.String()
		env["BRIDGE_POLL_JITTER"] = "0"
		env["BRIDGE_LIST_SWEEP"] = "false"
	}
	if err := r.startScenario(ctx, scenarioScheduler, tune); err != nil {
		return err
	}
	if err := r.startReplicas(ctx, cfg.Replicas-1, tune); err != nil {
		return err
	}
	others := r.replicas
	res := &schedulerResult{Scenario: scenarioScheduler, Config: cfg, Jobs: n, IntervalS: interval.Seconds(), BudgetPerS: cfg.BridgeRate * cfg.Speed, Replicas: cfg.Replicas}
	// As the poller decides it: the budget binds when polling every job at the longest
	// interval would take more than its fair share (poller.fairEvery).
	res.CycleS = float64(n) / (schedulerShare * res.BudgetPerS)
	res.Binding = res.CycleS > interval.Seconds()
	fmt.Fprintf(stderr, "bench: scheduler: %d jobs that never finish, polled every %s (jitter 0, no list sweep), budget %g/s; nats-server pid %d, bridge pid %d ...\n",
		n, interval, res.BudgetPerS, r.natsProc.pid(), r.child.Pid())

	res.AtOnce = cfg.AtOnce || res.Binding || cfg.Moved
	res.Moved = cfg.Moved
	var header func(string) nats.Header
	if cfg.Moved {
		header = movedHeader(time.Now())
	}
	start := time.Now()
	if res.AtOnce {
		if _, err := r.trackJobsWith(ctx, wl, 0, n, nil, header); err != nil {
			return err
		}
	} else {
		fmt.Fprintf(stderr, "bench: scheduler: tracking at %.0f jobs/s for %s ...\n", float64(n)/interval.Seconds(), interval)
		if err := r.trackPaced(ctx, wl, n, interval); err != nil {
			return err
		}
	}
	res.TrackSeconds = time.Since(start).Seconds()
	if !res.Binding {
		if err := r.waitAdmitted(ctx, n, stderr); err != nil {
			return err
		}
	}
	// While the budget binds, a job is admitted at its turn in the stream, with its first
	// poll: there is no admission phase to wait for, the jobs are all in the stream.
	admitted := time.Now()
	res.AdmitSeconds = admitted.Sub(start).Seconds()
	res.IntakePerS = float64(n) / res.AdmitSeconds
	if res.Binding {
		// The jobs wait in the stream, polled round robin at the budget: a cycle takes
		// N / budget (hours at 1,000,000), so no window could wait for one. The polls are
		// steady from the first; the window opens once the admissions' burst is over.
		fmt.Fprintf(stderr, "bench: scheduler: %d tracked after %.1fs (%.0f/s); the budget binds (a cycle is %.0f s): settling %s ...\n",
			n, res.AdmitSeconds, res.IntakePerS, res.CycleS, schedulerSettle)
		if err := r.waitFor(ctx, schedulerSettle); err != nil {
			return err
		}
	} else {
		fmt.Fprintf(stderr, "bench: scheduler: %d admitted after %.1fs (%.0f/s); waiting until every job has been polled once (about %s) ...\n",
			n, res.AdmitSeconds, res.IntakePerS, 2*interval)
		if err := r.waitPolled(ctx, rec, n, stderr); err != nil {
			return err
		}
		// Tracked at once, the first polls all fall due together and take N / budget; the
		// second cycle starts two intervals after admission, so a window opened before that
		// could fall between. Paced, every poll from now on is a job's second or later.
		if res.AtOnce {
			if err := r.waitFor(ctx, time.Until(admitted.Add(2*interval))); err != nil {
				return err
			}
		}
	}
	res.WarmupSeconds = time.Since(admitted).Seconds()

	cons, err := r.js.Consumer(ctx, subject.TrackStream, track.ConsumerName)
	if err != nil {
		return fmt.Errorf("track consumer: %w", err)
	}
	fmt.Fprintf(stderr, "bench: scheduler: every job polled; measuring %s ...\n", window)
	natsPid, bridgePid := r.natsProc.pid(), r.child.Pid()
	natsCPU0, ok1 := procCPU(natsPid)
	bridgeCPU0, ok2 := procCPU(bridgePid)
	otherCPU0 := make([]time.Duration, len(others))
	for i, c := range others {
		otherCPU0[i], _ = procCPU(c.Pid())
	}
	waits0, waitS0 := r.budgetWaits(ctx)
	w0 := time.Now()
	rec.window(true)
	pctx, stopProbe := context.WithCancel(ctx)
	probed := make(chan []float64, 1)
	var probeErrs int
	go func() { probed <- probeAPI(pctx, cons, &probeErrs) }()
	werr := r.waitFor(ctx, window)
	polls, gaps := rec.window(false)
	natsCPU1, ok3 := procCPU(natsPid)
	bridgeCPU1, ok4 := procCPU(bridgePid)
	otherCPU1 := make([]time.Duration, len(others))
	for i, c := range others {
		otherCPU1[i], _ = procCPU(c.Pid())
	}
	w1 := time.Now()
	waits1, waitS1 := r.budgetWaits(ctx)
	stopProbe()
	lat := <-probed
	if werr != nil {
		return fmt.Errorf("during the window: %w", werr)
	}
	select {
	case <-r.natsProc.exited():
		return fmt.Errorf("nats-server process exited during the window: %v", r.natsProc.err)
	default:
	}
	if !ok1 || !ok2 || !ok3 || !ok4 {
		return fmt.Errorf("cannot read /proc/<pid>/stat of nats-server (%d) or the bridge (%d): the scenario needs Linux", natsPid, bridgePid)
	}
	secs := w1.Sub(w0).Seconds()
	res.WindowSeconds = secs
	res.NATS = procFigures{Pid: natsPid, CPUPercent: 100 * (natsCPU1 - natsCPU0).Seconds() / secs}
	res.Bridge = procFigures{Pid: bridgePid, CPUPercent: 100 * (bridgeCPU1 - bridgeCPU0).Seconds() / secs}
	for i, c := range others {
		res.Others = append(res.Others, procFigures{Pid: c.Pid(), CPUPercent: 100 * (otherCPU1[i] - otherCPU0[i]).Seconds() / secs})
	}
	figures := []*procFigures{&res.NATS, &res.Bridge}
	for i := range res.Others {
		figures = append(figures, &res.Others[i])
	}
	for _, p := range figures {
		if hwm, rss, ok := procMemory(p.Pid); ok {
			p.PeakRSSBytes, p.RSSBytes = hwm<<10, rss<<10
		}
	}
	res.APILatencyMs, res.APIErrors = summarize(lat), probeErrs
	res.PollsPerS = float64(polls) / secs
	late := make([]float64, len(gaps))
	for i, g := range gaps {
		late[i] = float64(g-interval) / float64(time.Millisecond)
	}
	res.PollLatenessMs = summarize(late)
	if waits0 >= 0 && waits1 >= 0 {
		res.BudgetWaits, res.BudgetWaitS = waits1-waits0, waitS1-waitS0
	}
	if info, err := cons.Info(ctx); err == nil {
		res.AckPending, res.Pending = info.NumAckPending, info.NumPending
	}
	r.saveMetrics(ctx, scenarioScheduler)
	for _, c := range others {
		if err := c.stop(time.Minute); err != nil {
			return err
		}
	}
	if err := r.child.stop(time.Minute); err != nil {
		return err
	}
	res.WallSeconds = time.Since(began).Seconds()
	return res.write(cfg.Out, stdout)
}

// movedHeader gives a track message the header of a job the bridge moved: where a whole cycle
// of moves leaves every job, delivered three times (admitted, polled twice), tracked at
// trackedAt, its next poll at its turn (its fourth delivery).
func movedHeader(trackedAt time.Time) func(subj string) nats.Header {
	key := track.MoveKey(benchAPIKey)
	return func(subj string) nats.Header {
		return nats.Header{track.HeaderMove: []string{track.MoveValue(key, subj, track.Position{Attempt: 3, Step: 2, TrackedAt: trackedAt})}}
	}
}

// trackPaced creates and tracks the workload's n jobs at a steady pace over d (real time),
// in the batches a 10 ms tick allows, each stored before the next.
func (r *rig) trackPaced(ctx context.Context, wl *workload, n int, d time.Duration) error {
	t := time.NewTicker(10 * time.Millisecond)
	defer t.Stop()
	start := time.Now()
	for done := 0; done < n; {
		if due := min(n, 1+int(float64(n)*float64(time.Since(start))/float64(d))); due > done {
			if _, err := r.trackJobs(ctx, wl, done, due, nil); err != nil {
				return err
			}
			done = due
		}
		select {
		case <-ctx.Done():
			return context.Cause(ctx)
		case <-t.C:
		}
	}
	return nil
}

// budgetWaits is how many requests waited for the budget and how long, summed over every
// replica; -1 when one of them does not answer.
func (r *rig) budgetWaits(ctx context.Context) (n, seconds float64) {
	return r.metricSum(ctx, "reducto_bridge_rate_limit_waits_total"), r.metricSum(ctx, "reducto_bridge_rate_limit_wait_seconds_total")
}

// waitPolled waits until every one of n jobs has had an answered GET: the first cycle of
// polls, paced by the budget, is over and the schedule is steady. The recorder sends no
// signal, so it is polled.
func (r *rig) waitPolled(ctx context.Context, rec *getRecorder, n int, progress io.Writer) error {
	t := time.NewTicker(100 * time.Millisecond)
	defer t.Stop()
	lastReport := time.Now()
	for {
		got := rec.polled()
		if got >= n {
			return nil
		}
		if time.Since(lastReport) >= 10*time.Second {
			lastReport = time.Now()
			fmt.Fprintf(progress, "bench: scheduler: %d of %d jobs polled once\n", got, n)
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("%d of %d jobs polled: %w", got, n, context.Cause(ctx))
		case <-r.child.Exited():
			return fmt.Errorf("bridge exited: %v (see %s)", r.child.Err(), r.child.LogPath())
		case <-r.natsProc.exited():
			return fmt.Errorf("nats-server process exited: %v", r.natsProc.err)
		case <-t.C:
		}
	}
}

// probeAPI times a JetStream API request (the track consumer's info) every apiProbeEvery
// until ctx ends, and returns the latencies in ms; failures are counted in *errs.
func probeAPI(ctx context.Context, cons jetstream.Consumer, errs *int) []float64 {
	var ms []float64
	t := time.NewTicker(apiProbeEvery)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return ms
		case <-t.C:
		}
		rctx, cancel := context.WithTimeout(ctx, 10*time.Second)
		t0 := time.Now()
		_, err := cons.Info(rctx)
		d := time.Since(t0)
		cancel()
		if ctx.Err() != nil {
			return ms
		}
		if err != nil {
			*errs++
			continue
		}
		ms = append(ms, float64(d)/float64(time.Millisecond))
	}
}

func (s *schedulerResult) write(dir string, stdout io.Writer) error {
	var md bytes.Buffer
	mb := func(b int64) float64 { return float64(b) / (1 << 20) }
	fmt.Fprintf(&md, "## bridge bench (scheduler)\n\n`%s`\n\n", strings.Join(s.Config.Args, " "))
	how := fmt.Sprintf("tracked at a steady pace over one interval (%.0f jobs/s)", float64(s.Jobs)/s.IntervalS)
	switch {
	case s.Moved:
		how = "tracked at once, each with the signed header of a job the bridge has moved (3 deliveries), as a whole cycle leaves the stream,"
	case s.AtOnce:
		how = "tracked at once"
	}
	fmt.Fprintf(&md, "%d jobs that never finish, %s and polled every %.1f s (fixed: no backoff, jitter 0, BRIDGE_LIST_SWEEP=false), so each poll parks its job again with NakWithDelay; bridge budget %g GET/s; speed x%g. nats-server runs as its own process (`bridge nats-server`, JetStream file storage). Tracked in %.1f s, admitted after %.1f s (%.0f jobs/s); every job polled once and the second cycle begun %.1f s later; then a window of %.1f s. Wall time %.0f s.\n\n",
		s.Jobs, how, s.IntervalS, s.BudgetPerS, s.Config.Speed, s.TrackSeconds, s.AdmitSeconds, s.IntakePerS, s.WarmupSeconds, s.WindowSeconds, s.WallSeconds)
	if s.Binding {
		fmt.Fprintf(&md, "The budget binds (%d jobs / 90%% of %g GET/s = a %.0f s cycle, above the %.1f s interval): the bridge moves each polled job to the queue's tail instead of parking it, so jobs wait in the stream (%d pending at the window's end) and are polled round robin: a job moved after the intake is not polled twice in the window. The %d gaps of the lateness column, if any, are of jobs polled during the intake: moved behind the jobs stored by then, they came back at their turn, not after the interval, so that column is no lateness here. Each job is admitted at its turn, with its first poll, so \"admitted\" above is when every track message was stored; the window opened %.0f s after that.\n\n",
			s.Jobs, s.BudgetPerS, s.CycleS, s.IntervalS, s.Pending, s.PollLatenessMs.N, s.WarmupSeconds)
	}
	fmt.Fprintln(&md, "| parked: ack pending / in the stream | nats-server CPU | nats-server RSS (peak) | JetStream API latency p50 / p99 / max (ms) | bridges | bridge CPU (all) | bridge RSS (peak, largest) | polls/s | poll lateness p50 / p99 / max (ms) | intake (jobs/s) |")
	fmt.Fprintln(&md, "| ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |")
	cpu, rss, peak := s.Bridge.CPUPercent, s.Bridge.RSSBytes, s.Bridge.PeakRSSBytes
	for _, o := range s.Others {
		cpu, rss, peak = cpu+o.CPUPercent, max(rss, o.RSSBytes), max(peak, o.PeakRSSBytes)
	}
	fmt.Fprintf(&md, "| %d / %d | %.1f%% | %.0f MB (%.0f) | %.2f / %.2f / %.2f | %d | %.1f%% | %.0f MB (%.0f) | %.1f | %.0f / %.0f / %.0f | %.0f |\n\n",
		s.AckPending, s.Pending, s.NATS.CPUPercent, mb(s.NATS.RSSBytes), mb(s.NATS.PeakRSSBytes),
		s.APILatencyMs.P50, s.APILatencyMs.P99, s.APILatencyMs.Max,
		max(1, s.Replicas), cpu, mb(rss), mb(peak),
		s.PollsPerS, s.PollLatenessMs.P50, s.PollLatenessMs.P99, s.PollLatenessMs.Max, s.IntakePerS)
	fmt.Fprintf(&md, "- CPU: utime + stime from /proc/<pid>/stat over the window, in %% of one core. RSS: VmRSS at the window's end (VmHWM).\n")
	fmt.Fprintf(&md, "- API latency: consumer info of %s's consumer, timed by the bench every %s (%d samples, %d failed).\n", subject.TrackStream, apiProbeEvery, s.APILatencyMs.N, s.APIErrors)
	fmt.Fprintf(&md, "- Poll lateness: at the simulator, the gap between two answered GET /job of a job minus the interval (%d gaps); it includes waits for the budget: %.0f requests waited in the window, %.1f s in all (every replica).\n", s.PollLatenessMs.N, s.BudgetWaits, s.BudgetWaitS)
	if _, err := stdout.Write(md.Bytes()); err != nil {
		return err
	}
	if err := os.WriteFile(filepath.Join(dir, "results.md"), md.Bytes(), 0o644); err != nil {
		return err
	}
	js, err := json.MarshalIndent(s, "", "  ")
	if err != nil {
		return err
	}
	return os.WriteFile(filepath.Join(dir, "results.json"), append(js, '\n'), 0o644)
}
