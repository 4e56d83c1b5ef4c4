package bench

import (
	"bytes"
	"context"
	"encoding/json"
	"encoding/xml"
	"errors"
	"flag"
	"fmt"
	"io"
	"math"
	"net/http"
	"net/http/httptest"
	"os"
	"os/signal"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"go.uber.org/goleak"

	"github.com/reducto-bridge/reducto-bridge/internal/bridge"
	"github.com/reducto-bridge/reducto-bridge/internal/cli"
	"github.com/reducto-bridge/reducto-bridge/reducto/reductosim"
	"github.com/reducto-bridge/reducto-bridge/subject"
	"github.com/reducto-bridge/reducto-bridge/sweep"
	"github.com/reducto-bridge/reducto-bridge/track"
)

// benchHelperEnv switches this test binary into a bridge child process for TestBench.
const benchHelperEnv = "BENCH_HELPER_BRIDGE"

// TestBenchHelperBridge is not a test: run as `<test binary> -test.run=^TestBenchHelperBridge$`
// with BENCH_HELPER_BRIDGE=1, it is the bridge child process of TestBench ('bridge run').
func TestBenchHelperBridge(t *testing.T) {
	if os.Getenv(benchHelperEnv) != "1" {
		t.Skip("the bridge child process of TestBench")
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if err := bridge.Run(ctx, os.Stderr); err != nil {
		fmt.Fprintln(os.Stderr, "bridge:", err)
		os.Exit(1)
	}
	os.Exit(0)
}

// TestBench runs the whole benchmark on a tiny workload with untracked jobs on the account:
// four contenders, each tracked job exactly one event, no event for an untracked one, a table
// of four rows, a plot that is XML.
func TestBench(t *testing.T) {
	if testing.Short() {
		t.Skip("starts two bridge processes")
	}
	baseline := goleak.IgnoreCurrent()
	out := t.TempDir()
	cfg, err := parseBenchFlags([]string{"-jobs", "30", "-median", "5s", "-background", "2", "-out", out}, io.Discard)
	if err != nil {
		t.Fatal(err)
	}
	// The mechanics, not the figures, are under test: a faster clock than -speed allows.
	cfg.Speed = 50
	cfg.bridgeCmd = []string{os.Args[0], "-test.run=^TestBenchHelperBridge$"}
	cfg.bridgeEnv = []string{benchHelperEnv + "=1"}
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	var stdout, stderr bytes.Buffer
	if err := bench(ctx, cfg, &stdout, &stderr); err != nil {
		// The bridge logs live in out, which is removed after the test: show them now.
		logs, _ := filepath.Glob(filepath.Join(out, "*-bridge.log"))
		for _, l := range logs {
			data, _ := os.ReadFile(l)
			t.Logf("%s:\n%s", filepath.Base(l), data)
		}
		t.Fatalf("bench: %v\nstderr:\n%s", err, stderr.String())
	}

	var rows []string
	for line := range strings.Lines(stdout.String()) {
		if strings.HasPrefix(line, "| ") && !strings.HasPrefix(line, "| contender") && !strings.HasPrefix(line, "| ---") {
			rows = append(rows, line)
		}
	}
	if len(rows) != len(allModes) {
		t.Fatalf("got %d table rows, want %d:\n%s", len(rows), len(allModes), stdout.String())
	}
	for i, mode := range allModes {
		if !strings.HasPrefix(rows[i], "| "+mode+" |") {
			t.Errorf("row %d is %q, want contender %s", i, rows[i], mode)
		}
	}

	var rep benchReport
	b, err := os.ReadFile(filepath.Join(out, "results.json"))
	if err != nil {
		t.Fatal(err)
	}
	if err := json.Unmarshal(b, &rep); err != nil {
		t.Fatalf("results.json: %v", err)
	}
	if len(rep.Contenders) != len(allModes) {
		t.Fatalf("got %d contenders in results.json, want %d", len(rep.Contenders), len(allModes))
	}
	for _, c := range rep.Contenders {
		if c.Jobs != 30 || c.JobsDetected != 30 || c.JobsOneEvent != 30 {
			t.Errorf("%s: got %d jobs, %d detected, %d with exactly one event; want 30 each", c.Name, c.Jobs, c.JobsDetected, c.JobsOneEvent)
		}
		if c.DuplicateSightings != 0 {
			t.Errorf("%s: got %d duplicate event sightings, want 0", c.Name, c.DuplicateSightings)
		}
		if c.RequestsPerJob < 1 {
			t.Errorf("%s: got %.2f GET/job, want at least 1 (every result is fetched)", c.Name, c.RequestsPerJob)
		}
		if c.UntrackedEvents != 0 {
			t.Errorf("%s: got %d events for untracked jobs, want 0", c.Name, c.UntrackedEvents)
		}
		// About 60 untracked jobs arrive while the 30 tracked ones do (2 per tracked job).
		if c.BackgroundJobs < 20 {
			t.Errorf("%s: got %d untracked jobs on the account, want about 60 or more", c.Name, c.BackgroundJobs)
		}
		if c.AllRequests < c.GetRequests || c.AllRequestsPerJob < c.RequestsPerJob {
			t.Errorf("%s: got %d requests in all (%.2f per job), fewer than its %d GET /job (%.2f per job)", c.Name, c.AllRequests, c.AllRequestsPerJob, c.GetRequests, c.RequestsPerJob)
		}
		if c.Lag.N != 30 || c.Lag.Min < 0 {
			t.Errorf("%s: got %d lags, the least %.3fs; want 30, none negative", c.Name, c.Lag.N, c.Lag.Min)
		}
		if c.PeakMemoryBytes <= 0 && c.Name != modeDocsLoop {
			t.Errorf("%s: got peak memory %d, want > 0", c.Name, c.PeakMemoryBytes)
		}
	}
	if hook := rep.Contenders[2].WebhookLatency; hook == nil || hook.N != 30 {
		t.Errorf("bridge-webhook: got webhook latencies %+v, want 30", hook)
	}

	svg, err := os.ReadFile(filepath.Join(out, "lag-vs-requests.svg"))
	if err != nil {
		t.Fatal(err)
	}
	dec := xml.NewDecoder(bytes.NewReader(svg))
	root := ""
	for {
		tok, err := dec.Token()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			t.Fatalf("plot is not XML: %v", err)
		}
		if se, ok := tok.(xml.StartElement); ok && root == "" {
			root = se.Name.Local
		}
	}
	if root != "svg" {
		t.Errorf("plot's root element is %q, want svg", root)
	}
	for _, mode := range allModes {
		if _, err := os.Stat(filepath.Join(out, mode+"-jobs.csv")); err != nil {
			t.Errorf("per-job CSV of %s: %v", mode, err)
		}
	}
	goleak.VerifyNone(t, baseline)
}

func TestPercentile(t *testing.T) {
	tests := []struct {
		name   string
		sorted []float64
		q      float64
		want   float64
	}{
		{"one value", []float64{7}, 0.99, 7},
		{"median of odd", []float64{1, 2, 3}, 0.5, 2},
		{"median of even interpolates", []float64{1, 2, 3, 4}, 0.5, 2.5},
		{"minimum", []float64{1, 2, 3, 4}, 0, 1},
		{"maximum", []float64{1, 2, 3, 4}, 1, 4},
		{"p90 of 0..10", []float64{0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10}, 0.9, 9},
		{"p99 of 0..100 step 1", seq(101), 0.99, 99},
		{"p99 interpolates", []float64{0, 100}, 0.99, 99},
		{"q below 0 clamps", []float64{1, 2}, -1, 1},
		{"q above 1 clamps", []float64{1, 2}, 2, 2},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := percentile(tt.sorted, tt.q); math.Abs(got-tt.want) > 1e-9 {
				t.Errorf("percentile(%v, %v) = %v, want %v", tt.sorted, tt.q, got, tt.want)
			}
		})
	}
	if got := percentile(nil, 0.5); !math.IsNaN(got) {
		t.Errorf("percentile(nil) = %v, want NaN", got)
	}
	d := summarize([]float64{3, 1, 2})
	if d.N != 3 || d.Min != 1 || d.Max != 3 || d.P50 != 2 || d.Mean != 2 {
		t.Errorf("summarize(3, 1, 2) = %+v, want n 3, min 1, max 3, p50 2, mean 2", d)
	}
}

func seq(n int) []float64 {
	s := make([]float64, n)
	for i := range s {
		s[i] = float64(i)
	}
	return s
}

func TestTimeMap(t *testing.T) {
	simStart := time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)
	fake := reductosim.NewFakeClock(simStart)
	m := newTimeMap(fake, 10)
	tests := []struct {
		name     string
		sim      time.Duration // after the simulator start
		wantReal time.Duration // after the real start
	}{
		{"start", 0, 0},
		{"ten simulator seconds are one real second", 10 * time.Second, time.Second},
		{"before the start", -20 * time.Second, -2 * time.Second},
		{"sub-millisecond", 5 * time.Millisecond, 500 * time.Microsecond},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := m.toReal(simStart.Add(tt.sim)).Sub(m.real0)
			if got != tt.wantReal {
				t.Errorf("toReal(start+%s) = real start+%s, want +%s", tt.sim, got, tt.wantReal)
			}
			if back := m.toSim(m.toReal(simStart.Add(tt.sim))); !back.Equal(simStart.Add(tt.sim)) {
				t.Errorf("toSim(toReal(x)) = %s, want %s", back, simStart.Add(tt.sim))
			}
		})
	}
	// A detection 0.3 real seconds after a simulator-time end is a 3 s lag, uncompressed.
	end := simStart.Add(40 * time.Second)
	if got := m.lag(m.toReal(end).Add(300*time.Millisecond), end); math.Abs(got-3) > 1e-9 {
		t.Errorf("lag = %v s, want 3", got)
	}

	// On the real compressed clock, a reading converts to a real time between the readings
	// taken around it.
	clock := reductosim.ScaledClock(50)
	sm := newTimeMap(clock, 50)
	for range 100 {
		lo := time.Now()
		s := clock.Now()
		hi := time.Now()
		if off := outside(sm.toReal(s), lo, hi); off > clockTolerance {
			t.Fatalf("scaled clock reading converts %s outside the real readings around it", off)
		}
	}
}

func TestOutside(t *testing.T) {
	base := time.Now()
	tests := []struct {
		name string
		t    time.Time
		want time.Duration
	}{
		{"inside", base.Add(time.Second), 0},
		{"at the low end", base, 0},
		{"before", base.Add(-time.Second), time.Second},
		{"after", base.Add(5 * time.Second), 3 * time.Second},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := outside(tt.t, base, base.Add(2*time.Second)); got != tt.want {
				t.Errorf("outside = %s, want %s", got, tt.want)
			}
		})
	}
}

func TestWorkload(t *testing.T) {
	cfg := &benchConfig{Jobs: 4000, Arrival: 10, Median: 20 * time.Second, Sigma: 0.8, Progress: "none", Seed: 7, Speed: 10, BridgeRate: 100}
	a, b := drawWorkload(cfg), drawWorkload(cfg)
	for i := range a.durations {
		if a.durations[i] != b.durations[i] || a.arrivals[i] != b.arrivals[i] || a.pages[i] != b.pages[i] {
			t.Fatalf("job %d differs between two draws with one seed", i)
		}
	}
	ds := make([]float64, len(a.durations))
	for i, d := range a.durations {
		ds[i] = d.Seconds()
	}
	if med := summarize(ds).P50; med < 18 || med > 22 {
		t.Errorf("median duration %.1fs, want about 20s", med)
	}
	if rate := float64(cfg.Jobs) / a.arrivals[len(a.arrivals)-1].Seconds(); rate < 9 || rate > 11 {
		t.Errorf("arrival rate %.2f/s, want about 10/s", rate)
	}
	if sp := a.spec(3); sp.Progress != reductosim.ProgressNone || sp.Duration != a.durations[3] || sp.NumPages != a.pages[3] {
		t.Errorf("spec(3) = %+v, want job 3 as drawn, without progress", sp)
	}

	spec := a.specFunc()
	tests := []struct {
		name string
		body string
		want time.Duration
	}{
		{"index in the input", `{"input":"` + inputURL(17) + `","async":{}}`, a.durations[17]},
		{"no index: the next in order", `{"input":"https://example.com/x.pdf"}`, a.durations[0]},
		{"index out of range: the next in order", `{"input":"` + inputURL(999999) + `"}`, a.durations[1]},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := spec("/parse_async", []byte(tt.body)).Duration; got != tt.want {
				t.Errorf("duration %s, want %s", got, tt.want)
			}
		})
	}
}

func TestBenchHelpers(t *testing.T) {
	ids := []struct {
		subj, want string
		ok         bool
	}{
		{"reducto.job.completed.abc-1", "abc-1", true},
		{"reducto.job.failed.x", "x", true},
		{"reducto.job.completed", "", false},
		{"reducto.track.abc", "", false},
	}
	for _, tt := range ids {
		if got, ok := eventJobID(tt.subj); got != tt.want || ok != tt.ok {
			t.Errorf("eventJobID(%q) = %q, %v; want %q, %v", tt.subj, got, ok, tt.want, tt.ok)
		}
	}
	metrics := []byte("# HELP x\nreducto_bridge_track_messages_total{result=\"bad_body\"} 2\nreducto_bridge_track_messages_total{result=\"new\"} 1e+06\n")
	if got := metricValue(metrics, `reducto_bridge_track_messages_total{result="new"}`); got != 1e6 {
		t.Errorf("metricValue = %v, want 1e6", got)
	}
	if got := metricValue(metrics, `nope`); got != 0 {
		t.Errorf("metricValue of an absent series = %v, want 0", got)
	}
	heap := []byte("heap profile: 1: 2 [3: 4] @ heap/1048576\n# runtime.MemStats\n# Alloc = 5\n# HeapAlloc = 123\n# HeapInuse = 4567\n")
	if got := memStat(heap, "HeapInuse"); got != 4567 {
		t.Errorf("memStat(HeapInuse) = %d, want 4567", got)
	}
	st := reductosim.Stats{Requests: map[string]int64{
		reductosim.EndpointGetJob: 7, reductosim.EndpointJobs: 3, reductosim.EndpointCancel: 1, reductosim.EndpointParse: 100,
	}}
	if got := allRequests(st); got != 11 {
		t.Errorf("allRequests = %d, want 11 (GET /job, GET /jobs and cancels; no submissions)", got)
	}
	stored := map[string]uint64{"a": 1, "x": 2, "y": 1}
	if got := untrackedEvents(stored, []string{"a", "b", "c"}); got != 3 {
		t.Errorf("untrackedEvents = %d, want 3 (the two of x, the one of y)", got)
	}
	steps := map[float64]float64{0.7: 1, 3: 5, 4.2: 5, 12: 20, 0.013: 0.02, 0: 1}
	for raw, want := range steps {
		if got := niceStep(raw); math.Abs(got-want) > 1e-12 {
			t.Errorf("niceStep(%v) = %v, want %v", raw, got, want)
		}
	}
}

func TestBenchFlags(t *testing.T) {
	tests := []struct {
		name    string
		args    []string
		wantErr bool
		wantMsg string
		check   func(*benchConfig) string
	}{
		{name: "defaults", check: func(c *benchConfig) string {
			if c.Jobs != 2000 || c.Speed != 2 || len(c.Modes) != 4 || c.Progress != "linear" || c.Background != 0 {
				return fmt.Sprintf("got %d jobs, speed %v, modes %v, progress %s", c.Jobs, c.Speed, c.Modes, c.Progress)
			}
			return ""
		}},
		{name: "outstanding scenario", args: []string{"-scenario", "outstanding"}, check: func(c *benchConfig) string {
			if c.Jobs != outstandingJobs || len(c.Modes) != 1 || c.Modes[0] != modeSweep || !c.ListSweep {
				return fmt.Sprintf("got %d jobs, modes %v, list sweep %v", c.Jobs, c.Modes, c.ListSweep)
			}
			return ""
		}},
		{name: "outstanding scenario without list sweep", args: []string{"-scenario", "outstanding", "-list-sweep=false"}, check: func(c *benchConfig) string {
			if len(c.Modes) != 1 || c.Modes[0] != modePoll || c.ListSweep {
				return fmt.Sprintf("got modes %v, list sweep %v", c.Modes, c.ListSweep)
			}
			return ""
		}},
		{name: "flood scenario", args: []string{"-scenario", "flood"}, check: func(c *benchConfig) string {
			if c.Jobs != floodJobs || len(c.Modes) != 1 || c.Modes[0] != modeSweep {
				return fmt.Sprintf("got %d jobs, modes %v", c.Jobs, c.Modes)
			}
			return ""
		}},
		{name: "backlog scenario", args: []string{"-scenario", "backlog"}, check: func(c *benchConfig) string {
			if c.Jobs != backlogJobs || c.Window != backlogWindow || c.WindowS != backlogWindow.Seconds() || len(c.Modes) != 1 || c.Modes[0] != modeSweep {
				return fmt.Sprintf("got %d jobs, window %s (%v s), modes %v", c.Jobs, c.Window, c.WindowS, c.Modes)
			}
			return ""
		}},
		{name: "scheduler scenario", args: []string{"-scenario", "scheduler"}, check: func(c *benchConfig) string {
			if c.Jobs != schedulerJobs || c.Window != schedulerWindow || c.WindowS != 60 || c.Speed != 1 || c.ListSweep || schedulerInterval(c) != time.Duration(float64(schedulerJobs)/(schedulerShare*c.BridgeRate)*1.01*float64(time.Second)) || len(c.Modes) != 1 || c.Modes[0] != modePoll {
				return fmt.Sprintf("got %d jobs, window %s (%v s), speed %v, list sweep %v, interval %s, modes %v", c.Jobs, c.Window, c.WindowS, c.Speed, c.ListSweep, schedulerInterval(c), c.Modes)
			}
			return ""
		}},
		{name: "scheduler scenario keeps explicit flags", args: []string{"-scenario", "scheduler", "-jobs", "50", "-window", "5s", "-speed", "2", "-interval", "7s"}, check: func(c *benchConfig) string {
			if c.Jobs != 50 || c.Window != 5*time.Second || c.Speed != 2 || schedulerInterval(c) != 7*time.Second {
				return fmt.Sprintf("got %d jobs, window %s, speed %v, interval %s", c.Jobs, c.Window, c.Speed, schedulerInterval(c))
			}
			return ""
		}},
		{name: "negative interval", args: []string{"-scenario", "scheduler", "-interval", "-1s"}, wantErr: true, wantMsg: "-interval"},
		{name: "no replica", args: []string{"-scenario", "scheduler", "-replicas", "0"}, wantErr: true, wantMsg: "-replicas must be 1 to 16"},
		{name: "moved outside the scheduler scenario", args: []string{"-scenario", "backlog", "-moved"}, wantErr: true, wantMsg: "-moved applies to -scenario scheduler only"},
		{name: "at once outside the scheduler scenario", args: []string{"-scenario", "fair", "-at-once"}, wantErr: true, wantMsg: "-at-once applies to -scenario scheduler only"},
		{name: "replicas outside the scheduler scenario", args: []string{"-scenario", "backlog", "-replicas", "3"}, wantErr: true, wantMsg: "-replicas applies to -scenario scheduler only"},
		{name: "fair scenario", args: []string{"-scenario", "fair"}, check: func(c *benchConfig) string {
			if c.Jobs != fairJobs || c.ListSweep || len(c.Modes) != 1 || c.Modes[0] != modePoll {
				return fmt.Sprintf("got %d jobs, list sweep %v, modes %v", c.Jobs, c.ListSweep, c.Modes)
			}
			return ""
		}},
		{name: "scheduler without background", args: []string{"-scenario", "scheduler", "-background", "1"}, wantErr: true, wantMsg: "-background does not apply to -scenario scheduler"},
		{name: "list options", args: []string{"-offset-cursors", "-list-staleness", "3s"}, check: func(c *benchConfig) string {
			if !c.OffsetCursors || c.ListStaleness != 3*time.Second || c.ListStaleS != 3 {
				return fmt.Sprintf("got offset cursors %v, staleness %s (%v s)", c.OffsetCursors, c.ListStaleness, c.ListStaleS)
			}
			return ""
		}},
		{name: "negative list staleness", args: []string{"-list-staleness", "-1s"}, wantErr: true, wantMsg: "-list-staleness"},
		{name: "zero window", args: []string{"-scenario", "backlog", "-window", "0s"}, wantErr: true, wantMsg: "-window"},
		{name: "parked scenario keeps an explicit -jobs", args: []string{"-scenario", "parked", "-jobs", "10"}, check: func(c *benchConfig) string {
			if c.Jobs != 10 {
				return fmt.Sprintf("got %d jobs", c.Jobs)
			}
			return ""
		}},
		{name: "unknown mode", args: []string{"-modes", "docs-loop,nope"}, wantErr: true},
		{name: "bad progress", args: []string{"-progress", "exponential"}, wantErr: true},
		{name: "zero speed", args: []string{"-speed", "0"}, wantErr: true},
		{name: "speed above 2", args: []string{"-speed", "2.5"}, wantErr: true, wantMsg: "redelivery timer"},
		{name: "speed 1.5", args: []string{"-speed", "1.5"}},
		{name: "negative background", args: []string{"-background", "-1"}, wantErr: true, wantMsg: "-background"},
		{name: "background", args: []string{"-background", "3", "-modes", "bridge-sweep"}, check: func(c *benchConfig) string {
			if c.Background != 3 || len(c.Modes) != 1 || c.Modes[0] != modeSweep {
				return fmt.Sprintf("got background %v, modes %v", c.Background, c.Modes)
			}
			return ""
		}},
		{name: "unknown scenario", args: []string{"-scenario", "x"}, wantErr: true},
		{name: "stray argument", args: []string{"extra"}, wantErr: true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			cfg, err := parseBenchFlags(tt.args, io.Discard)
			if (err != nil) != tt.wantErr {
				t.Fatalf("got error %v, want error %v", err, tt.wantErr)
			}
			if err != nil && !strings.Contains(err.Error(), tt.wantMsg) {
				t.Errorf("got error %v, want it to mention %q", err, tt.wantMsg)
			}
			if tt.check != nil {
				if msg := tt.check(cfg); msg != "" {
					t.Error(msg)
				}
			}
		})
	}
}

// TestBenchFlood runs the flood scenario on a tiny flood: every unknown id is reported failed
// after exactly two GETs (the answer and its confirmation), every real job is reported
// completed once, after it ended, and results.json says so.
func TestBenchFlood(t *testing.T) {
	if testing.Short() {
		t.Skip("starts a bridge process")
	}
	baseline := goleak.IgnoreCurrent()
	out := t.TempDir()
	const junk = 40
	cfg, err := parseBenchFlags([]string{"-scenario", "flood", "-jobs", fmt.Sprint(junk), "-out", out}, io.Discard)
	if err != nil {
		t.Fatal(err)
	}
	cfg.Speed = 10 // the mechanics, not figures: faster than the flags allow
	cfg.bridgeCmd = []string{os.Args[0], "-test.run=^TestBenchHelperBridge$"}
	cfg.bridgeEnv = []string{benchHelperEnv + "=1"}
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	var stdout, stderr bytes.Buffer
	if err := bench(ctx, cfg, &stdout, &stderr); err != nil {
		data, _ := os.ReadFile(filepath.Join(out, "flood-bridge.log"))
		t.Fatalf("bench: %v\nstderr:\n%s\nbridge log:\n%s", err, stderr.String(), data)
	}
	data, err := os.ReadFile(filepath.Join(out, "results.json"))
	if err != nil {
		t.Fatal(err)
	}
	var res struct {
		Scenario     string  `json:"scenario"`
		JunkJobs     int     `json:"junk_jobs"`
		JunkReported int     `json:"junk_reported"`
		JunkFailed   int     `json:"junk_failed"`
		JunkDoneS    float64 `json:"junk_done_s"`
		JunkGets     int64   `json:"junk_get_job_requests"`
		BoundS       float64 `json:"bound_s"`
		TimedOut     bool    `json:"timed_out"`
		PeakRSS      int64   `json:"peak_rss_bytes"`
		Real         []struct {
			ID     string   `json:"id"`
			Kind   string   `json:"kind"`
			Events int      `json:"events"`
			DelayS *float64 `json:"delay_s"`
			LagS   *float64 `json:"lag_s"`
			Gets   int64    `json:"get_job_n"`
		} `json:"real_jobs"`
	}
	if err := json.Unmarshal(data, &res); err != nil {
		t.Fatalf("results.json: %v\n%s", err, data)
	}
	if res.Scenario != "flood" || res.TimedOut || res.JunkJobs != junk || res.JunkReported != junk || res.JunkFailed != junk {
		t.Errorf("scenario %q, timed out %v, junk %d, reported %d, failed %d; want flood, false, %d each",
			res.Scenario, res.TimedOut, res.JunkJobs, res.JunkReported, res.JunkFailed, junk)
	}
	if res.JunkGets != 2*junk {
		t.Errorf("%d GETs on the junk, want %d (two per id)", res.JunkGets, 2*junk)
	}
	if !(res.JunkDoneS > 0) || res.BoundS != 2*junk/cfg.BridgeRate {
		t.Errorf("junk done after %v s, bound %v s", res.JunkDoneS, res.BoundS)
	}
	if len(res.Real) != floodRealJobs {
		t.Fatalf("%d real jobs, want %d", len(res.Real), floodRealJobs)
	}
	for _, j := range res.Real {
		switch {
		case j.Kind != "completed" || j.Events != 1:
			t.Errorf("real job %s: %d events, first %q; want one completed", j.ID, j.Events, j.Kind)
		case j.DelayS == nil || *j.DelayS < floodRealDuration.Seconds() || j.LagS == nil || *j.LagS < 0:
			t.Errorf("real job %s: delay %v, lag %v; want at least its %s, and a lag >= 0", j.ID, j.DelayS, j.LagS, floodRealDuration)
		case j.Gets < 1:
			t.Errorf("real job %s: %d GETs", j.ID, j.Gets)
		}
	}
	if !strings.Contains(stdout.String(), "## bridge bench (flood)") {
		t.Errorf("no flood table on stdout:\n%s", stdout.String())
	}
	if _, err := os.Stat(filepath.Join(out, "results.md")); err != nil {
		t.Error(err)
	}
	if res.PeakRSS <= 0 {
		t.Errorf("peak RSS %d", res.PeakRSS)
	}
	goleak.VerifyNone(t, baseline)
}

// TestBenchBacklog runs the backlog scenario on a tiny backlog, with offset cursors, stale
// list statuses and untracked jobs: jobs end during the window and each has a lag, every
// ended job exactly one event, none for a running or an untracked job, and results.json
// carries the list options.
func TestBenchBacklog(t *testing.T) {
	if testing.Short() {
		t.Skip("starts a bridge process")
	}
	baseline := goleak.IgnoreCurrent()
	out := t.TempDir()
	const jobs = 300
	cfg, err := parseBenchFlags([]string{"-scenario", "backlog", "-jobs", fmt.Sprint(jobs), "-window", "5m",
		"-offset-cursors", "-list-staleness", "2s", "-background", "3", "-out", out}, io.Discard)
	if err != nil {
		t.Fatal(err)
	}
	// The mechanics, not the figures, are under test: a faster clock than -speed allows.
	cfg.Speed = 50
	cfg.bridgeCmd = []string{os.Args[0], "-test.run=^TestBenchHelperBridge$"}
	cfg.bridgeEnv = []string{benchHelperEnv + "=1"}
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	var stdout, stderr bytes.Buffer
	if err := bench(ctx, cfg, &stdout, &stderr); err != nil {
		data, _ := os.ReadFile(filepath.Join(out, "backlog-bridge.log"))
		t.Fatalf("bench: %v\nstderr:\n%s\nbridge log:\n%s", err, stderr.String(), data)
	}
	data, err := os.ReadFile(filepath.Join(out, "results.json"))
	if err != nil {
		t.Fatal(err)
	}
	var res struct {
		Scenario string `json:"scenario"`
		Config   struct {
			OffsetCursors bool    `json:"offset_cursors"`
			ListStaleS    float64 `json:"list_staleness_s"`
			ListSweep     bool    `json:"list_sweep"`
			WindowS       float64 `json:"window_s"`
		} `json:"config"`
		Jobs           int     `json:"jobs"`
		WindowEnded    int     `json:"window_jobs_ended"`
		WindowDetected int     `json:"window_jobs_detected"`
		Lag            dist    `json:"lag_s"`
		Ended          int     `json:"jobs_ended"`
		EndedOneEvent  int     `json:"jobs_ended_with_exactly_one_event"`
		EventsNotEnded int64   `json:"events_for_running_jobs"`
		Untracked      int64   `json:"events_untracked_jobs"`
		ListPerSecond  float64 `json:"get_jobs_per_s"`
		GetPerSecond   float64 `json:"get_job_per_s"`
		Background     int64   `json:"background_jobs"`
		BridgeRSS      int64   `json:"bridge_rss_peak_bytes"`
		BenchRSS       int64   `json:"bench_process_rss_peak_bytes"`
		TimedOut       bool    `json:"timed_out"`
	}
	if err := json.Unmarshal(data, &res); err != nil {
		t.Fatalf("results.json: %v\n%s", err, data)
	}
	if res.Scenario != "backlog" || res.TimedOut || res.Jobs != jobs {
		t.Errorf("scenario %q, timed out %v, %d jobs; want backlog, false, %d", res.Scenario, res.TimedOut, res.Jobs, jobs)
	}
	if !res.Config.OffsetCursors || res.Config.ListStaleS != 2 || !res.Config.ListSweep || res.Config.WindowS != 300 {
		t.Errorf("config %+v; want offset cursors, 2 s staleness, list sweep, 300 s window", res.Config)
	}
	// 300 jobs at 1%/min over 5 minutes: about 14 end in the window.
	if res.WindowEnded < 3 || res.WindowDetected != res.WindowEnded || res.Lag.N != res.WindowEnded {
		t.Errorf("%d ended in the window, %d detected, %d lags; want several, all detected and measured", res.WindowEnded, res.WindowDetected, res.Lag.N)
	}
	if !(res.Lag.Min >= 0) || !(res.Lag.P50 <= res.Lag.P99) || !(res.Lag.P99 <= res.Lag.Max) || !(res.Lag.Max > 0) {
		t.Errorf("lags %+v; want 0 <= p50 <= p99 <= max, max > 0", res.Lag)
	}
	if res.Ended < res.WindowEnded || res.EndedOneEvent != res.Ended {
		t.Errorf("%d jobs ended, %d with exactly one event", res.Ended, res.EndedOneEvent)
	}
	if res.EventsNotEnded != 0 || res.Untracked != 0 {
		t.Errorf("%d events for running jobs, %d for untracked ones; want 0", res.EventsNotEnded, res.Untracked)
	}
	if !(res.ListPerSecond > 0) || !(res.GetPerSecond > 0) || res.Background == 0 {
		t.Errorf("GET /jobs %v/s, GET /job %v/s, %d untracked jobs; want list pages, polls and background traffic", res.ListPerSecond, res.GetPerSecond, res.Background)
	}
	if res.BridgeRSS <= 0 || res.BenchRSS <= 0 {
		t.Errorf("bridge RSS %d, bench RSS %d", res.BridgeRSS, res.BenchRSS)
	}
	if !strings.Contains(stdout.String(), "## bridge bench (backlog)") || !strings.Contains(stdout.String(), "offset cursors") {
		t.Errorf("no backlog table naming the list options on stdout:\n%s", stdout.String())
	}
	goleak.VerifyNone(t, baseline)
}

// TestRigListOptions checks that -offset-cursors and -list-staleness reach the simulator (its
// GET /jobs cursor is an offset, its statuses old) and -list-sweep the scenario bridge's
// environment, and that without them the simulator keeps keyset cursors and current statuses.
func TestRigListOptions(t *testing.T) {
	baseline := goleak.IgnoreCurrent()
	for _, on := range []bool{false, true} {
		t.Run(fmt.Sprint("options ", on), func(t *testing.T) {
			args := []string{"-scenario", "parked", "-jobs", "2", "-speed", "2", fmt.Sprintf("-list-sweep=%t", on)}
			if on {
				args = append(args, "-offset-cursors", "-list-staleness", "1h")
			}
			cfg, err := parseBenchFlags(args, io.Discard)
			if err != nil {
				t.Fatal(err)
			}
			r, err := newRig(cfg, &workload{durations: make([]time.Duration, 2)}, true)
			if err != nil {
				t.Fatal(err)
			}
			defer r.close()
			env := r.bridgeEnv("127.0.0.1:1")
			if got := env["BRIDGE_LIST_SWEEP"]; got != fmt.Sprint(on) {
				t.Errorf("BRIDGE_LIST_SWEEP=%q, want %v", got, on)
			}
			// The sweep's schedule is compressed like the poll schedule (x2).
			for k, want := range map[string]string{
				"BRIDGE_LIST_INTERVAL":        (sweep.DefaultInterval / 2).String(),
				"BRIDGE_LIST_SAFETY_INTERVAL": (sweep.DefaultSafetyInterval / 2).String(),
				"BRIDGE_LIST_MAX_RATE":        fmt.Sprint(sweep.DefaultMaxRate * 2),
				"BRIDGE_LIST_DEEP_AGE":        (sweep.DefaultDeepAge / 2).String(),
				"BRIDGE_LIST_TRACK_SLACK":     (sweep.DefaultTrackSlack / 2).String(),
			} {
				if env[k] != want {
					t.Errorf("%s=%q, want %q", k, env[k], want)
				}
			}
			ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
			defer cancel()
			hc := &http.Client{Timeout: 10 * time.Second}
			defer hc.CloseIdleConnections()
			var ids []string
			for range 2 {
				ids = append(ids, r.sim.Create(reductosim.JobSpec{Type: reductosim.TypeParse, Duration: time.Millisecond, NumPages: 1, ResultSize: 16}))
			}
			// Both ended, as GET /job says (it has no signal: polled).
			for _, id := range ids {
				for {
					st, err := jobStatus(ctx, hc, r.simURL, id)
					if err != nil {
						t.Fatal(err)
					}
					if st == "Completed" {
						break
					}
					select {
					case <-ctx.Done():
						t.Fatalf("job %s still %s", id, st)
					case <-time.After(5 * time.Millisecond):
					}
				}
			}
			req, _ := http.NewRequestWithContext(ctx, http.MethodGet, r.simURL+"/jobs?limit=1&exclude_configs=true", nil)
			req.Header.Set("Authorization", "Bearer "+benchAPIKey)
			resp, err := hc.Do(req)
			if err != nil {
				t.Fatal(err)
			}
			defer resp.Body.Close()
			var page struct {
				Jobs []struct {
					Status string `json:"status"`
				} `json:"jobs"`
				NextCursor *string `json:"next_cursor"`
			}
			if err := json.NewDecoder(resp.Body).Decode(&page); err != nil || len(page.Jobs) != 1 || page.NextCursor == nil {
				t.Fatalf("GET /jobs: %s, %v, %+v", resp.Status, err, page)
			}
			if offset := *page.NextCursor == "1"; offset != on {
				t.Errorf("next_cursor %q; offset cursors %v, want %v", *page.NextCursor, offset, on)
			}
			if stale := page.Jobs[0].Status != "Completed"; stale != on {
				t.Errorf("listed status %q of a completed job; stale %v, want %v", page.Jobs[0].Status, stale, on)
			}
		})
	}
	goleak.VerifyNone(t, baseline)
}

// benchNATSHelperEnv switches this test binary into 'bridge nats-server' for
// TestBenchScheduler.
const benchNATSHelperEnv = "BENCH_HELPER_NATS"

// TestBenchHelperNATS is not a test: run as `<test binary> -test.run=^TestBenchHelperNATS$ --
// -dir D -addr A` with BENCH_HELPER_NATS=1, it is the nats-server process of
// TestBenchScheduler ('bridge nats-server').
func TestBenchHelperNATS(t *testing.T) {
	if os.Getenv(benchNATSHelperEnv) != "1" {
		t.Skip("the nats-server process of TestBenchScheduler")
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if err := ServeNATS(ctx, flag.Args(), os.Stdout, os.Stderr); err != nil {
		fmt.Fprintln(os.Stderr, "nats-server:", err)
		os.Exit(1)
	}
	os.Exit(0)
}

// TestBenchScheduler runs the scheduler scenario on 200 parked jobs polled every 2 s: nats-server
// is a process of its own (not this one), every job stays parked, the polls run at the budget,
// each poll's lateness is measured from real gaps, and the API latency every 100 ms.
func TestBenchScheduler(t *testing.T) {
	if testing.Short() {
		t.Skip("starts a bridge and a nats-server process")
	}
	baseline := goleak.IgnoreCurrent()
	out := t.TempDir()
	const jobs = 200
	cfg, err := parseBenchFlags([]string{"-scenario", "scheduler", "-jobs", fmt.Sprint(jobs), "-window", "3s", "-replicas", "2", "-out", out}, io.Discard)
	if err != nil {
		t.Fatal(err)
	}
	budget := 100.0 // the default -bridge-rate
	if want := time.Duration(float64(jobs) / (schedulerShare * budget) * 1.01 * float64(time.Second)); cfg.Speed != 1 || cfg.ListSweep || schedulerInterval(cfg) != want {
		t.Fatalf("speed %v, list sweep %v, interval %s; want 1, false, %s (200 jobs at 90/s, plus 1%%)", cfg.Speed, cfg.ListSweep, schedulerInterval(cfg), want)
	}
	cfg.bridgeCmd = []string{os.Args[0], "-test.run=^TestBenchHelperBridge$"}
	cfg.bridgeEnv = []string{benchHelperEnv + "=1"}
	cfg.natsCmd = []string{os.Args[0], "-test.run=^TestBenchHelperNATS$", "--"}
	cfg.natsEnv = []string{benchNATSHelperEnv + "=1"}
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	var stdout, stderr bytes.Buffer
	if err := bench(ctx, cfg, &stdout, &stderr); err != nil {
		data, _ := os.ReadFile(filepath.Join(out, "scheduler-bridge.log"))
		nlog, _ := os.ReadFile(filepath.Join(out, "nats-server.log"))
		t.Fatalf("bench: %v\nstderr:\n%s\nbridge log:\n%s\nnats-server log:\n%s", err, stderr.String(), data, nlog)
	}
	data, err := os.ReadFile(filepath.Join(out, "results.json"))
	if err != nil {
		t.Fatal(err)
	}
	var res schedulerResult
	if err := json.Unmarshal(data, &res); err != nil {
		t.Fatalf("results.json: %v\n%s", err, data)
	}
	if res.Scenario != "scheduler" || res.Jobs != jobs || res.AckPending != jobs || math.Abs(res.IntervalS-20.0/9*1.01) > 1e-6 || res.Binding || res.BudgetPerS != 100 {
		t.Errorf("scenario %q, %d jobs, %d ack pending, interval %v s, budget %v/s; want scheduler, %d, %d, 2.24 (not binding), 100",
			res.Scenario, res.Jobs, res.AckPending, res.IntervalS, res.BudgetPerS, jobs, jobs)
	}
	if res.NATS.Pid == os.Getpid() || res.NATS.Pid == res.Bridge.Pid || res.NATS.Pid <= 0 {
		t.Errorf("nats-server pid %d, bridge pid %d, bench pid %d: want three processes", res.NATS.Pid, res.Bridge.Pid, os.Getpid())
	}
	if res.Replicas != 2 || len(res.Others) != 1 || res.Others[0].Pid == res.Bridge.Pid || res.Others[0].Pid == res.NATS.Pid || res.Others[0].Pid <= 0 {
		t.Fatalf("replicas %d, other replicas %+v (bridge pid %d): want a second bridge process", res.Replicas, res.Others, res.Bridge.Pid)
	}
	for name, p := range map[string]procFigures{"nats-server": res.NATS, "bridge": res.Bridge, "second bridge": res.Others[0]} {
		if p.RSSBytes <= 0 || p.PeakRSSBytes < p.RSSBytes || p.CPUPercent < 0 || p.CPUPercent > 200 {
			t.Errorf("%s: %+v; want an RSS, a peak at least as large, CPU within 0..200%%", name, p)
		}
	}
	// 200 jobs every 2.22 s, shared by the two replicas: 90 polls/s, about 270 in the window.
	if res.PollsPerS < 45 || res.PollsPerS > 120 {
		t.Errorf("%.1f polls/s, want about 90", res.PollsPerS)
	}
	l := res.PollLatenessMs
	if l.N < 100 || l.Min < -20 || !(l.P50 <= l.P99) || !(l.P99 <= l.Max) || l.P50 > 1000 {
		t.Errorf("poll lateness %+v; want over 100 gaps, none 20 ms early, p50 <= p99 <= max, p50 well under the 2 s interval", l)
	}
	if a := res.APILatencyMs; a.N < 15 || !(a.Min > 0) || !(a.P50 <= a.Max) || res.APIErrors != 0 {
		t.Errorf("API latency %+v, %d errors; want about 30 samples above 0, none failed", a, res.APIErrors)
	}
	// Paced: the tracks take an interval, so that polls fall due at 200 / 2.24 s, not at the
	// budget's own pace.
	if res.AtOnce || res.TrackSeconds < 0.9*res.IntervalS || res.BudgetWaits < 0 || res.BudgetWaitS < 0 {
		t.Errorf("at once %v, tracked in %.2f s, %v budget waits (%v s); want paced over the %.2f s interval, waits counted", res.AtOnce, res.TrackSeconds, res.BudgetWaits, res.BudgetWaitS, res.IntervalS)
	}
	if !(res.IntakePerS > 0) || !(res.WarmupSeconds > 0) || res.WindowSeconds < 3 {
		t.Errorf("intake %v/s, warm-up %v s, window %v s", res.IntakePerS, res.WarmupSeconds, res.WindowSeconds)
	}
	if !strings.Contains(stdout.String(), "## bridge bench (scheduler)") {
		t.Errorf("no scheduler table on stdout:\n%s", stdout.String())
	}
	goleak.VerifyNone(t, baseline)
}

// TestMovedHeader: -moved's track messages read, to the bridge, as jobs it moved itself.
func TestMovedHeader(t *testing.T) {
	at := time.Now().Add(-time.Hour).Truncate(time.Millisecond)
	subj := subject.Track(benchPrefix, "job-1")
	h := movedHeader(at)(subj)
	p := track.ReadPosition(track.MoveKey(benchAPIKey), subj, h, time.Now(), 1)
	if !p.Requeued || p.Attempt != 4 || !p.TrackedAt.Equal(at) || !p.Due.IsZero() {
		t.Errorf("position %+v, want a moved job at its fourth delivery (3 before the move), tracked %v, no due time", p, at)
	}
	if p := track.ReadPosition(track.MoveKey("another key"), subj, h, time.Now(), 1); p.Requeued {
		t.Error("the header reads as moved under another key")
	}
}

// TestGetRecorder checks the poll-lateness bookkeeping: only answered GET /job/{id} count,
// gaps are per job and only those ending in the window.
func TestGetRecorder(t *testing.T) {
	g := newGetRecorder()
	codes := map[string]int{"/job/a": 200, "/job/b": 200, "/job/busy": 429, "/jobs": 200}
	h := g.wrap(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { w.WriteHeader(codes[r.URL.Path]) }))
	get := func(path string) {
		h.ServeHTTP(httptest.NewRecorder(), httptest.NewRequest(http.MethodGet, path, nil))
	}
	get("/job/a")
	get("/job/busy")
	get("/jobs")
	if got := g.polled(); got != 1 {
		t.Fatalf("%d jobs polled, want 1 (a; not the 429 nor the list)", got)
	}
	g.window(true)
	get("/job/a") // a gap: a's previous GET was before the window
	get("/job/b") // no gap: b's first GET
	get("/job/b") // a gap
	get("/job/busy")
	h.ServeHTTP(httptest.NewRecorder(), httptest.NewRequest(http.MethodPost, "/job/a", nil))
	polls, gaps := g.window(false)
	get("/job/a") // after the window
	if polls != 3 || len(gaps) != 2 || g.polled() != 2 {
		t.Fatalf("%d polls, %d gaps, %d jobs polled; want 3, 2, 2", polls, len(gaps), g.polled())
	}
	for _, d := range gaps {
		if d < 0 || d > time.Minute {
			t.Errorf("gap %s", d)
		}
	}
}

// TestParseStatCPU reads utime and stime past a command name with spaces and parentheses.
func TestParseStatCPU(t *testing.T) {
	stat := "4242 (nats (x) y) S 1 4242 4242 0 -1 4194560 100 0 0 0 250 50 0 0 20 0 12 0 1000 123456 789 18446744073709551615"
	d, ok := parseStatCPU(stat)
	if !ok || d != 3*time.Second {
		t.Errorf("got %s %v, want 3s (300 ticks at %d Hz)", d, ok, userHZ)
	}
	if _, ok := parseStatCPU("garbage"); ok {
		t.Error("garbage parsed")
	}
	// Run alone, the test process may not have used a clock tick yet: spin until it has.
	ok = false
	for deadline := time.Now().Add(10 * time.Second); time.Now().Before(deadline); {
		if d, ok = procCPU(os.Getpid()); !ok || d > 0 {
			break
		}
		for i := 0; i < 1e6; i++ {
			_ = stat[i%len(stat)]
		}
	}
	if !ok || d <= 0 {
		t.Errorf("own CPU time %s %v", d, ok)
	}
}

// TestServeNATSUsage: 'bridge nats-server' without -dir, or with a bad -addr, is a clear error.
func TestServeNATSUsage(t *testing.T) {
	var stderr bytes.Buffer
	if err := ServeNATS(t.Context(), nil, io.Discard, &stderr); !errors.Is(err, cli.ErrUsage) || !strings.Contains(stderr.String(), "-dir") {
		t.Errorf("no -dir: %v %q", err, stderr.String())
	}
	if err := ServeNATS(t.Context(), []string{"-dir", t.TempDir(), "-addr", "nope"}, io.Discard, io.Discard); err == nil || !strings.Contains(err.Error(), "-addr") {
		t.Errorf("bad -addr: %v", err)
	}
}
