package bench

import (
	"bytes"
	"encoding/json"
	"io"
	"math"
	"math/rand/v2"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/reducto-bridge/reducto-bridge/reducto/reductosim"
)

// workload is drawn once per run, so every contender meets the same jobs at the same times.
type workload struct {
	durations []time.Duration // running time of job i (simulator time)
	pages     []int
	arrivals  []time.Duration // arrival of job i after the start (simulator time)
	progress  reductosim.Progress
	outcome   reductosim.Outcome
}

// drawWorkload draws durations (lognormal), page counts and Poisson arrivals from the seed.
// The outstanding scenario tracks every job at once; the parked one has jobs that never end.
func drawWorkload(cfg *benchConfig) *workload {
	seed := uint64(cfg.Seed)
	rng := rand.New(rand.NewPCG(seed, seed^0x9e3779b97f4a7c15))
	wl := &workload{
		durations: make([]time.Duration, cfg.Jobs),
		pages:     make([]int, cfg.Jobs),
		arrivals:  make([]time.Duration, cfg.Jobs),
	}
	if cfg.Progress == "none" {
		wl.progress = reductosim.ProgressNone
	}
	if cfg.Scenario == scenarioParked {
		wl.outcome = reductosim.OutcomeNever
	}
	var at float64 // seconds
	for i := range cfg.Jobs {
		d := float64(cfg.Median) * math.Exp(cfg.Sigma*rng.NormFloat64())
		wl.durations[i] = time.Duration(d).Round(time.Millisecond)
		wl.pages[i] = 1 + rng.IntN(40)
		if cfg.Scenario == "" {
			at += rng.ExpFloat64() / cfg.Arrival
			wl.arrivals[i] = time.Duration(at * float64(time.Second))
		}
	}
	return wl
}

// spec is job i as the simulator should run it.
func (wl *workload) spec(i int) reductosim.JobSpec {
	return reductosim.JobSpec{
		Type:       reductosim.TypeParse,
		Duration:   wl.durations[i],
		NumPages:   wl.pages[i],
		Progress:   wl.progress,
		Outcome:    wl.outcome,
		ResultSize: 2048,
	}
}

// timeout is a generous real-time bound on one contender: three times the simulator span of
// the workload (last arrival plus longest job), plus the time the bridge's budget needs to
// fetch every job twice, plus a minute.
func (wl *workload) timeout(cfg *benchConfig) time.Duration {
	span := slices.Max(wl.durations)
	if n := len(wl.arrivals); n > 0 {
		span += wl.arrivals[n-1]
	}
	budget := time.Duration(2 * float64(len(wl.durations)) / cfg.BridgeRate * float64(time.Second))
	return cfg.real(3*(span+budget)) + time.Minute
}

// benchInput is the document URL of job i in a submit body; the simulator's Spec reads the
// index back, so a job submitted through P.submit runs exactly as drawn.
const benchInput = "https://bench.invalid/doc-"

func inputURL(i int) string { return benchInput + strconv.Itoa(i) + ".pdf" }

// specFunc is the simulator's Spec for submissions: the drawn job whose index is in the
// body's input, or the next one in submission order when the body does not say.
func (wl *workload) specFunc() func(string, []byte) reductosim.JobSpec {
	var next atomic.Int64
	return func(_ string, body []byte) reductosim.JobSpec {
		var req struct {
			Input string `json:"input"`
		}
		i := -1
		if json.Unmarshal(body, &req) == nil {
			if s, ok := strings.CutPrefix(req.Input, benchInput); ok {
				if n, err := strconv.Atoi(strings.TrimSuffix(s, ".pdf")); err == nil {
					i = n
				}
			}
		}
		if i < 0 || i >= len(wl.durations) {
			i = int(next.Add(1)-1) % len(wl.durations)
		}
		return wl.spec(i)
	}
}

// timeMap converts between the simulator's compressed clock and real time:
// real = real0 + (sim - sim0) / k.
type timeMap struct {
	real0 time.Time // carries a monotonic reading
	sim0  time.Time
	k     float64
}

// newTimeMap reads the simulator clock between two real readings; the midpoint is the real
// time of the simulator reading, to within half the (sub-microsecond) gap.
func newTimeMap(c reductosim.Clock, k float64) timeMap {
	r0 := time.Now()
	s := c.Now()
	r1 := time.Now()
	return timeMap{real0: r0.Add(r1.Sub(r0) / 2), sim0: s, k: k}
}

// toReal returns the real time at which the simulator clock read sim.
func (m timeMap) toReal(sim time.Time) time.Time {
	return m.real0.Add(time.Duration(float64(sim.Sub(m.sim0)) / m.k))
}

// toSim returns the simulator time at real time t.
func (m timeMap) toSim(t time.Time) time.Time {
	return m.sim0.Add(time.Duration(float64(t.Sub(m.real0)) * m.k))
}

// lag is how long after the simulator-time terminal instant the real-time detection came, in
// uncompressed (simulator) seconds.
func (m timeMap) lag(detected, terminalSim time.Time) float64 {
	return detected.Sub(m.toReal(terminalSim)).Seconds() * m.k
}

// outside returns how far t lies outside [lo, hi] (0 inside): the conversion check, with lo
// and hi real readings taken around a simulator event.
func outside(t, lo, hi time.Time) time.Duration {
	switch {
	case t.Before(lo):
		return lo.Sub(t)
	case t.After(hi):
		return t.Sub(hi)
	}
	return 0
}

// percentile returns the q-quantile (0 <= q <= 1) of sorted values, interpolating linearly
// between order statistics; NaN for no values.
func percentile(sorted []float64, q float64) float64 {
	n := len(sorted)
	if n == 0 {
		return math.NaN()
	}
	q = min(max(q, 0), 1)
	pos := q * float64(n-1)
	lo := int(math.Floor(pos))
	hi := min(lo+1, n-1)
	return sorted[lo] + (pos-float64(lo))*(sorted[hi]-sorted[lo])
}

// dist summarises a sample.
type dist struct {
	N    int     `json:"n"`
	Mean float64 `json:"mean"`
	P50  float64 `json:"p50"`
	P90  float64 `json:"p90"`
	P99  float64 `json:"p99"`
	Max  float64 `json:"max"`
	Min  float64 `json:"min"`
}

func summarize(xs []float64) dist {
	if len(xs) == 0 {
		return dist{}
	}
	s := slices.Clone(xs)
	slices.Sort(s)
	var sum float64
	for _, x := range s {
		sum += x
	}
	return dist{
		N: len(s), Mean: sum / float64(len(s)),
		P50: percentile(s, 0.50), P90: percentile(s, 0.90), P99: percentile(s, 0.99),
		Min: s[0], Max: s[len(s)-1],
	}
}

// detector records when each job's end was seen: the first sighting and how many there were.
type detector struct {
	mu    sync.Mutex
	first map[string]time.Time
	count map[string]int
	want  int
	done  chan struct{} // closed when want jobs have been seen
}

func newDetector(want int) *detector {
	return &detector{first: make(map[string]time.Time, want), count: make(map[string]int, want), want: want, done: make(chan struct{})}
}

func (d *detector) record(id string, at time.Time) {
	d.mu.Lock()
	defer d.mu.Unlock()
	d.count[id]++
	if _, ok := d.first[id]; ok {
		return
	}
	d.first[id] = at
	if len(d.first) == d.want {
		close(d.done)
	}
}

func (d *detector) seen(id string) (time.Time, int) {
	d.mu.Lock()
	defer d.mu.Unlock()
	return d.first[id], d.count[id]
}

func (d *detector) len() int {
	d.mu.Lock()
	defer d.mu.Unlock()
	return len(d.first)
}

// hookRecorder is the simulator's webhook transport: it notes when each webhook POST starts
// (the first attempt per job), to measure the bridge's webhook-to-event latency.
type hookRecorder struct {
	base http.RoundTripper
	mu   sync.Mutex
	at   map[string]time.Time
}

func newHookRecorder() *hookRecorder {
	tr := http.DefaultTransport.(*http.Transport).Clone()
	tr.MaxIdleConnsPerHost = 64
	return &hookRecorder{base: tr, at: make(map[string]time.Time)}
}

// RoundTrip records the start and the job id, then sends the request unchanged.
func (h *hookRecorder) RoundTrip(req *http.Request) (*http.Response, error) {
	start := time.Now()
	if req.Body != nil && req.Body != http.NoBody {
		body, err := io.ReadAll(req.Body)
		req.Body.Close()
		if err != nil {
			return nil, err
		}
		var p struct {
			JobID string `json:"job_id"`
		}
		if json.Unmarshal(body, &p) == nil && p.JobID != "" {
			h.mu.Lock()
			if _, ok := h.at[p.JobID]; !ok {
				h.at[p.JobID] = start
			}
			h.mu.Unlock()
		}
		req = req.Clone(req.Context())
		req.Body = io.NopCloser(bytes.NewReader(body))
	}
	return h.base.RoundTrip(req)
}

func (h *hookRecorder) started(id string) (time.Time, bool) {
	h.mu.Lock()
	defer h.mu.Unlock()
	t, ok := h.at[id]
	return t, ok
}

func (h *hookRecorder) close() {
	if tr, ok := h.base.(*http.Transport); ok {
		tr.CloseIdleConnections()
	}
}
