// Package bench is 'bridge bench': it runs one workload against the Reducto simulator, on a
// clock compressed k times (at most [maxSpeed]), for four contenders (the polling loop of
// Reducto's docs, the bridge polling only, the bridge with webhooks through P.submit, the
// bridge with list sweeps), optionally with untracked jobs on the account, and reports
// requests per job, lag, 429s, memory and exactly-one-event per job in a table, results.md,
// results.json and an SVG plot. The scenarios "outstanding" (many jobs at once against the GET /job limit)
// and "parked" (many jobs that never finish: the bridge's memory) run on their own, as do
// "flood" (many unknown ids, then a few real jobs: how long the real ones wait) and "backlog"
// (a large standing backlog of which 1% ends per minute: detection lag over a window), and
// "scheduler" (many parked jobs polled on a fixed interval, nats-server as its own process:
// its CPU, memory and API latency).
//
// The NATS server and the simulator run in this process; each bridge runs as a child process
// ('bridge run', through internal/bridgeproc), so its memory is its own. The scheduler
// scenario runs the NATS server as a child process too ('bridge nats-server', [ServeNATS]).
package bench

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"math"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"time"

	"github.com/reducto-bridge/reducto-bridge/internal/cli"
)

// The contenders of 'bridge bench'.
const (
	modeDocsLoop = "docs-loop"      // the loop from Reducto's docs: a goroutine and a 2 s ticker per job
	modePoll     = "bridge-poll"    // the bridge, polling only
	modeWebhook  = "bridge-webhook" // the bridge, jobs submitted through P.submit with a direct webhook
	modeSweep    = "bridge-sweep"   // the bridge with BRIDGE_LIST_SWEEP=true: GET /jobs sweeps
)

var allModes = []string{modeDocsLoop, modePoll, modeWebhook, modeSweep}

// maxSpeed is the most the clock may be compressed: JetStream's redelivery timer
// (NakWithDelay, AckWait) has a fixed resolution in real time, so a clock compressed further
// magnifies it into lag that a real deployment would not have.
const maxSpeed = 2

// The extra scenarios, run on their own.
const (
	scenarioOutstanding = "outstanding" // many jobs tracked at once against the simulator's GET /job limit
	scenarioParked      = "parked"      // many jobs that never finish, held by the bridge: its memory
	scenarioFlood       = "flood"       // many unknown ids, then a few real jobs: fairness under a backlog
	scenarioBacklog     = "backlog"     // many jobs outstanding, 1% of them ending per minute: lag over a window
	scenarioScheduler   = "scheduler"   // many parked jobs re-polled on a fixed interval: nats-server's cost
	scenarioFair        = "fair"        // many jobs that never finish on the default schedule: every one polled
)

// Scenario defaults.
const (
	outstandingJobs = 50_000
	parkedJobs      = 100_000
	backlogJobs     = 100_000
	backlogWindow   = 10 * time.Minute
)

// benchConfig is one 'bridge bench' run. Durations and rates are in simulator time unless
// said otherwise; Speed compresses them into real time.
type benchConfig struct {
	Jobs          int           `json:"jobs"`
	Arrival       float64       `json:"arrival_per_s"` // jobs per simulator second (Poisson)
	Median        time.Duration `json:"-"`
	Sigma         float64       `json:"sigma"`
	Progress      string        `json:"progress"`        // linear or none
	RateLimit     float64       `json:"rate_limit"`      // simulator's GET /job limit [CODE 2000], per simulator second
	GlobalRate    float64       `json:"global_rate"`     // simulator's all-endpoint limit [CODE 1000], per simulator second
	BridgeRate    float64       `json:"bridge_rate"`     // BRIDGE_RATE_LIMIT, per simulator second
	BridgeRateAll float64       `json:"bridge_rate_all"` // BRIDGE_RATE_LIMIT_ALL, per simulator second
	Speed         float64       `json:"speed"`           // k: the simulator clock runs k times faster than real time
	Background    float64       `json:"background"`      // untracked jobs on the account per tracked job
	Modes         []string      `json:"modes"`           // contenders, in run order
	Out           string        `json:"out"`             // output directory
	Seed          int64         `json:"seed"`            // workload seed
	Scenario      string        `json:"scenario"`        // "", outstanding, parked, flood or backlog
	OffsetCursors bool          `json:"offset_cursors"`  // the simulator's GET /jobs cursors are offsets
	ListStaleness time.Duration `json:"-"`               // the simulator's GET /jobs statuses are this old
	ListSweep     bool          `json:"list_sweep"`      // BRIDGE_LIST_SWEEP of a scenario's bridge
	Window        time.Duration `json:"-"`               // the backlog and scheduler scenarios' measurement window
	Interval      time.Duration `json:"-"`               // the scheduler scenario's poll interval; 0 = jobs / bridge rate
	Replicas      int           `json:"replicas"`        // the scheduler scenario's bridges on the one key
	AtOnce        bool          `json:"at_once"`         // the scheduler scenario tracks every job at once, not paced over an interval
	Moved         bool          `json:"moved"`           // the scheduler scenario's track messages carry a bridge's move header
	IntervalS     float64       `json:"interval_s,omitempty"`
	ListStaleS    float64       `json:"list_staleness_s"`
	WindowS       float64       `json:"window_s,omitempty"`
	Timeout       time.Duration `json:"-"`              // real-time bound of one contender; 0 = derived from the workload
	MedianS       float64       `json:"median_s"`       // Median, for the JSON
	TimeoutS      float64       `json:"timeout_s"`      // Timeout, for the JSON
	Args          []string      `json:"args,omitempty"` // the command line, for the report

	// bridgeCmd is the argv that starts a bridge child process; nil means this executable
	// with "run". Tests point it at the test binary's helper.
	bridgeCmd []string
	// bridgeEnv is added to the child's environment (tests: the helper switch).
	bridgeEnv []string
	// natsCmd is the argv that starts a NATS server process (the scheduler scenario), to
	// which -dir and -addr are appended; nil means this executable with "nats-server".
	natsCmd []string
	// natsEnv is added to the NATS server process's environment (tests: the helper switch).
	natsEnv []string
}

// Main is 'bridge bench' with its command line args: the same workload against the
// simulator, on a compressed clock, for the docs' polling loop, the bridge polling only, the
// bridge with webhooks and the bridge with list sweeps; a table, results.md, results.json and an SVG plot of lag against
// requests per job. It returns flag.ErrHelp for -h and [cli.ErrUsage] for a wrong command line.
func Main(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	cfg, err := parseBenchFlags(args, stderr)
	if err != nil {
		return err
	}
	return bench(ctx, cfg, stdout, stderr)
}

func parseBenchFlags(args []string, stderr io.Writer) (*benchConfig, error) {
	fs := flag.NewFlagSet("bench", flag.ContinueOnError)
	fs.SetOutput(stderr)
	cfg := &benchConfig{Args: append([]string{"bridge", "bench"}, args...)}
	fs.IntVar(&cfg.Jobs, "jobs", 2000, "jobs in the workload (scenarios: 50000 outstanding, 100000 parked, 20000 unknown ids flood, 100000 backlog, 10000 scheduler, 100000 fair)")
	fs.Float64Var(&cfg.Arrival, "arrival", 10, "jobs arriving per simulator second (Poisson)")
	fs.DurationVar(&cfg.Median, "median", 20*time.Second, "median job duration (lognormal, simulator time)")
	fs.Float64Var(&cfg.Sigma, "sigma", 0.8, "lognormal sigma of job durations")
	fs.StringVar(&cfg.Progress, "progress", "linear", "progress model: linear or none")
	fs.Float64Var(&cfg.RateLimit, "rate-limit", 200, "simulator GET /job limit, requests per simulator second (429 [CODE 2000] above)")
	fs.Float64Var(&cfg.GlobalRate, "global-rate-limit", 1000, "simulator limit on all endpoints, requests per simulator second (429 [CODE 1000] above; 0 = off)")
	fs.Float64Var(&cfg.BridgeRate, "bridge-rate", 100, "BRIDGE_RATE_LIMIT, GET /job requests per simulator second")
	fs.Float64Var(&cfg.BridgeRateAll, "bridge-rate-all", 500, "BRIDGE_RATE_LIMIT_ALL, requests to all endpoints per simulator second")
	fs.Float64Var(&cfg.Speed, "speed", maxSpeed, "clock compression k: the simulator runs k times faster than real time (at most 2; the scheduler scenario defaults to 1)")
	fs.Float64Var(&cfg.Background, "background", 0, "untracked jobs on the account per tracked job (created by the simulator at that multiple of -arrival, listed by GET /jobs, tracked by nobody)")
	modes := fs.String("modes", strings.Join(allModes, ","), "contenders, comma separated: "+strings.Join(allModes, ", "))
	fs.StringVar(&cfg.Out, "out", "./bench-out", "directory for results.md, results.json, the plot and the bridge logs")
	fs.Int64Var(&cfg.Seed, "seed", 1, "workload seed (durations, pages, arrivals)")
	fs.StringVar(&cfg.Scenario, "scenario", "", "extra scenario instead of the comparison, one bridge: outstanding, parked, flood, backlog, scheduler or fair")
	fs.BoolVar(&cfg.OffsetCursors, "offset-cursors", false, "the simulator's GET /jobs cursors are numeric offsets (entries repeat when jobs are created between pages) instead of keysets")
	fs.DurationVar(&cfg.ListStaleness, "list-staleness", 0, "the simulator's GET /jobs reports statuses this old (simulator time; GET /job stays current)")
	fs.BoolVar(&cfg.ListSweep, "list-sweep", true, "scenarios: BRIDGE_LIST_SWEEP of the scenario's bridge (the comparison sets it per contender)")
	fs.DurationVar(&cfg.Window, "window", backlogWindow, "backlog scenario: measurement window, simulator time, from when every job is tracked and admitted; scheduler: from when every job has been polled once (default 1m)")
	fs.IntVar(&cfg.Replicas, "replicas", 1, "scheduler scenario: bridge replicas on the one API key (they share the budget and the jobs)")
	fs.DurationVar(&cfg.Interval, "interval", 0, "scheduler scenario: every job's fixed poll interval, simulator time (0 = jobs / (90% of bridge-rate) + 1%, so the polls use what the bridge's fair floor allows without the budget binding)")
	fs.BoolVar(&cfg.Moved, "moved", false, "scheduler scenario: track every job with the signed header of a job the bridge has already moved (3 deliveries), as a whole cycle of polls leaves the stream while the budget binds: the steady state without waiting a cycle (N / budget seconds)")
	fs.BoolVar(&cfg.AtOnce, "at-once", false, "scheduler scenario: track every job at once, so that the first polls fall due together and are paced by the budget, and every later cycle with them (default: at a steady pace over one interval, so that polls fall due at jobs / interval; while the budget binds, always at once)")
	fs.DurationVar(&cfg.Timeout, "timeout", 0, "real-time bound of one contender (0 = derived from the workload)")
	if err := cli.ParseFlags(fs, args); err != nil {
		return nil, err
	}
	if fs.NArg() > 0 {
		fmt.Fprintf(stderr, "bench: unexpected argument %q\n", fs.Arg(0))
		return nil, cli.ErrUsage
	}
	set := map[string]bool{}
	fs.Visit(func(f *flag.Flag) { set[f.Name] = true })
	jobsSet := set["jobs"]
	for m := range strings.SplitSeq(*modes, ",") {
		if m = strings.TrimSpace(m); m != "" {
			cfg.Modes = append(cfg.Modes, m)
		}
	}
	switch cfg.Scenario {
	case scenarioOutstanding:
		if !jobsSet {
			cfg.Jobs = outstandingJobs
		}
		cfg.Modes = []string{scenarioMode(cfg)}
	case scenarioParked:
		if !jobsSet {
			cfg.Jobs = parkedJobs
		}
		cfg.Modes = []string{scenarioMode(cfg)}
	case scenarioFlood:
		if !jobsSet {
			cfg.Jobs = floodJobs
		}
		cfg.Modes = []string{scenarioMode(cfg)}
	case scenarioBacklog:
		if !jobsSet {
			cfg.Jobs = backlogJobs
		}
		cfg.Progress = "none" // the backlog's jobs report no progress, whatever -progress says
		cfg.Modes = []string{scenarioMode(cfg)}
	case scenarioFair:
		if !jobsSet {
			cfg.Jobs = fairJobs
		}
		cfg.Progress, cfg.ListSweep = "none", false
		cfg.Modes = []string{modePoll}
	case scenarioScheduler:
		if !jobsSet {
			cfg.Jobs = schedulerJobs
		}
		if !set["window"] {
			cfg.Window = schedulerWindow
		}
		if !set["speed"] {
			cfg.Speed = 1 // it measures nats-server in real time: compression would distort it
		}
		cfg.Progress, cfg.ListSweep = "none", false
		cfg.Modes = []string{modePoll}
	}
	if err := cfg.validate(); err != nil {
		return nil, err
	}
	return cfg, nil
}

// validate checks the knobs and returns every problem.
func (c *benchConfig) validate() error {
	var errs []error
	bad := func(format string, args ...any) { errs = append(errs, fmt.Errorf("bench: "+format, args...)) }
	positive := func(name string, v float64) {
		if !(v > 0) || math.IsInf(v, 0) {
			bad("-%s must be a finite number > 0, got %v", name, v)
		}
	}
	if c.Jobs < 1 {
		bad("-jobs must be at least 1, got %d", c.Jobs)
	}
	positive("arrival", c.Arrival)
	positive("rate-limit", c.RateLimit)
	positive("bridge-rate", c.BridgeRate)
	positive("bridge-rate-all", c.BridgeRateAll)
	positive("speed", c.Speed)
	if c.Speed > maxSpeed {
		bad("-speed must be at most %d, got %v: JetStream's redelivery timer has a fixed resolution in real time, so a clock compressed more than %dx inflates the bridge's lag beyond what a real deployment sees", maxSpeed, c.Speed, maxSpeed)
	}
	if !(c.Background >= 0) || math.IsInf(c.Background, 0) {
		bad("-background must be a finite number >= 0, got %v", c.Background)
	} else if c.Background > 0 && (c.Scenario == scenarioParked || c.Scenario == scenarioScheduler) {
		bad("-background does not apply to -scenario %s", c.Scenario)
	}
	if !(c.GlobalRate >= 0) || math.IsInf(c.GlobalRate, 0) {
		bad("-global-rate-limit must be a finite number >= 0, got %v", c.GlobalRate)
	}
	if c.Median <= 0 {
		bad("-median must be positive, got %s", c.Median)
	}
	if !(c.Sigma >= 0) || math.IsInf(c.Sigma, 0) {
		bad("-sigma must be a finite number >= 0, got %v", c.Sigma)
	}
	if c.Progress != "linear" && c.Progress != "none" {
		bad("-progress must be linear or none, got %q", c.Progress)
	}
	if len(c.Modes) == 0 {
		bad("-modes is empty")
	}
	seen := map[string]bool{}
	for _, m := range c.Modes {
		if !slices.Contains(allModes, m) {
			bad("-modes: unknown contender %q (want %s)", m, strings.Join(allModes, ", "))
		}
		if seen[m] {
			bad("-modes: %q given twice", m)
		}
		seen[m] = true
	}
	switch c.Scenario {
	case "", scenarioOutstanding, scenarioParked, scenarioFlood, scenarioBacklog, scenarioScheduler, scenarioFair:
	default:
		bad("-scenario must be %s, %s, %s, %s, %s or %s, got %q", scenarioOutstanding, scenarioParked, scenarioFlood, scenarioBacklog, scenarioScheduler, scenarioFair, c.Scenario)
	}
	if c.Interval < 0 {
		bad("-interval must not be negative, got %s", c.Interval)
	}
	if c.Replicas < 1 || c.Replicas > 16 {
		bad("-replicas must be 1 to 16, got %d", c.Replicas)
	} else if c.Replicas > 1 && c.Scenario != scenarioScheduler {
		bad("-replicas applies to -scenario %s only", scenarioScheduler)
	}
	if c.AtOnce && c.Scenario != scenarioScheduler {
		bad("-at-once applies to -scenario %s only", scenarioScheduler)
	}
	if c.Moved && c.Scenario != scenarioScheduler {
		bad("-moved applies to -scenario %s only", scenarioScheduler)
	}
	if c.ListStaleness < 0 {
		bad("-list-staleness must not be negative, got %s", c.ListStaleness)
	}
	if c.Window <= 0 {
		bad("-window must be positive, got %s", c.Window)
	}
	if c.Timeout < 0 {
		bad("-timeout must not be negative, got %s", c.Timeout)
	}
	if c.Out == "" {
		bad("-out must not be empty")
	}
	c.MedianS = c.Median.Seconds()
	c.ListStaleS = c.ListStaleness.Seconds()
	if c.Scenario == scenarioBacklog || c.Scenario == scenarioScheduler {
		c.WindowS = c.Window.Seconds()
	}
	return errors.Join(errs...)
}

// scenarioMode is the contender a scenario's bridge is: bridge-sweep with -list-sweep,
// bridge-poll without.
func scenarioMode(c *benchConfig) string {
	if c.ListSweep {
		return modeSweep
	}
	return modePoll
}

// real converts a simulator duration into real time.
func (c *benchConfig) real(d time.Duration) time.Duration {
	return time.Duration(float64(d) / c.Speed)
}

// bench runs the configured scenario and writes its reports.
func bench(ctx context.Context, cfg *benchConfig, stdout, stderr io.Writer) error {
	if err := os.MkdirAll(cfg.Out, 0o755); err != nil {
		return fmt.Errorf("bench: output directory: %w", err)
	}
	out, err := filepath.Abs(cfg.Out)
	if err != nil {
		return fmt.Errorf("bench: output directory: %w", err)
	}
	cfg.Out = out
	switch cfg.Scenario {
	case scenarioParked:
		return benchParked(ctx, cfg, stdout, stderr)
	case scenarioFlood:
		return benchFlood(ctx, cfg, stdout, stderr)
	case scenarioBacklog:
		return benchBacklog(ctx, cfg, stdout, stderr)
	case scenarioScheduler:
		return benchScheduler(ctx, cfg, stdout, stderr)
	case scenarioFair:
		return benchFair(ctx, cfg, stdout, stderr)
	}
	wl := drawWorkload(cfg)
	if cfg.Timeout == 0 {
		cfg.Timeout = wl.timeout(cfg)
	}
	cfg.TimeoutS = cfg.Timeout.Seconds()
	rep := &benchReport{Scenario: cfg.Scenario, Config: cfg, Started: time.Now()}
	if rep.Scenario == "" {
		rep.Scenario = "comparison"
	}
	fmt.Fprintf(stderr, "bench: %d jobs, lognormal median %s sigma %.2g, progress %s, arrival %g/s, %g untracked per tracked job, simulator limit %g/s, bridge rate %g/s, speed x%g (simulator seconds; timeout %s real per contender)\n",
		cfg.Jobs, cfg.Median, cfg.Sigma, cfg.Progress, cfg.Arrival, cfg.Background, cfg.RateLimit, cfg.BridgeRate, cfg.Speed, cfg.Timeout.Round(time.Second))
	for _, mode := range cfg.Modes {
		fmt.Fprintf(stderr, "bench: running %s ...\n", mode)
		res, err := runContender(ctx, cfg, wl, mode, stderr)
		if err != nil {
			return fmt.Errorf("bench: %s: %w", mode, err)
		}
		fmt.Fprintf(stderr, "bench: %s done in %.1fs: %.2f GET/job, %.2f requests/job, lag p99 %.2fs, %d/%d jobs with exactly one event, %d events for untracked jobs\n",
			mode, res.WallSeconds, res.RequestsPerJob, res.AllRequestsPerJob, res.Lag.P99, res.JobsOneEvent, res.Jobs, res.UntrackedEvents)
		rep.Contenders = append(rep.Contenders, res)
	}
	rep.finish()
	return rep.write(cfg.Out, stdout)
}
