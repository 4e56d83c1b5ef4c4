package poller

import (
	"math"
	"slices"
	"strconv"
	"sync"
	"time"

	"github.com/reducto-bridge/reducto-bridge/reducto"
)

// Prediction tuning.
const (
	// minSamples is how many finished jobs a class needs before its durations are trusted.
	minSamples = 20
	// classWindow is how many recent durations a class keeps.
	classWindow = 512
	// maxTracked bounds the progress samples kept (one per outstanding job polled here):
	// about 30 MB at most.
	maxTracked = 1 << 18
	// etaSlack lands a predicted poll just after the predicted end: 1% of the remaining time
	// plus a tenth of the initial interval, so a job a little slower than predicted is not
	// polled a moment too early (which costs a poll), nor much later (which costs lag).
	etaSlack = 0.01
)

// estimator predicts when a job will finish, to poll it just after rather than on a blind
// schedule. It learns from two sources:
//   - the job's own progress: two samples give a rate, the rate gives an end time;
//   - durations of finished jobs of the same class (type and page count), for jobs that report
//     no progress: poll where jobs like it actually end, at the lag target's spacing.
//
// Everything it knows is in memory and only refines the poll schedule: after a restart, or for
// a job whose earlier polls happened on another replica, the exponential backoff applies
// until new samples exist. Predictions are always capped by MaxInterval, so a wrong one costs
// at most one poll interval of lag.
type estimator struct {
	initial, max time.Duration
	lag          time.Duration // spacing of polls for jobs without progress

	mu      sync.Mutex
	samples map[string]sample     // last progress sample per job
	evicted time.Time             // last sweep of stale samples
	classes map[string]*durations // durations of finished jobs, by class
}

type sample struct {
	at       time.Time
	progress float64
}

func newEstimator(initial, maxInterval time.Duration) *estimator {
	return &estimator{
		initial: initial,
		max:     maxInterval,
		lag:     max(initial, maxInterval/3),
		samples: make(map[string]sample),
		classes: make(map[string]*durations),
	}
}

// next returns the delay before the job's next poll, given its state now and the backoff
// interval the schedule would use (fallback).
func (e *estimator) next(id string, j *reducto.Job, trackedAt, now time.Time, fallback time.Duration) time.Duration {
	e.mu.Lock()
	defer e.mu.Unlock()
	prev, hadPrev := e.samples[id]
	if p := j.Progress; p != nil && !math.IsNaN(*p) && !math.IsInf(*p, 0) {
		if !hadPrev && len(e.samples) >= maxTracked {
			e.evictLocked(now)
		}
		if hadPrev || len(e.samples) < maxTracked {
			e.samples[id] = sample{at: now, progress: *p}
		}
		switch {
		case *p >= 100:
			// Done processing, results being saved: soon.
			return clamp(min(fallback, e.initial), e.minGap(), e.max)
		case hadPrev && *p > prev.progress && now.After(prev.at):
			rate := (*p - prev.progress) / now.Sub(prev.at).Seconds() // percent per second
			remaining := time.Duration((100 - *p) / rate * float64(time.Second))
			return clamp(remaining+time.Duration(etaSlack*float64(remaining))+e.initial/10, e.minGap(), e.max)
		case *p > 0 && !hadPrev:
			// One sample: assuming the job has run since it was tracked bounds its remaining
			// time from above. When even that bound ends before the next scheduled poll, poll
			// then; otherwise the next poll, on the normal schedule, gives the rate.
			if age := now.Sub(trackedAt); age > 0 {
				remaining := time.Duration((100 - *p) / *p * float64(age))
				if d := remaining + time.Duration(etaSlack*float64(remaining)) + e.initial/10; d < fallback {
					return clamp(d, e.minGap(), e.max)
				}
			}
			return fallback
		}
		// Flat, zero, or going backwards: no rate to trust; treat like no progress.
	}
	return e.byDuration(classOf(j), now.Sub(trackedAt), fallback)
}

// byDuration schedules a job without usable progress from the durations of finished jobs of
// its class. Before q01 (when hardly any such job has ended) it waits for q01, at most one
// spacing at a time; from q01 to twice q99 it polls every spacing, 0.9 of the lag target, so a
// job's lag stays under the target; in the far tail it falls back to the backoff. The learned
// durations include the detection lag, which makes them a little long: the 2 x q99 margin and
// the spacing below the target absorb that.
func (e *estimator) byDuration(class string, age, fallback time.Duration) time.Duration {
	d := e.classes[class]
	if d == nil || d.n < minSamples {
		d = e.classes[""]
	}
	if d == nil || d.n < minSamples {
		return fallback
	}
	q01, q99 := d.quantile(0.01), d.quantile(0.99)
	spacing := e.lag * 9 / 10
	switch {
	case age < q01:
		// Polls before q01 mostly find the job running; one at q01 or every spacing bounds
		// the lag of the few that end early.
		return clamp(q01-age, e.minGap(), spacing)
	case age < 2*q99:
		return clamp(spacing, e.minGap(), e.max)
	}
	return fallback
}

// finished records how long a finished job took (from tracking to the poll that saw it
// finish) and forgets its progress samples.
func (e *estimator) finished(id string, j *reducto.Job, took time.Duration) {
	e.mu.Lock()
	defer e.mu.Unlock()
	delete(e.samples, id)
	if j == nil || j.Outcome() != reducto.OutcomeCompleted || took <= 0 {
		return
	}
	for _, c := range []string{classOf(j), ""} {
		d := e.classes[c]
		if d == nil {
			if len(e.classes) > 256 {
				continue // bounded: odd types or page counts share the global class
			}
			d = &durations{}
			e.classes[c] = d
		}
		d.add(took)
	}
}

// evictLocked drops samples too old to matter: their jobs finished elsewhere or moved to
// another replica.
func (e *estimator) evictLocked(now time.Time) {
	if now.Sub(e.evicted) < e.max {
		return // a full map of live jobs would otherwise be swept at every new job
	}
	e.evicted = now
	horizon := 10 * e.max
	for id, s := range e.samples {
		if now.Sub(s.at) > horizon {
			delete(e.samples, id)
		}
	}
}

// forget drops a job's samples (it ended some other way, or was handed to another replica).
func (e *estimator) forget(id string) {
	e.mu.Lock()
	delete(e.samples, id)
	e.mu.Unlock()
}

// minGap is the shortest delay between two polls of a job. Every time constant is relative to
// the initial interval, so a schedule scaled down (tests, the compressed-clock benchmark)
// behaves the same.
func (e *estimator) minGap() time.Duration { return e.initial / 4 }

// classOf groups jobs likely to take similar times: same type, page count within a factor 2.
func classOf(j *reducto.Job) string {
	pages := 0
	switch {
	case j.TotalPages != nil:
		pages = *j.TotalPages
	case j.NumPages != nil:
		pages = *j.NumPages
	}
	bucket := 0
	for p := pages; p > 1; p >>= 1 {
		bucket++
	}
	return j.Type + "/" + strconv.Itoa(bucket)
}

func clamp(d, lo, hi time.Duration) time.Duration { return min(max(d, lo), hi) }

// durations is a ring of recent job durations with cached quantiles.
type durations struct {
	ring   [classWindow]time.Duration
	n      int // values stored, up to classWindow
	next   int
	sorted []time.Duration // nil when stale
}

func (d *durations) add(v time.Duration) {
	d.ring[d.next] = v
	d.next = (d.next + 1) % classWindow
	d.n = min(d.n+1, classWindow)
	d.sorted = nil
}

func (d *durations) quantile(q float64) time.Duration {
	if d.sorted == nil {
		d.sorted = slices.Clone(d.ring[:d.n])
		slices.Sort(d.sorted)
	}
	i := int(q * float64(len(d.sorted)-1))
	return d.sorted[i]
}
