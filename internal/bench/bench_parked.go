package bench

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/reducto-bridge/reducto-bridge/reducto/reductosim"
	"github.com/reducto-bridge/reducto-bridge/subject"
	"github.com/reducto-bridge/reducto-bridge/track"
)

// parkedInterval is the poll interval of the parked scenario: long enough that no job is
// polled while it is measured, so what is measured is the cost of holding jobs.
const parkedInterval = time.Hour

// parkedResult is the parked scenario's outcome.
type parkedResult struct {
	Scenario         string       `json:"scenario"`
	Config           *benchConfig `json:"config"`
	Jobs             int          `json:"jobs"`
	TrackSeconds     float64      `json:"track_s"`    // publishing every track message, real
	AdmitSeconds     float64      `json:"admitted_s"` // until every job was admitted, real, from the start
	PeakRSSBytes     int64        `json:"peak_rss_bytes"`
	AdmittedRSSBytes int64        `json:"rss_after_admission_bytes"`
	FinalRSSBytes    int64        `json:"rss_after_heap_profile_bytes"`
	HeapInuseBytes   int64        `json:"heap_inuse_bytes"`
	HeapAllocBytes   int64        `json:"heap_alloc_bytes"`
	SysBytes         int64        `json:"go_sys_bytes"`
	Goroutines       int          `json:"goroutines"`
	GetRequests      int64        `json:"get_job_requests"`
	HeapProfile      string       `json:"heap_profile"`
	HeapTop          string       `json:"heap_top,omitempty"`
	HeapTopNote      string       `json:"heap_top_note,omitempty"`
	WallSeconds      float64      `json:"wall_s"`
}

// benchParked tracks many jobs that never finish and measures the bridge holding them.
func benchParked(ctx context.Context, cfg *benchConfig, stdout, stderr io.Writer) error {
	began := time.Now()
	wl := drawWorkload(cfg)
	if cfg.Timeout == 0 {
		cfg.Timeout = 10 * time.Minute
	}
	cfg.TimeoutS = cfg.Timeout.Seconds()
	ctx, cancel := context.WithTimeout(ctx, cfg.Timeout)
	defer cancel()
	r, err := newRig(cfg, wl, true)
	if err != nil {
		return err
	}
	defer r.close()
	if err := r.startScenario(ctx, scenarioParked, func(env map[string]string) {
		env["BRIDGE_POLL_INITIAL_INTERVAL"] = parkedInterval.String()
		env["BRIDGE_POLL_MAX_INTERVAL"] = parkedInterval.String()
	}); err != nil {
		return err
	}
	fmt.Fprintf(stderr, "bench: parking %d jobs that never finish (bridge polls every %s) ...\n", cfg.Jobs, parkedInterval)

	n := len(wl.durations)
	res := &parkedResult{Scenario: scenarioParked, Config: cfg, Jobs: n}
	start := time.Now()
	if _, err := r.trackJobs(ctx, wl, 0, n, nil); err != nil {
		return err
	}
	res.TrackSeconds = time.Since(start).Seconds()
	fmt.Fprintf(stderr, "bench: %d track messages stored in %.1fs; waiting for the bridge to admit them ...\n", n, res.TrackSeconds)

	if err := r.waitAdmitted(ctx, n, stderr); err != nil {
		return err
	}
	res.AdmitSeconds = time.Since(start).Seconds()
	r.child.readStatus()
	res.PeakRSSBytes, res.AdmittedRSSBytes = r.child.memory()
	fmt.Fprintf(stderr, "bench: all admitted after %.1fs; bridge RSS %.1f MB (peak %.1f MB)\n",
		res.AdmitSeconds, float64(res.AdmittedRSSBytes)/(1<<20), float64(res.PeakRSSBytes)/(1<<20))

	const base = "/debug/pprof/"
	prof, err := r.child.get(ctx, base+"heap?gc=1")
	if err != nil {
		return fmt.Errorf("heap profile: %w", err)
	}
	res.HeapProfile = filepath.Join(cfg.Out, "parked-heap.pb.gz")
	if err := os.WriteFile(res.HeapProfile, prof, 0o644); err != nil {
		return err
	}
	if text, err := r.child.get(ctx, base+"heap?debug=1"); err == nil {
		res.HeapInuseBytes = memStat(text, "HeapInuse")
		res.HeapAllocBytes = memStat(text, "HeapAlloc")
		res.SysBytes = memStat(text, "Sys")
	}
	if text, err := r.child.get(ctx, base+"goroutine?debug=1"); err == nil {
		line, _, _ := bytes.Cut(text, []byte("\n"))
		if _, total, ok := strings.Cut(string(line), "total "); ok {
			res.Goroutines, _ = strconv.Atoi(strings.TrimSpace(total))
		}
	}
	r.child.readStatus()
	_, res.FinalRSSBytes = r.child.memory()
	r.saveMetrics(ctx, scenarioParked)
	res.HeapTop, res.HeapTopNote = pprofTop(ctx, res.HeapProfile)
	if res.HeapTop != "" {
		_ = os.WriteFile(filepath.Join(cfg.Out, "parked-heap-top.txt"), []byte(res.HeapTop), 0o644)
	}
	if err := r.child.stop(time.Minute); err != nil {
		return err
	}
	st := r.sim.Stats()
	res.GetRequests = st.Requests[reductosim.EndpointGetJob]
	res.WallSeconds = time.Since(began).Seconds()
	return res.write(cfg.Out, stdout)
}

// waitAdmitted waits until the bridges have admitted every job and put it back on the
// schedule (a delayed Nak, or a move to the queue's tail).
func (r *rig) waitAdmitted(ctx context.Context, n int, progress io.Writer) error {
	return r.waitConsumer(ctx, n, progress, func(info *jetstream.ConsumerInfo, admitted float64) bool {
		// Parked with NakWithDelay (ack pending) or, while the budget binds, moved to the
		// queue's tail (pending again): either way counted in parks_total.
		return admitted >= float64(n) && r.parks(ctx) >= float64(n)
	})
}

// trackJobs creates jobs from to to (excluded) of wl in the simulator and tracks them, all
// at once, until every track message is stored; it returns their ids, and records when each
// was tracked in tracked (when not nil).
func (r *rig) trackJobs(ctx context.Context, wl *workload, from, to int, tracked map[string]time.Time) ([]string, error) {
	return r.trackJobsWith(ctx, wl, from, to, tracked, nil)
}

// trackJobsWith is trackJobs, each track message with the headers header returns for its
// subject (nil: none).
func (r *rig) trackJobsWith(ctx context.Context, wl *workload, from, to int, tracked map[string]time.Time, header func(subj string) nats.Header) ([]string, error) {
	ids := make([]string, 0, to-from)
	futures := make([]jetstream.PubAckFuture, 0, to-from)
	for i := from; i < to; i++ {
		id := r.sim.Create(wl.spec(i))
		if tracked != nil {
			tracked[id] = time.Now()
		}
		m := nats.NewMsg(subject.Track(benchPrefix, id))
		if header != nil {
			m.Header = header(m.Subject)
		}
		f, err := r.js.PublishMsgAsync(m, jetstream.WithStallWait(30*time.Second))
		if err != nil {
			return nil, fmt.Errorf("track %s: %w", id, err)
		}
		ids, futures = append(ids, id), append(futures, f)
	}
	return ids, waitFutures(ctx, futures)
}

// admitted is how many jobs the bridges (every replica) admitted, new or already reported;
// -1 when one of them does not answer.
func (r *rig) admitted(ctx context.Context) float64 {
	return r.metricSum(ctx, `reducto_bridge_track_messages_total{result="new"}`,
		`reducto_bridge_track_messages_total{result="already_reported"}`)
}

// parks is how many times the bridges (every replica) put a job back on the schedule;
// -1 when one of them does not answer.
func (r *rig) parks(ctx context.Context) float64 {
	var series []string
	for _, how := range []string{"delay", "requeue", "superseded", "requeue_failed"} {
		series = append(series, `reducto_bridge_parks_total{how="`+how+`"}`)
	}
	return r.metricSum(ctx, series...)
}

// metricSum is the sum of the series over every replica's /metrics; -1 when one of them does
// not answer.
func (r *rig) metricSum(ctx context.Context, series ...string) float64 {
	var n float64
	for _, c := range append([]*childBridge{r.child}, r.replicas...) {
		m, err := c.get(ctx, "/metrics")
		if err != nil {
			return -1
		}
		for _, s := range series {
			n += metricValue(m, s)
		}
	}
	return n
}

// waitConsumer polls the track consumer's info and the bridge's admissions (new and already
// reported: a job the list sweep reported before its first delivery is admitted as already
// reported) until done says so. Neither says so by a signal.
func (r *rig) waitConsumer(ctx context.Context, n int, progress io.Writer, done func(info *jetstream.ConsumerInfo, admitted float64) bool) error {
	cons, err := r.js.Consumer(ctx, subject.TrackStream, track.ConsumerName)
	if err != nil {
		return fmt.Errorf("track consumer: %w", err)
	}
	t := time.NewTicker(250 * time.Millisecond)
	defer t.Stop()
	lastReport := time.Now()
	for {
		info, err := cons.Info(ctx)
		admitted := r.admitted(ctx)
		if err == nil && done(info, admitted) {
			return nil
		}
		if time.Since(lastReport) >= 5*time.Second && info != nil {
			lastReport = time.Now()
			fmt.Fprintf(progress, "bench: %.0f of %d admitted (consumer: %d pending, %d ack pending, %d redelivered)\n",
				admitted, n, info.NumPending, info.NumAckPending, info.NumRedelivered)
		}
		select {
		case <-ctx.Done():
			pending, ack := -1, -1
			if info != nil {
				pending, ack = int(info.NumPending), info.NumAckPending
			}
			return fmt.Errorf("jobs not all admitted (%.0f of %d; pending %d, ack pending %d): %w", admitted, n, pending, ack, context.Cause(ctx))
		case <-r.child.Exited():
			return fmt.Errorf("bridge exited: %v (see %s)", r.child.Err(), r.child.LogPath())
		case <-t.C:
		}
	}
}

// metricValue reads one sample from Prometheus text (0 when absent).
func metricValue(text []byte, series string) float64 {
	sc := bufio.NewScanner(bytes.NewReader(text))
	sc.Buffer(make([]byte, 0, 64<<10), 1<<20)
	for sc.Scan() {
		if v, ok := strings.CutPrefix(sc.Text(), series+" "); ok {
			f, _ := strconv.ParseFloat(strings.TrimSpace(v), 64)
			return f
		}
	}
	return 0
}

// memStat reads "# Name = value" from a debug=1 heap profile (runtime.MemStats).
func memStat(text []byte, name string) int64 {
	sc := bufio.NewScanner(bytes.NewReader(text))
	sc.Buffer(make([]byte, 0, 64<<10), 4<<20)
	for sc.Scan() {
		if v, ok := strings.CutPrefix(sc.Text(), "# "+name+" = "); ok {
			n, _ := strconv.ParseInt(strings.TrimSpace(v), 10, 64)
			return n
		}
	}
	return 0
}

// pprofTop runs 'go tool pprof -top' on the profile when go is on PATH.
func pprofTop(ctx context.Context, path string) (top, note string) {
	gobin, err := exec.LookPath("go")
	if err != nil {
		return "", "go is not on PATH: the profile is saved; read it with go tool pprof -top -sample_index=inuse_space " + path
	}
	pctx, cancel := context.WithTimeout(ctx, 2*time.Minute)
	defer cancel()
	out, err := exec.CommandContext(pctx, gobin, "tool", "pprof", "-top", "-sample_index=inuse_space", path).CombinedOutput()
	if err != nil {
		return "", fmt.Sprintf("go tool pprof failed (%v): %s", err, bytes.TrimSpace(out))
	}
	lines := strings.Split(strings.TrimRight(string(out), "\n"), "\n")
	if len(lines) > 30 {
		lines = lines[:30]
	}
	return strings.Join(lines, "\n") + "\n", ""
}

func (p *parkedResult) write(dir string, stdout io.Writer) error {
	var md bytes.Buffer
	mb := func(b int64) float64 { return float64(b) / (1 << 20) }
	fmt.Fprintf(&md, "## bridge bench (parked)\n\n`%s`\n\n", strings.Join(p.Config.Args, " "))
	fmt.Fprintf(&md, "%d jobs that never finish, tracked at once; the bridge (a child process; NATS is in the bench process) polls every %s, so none is polled while it is measured; %s. Wall time %.0f s.\n\n",
		p.Jobs, parkedInterval, listNote(p.Config), p.WallSeconds)
	fmt.Fprintln(&md, "| jobs | all tracked (s) | all admitted (s) | bridge RSS peak, VmHWM (MB) | RSS after admission (MB) | RSS after heap profile (MB) | Go HeapInuse (MB) | goroutines | GET /job |")
	fmt.Fprintln(&md, "| ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |")
	fmt.Fprintf(&md, "| %d | %.1f | %.1f | %.1f | %.1f | %.1f | %.1f | %d | %d |\n\n",
		p.Jobs, p.TrackSeconds, p.AdmitSeconds, mb(p.PeakRSSBytes), mb(p.AdmittedRSSBytes), mb(p.FinalRSSBytes), mb(p.HeapInuseBytes), p.Goroutines, p.GetRequests)
	fmt.Fprintf(&md, "Heap profile: %s\n\n", p.HeapProfile)
	if p.HeapTop != "" {
		fmt.Fprintf(&md, "```\n%s```\n", p.HeapTop)
	}
	if p.HeapTopNote != "" {
		fmt.Fprintf(&md, "%s\n", p.HeapTopNote)
	}
	if _, err := stdout.Write(md.Bytes()); err != nil {
		return err
	}
	if err := os.WriteFile(filepath.Join(dir, "results.md"), md.Bytes(), 0o644); err != nil {
		return err
	}
	js, err := json.MarshalIndent(p, "", "  ")
	if err != nil {
		return err
	}
	return os.WriteFile(filepath.Join(dir, "results.json"), append(js, '\n'), 0o644)
}
