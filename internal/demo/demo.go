// Package demo is 'bridge demo': an embedded NATS, the Reducto simulator and the bridge in one
// process, a workload of jobs that shows every kind of event, each event printed as it arrives
// and a summary at the end. Once the bridge is up the demo is a NATS client like any other
// service: it reaches the bridge only through [bridge.Bridge]'s accessors and NATS.
package demo

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"sort"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/nats-io/nats.go/micro"

	"github.com/reducto-bridge/reducto-bridge/config"
	"github.com/reducto-bridge/reducto-bridge/event"
	"github.com/reducto-bridge/reducto-bridge/internal/bridge"
	"github.com/reducto-bridge/reducto-bridge/reducto/reductosim"
	"github.com/reducto-bridge/reducto-bridge/subject"
)

// demoJob is one job of the demo and what it is meant to show.
type demoJob struct {
	note   string
	spec   reductosim.JobSpec
	cancel bool // cancelled through P.cancel while running
	id     string
	start  time.Time
}

// demoJobs is the demo's workload: ordinary jobs of varied durations plus one of each
// interesting case.
func demoJobs() []*demoJob {
	jobs := []*demoJob{
		{note: "fails: password protected", spec: reductosim.JobSpec{Duration: 2 * time.Second, Outcome: reductosim.OutcomeFail,
			ErrorName: "DOCUMENT_PASSWORD_PROTECTED", ErrorCode: 442, Reason: "The document is password protected"}},
		{note: "cancelled via reducto.cancel", cancel: true, spec: reductosim.JobSpec{Duration: time.Minute, Outcome: reductosim.OutcomeNever}},
		{note: "2 MB result: claim check in the object store", spec: reductosim.JobSpec{Duration: 4 * time.Second, ResultSize: 2 << 20, NumPages: 480}},
		{note: "large result returned as a URL by Reducto", spec: reductosim.JobSpec{Duration: 3 * time.Second, Outcome: reductosim.OutcomeCompleteURL, NumPages: 900}},
		{note: "no progress reported", spec: reductosim.JobSpec{Duration: 5 * time.Second, Progress: reductosim.ProgressNone}},
		{note: "queued 3s before running", spec: reductosim.JobSpec{Queue: 3 * time.Second, Duration: 3 * time.Second}},
	}
	types := []string{reductosim.TypeParse, reductosim.TypeExtract, reductosim.TypeSplit}
	for i := range 14 {
		d := time.Duration(1+(i*7)%11) * time.Second
		jobs = append(jobs, &demoJob{spec: reductosim.JobSpec{Type: types[i%3], Duration: d, NumPages: 1 + i*3}})
	}
	return jobs
}

// Options are the demo's knobs (the flags of 'bridge demo').
type Options struct {
	// Verbose shows the bridge's logs (info and up); by default only warnings.
	Verbose bool
	// Timeout gives up when not every job has its event by then; 0 means a minute.
	Timeout time.Duration
}

// Run runs the demo: embedded NATS, the simulator and the bridge in one process, a workload
// of jobs, every event printed to stdout as it arrives and a summary at the end; the bridge
// logs to stderr. It fails when a job has no event, or two, within the timeout.
func Run(ctx context.Context, o Options, stdout, stderr io.Writer) error {
	if o.Timeout <= 0 {
		o.Timeout = time.Minute
	}
	ctx, cancel := context.WithTimeout(ctx, o.Timeout)
	defer cancel()

	dir, err := os.MkdirTemp("", "reducto-bridge-demo-*")
	if err != nil {
		return err
	}
	defer os.RemoveAll(dir)

	const apiKey = "demo-key"
	sim, err := reductosim.New(reductosim.Options{APIKey: apiKey, Lifecycle: true})
	if err != nil {
		return err
	}
	defer sim.Close()
	simLn, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return err
	}
	simSrv := &http.Server{Handler: sim, ReadHeaderTimeout: 10 * time.Second}
	go simSrv.Serve(simLn)
	defer simSrv.Close()

	cfg := config.Defaults()
	cfg.APIKey = apiKey
	cfg.BaseURL = "http://" + simLn.Addr().String()
	cfg.EmbeddedNATSAddr = "127.0.0.1:0"
	cfg.DataDir = dir
	cfg.HTTPAddr = "127.0.0.1:0"
	cfg.PollInitialInterval = 500 * time.Millisecond
	cfg.PollMaxInterval = 2 * time.Second
	cfg.LogLevel = slog.LevelWarn
	if o.Verbose {
		cfg.LogLevel = slog.LevelInfo
	}
	if err := cfg.Validate(); err != nil {
		return err
	}
	b, err := bridge.Start(ctx, cfg, bridge.NewLogger(cfg, stderr))
	if err != nil {
		return err
	}
	defer func() {
		dctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 10*time.Second)
		defer cancel()
		b.Shutdown(dctx)
	}()

	// From here on the demo is a NATS client like any other service.
	nc, err := nats.Connect(b.NATSURL(), nats.Name("reducto-bridge-demo"))
	if err != nil {
		return err
	}
	defer nc.Close()
	js, err := jetstream.New(nc)
	if err != nil {
		return err
	}
	events := make(chan *nats.Msg, 64)
	sub, err := nc.ChanSubscribe(subject.EventsAll(cfg.SubjectPrefix), events)
	if err != nil {
		return err
	}
	defer sub.Unsubscribe()

	p := cfg.SubjectPrefix
	fmt.Fprintf(stdout, "reducto-bridge demo: embedded NATS at %s, Reducto simulator at %s, metrics at http://%s/metrics\n",
		b.NATSURL(), cfg.BaseURL, b.HTTPAddr())
	fmt.Fprintf(stdout, "while it runs:  nats --server %s sub '%s.job.>'\n\n", b.NATSURL(), p)

	jobs := demoJobs()
	byID := map[string]*demoJob{}
	t0 := time.Now()
	for i, j := range jobs {
		j.id = sim.Create(j.spec)
		j.start = time.Now()
		byID[j.id] = j
		meta := fmt.Sprintf(`{"metadata":{"customer":"acme","document":"doc-%02d.pdf"}}`, i+1)
		if _, err := js.Publish(ctx, subject.Track(p, j.id), []byte(meta)); err != nil {
			return fmt.Errorf("track %s: %w", j.id, err)
		}
	}
	fmt.Fprintf(stdout, "tracked %d jobs by publishing to %s.track.<job_id> (each got a JetStream PubAck)\n", len(jobs), p)

	// Two inputs a real bridge meets: a track body that is not JSON, and a cancel for a job
	// Reducto never heard of. Neither loses anything nor stops the bridge.
	odd := sim.Create(reductosim.JobSpec{Duration: 2 * time.Second})
	jobs = append(jobs, &demoJob{note: "track body was not JSON: tracked anyway", id: odd, start: time.Now()})
	byID[odd] = jobs[len(jobs)-1]
	if _, err := js.Publish(ctx, subject.Track(p, odd), []byte("{oops")); err != nil {
		return err
	}
	showCancel(ctx, stdout, nc, p, "no-such-job")
	fmt.Fprintln(stdout)

	cancelAt := time.After(2 * time.Second)
	kinds := map[event.Kind]int{}
	seen := map[string]bool{}
	for len(seen) < len(jobs) {
		select {
		case <-ctx.Done():
			return fmt.Errorf("demo: %d of %d jobs reported before %w", len(seen), len(jobs), context.Cause(ctx))
		case <-cancelAt:
			for _, j := range jobs {
				if j.cancel {
					showCancel(ctx, stdout, nc, p, j.id)
				}
			}
		case m := <-events:
			ev, err := event.Decode(m.Data)
			if err != nil {
				return fmt.Errorf("undecodable event on %s: %w", m.Subject, err)
			}
			if seen[ev.JobID] {
				return fmt.Errorf("second event for job %s", ev.JobID)
			}
			seen[ev.JobID] = true
			kinds[ev.Kind]++
			fmt.Fprintf(stdout, "%6.1fs  %-9s  %s\n", time.Since(t0).Seconds(), ev.Kind, describeEvent(ev, byID[ev.JobID]))
		}
	}
	printSummary(stdout, cfg, jobs, kinds, sim.Stats(), time.Since(t0))
	return nil
}

// showCancel sends a cancel request like any service would and prints the reply.
func showCancel(ctx context.Context, w io.Writer, nc *nats.Conn, prefix, id string) {
	req, _ := json.Marshal(map[string]string{"job_id": id})
	rctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	resp, err := nc.RequestWithContext(rctx, subject.Cancel(prefix), req)
	switch {
	case err != nil:
		fmt.Fprintf(w, "cancel %s: %v\n", short(id), err)
	case resp.Header.Get(micro.ErrorCodeHeader) != "":
		fmt.Fprintf(w, "cancel %s: error %s %q\n", short(id), resp.Header.Get(micro.ErrorCodeHeader), resp.Header.Get(micro.ErrorHeader))
	default:
		fmt.Fprintf(w, "cancel %s: %s\n", short(id), resp.Data)
	}
}

func describeEvent(ev *event.Event, j *demoJob) string {
	var parts []string
	parts = append(parts, short(ev.JobID))
	if ev.Type != "" {
		parts = append(parts, ev.Type)
	}
	if ev.NumPages != nil {
		parts = append(parts, plural(*ev.NumPages, "page"))
	}
	isURL := strings.Contains(string(ev.Result), `"type":"url"`)
	switch {
	case ev.ResultRef != nil && isURL:
		parts = append(parts, fmt.Sprintf("result as URL, captured: %s in object store %s", size(int64(ev.ResultRef.Size)), ev.ResultRef.Bucket))
	case ev.ResultRef != nil:
		parts = append(parts, fmt.Sprintf("result %s in object store %s", size(int64(ev.ResultRef.Size)), ev.ResultRef.Bucket))
	case isURL:
		parts = append(parts, "result as URL")
	case len(ev.Result) > 0:
		parts = append(parts, "result "+size(int64(len(ev.Result))))
	}
	if ev.Error != nil {
		parts = append(parts, "error "+ev.Error.Name)
	}
	parts = append(parts, plural(ev.Polls, "poll"))
	if j != nil && j.note != "" {
		parts = append(parts, "("+j.note+")")
	}
	return strings.Join(parts, "  ")
}

func printSummary(w io.Writer, cfg *config.Config, jobs []*demoJob, kinds map[event.Kind]int, st reductosim.Stats, elapsed time.Duration) {
	gets := st.Requests[reductosim.EndpointGetJob]
	fmt.Fprintf(w, "\nsummary after %.1fs\n", elapsed.Seconds())
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	ks := make([]string, 0, len(kinds))
	for k := range kinds {
		ks = append(ks, string(k))
	}
	sort.Strings(ks)
	for _, k := range ks {
		fmt.Fprintf(tw, "  %s\t%d\n", k, kinds[event.Kind(k)])
	}
	fmt.Fprintf(tw, "  events\t%d, exactly one per job\n", len(jobs))
	fmt.Fprintf(tw, "  GET /job requests\t%d, %.1f per job (the demo polls after %v, then backing off to every %v)\n",
		gets, float64(gets)/float64(len(jobs)), cfg.PollInitialInterval, cfg.PollMaxInterval)
	fmt.Fprintf(tw, "  429s from Reducto\t%d\n", st.RateLimited2000+st.RateLimited1000+st.Shed429)
	tw.Flush()
}

// short abbreviates a UUID to its first block, as git does with hashes.
func short(id string) string {
	if len(id) == 36 {
		return id[:8]
	}
	return id
}

func plural(n int, word string) string {
	if n == 1 {
		return "1 " + word
	}
	return fmt.Sprintf("%d %ss", n, word)
}

func size(n int64) string {
	switch {
	case n >= 1<<20:
		return fmt.Sprintf("%.1f MB", float64(n)/(1<<20))
	case n >= 1<<10:
		return fmt.Sprintf("%.1f KB", float64(n)/(1<<10))
	}
	return fmt.Sprintf("%d B", n)
}
