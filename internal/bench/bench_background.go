package bench

import (
	"math"
	"math/rand/v2"
	"sync"
	"time"

	"github.com/reducto-bridge/reducto-bridge/reducto/reductosim"
)

// backgroundTraffic is the untracked account traffic of -background: b jobs per tracked job,
// so b times the arrival rate, with the workload's duration model (lognormal, same median and
// sigma, same progress) drawn from a stream of its own, so that the tracked jobs are the same
// with and without it. The zero Background (no traffic) when b is 0.
func backgroundTraffic(cfg *benchConfig) reductosim.Background {
	if cfg.Background <= 0 {
		return reductosim.Background{}
	}
	seed := uint64(cfg.Seed) ^ 0x3c6ef372fe94f82b
	var mu sync.Mutex
	rng := rand.New(rand.NewPCG(seed, seed^0xa54ff53a5f1d36f1))
	progress := reductosim.ProgressLinear
	if cfg.Progress == "none" {
		progress = reductosim.ProgressNone
	}
	return reductosim.Background{
		Rate: cfg.Background * cfg.Arrival,
		Spec: func() reductosim.JobSpec {
			mu.Lock()
			defer mu.Unlock()
			d := float64(cfg.Median) * math.Exp(cfg.Sigma*rng.NormFloat64())
			return reductosim.JobSpec{
				Type:       reductosim.TypeParse,
				Duration:   time.Duration(d).Round(time.Millisecond),
				NumPages:   1 + rng.IntN(40),
				Progress:   progress,
				ResultSize: 2048,
			}
		},
	}
}

// submissionEndpoints create jobs; every contender's jobs are created somehow (directly in
// the simulator, or by P.submit), so they are left out of the requests spent per job.
var submissionEndpoints = map[string]bool{
	reductosim.EndpointParse: true, reductosim.EndpointExtract: true, reductosim.EndpointSplit: true,
	reductosim.EndpointEdit: true, reductosim.EndpointPipeline: true,
	reductosim.EndpointUpload: true, reductosim.EndpointUploadPut: true,
}

// allRequests is every request the simulator saw, on every endpoint but submissions, whatever
// the answer (429s included): GET /job of any job, GET /jobs, cancels, and so on.
func allRequests(st reductosim.Stats) int64 {
	var n int64
	for ep, c := range st.Requests {
		if !submissionEndpoints[ep] {
			n += c
		}
	}
	return n
}

// untrackedEvents counts the events stored for jobs the bench did not track (background
// traffic, or ids nobody created): each one is a wrong event.
func untrackedEvents(stored map[string]uint64, tracked []string) int64 {
	known := make(map[string]bool, len(tracked))
	for _, id := range tracked {
		known[id] = true
	}
	var n int64
	for id, c := range stored {
		if !known[id] {
			n += int64(c)
		}
	}
	return n
}
