package e2e

import (
	"fmt"
	"net/http"
	"net/http/httptest"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/reducto-bridge/reducto-bridge/reducto/reductosim"
)

// apiKey is the simulator's API key, given to every bridge.
const apiKey = "sk-e2e-0b7d"

// reducto is the simulator served over HTTP on 127.0.0.1, behind a recorder of every
// GET /job/{id}.
type reducto struct {
	sim *reductosim.Server
	url string
	rec *recorder
}

func startReducto(t testing.TB, o reductosim.Options) *reducto {
	t.Helper()
	o.APIKey = apiKey
	sim, err := reductosim.New(o)
	if err != nil {
		t.Fatalf("simulator: %v", err)
	}
	rec := &recorder{next: sim, gets: make(map[string][]*getRecord)}
	srv := httptest.NewServer(rec)
	// Cleanups run last-in first-out: the HTTP server (which waits for its handlers) closes
	// before the simulator.
	t.Cleanup(sim.Close)
	t.Cleanup(srv.Close)
	return &reducto{sim: sim, url: srv.URL, rec: rec}
}

// replicaURL is the base URL bridge replica i uses: the recorder strips the /r<i> prefix and
// notes which replica asked.
func (r *reducto) replicaURL(i int) string { return r.url + "/r" + strconv.Itoa(i) }

// getRecord is one GET /job/{id} as the simulator's HTTP server saw it.
type getRecord struct {
	at      time.Time // arrival
	end     time.Time // answer written (or the client gone)
	status  int       // 499 when the client went away before an answer
	replica int       // from the /r<i> prefix, 0 without one
}

// recorder records the arrival, end and status of every GET /job/{id}, faults and rate
// limits included (the simulator's own counters leave those out).
type recorder struct {
	next http.Handler
	mu   sync.Mutex
	gets map[string][]*getRecord
}

type statusWriter struct {
	http.ResponseWriter
	status int
}

func (w *statusWriter) WriteHeader(code int) {
	if w.status == 0 {
		w.status = code
	}
	w.ResponseWriter.WriteHeader(code)
}

func (w *statusWriter) Write(p []byte) (int, error) {
	if w.status == 0 {
		w.status = http.StatusOK
	}
	return w.ResponseWriter.Write(p)
}

func (rc *recorder) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	replica := 0
	if rest, ok := strings.CutPrefix(r.URL.Path, "/r"); ok {
		if i := strings.IndexByte(rest, '/'); i > 0 {
			if n, err := strconv.Atoi(rest[:i]); err == nil {
				replica = n
				r2 := new(http.Request)
				*r2 = *r
				r2.URL = new(url.URL)
				*r2.URL = *r.URL
				r2.URL.Path, r2.URL.RawPath = rest[i:], ""
				r = r2
			}
		}
	}
	id, ok := strings.CutPrefix(r.URL.Path, "/job/")
	if !ok || r.Method != http.MethodGet {
		rc.next.ServeHTTP(w, r)
		return
	}
	rec := &getRecord{at: time.Now(), replica: replica}
	rc.mu.Lock()
	rc.gets[id] = append(rc.gets[id], rec)
	rc.mu.Unlock()
	sw := &statusWriter{ResponseWriter: w}
	rc.next.ServeHTTP(sw, r)
	rc.mu.Lock()
	rec.end, rec.status = time.Now(), sw.status
	if rec.status == 0 {
		rec.status = reductosim.StatusClientClosed
	}
	rc.mu.Unlock()
}

// of returns a copy of a job's GETs in arrival order.
func (rc *recorder) of(id string) []getRecord {
	rc.mu.Lock()
	defer rc.mu.Unlock()
	out := make([]getRecord, 0, len(rc.gets[id]))
	for _, g := range rc.gets[id] {
		out = append(out, *g)
	}
	slices.SortFunc(out, func(a, b getRecord) int { return a.at.Compare(b.at) })
	return out
}

// byReplica counts GETs per replica.
func (rc *recorder) byReplica() map[int]int {
	rc.mu.Lock()
	defer rc.mu.Unlock()
	out := make(map[int]int)
	for _, gs := range rc.gets {
		for _, g := range gs {
			out[g.replica]++
		}
	}
	return out
}

// spacing is how close two GETs of the same job came: the smallest gap between consecutive
// arrivals, and every gap below min (one line each).
type spacing struct {
	minGap     time.Duration
	violations []string
	jobs       []string // the jobs with violations
	overlaps   int      // GETs that arrived while the previous GET of the job was still unanswered
	excused    int      // gaps below min (or overlaps) explained by the caller
}

// excused, when not nil, tells a gap that is explained (and reported, not failed).
func (rc *recorder) spacing(ids []string, min time.Duration, excused func(id string, a, b time.Time) bool) spacing {
	sp := spacing{minGap: time.Hour}
	for _, id := range ids {
		gs := rc.of(id)
		for i := 1; i < len(gs); i++ {
			gap := gs[i].at.Sub(gs[i-1].at)
			overlap := !gs[i-1].end.IsZero() && gs[i].at.Before(gs[i-1].end)
			if (gap < min || overlap) && excused != nil && excused(id, gs[i-1].at, gs[i].at) {
				sp.excused++
				continue
			}
			if gap < sp.minGap {
				sp.minGap = gap
			}
			if gap < min {
				if len(sp.jobs) == 0 || sp.jobs[len(sp.jobs)-1] != id {
					sp.jobs = append(sp.jobs, id)
				}
				sp.violations = append(sp.violations, id+": "+gap.String()+" between GETs (replicas "+
					strconv.Itoa(gs[i-1].replica)+", "+strconv.Itoa(gs[i].replica)+")")
			}
			if overlap {
				sp.overlaps++
			}
		}
	}
	return sp
}

// timeline describes a job's GETs, one per line, in milliseconds since t0.
func (rc *recorder) timeline(id string, t0 time.Time) string {
	var b strings.Builder
	for _, g := range rc.of(id) {
		fmt.Fprintf(&b, "    +%dms replica %d status %d took %dms\n", g.at.Sub(t0).Milliseconds(), g.replica, g.status, g.end.Sub(g.at).Milliseconds())
	}
	return b.String()
}
