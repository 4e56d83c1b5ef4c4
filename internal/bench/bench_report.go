package bench

import (
	"bytes"
	"encoding/csv"
	"encoding/json"
	"encoding/xml"
	"fmt"
	"io"
	"math"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"
)

// contenderResult is what one contender achieved. Lags are in uncompressed (simulator)
// seconds; the webhook latency is real time.
type contenderResult struct {
	Name               string  `json:"name"`
	Jobs               int     `json:"jobs"`
	JobsDetected       int     `json:"jobs_detected"`
	JobsOneEvent       int     `json:"jobs_with_exactly_one_event"` // in REDUCTO_EVENTS (bridge); seen once (loop)
	DuplicateSightings int     `json:"duplicate_sightings"`         // extra deliveries to the bench's core subscription
	NotTerminal        int     `json:"detected_but_not_terminal"`
	TimedOut           bool    `json:"timed_out"`
	GetRequests        int64   `json:"get_job_requests"`     // answered GET /job of the workload's jobs
	GetRequestsAll     int64   `json:"get_job_requests_all"` // every GET /job the simulator saw, 429s included
	RequestsPerJob     float64 `json:"requests_per_job"`
	AllRequests        int64   `json:"all_requests"`          // every request but submissions, any job, any answer
	AllRequestsPerJob  float64 `json:"all_requests_per_job"`  // AllRequests per tracked job
	UntrackedEvents    int64   `json:"events_untracked_jobs"` // events in REDUCTO_EVENTS for jobs the bench did not track: must be 0
	BackgroundJobs     int64   `json:"background_jobs"`       // untracked jobs the simulator created
	RatioToDocs        float64 `json:"ratio_to_docs_loop,omitempty"`
	Lag                dist    `json:"lag_s"`
	WebhookLatency     *dist   `json:"webhook_to_event_ms,omitempty"`
	WebhooksDelivered  int64   `json:"webhooks_delivered"`
	WebhooksFailed     int64   `json:"webhooks_failed"`
	RateLimited2000    int64   `json:"rate_limited_2000"`
	RateLimited1000    int64   `json:"rate_limited_1000"`
	Shed429            int64   `json:"shed_429"`
	PeakMemoryBytes    int64   `json:"peak_memory_bytes"`
	EndRSSBytes        int64   `json:"end_rss_bytes,omitempty"`
	MemoryKind         string  `json:"memory_kind"`
	WallSeconds        float64 `json:"wall_s"`
	SimSeconds         float64 `json:"sim_s"` // the same span on the simulator clock
	ClockCheckMicros   float64 `json:"clock_check_max_error_us"`
	NegativeLags       int     `json:"negative_lags"`
	BridgeLog          string  `json:"bridge_log,omitempty"`

	perJob []*jobRow // written as <name>-jobs.csv
}

// jobRow is one job's figures, for looking into a run: the per-job CSV.
type jobRow struct {
	Index    int
	ID       string
	Duration float64 // creation to end, simulator s
	Gets     int64
	Events   int     // stored in REDUCTO_EVENTS (bridge) or sightings (loop)
	Lag      float64 // simulator s; NaN when not detected
	HookMs   float64 // webhook POST start to event, real ms; NaN when none
}

// writeJobsCSV writes one row per job.
func writeJobsCSV(path string, rows []*jobRow) error {
	var b bytes.Buffer
	w := csv.NewWriter(&b)
	_ = w.Write([]string{"index", "job_id", "duration_s", "get_requests", "events", "lag_s", "webhook_to_event_ms"})
	num := func(v float64) string {
		if math.IsNaN(v) {
			return ""
		}
		return strconv.FormatFloat(v, 'f', 4, 64)
	}
	for _, r := range rows {
		_ = w.Write([]string{strconv.Itoa(r.Index), r.ID, num(r.Duration), strconv.FormatInt(r.Gets, 10), strconv.Itoa(r.Events), num(r.Lag), num(r.HookMs)})
	}
	w.Flush()
	return os.WriteFile(path, b.Bytes(), 0o644)
}

// benchReport is a whole run.
type benchReport struct {
	Scenario    string             `json:"scenario"`
	Config      *benchConfig       `json:"config"`
	Started     time.Time          `json:"started"`
	WallSeconds float64            `json:"wall_s"`
	Contenders  []*contenderResult `json:"contenders"`
	Notes       []string           `json:"notes,omitempty"`
}

// finish derives the ratios and the run's notes.
func (r *benchReport) finish() {
	r.WallSeconds = time.Since(r.Started).Seconds()
	var docs *contenderResult
	for _, c := range r.Contenders {
		if c.Name == modeDocsLoop {
			docs = c
		}
	}
	for _, c := range r.Contenders {
		if docs != nil && docs.RequestsPerJob > 0 {
			c.RatioToDocs = c.RequestsPerJob / docs.RequestsPerJob
		}
		if c.TimedOut {
			r.Notes = append(r.Notes, fmt.Sprintf("%s timed out: %d of %d jobs detected; its figures cover those only.", c.Name, c.JobsDetected, c.Jobs))
		}
		if c.Name != modeDocsLoop && c.JobsOneEvent != c.Jobs {
			r.Notes = append(r.Notes, fmt.Sprintf("%s: only %d of %d jobs have exactly one event in REDUCTO_EVENTS.", c.Name, c.JobsOneEvent, c.Jobs))
		}
		if c.UntrackedEvents != 0 {
			r.Notes = append(r.Notes, fmt.Sprintf("%s: %d events for jobs nobody tracked (want 0).", c.Name, c.UntrackedEvents))
		}
	}
	if r.Scenario == scenarioOutstanding && len(r.Contenders) == 1 {
		c := r.Contenders[0]
		r.Notes = append(r.Notes, fmt.Sprintf("%d jobs tracked at once: every event after %.0f s (%.0f simulator s); %d answered GET /job (%.2f per job), %d [CODE 2000] 429s.",
			c.Jobs, c.WallSeconds, c.SimSeconds, c.GetRequests, c.RequestsPerJob, c.RateLimited2000))
	}
}

// write prints the table and writes results.md, results.json and the plot into dir.
func (r *benchReport) write(dir string, stdout io.Writer) error {
	var md bytes.Buffer
	r.markdown(&md)
	if _, err := stdout.Write(md.Bytes()); err != nil {
		return err
	}
	if err := os.WriteFile(filepath.Join(dir, "results.md"), md.Bytes(), 0o644); err != nil {
		return err
	}
	js, err := json.MarshalIndent(r, "", "  ")
	if err != nil {
		return err
	}
	if err := os.WriteFile(filepath.Join(dir, "results.json"), append(js, '\n'), 0o644); err != nil {
		return err
	}
	for _, c := range r.Contenders {
		if err := writeJobsCSV(filepath.Join(dir, c.Name+"-jobs.csv"), c.perJob); err != nil {
			return err
		}
	}
	var svg bytes.Buffer
	writeSVG(&svg, r)
	if err := os.WriteFile(filepath.Join(dir, "lag-vs-requests.svg"), svg.Bytes(), 0o644); err != nil {
		return err
	}
	fmt.Fprintf(stdout, "\nwrote %s, %s and %s\n", filepath.Join(dir, "results.md"), filepath.Join(dir, "results.json"), filepath.Join(dir, "lag-vs-requests.svg"))
	return nil
}

// markdown writes the header, the table and the notes.
func (r *benchReport) markdown(w io.Writer) {
	c := r.Config
	fmt.Fprintf(w, "## bridge bench (%s)\n\n", r.Scenario)
	fmt.Fprintf(w, "`%s`\n\n", strings.Join(c.Args, " "))
	fmt.Fprintf(w, "%d jobs; durations lognormal (median %s, sigma %g), progress %s; ", c.Jobs, c.Median, c.Sigma, c.Progress)
	if r.Scenario == scenarioOutstanding {
		fmt.Fprintf(w, "all tracked at once; ")
	} else {
		fmt.Fprintf(w, "Poisson arrivals at %g/s; ", c.Arrival)
	}
	if c.Background > 0 {
		fmt.Fprintf(w, "%g untracked jobs on the account per tracked job; ", c.Background)
	}
	fmt.Fprintf(w, "%s; ", listNote(c))
	fmt.Fprintf(w, "simulator GET /job limit %g/s, bridge budget %g/s; clock compressed x%g (all figures in simulator time, except the webhook latency, which is real). Wall time %.0f s.\n\n",
		c.RateLimit, c.BridgeRate, c.Speed, r.WallSeconds)
	writeTable(w, r.Contenders)
	fmt.Fprintln(w)
	fmt.Fprintln(w, "- all req/job: every Reducto request (`GET /job` of any job, `GET /jobs`, cancels..., 429s included; submissions left out) per tracked job. untracked events: events for jobs nobody tracked, which must be 0.")
	fmt.Fprintln(w, "- GET/job: answered `GET /job` requests per job, counted by the simulator. Lag: from the job's end to the moment the bench saw it (the event on `reducto.job.>`, or the loop's response).")
	fmt.Fprintln(w, "- webhook→event: from the simulator starting the webhook POST to the bench receiving the event (real time).")
	fmt.Fprintln(w, "- Memory: the bridge runs as a child process (`bridge run`, NATS and the simulator are in the bench process); the docs loop runs inside the bench, so its figure is the Go heap and stacks it added (the simulator's garbage included).")
	for _, n := range r.Notes {
		fmt.Fprintf(w, "- %s\n", n)
	}
}

// listNote describes the simulator's list (-offset-cursors, -list-staleness) and, for a
// scenario, its bridge's BRIDGE_LIST_SWEEP (-list-sweep).
func listNote(c *benchConfig) string {
	cursors := "keyset"
	if c.OffsetCursors {
		cursors = "offset"
	}
	s := fmt.Sprintf("GET /jobs with %s cursors, statuses %s stale", cursors, c.ListStaleness)
	if c.Scenario != "" {
		s += fmt.Sprintf(", BRIDGE_LIST_SWEEP=%t", c.ListSweep)
	}
	return s
}

func writeTable(w io.Writer, rows []*contenderResult) {
	fmt.Fprintln(w, "| contender | jobs | exactly one event | untracked events | GET/job | all req/job | vs docs loop | lag p50 (s) | lag p90 (s) | lag p99 (s) | webhook→event p50 / p99 (ms) | 429s (2000/1000/shed) | peak memory (MB) |")
	fmt.Fprintln(w, "| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | --- |")
	for _, c := range rows {
		ratio := "–"
		if c.RatioToDocs > 0 {
			ratio = fmt.Sprintf("%.2fx", c.RatioToDocs)
		}
		hook := "–"
		if c.WebhookLatency != nil && c.WebhookLatency.N > 0 {
			hook = fmt.Sprintf("%.1f / %.1f", c.WebhookLatency.P50, c.WebhookLatency.P99)
		}
		one := fmt.Sprint(c.JobsOneEvent)
		if c.Name == modeDocsLoop {
			one = fmt.Sprintf("%d seen", c.JobsOneEvent)
		}
		mem := fmt.Sprintf("%.1f (%s)", float64(c.PeakMemoryBytes)/(1<<20), c.MemoryKind)
		if c.EndRSSBytes > 0 {
			mem = fmt.Sprintf("%.1f (RSS peak; %.1f at end)", float64(c.PeakMemoryBytes)/(1<<20), float64(c.EndRSSBytes)/(1<<20))
		}
		fmt.Fprintf(w, "| %s | %d | %s | %d | %.2f | %.2f | %s | %.2f | %.2f | %.2f | %s | %d/%d/%d | %s |\n",
			c.Name, c.Jobs, one, c.UntrackedEvents, c.RequestsPerJob, c.AllRequestsPerJob, ratio, c.Lag.P50, c.Lag.P90, c.Lag.P99, hook,
			c.RateLimited2000, c.RateLimited1000, c.Shed429, mem)
	}
}

// Plot geometry (pixels).
const (
	svgW, svgH                     = 760, 480
	plotL, plotR, plotT, plotB     = 80, 240, 50, 70
	plotInnerW                     = svgW - plotL - plotR
	plotInnerH                     = svgH - plotT - plotB
	minPlotLag                     = 0.01 // seconds; lower lags are drawn on the axis
	labelGap                   int = 8
)

var contenderColor = map[string]string{
	modeDocsLoop: "#d62728",
	modePoll:     "#1f77b4",
	modeWebhook:  "#2ca02c",
	modeSweep:    "#9467bd",
}

// writeSVG draws lag (log scale) against GET /job per job: a dot at p50, a bar up to p99, a
// tick at p90, one per contender.
func writeSVG(w io.Writer, r *benchReport) {
	rows := r.Contenders
	xMax := 1.0
	yLo, yHi := math.Inf(1), math.Inf(-1)
	for _, c := range rows {
		xMax = max(xMax, c.RequestsPerJob)
		yLo = min(yLo, max(c.Lag.P50, minPlotLag))
		yHi = max(yHi, max(c.Lag.P99, minPlotLag))
	}
	xStep := niceStep(xMax * 1.15 / 5)
	xMax = math.Ceil(xMax*1.15/xStep) * xStep
	if math.IsInf(yLo, 0) {
		yLo, yHi = minPlotLag, 1
	}
	dLo, dHi := math.Floor(math.Log10(yLo)), math.Ceil(math.Log10(yHi))
	if dHi <= dLo {
		dHi = dLo + 1
	}
	px := func(x float64) float64 { return plotL + x/xMax*plotInnerW }
	py := func(y float64) float64 {
		y = max(y, math.Pow(10, dLo))
		return plotT + (dHi-math.Log10(y))/(dHi-dLo)*plotInnerH
	}

	fmt.Fprintf(w, `<svg xmlns="http://www.w3.org/2000/svg" width="%d" height="%d" viewBox="0 0 %d %d" font-family="sans-serif" font-size="12">`+"\n", svgW, svgH, svgW, svgH)
	fmt.Fprintf(w, `<rect width="%d" height="%d" fill="white"/>`+"\n", svgW, svgH)
	title := fmt.Sprintf("Detection lag vs GET /job requests per job (%d jobs, progress: %s)", r.Config.Jobs, r.Config.Progress)
	fmt.Fprintf(w, `<text x="%d" y="24" font-size="15" font-weight="bold">%s</text>`+"\n", plotL, esc(title))

	// Grid and ticks.
	for x := 0.0; x <= xMax+xStep/2; x += xStep {
		fmt.Fprintf(w, `<line x1="%.1f" y1="%d" x2="%.1f" y2="%d" stroke="#e5e5e5"/>`+"\n", px(x), plotT, px(x), plotT+plotInnerH)
		fmt.Fprintf(w, `<line x1="%.1f" y1="%d" x2="%.1f" y2="%d" stroke="black"/>`+"\n", px(x), plotT+plotInnerH, px(x), plotT+plotInnerH+5)
		fmt.Fprintf(w, `<text x="%.1f" y="%d" text-anchor="middle">%s</text>`+"\n", px(x), plotT+plotInnerH+19, trimFloat(x))
	}
	for d := dLo; d <= dHi; d++ {
		for _, m := range []float64{1, 2, 5} {
			y := m * math.Pow(10, d)
			if d == dHi && m > 1 {
				break
			}
			stroke := "#e5e5e5"
			if m != 1 {
				stroke = "#f3f3f3"
			}
			fmt.Fprintf(w, `<line x1="%d" y1="%.1f" x2="%d" y2="%.1f" stroke="%s"/>`+"\n", plotL, py(y), plotL+plotInnerW, py(y), stroke)
			fmt.Fprintf(w, `<line x1="%d" y1="%.1f" x2="%d" y2="%.1f" stroke="black"/>`+"\n", plotL-5, py(y), plotL, py(y))
			fmt.Fprintf(w, `<text x="%d" y="%.1f" text-anchor="end">%s</text>`+"\n", plotL-8, py(y)+4, trimFloat(y))
		}
	}
	// Axes and their labels.
	fmt.Fprintf(w, `<line x1="%d" y1="%d" x2="%d" y2="%d" stroke="black"/>`+"\n", plotL, plotT+plotInnerH, plotL+plotInnerW, plotT+plotInnerH)
	fmt.Fprintf(w, `<line x1="%d" y1="%d" x2="%d" y2="%d" stroke="black"/>`+"\n", plotL, plotT, plotL, plotT+plotInnerH)
	fmt.Fprintf(w, `<text x="%d" y="%d" text-anchor="middle">GET /job requests per job</text>`+"\n", plotL+plotInnerW/2, svgH-30)
	fmt.Fprintf(w, `<text transform="translate(22 %d) rotate(-90)" text-anchor="middle">detection lag, s (simulator time, log scale)</text>`+"\n", plotT+plotInnerH/2)
	fmt.Fprintf(w, `<text x="%d" y="%d" fill="#555">dot: p50, bar: p50 to p99, tick: p90</text>`+"\n", plotL, svgH-10)

	// One marker per contender, labelled in the right margin.
	for i, c := range rows {
		color := contenderColor[c.Name]
		if color == "" {
			color = "black"
		}
		x, y50, y90, y99 := px(c.RequestsPerJob), py(c.Lag.P50), py(c.Lag.P90), py(c.Lag.P99)
		fmt.Fprintf(w, `<g stroke="%s" fill="%s">`+"\n", color, color)
		fmt.Fprintf(w, `<line x1="%.1f" y1="%.1f" x2="%.1f" y2="%.1f" stroke-width="2"/>`+"\n", x, y50, x, y99)
		fmt.Fprintf(w, `<line x1="%.1f" y1="%.1f" x2="%.1f" y2="%.1f" stroke-width="2"/>`+"\n", x-6, y99, x+6, y99)
		fmt.Fprintf(w, `<line x1="%.1f" y1="%.1f" x2="%.1f" y2="%.1f" stroke-width="2"/>`+"\n", x-4, y90, x+4, y90)
		fmt.Fprintf(w, `<circle cx="%.1f" cy="%.1f" r="5"/>`+"\n", x, y50)
		fmt.Fprintln(w, `</g>`)
		ly := plotT + 20 + i*52
		lx := plotL + plotInnerW + 20
		fmt.Fprintf(w, `<circle cx="%d" cy="%d" r="5" fill="%s"/>`+"\n", lx, ly-4, color)
		fmt.Fprintf(w, `<text x="%d" y="%d" font-weight="bold">%s</text>`+"\n", lx+labelGap+2, ly, esc(c.Name))
		fmt.Fprintf(w, `<text x="%d" y="%d">%.2f GET/job</text>`+"\n", lx+labelGap+2, ly+15, c.RequestsPerJob)
		fmt.Fprintf(w, `<text x="%d" y="%d">lag p50 %.2f s, p99 %.2f s</text>`+"\n", lx+labelGap+2, ly+30, c.Lag.P50, c.Lag.P99)
		fmt.Fprintf(w, `<text x="%.1f" y="%.1f" fill="%s">%s</text>`+"\n", x+float64(labelGap)+2, y50+4, color, esc(c.Name))
	}
	fmt.Fprintln(w, `</svg>`)
}

// niceStep rounds a raw tick step up to 1, 2 or 5 times a power of ten.
func niceStep(raw float64) float64 {
	if raw <= 0 || math.IsNaN(raw) || math.IsInf(raw, 0) {
		return 1
	}
	p := math.Pow(10, math.Floor(math.Log10(raw)))
	for _, m := range []float64{1, 2, 5, 10} {
		if raw <= m*p {
			return m * p
		}
	}
	return 10 * p
}

func trimFloat(v float64) string {
	s := fmt.Sprintf("%.3f", v)
	s = strings.TrimRight(s, "0")
	return strings.TrimSuffix(s, ".")
}

func esc(s string) string {
	var b strings.Builder
	_ = xml.EscapeText(&b, []byte(s))
	return b.String()
}
