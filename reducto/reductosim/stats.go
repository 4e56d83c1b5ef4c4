package reductosim

import (
	"sync/atomic"
	"time"
)

// endpoint identifies a route for the request counters.
type endpoint int

const (
	epOther endpoint = iota
	epParse
	epExtract
	epSplit
	epEdit
	epPipeline
	epGetJob
	epDeleteJob
	epCancel
	epJobs
	epUpload
	epUploadPut
	epVersion
	epResults
	numEndpoints
)

// Endpoint names used as keys of [Stats.Requests].
const (
	EndpointParse     = "POST /parse_async"
	EndpointExtract   = "POST /extract_async"
	EndpointSplit     = "POST /split_async"
	EndpointEdit      = "POST /edit_async"
	EndpointPipeline  = "POST /pipeline_async"
	EndpointGetJob    = "GET /job/{id}"
	EndpointDeleteJob = "DELETE /job/{id}"
	EndpointCancel    = "POST /cancel/{id}"
	EndpointJobs      = "GET /jobs"
	EndpointUpload    = "POST /upload"
	EndpointUploadPut = "PUT /presigned/{id}"
	EndpointVersion   = "GET /version"
	EndpointResults   = "GET /results/{id}"
	EndpointOther     = "other"
)

var endpointNames = [numEndpoints]string{
	epOther:     EndpointOther,
	epParse:     EndpointParse,
	epExtract:   EndpointExtract,
	epSplit:     EndpointSplit,
	epEdit:      EndpointEdit,
	epPipeline:  EndpointPipeline,
	epGetJob:    EndpointGetJob,
	epDeleteJob: EndpointDeleteJob,
	epCancel:    EndpointCancel,
	epJobs:      EndpointJobs,
	epUpload:    EndpointUpload,
	epUploadPut: EndpointUploadPut,
	epVersion:   EndpointVersion,
	epResults:   EndpointResults,
}

// StatusClientClosed is counted in [Stats.Statuses] for a slow response whose client went
// away before it was written (nginx's 499).
const StatusClientClosed = 499

// counters are lock-free so that counting costs a few atomic adds per request.
type counters struct {
	requests [numEndpoints]atomic.Int64
	statuses [600]atomic.Int64

	limited2000, limited1000, shed atomic.Int64
	faults                         atomic.Int64
	oddTypes, flaps                atomic.Int64

	hookDelivered, hookFailed, hookAttempts atomic.Int64
}

func (c *counters) status(code int) {
	if code >= 0 && code < len(c.statuses) {
		c.statuses[code].Add(1)
	}
}

// Stats is a snapshot of what the simulator has seen.
type Stats struct {
	// Requests counts requests by endpoint ("GET /job/{id}", see the Endpoint constants),
	// whatever their answer.
	Requests map[string]int64
	// Statuses counts responses by HTTP status code.
	Statuses map[int]int64
	// RateLimited2000, RateLimited1000 and Shed429 count 429s by kind: [CODE 2000] (GET /job
	// limit), [CODE 1000] (global limit) and code-less infrastructure sheds (a fault).
	RateLimited2000, RateLimited1000, Shed429 int64
	// Faults counts the answers replaced by an injected fault (Err5xx, Shed429, Malformed,
	// and Slow delays); OddTypes and Flaps are counted apart.
	Faults int64
	// OddTypes counts GET /job/{id} answers sent with odd JSON types ([Faults.OddTypes],
	// [JobSpec.OddTypes]).
	OddTypes int64
	// Flaps counts the 404s answered for flapping jobs ([Faults.Flap], [JobSpec.Flap]).
	Flaps int64
	// WebhooksDelivered counts webhooks accepted (2xx) by their receiver, WebhooksFailed those
	// abandoned after all retries (or because the server closed, or Svix is not configured),
	// WebhookAttempts every POST made.
	WebhooksDelivered, WebhooksFailed, WebhookAttempts int64
	// BackgroundJobs counts the jobs the simulator created as untracked account traffic
	// ([Background]); they are in Jobs too, with [JobStats.Background] set.
	BackgroundJobs int64
	// Jobs holds per-job figures by job id.
	Jobs map[string]JobStats
}

// Stats returns a snapshot of the counters and of every job. It walks all jobs once, so it is
// meant for the end of a run rather than a hot loop.
func (s *Server) Stats() Stats {
	s.catchUp(s.clock.Now())
	st := Stats{
		BackgroundJobs:    s.bg.n.Load(),
		Requests:          make(map[string]int64),
		Statuses:          make(map[int]int64),
		RateLimited2000:   s.stats.limited2000.Load(),
		RateLimited1000:   s.stats.limited1000.Load(),
		Shed429:           s.stats.shed.Load(),
		Faults:            s.stats.faults.Load(),
		OddTypes:          s.stats.oddTypes.Load(),
		Flaps:             s.stats.flaps.Load(),
		WebhooksDelivered: s.stats.hookDelivered.Load(),
		WebhooksFailed:    s.stats.hookFailed.Load(),
		WebhookAttempts:   s.stats.hookAttempts.Load(),
	}
	for i := range s.stats.requests {
		if n := s.stats.requests[i].Load(); n > 0 {
			st.Requests[endpointNames[i]] = n
		}
	}
	for code := range s.stats.statuses {
		if n := s.stats.statuses[code].Load(); n > 0 {
			st.Statuses[code] = n
		}
	}
	s.orderMu.RLock()
	jobs := make([]*job, len(s.order))
	copy(jobs, s.order)
	s.orderMu.RUnlock()
	now := s.clock.Now()
	st.Jobs = make(map[string]JobStats, len(jobs))
	for _, j := range jobs {
		js, _ := s.jobStats(j, now)
		st.Jobs[j.id] = js
	}
	return st
}

// Elapsed reports how long after creation (simulator time) the job became terminal, and
// whether it has.
func (js JobStats) Elapsed() (time.Duration, bool) {
	if js.Terminal.IsZero() {
		return 0, false
	}
	return js.Terminal.Sub(js.Created), true
}
