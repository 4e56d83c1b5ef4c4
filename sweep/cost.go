package sweep

import (
	"math"
	"time"
)

// depth is what the cost model knows after a page: whether reading on, down to the oldest
// outstanding job, costs fewer requests per second than leaving the jobs below the page to
// per-job polling.
type depth struct {
	outstanding float64       // tracked jobs (the track stream's message count)
	below       float64       // fraction of them tracked too early for the pages read so far
	pages       int           // pages read in this sweep
	span        time.Duration // created_at span of those pages (newest minus oldest)
	tracked     float64       // tracked jobs those pages listed (scaled from the self-check's sample)
	remaining   time.Duration // page bottom minus the floor (oldest tracked minus the slack)
	interval    time.Duration // BRIDGE_LIST_INTERVAL: one page per sweep costs 1/interval req/s
	pollEvery   time.Duration // per-job poll interval of an uncovered job (BRIDGE_POLL_MAX_INTERVAL)
	safetyEvery time.Duration // per-job poll interval of a covered job (BRIDGE_LIST_SAFETY_INTERVAL)
}

// worthPaging is the cost model (docs/operations.md, "List sweeps"): the pages still needed
// cost pagesNeeded/interval requests/s; covering the stragglers below saves each one the
// difference between its per-job poll rate and the safety-net rate,
// stragglers*(1/pollEvery - 1/safetyEvery) requests/s. Page on while the cost is not higher
// than the saving. The pages still needed are the fewer of two estimates from the pages read
// so far: the remaining created_at span at their pace (span/pages per page), and the
// stragglers at their density of tracked jobs (tracked/pages per page). The second one
// keeps the model sound when many jobs share one created_at (span about zero).
func worthPaging(d depth) bool {
	if d.pages <= 0 || d.interval <= 0 || d.pollEvery <= 0 {
		return false
	}
	if d.remaining <= 0 {
		return false // the floor is reached
	}
	stragglers := d.outstanding * d.below
	pagesNeeded := math.Inf(1)
	if d.span > 0 {
		pagesNeeded = math.Ceil(float64(d.remaining) / (float64(d.span) / float64(d.pages)))
	}
	if d.tracked > 0 {
		pagesNeeded = min(pagesNeeded, math.Ceil(stragglers/(d.tracked/float64(d.pages))))
	}
	if math.IsInf(pagesNeeded, 1) {
		return false // nothing to estimate from
	}
	cost := pagesNeeded / d.interval.Seconds()
	saving := stragglers / d.pollEvery.Seconds()
	if d.safetyEvery > 0 {
		saving -= stragglers / d.safetyEvery.Seconds()
	}
	return cost <= saving
}
