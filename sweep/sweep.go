// Package sweep is the list sweep: while jobs are tracked, one replica per API key (the holder
// of a JetStream KV lease) pages Reducto's GET /jobs from the newest job down, and every
// tracked job the list shows terminal is fetched at once through the poller's hint path (one
// GET /job, the event, the track message removed). The list is a hint, never the truth: the
// event always comes from GET /job, and a job absent from the list proves nothing.
//
// Jobs the sweep covers (tracked after its horizon, while it is healthy) are polled per job
// only as a safety net ([Sweeper.Covers], BRIDGE_LIST_SAFETY_INTERVAL). A self-check withdraws
// that coverage when the list stops showing tracked jobs it should show, or pages fail.
package sweep

import (
	"context"
	"errors"
	"log/slog"
	"slices"
	"sync"
	"time"

	"golang.org/x/time/rate"

	"github.com/reducto-bridge/reducto-bridge/metrics"
	"github.com/reducto-bridge/reducto-bridge/reducto"
)

// Lister reads one page of GET /jobs; *reducto.Client satisfies it (its requests wait on the
// process's rate budget).
type Lister interface {
	ListJobs(ctx context.Context, o reducto.ListOptions) (*reducto.JobList, error)
}

// Hinter fetches a tracked job the list shows terminal; *poller.Poller satisfies it.
// HintTracked does nothing for a job without a track message, and reports whether the job has
// its event now.
type Hinter interface {
	HintTracked(ctx context.Context, id string) (bool, error)
}

// Tracked is what the track stream says of the outstanding jobs.
type Tracked struct {
	Count  uint64    // message count
	Oldest time.Time // first message time: no outstanding job was tracked before it
	Newest time.Time // last message time: none was tracked after it (zero: unknown)
}

// Outstanding reports the track stream's state, read at the call (the sweep relies on Newest
// being current at its start).
type Outstanding func(ctx context.Context) (Tracked, error)

// Defaults of zero [Options] fields; config.Defaults() agrees (BRIDGE_LIST_INTERVAL,
// BRIDGE_LIST_MAX_RATE, BRIDGE_LIST_SAFETY_INTERVAL).
const (
	DefaultInterval       = 1800 * time.Millisecond
	DefaultMaxRate        = 50.0
	DefaultSafetyInterval = 2 * time.Minute
	DefaultDeepAge        = 135 * time.Second
	DefaultTrackSlack     = 30 * time.Second
)

// Parameters of the sweep and its self-check (docs/operations.md, "List sweeps").
const (
	// PageLimit is the page size asked of GET /jobs, Reducto's maximum.
	PageLimit = 500
	// MissSweeps is K: a tracked job the list should show but does not, K sweeps in a row, is
	// a miss; K failed sweeps in a row, or one miss, withdraw coverage, and K clean sweeps
	// restore it.
	MissSweeps = 3
	// DeepEvery is N: while deep jobs are a small share of the ends (DeepShare), pages whose
	// jobs were all created more than DeepAge before the sweep are read every Nth sweep only.
	DeepEvery = 16
	// DeepShare is the most deep jobs may weigh among the tracked jobs the sweep reported for
	// the deep pages to be read every DeepEvery sweeps: their longer lag stays out of the p99.
	DeepShare = 0.01
	// deepMinEnds is how many reported jobs the share needs before it is trusted.
	deepMinEnds = 100
	// deepMaxOld is the most remembered outstanding jobs tracked more than DeepAge ago for
	// the deep pages to be read every DeepEvery sweeps. The ends count only the past: a
	// backlog tracked at once crosses DeepAge all together, and without this look at the jobs
	// still outstanding the first of them to end waited up to DeepEvery intervals (measured:
	// p99 lag 24 s at 100,000 jobs). A count, not a share: in a workload's tail the few jobs
	// left are all old stragglers, which the tier is for.
	deepMaxOld = 100
	// hintRetry is how long a listed terminal job that gave no event (not tracked, or GET
	// /job said otherwise) is left alone before the sweep asks again.
	hintRetry = 30 * time.Second
	// maxKnown bounds the tracked jobs remembered for the self-check.
	maxKnown = 10000
	// hintWorkers bounds the hints of one sweep run at once. A hint's GET waits on the
	// GET /job budget, which safety-net polls may keep busy; the pages do not wait for the
	// hints, so a slow budget slows the hints, not the sweep (while fewer than hintWorkers
	// are waiting).
	hintWorkers = 64
	// ClockMargin is how far Reducto's created_at may run ahead of the NATS server's clock:
	// no outstanding job is assumed created after the newest tracked time plus it, so the
	// pages above are skipped (a job outside the assumption is caught by the self-check).
	ClockMargin = 5 * time.Second
	// deepQuantile: the deep tier's age is at least the age under which this share of the
	// jobs the sweep reported ended (so deep jobs stay about 1-deepQuantile of the ends).
	deepQuantile = 0.995
	// maxAges bounds the reported ages remembered for deepQuantile.
	maxAges = 4096
)

// Options configure a Sweeper. Zero values take the defaults in brackets.
type Options struct {
	Interval       time.Duration // time between sweeps [DefaultInterval]
	MaxRate        float64       // list pages per second at most [DefaultMaxRate]
	SafetyInterval time.Duration // per-job poll interval of covered jobs [DefaultSafetyInterval]
	DeepAge        time.Duration // age of the deep tier's jobs (BRIDGE_LIST_DEEP_AGE) [DefaultDeepAge]
	// TrackSlack (BRIDGE_LIST_TRACK_SLACK) is how long before its tracking a job may have
	// been created and still be looked for in the list: the sweep pages down to the oldest
	// tracked time minus it, and the self-check expects a tracked job in the list only when
	// its tracked time minus it lies within the pages read [DefaultTrackSlack].
	TrackSlack time.Duration
	// PollInterval is the per-job poll interval of a job the sweep does not cover, for the
	// cost model (BRIDGE_POLL_MAX_INTERVAL) [30s].
	PollInterval time.Duration
	// Lease, when set, makes this sweeper page only while it holds the API key's lease, and
	// take the holder's coverage otherwise; nil: always sweep (one replica).
	Lease *Lease
	// Track, when set (BRIDGE_TRACK_ALL), tracks every job the list shows.
	Track   func(ctx context.Context, id string) error
	Logger  *slog.Logger
	Metrics *metrics.Metrics
	Now     func() time.Time
}

// knownJob is a tracked job the poller told the sweeper about (the self-check's sample).
type knownJob struct {
	trackedAt time.Time
	created   time.Time // its created_at, once a page showed it
	seen      bool      // some page showed it
	misses    int       // sweeps in a row that should have shown it and did not
}

// Sweeper runs list sweeps; see the package comment. Construct it with [New].
type Sweeper struct {
	list        Lister
	hints       Hinter
	outstanding Outstanding
	o           Options
	log         *slog.Logger
	m           *metrics.Metrics
	limiter     *rate.Limiter

	mu       sync.Mutex
	cov      Coverage
	covUntil time.Time // cov is stale from then on (sweeps stopped)
	// deep is the coverage of the latest sweep that read the deep tier, valid until deepUntil.
	deep      Coverage
	deepUntil time.Time
	sweeps    int     // sweeps begun: every DeepEvery-th one reads the deep tier
	ends      float64 // tracked jobs the sweep reported
	deepEnds  float64 // of them, created more than DeepAge before their sweep
	known     map[string]*knownJob
	uncovered map[string]struct{} // misses: left to per-job polling
	acted     map[string]time.Time
	ensured   map[string]struct{} // Track done (BRIDGE_TRACK_ALL)
	// promised holds, per second in which Covers said yes, the oldest tracked time it said
	// yes for: a job told covered has its next poll up to SafetyInterval away, so the sweep
	// keeps paging down to it for that long, whatever the cost model says.
	promised  map[time.Time]time.Time
	failures  int // failed sweeps in a row
	clean     int // clean sweeps in a row
	needClean int // clean sweeps needed to (re)gain health
	// marks are the cursors of the latest sweep's pages and the newest created_at each
	// returned: a sweep resumes from one instead of paging down through jobs created after
	// every outstanding one (see skip).
	marks     []mark
	skipFails int       // resumed pages in a row that did not start where expected
	noSkip    bool      // cursors do not resume as assumed: always read from the top
	ages      []float64 // seconds from created_at to the report, of reported jobs (a ring)
	agesNext  int
}

// mark is a cursor and the newest created_at of the page it returned.
type mark struct {
	cursor string
	newest time.Time
}

// New returns a sweeper; it does nothing until [Sweeper.Run].
func New(list Lister, hints Hinter, outstanding Outstanding, o Options) (*Sweeper, error) {
	if list == nil || hints == nil || outstanding == nil {
		return nil, errors.New("sweep: lister, hinter and outstanding count are required")
	}
	if o.Interval <= 0 {
		o.Interval = DefaultInterval
	}
	if o.MaxRate <= 0 {
		o.MaxRate = DefaultMaxRate
	}
	if o.SafetyInterval <= 0 {
		o.SafetyInterval = DefaultSafetyInterval
	}
	if o.TrackSlack <= 0 {
		o.TrackSlack = DefaultTrackSlack
	}
	if o.DeepAge <= 0 {
		o.DeepAge = DefaultDeepAge
	}
	if o.PollInterval <= 0 {
		o.PollInterval = 30 * time.Second
	}
	if o.Logger == nil {
		o.Logger = slog.New(slog.DiscardHandler)
	}
	if o.Now == nil {
		o.Now = time.Now
	}
	return &Sweeper{
		list: list, hints: hints, outstanding: outstanding, o: o, log: o.Logger, m: o.Metrics,
		limiter:   rate.NewLimiter(rate.Limit(o.MaxRate), 1),
		known:     map[string]*knownJob{},
		uncovered: map[string]struct{}{},
		acted:     map[string]time.Time{},
		ensured:   map[string]struct{}{},
		promised:  map[time.Time]time.Time{},
		needClean: 1,
	}, nil
}

// Covers reports whether the sweep will find the end of a job tracked at trackedAt: the
// sweep is healthy, its latest sweep is recent, and the job was tracked after its horizon (or
// the sweep read the whole list), and the self-check has not found the list missing it. The
// holder's coverage is used on the other replicas. It also remembers the job for the
// self-check. The poller calls it at each delivery.
func (s *Sweeper) Covers(id string, trackedAt time.Time) bool {
	if s.o.Lease != nil && !s.o.Lease.Held() {
		cov, ok := s.o.Lease.theirCoverage()
		return ok && cov.covers(trackedAt)
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if _, ok := s.uncovered[id]; ok {
		return false // a miss: per-job polling, and no second miss counted for it
	}
	if _, ok := s.known[id]; !ok && len(s.known) < maxKnown {
		s.known[id] = &knownJob{trackedAt: trackedAt}
	}
	now := s.o.Now()
	if !now.Before(s.covUntil) || !s.cov.covers(trackedAt) {
		return false
	}
	sec := now.Truncate(time.Second)
	if old, ok := s.promised[sec]; !ok || trackedAt.Before(old) {
		s.promised[sec] = trackedAt
	}
	return true
}

// promiseFloor is the oldest tracked time of a job told covered within the last
// SafetyInterval (zero when none), pruning older promises.
func (s *Sweeper) promiseFloor(now time.Time) time.Time {
	s.mu.Lock()
	defer s.mu.Unlock()
	var floor time.Time
	for sec, at := range s.promised {
		if now.Sub(sec) > s.o.SafetyInterval+time.Second {
			delete(s.promised, sec)
			continue
		}
		if floor.IsZero() || at.Before(floor) {
			floor = at
		}
	}
	return floor
}

// Done forgets a reported job: the self-check no longer expects the list to show it.
func (s *Sweeper) Done(id string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	delete(s.known, id)
}

func (c Coverage) covers(trackedAt time.Time) bool {
	return c.Healthy && (c.All || !trackedAt.Before(c.Horizon))
}

// coverage is what the lease publishes: the current coverage, or none when it is stale.
func (s *Sweeper) coverage() Coverage {
	s.mu.Lock()
	defer s.mu.Unlock()
	if !s.o.Now().Before(s.covUntil) {
		return Coverage{}
	}
	return s.cov
}

// Run sweeps every Interval until ctx ends (only while it holds the lease, when there is
// one). It never releases the lease: see [Sweeper.Release].
func (s *Sweeper) Run(ctx context.Context) {
	var wg sync.WaitGroup
	defer wg.Wait()
	if s.o.Lease != nil {
		wg.Go(func() {
			s.o.Lease.run(ctx, s.coverage, func(held bool) {
				s.m.LeaseHeld(held)
				if !held {
					s.mu.Lock()
					s.covUntil = time.Time{}
					s.mu.Unlock()
				}
			})
		})
	} else {
		s.m.LeaseHeld(true)
	}
	t := time.NewTimer(0)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		start := time.Now()
		if s.o.Lease == nil || s.o.Lease.Held() {
			s.sweep(ctx)
		}
		t.Reset(max(0, s.o.Interval-time.Since(start)))
	}
}

// Release gives the lease up (at a clean shutdown, after Run has returned), so that another
// replica takes over at once rather than after the lease expires.
func (s *Sweeper) Release(ctx context.Context) {
	if s.o.Lease != nil {
		s.o.Lease.release(ctx)
		s.m.LeaseHeld(false)
	}
}

// sweep is one sweep: page from the newest job down as deep as the floor and the cost model
// say, hint every listed terminal job not acted on recently, then run the self-check. The
// pages above the newest tracked time (plus ClockMargin) hold no outstanding job: the sweep
// starts below them when a cursor of the previous sweep leads there (see resume).
func (s *Sweeper) sweep(ctx context.Context) {
	start := s.o.Now()
	tr, err := s.outstanding(ctx)
	if err != nil {
		s.failed(err)
		return
	}
	n, oldest := tr.Count, tr.Oldest
	if n == 0 && s.o.Track == nil {
		s.idle(start)
		return
	}
	floor := oldest.Add(-s.o.TrackSlack)
	promise := s.promiseFloor(start)
	if !promise.IsZero() {
		promise = promise.Add(-s.o.TrackSlack)
	}
	// The deep tier: pages below deepCut are read every DeepEvery-th sweep only, while
	// tiered says their longer lag stays out of the p99.
	deepCut := start.Add(-s.deepAge())
	tiered, shallow := s.tier(deepCut)
	if shallow {
		// Promises are kept by the deep sweeps (within DeepEvery intervals, well within the
		// safety interval); a shallow sweep pages down to the oldest remembered job above the
		// deep tier, and below it only as deep as pays.
		promise = s.shallowFloor(deepCut)
	}
	// skip: every job created after it is untracked (BRIDGE_TRACK_ALL needs them all).
	var skip time.Time
	if s.o.Track == nil && !tr.Newest.IsZero() {
		skip = tr.Newest.Add(ClockMargin)
	}
	if shallow && !skip.IsZero() && skip.Before(deepCut) {
		// Every outstanding job lies in the deep tier: nothing for this sweep to read.
		s.finish(start, nil, skip, false, 0, 0, true, true)
		return
	}
	cursor, skipped := s.resume(skip)
	// The hints of this sweep run while it pages; it ends when they have.
	hints := &hintRun{sem: make(chan struct{}, hintWorkers)}
	defer hints.wg.Wait()
	seen := map[string]struct{}{}
	var top, bottom time.Time
	var marks []mark
	pages, dups, end := 0, 0, false
	read := 0    // pages of the current descent (the cost model's pace)
	tracked := 0 // listed jobs of the self-check's sample: the density of tracked jobs
	for {
		if s.o.Lease != nil && !s.o.Lease.Held() {
			return
		}
		if err := s.limiter.Wait(ctx); err != nil {
			return
		}
		l, err := s.list.ListJobs(ctx, reducto.ListOptions{Cursor: cursor, Limit: PageLimit, ExcludeConfigs: true})
		if err != nil {
			if ctx.Err() != nil {
				return
			}
			s.m.ListPage(false)
			if skipped && read == 0 {
				s.resumeFailed("a resumed page failed", err)
				cursor, skipped = "", false // from the top instead
				continue
			}
			s.failed(err)
			return
		}
		s.m.ListPage(true)
		pages++
		if skipped && read == 0 {
			if newest := newestCreated(l.Jobs); newest.Before(skip) {
				// The cursor led below the skipped pages' end: jobs between may be tracked.
				s.resumeFailed("a resumed page started below the newest tracked time", nil)
				cursor, skipped = "", false
				continue
			}
			s.resumed()
		}
		read++
		if cursor != "" {
			marks = append(marks, mark{cursor: cursor, newest: newestCreated(l.Jobs)})
		}
		var due []reducto.JobSummary
		for _, j := range l.Jobs {
			if _, dup := seen[j.ID]; dup {
				dups++ // offset cursors: jobs created meanwhile shift the next page
				continue
			}
			seen[j.ID] = struct{}{}
			if s.sawKnown(j.ID, j.CreatedAt) {
				tracked++
			}
			if !j.CreatedAt.IsZero() {
				if top.IsZero() || j.CreatedAt.After(top) {
					top = j.CreatedAt
				}
				if bottom.IsZero() || j.CreatedAt.Before(bottom) {
					bottom = j.CreatedAt
				}
			}
			s.track(ctx, j.ID)
			if j.Status.Terminal() && s.due(j.ID, start) {
				due = append(due, j)
			}
		}
		s.hint(ctx, hints, due, deepCut)
		if l.NextCursor == "" || len(l.Jobs) == 0 {
			end = true
			break
		}
		if n == 0 || bottom.IsZero() || bottom.Before(floor) {
			break
		}
		if shallow && bottom.Before(deepCut) {
			break // the deep tier waits for its sweep; its coverage is that sweep's
		}
		// Jobs told covered are paged down to (their polls are far away); below them, only
		// as deep as pays.
		if (promise.IsZero() || bottom.Before(promise)) && !worthPaging(s.depth(n, oldest, start, top, bottom, floor, read, tracked, tiered && bottom.Before(deepCut))) {
			break
		}
		cursor = l.NextCursor
	}
	hints.wg.Wait()
	s.mu.Lock()
	s.marks = marks
	s.mu.Unlock()
	s.finish(start, seen, bottom, end, pages, dups, shallow, skipped)
}

// newestCreated is the newest created_at of a page (zero when none).
func newestCreated(jobs []reducto.JobSummary) time.Time {
	var t time.Time
	for _, j := range jobs {
		if j.CreatedAt.After(t) {
			t = j.CreatedAt
		}
	}
	return t
}

// resume picks where a sweep starts: the cursor of the previous sweep's deepest page whose
// newest job was created at or after skip, so that the pages above it (all created after
// every outstanding job) are not read again; "" (the top) when none, when skip is zero, or
// when cursors proved not to resume (an offset cursor resumes a little higher each time,
// which only repeats entries).
func (s *Sweeper) resume(skip time.Time) (cursor string, skipped bool) {
	if skip.IsZero() {
		return "", false
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.noSkip {
		return "", false
	}
	var best *mark
	for i := range s.marks {
		m := &s.marks[i]
		if !m.newest.Before(skip) && (best == nil || m.newest.Before(best.newest)) {
			best = m
		}
	}
	if best == nil {
		return "", false
	}
	return best.cursor, true
}

// resumed records a resumed page that started where expected.
func (s *Sweeper) resumed() {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.skipFails = 0
}

// resumeFailed records a resumed page that failed or started too low: the sweep reads from
// the top instead, and after MissSweeps in a row every sweep does (WARN).
func (s *Sweeper) resumeFailed(why string, err error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.marks = nil
	if s.skipFails++; s.skipFails < MissSweeps {
		s.log.Debug("list sweep: "+why+"; reading from the top", "error", err)
		return
	}
	s.noSkip = true
	s.log.Warn("list sweep: "+why+" "+"several times; every sweep reads from the top from now on", "error", err)
}

// shallowFloor is the oldest creation, not before deepCut, of a remembered job: its
// created_at once listed, else its tracked time minus TrackSlack (zero when none).
func (s *Sweeper) shallowFloor(deepCut time.Time) time.Time {
	s.mu.Lock()
	defer s.mu.Unlock()
	var floor time.Time
	for _, j := range s.known {
		at := j.created
		if at.IsZero() {
			at = j.trackedAt.Add(-s.o.TrackSlack)
		}
		if !at.Before(deepCut) && (floor.IsZero() || at.Before(floor)) {
			floor = at
		}
	}
	return floor
}

// tier counts a sweep begun and reports whether the deep tier is read only every DeepEvery
// sweeps (tiered: deep jobs are at most DeepShare of at least deepMinEnds reported jobs, and
// DeepEvery intervals fit twice in the safety interval, so that a covered deep job is found
// well before its safety-net poll) and whether this sweep leaves it out (shallow).
func (s *Sweeper) tier(deepCut time.Time) (tiered, shallow bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.sweeps++
	tiered = DeepEvery*s.o.Interval <= s.o.SafetyInterval/2 &&
		s.ends >= deepMinEnds && s.deepEnds <= DeepShare*s.ends && s.oldKnown(deepCut) <= deepMaxOld
	return tiered, tiered && (s.sweeps-1)%DeepEvery != 0
}

// deepAge is the deep tier's age: DeepAge, or more when more than 1-deepQuantile of the
// jobs the sweep reported (deepMinEnds of them at least) were older than that at their
// report, so that deep jobs stay a small share of the ends whatever the workload's durations.
func (s *Sweeper) deepAge() time.Duration {
	s.mu.Lock()
	defer s.mu.Unlock()
	if len(s.ages) < deepMinEnds {
		return s.o.DeepAge
	}
	sorted := slices.Clone(s.ages)
	slices.Sort(sorted)
	q := sorted[min(len(sorted)-1, int(deepQuantile*float64(len(sorted))))]
	return max(s.o.DeepAge, time.Duration(q*float64(time.Second)))
}

// oldKnown is how many remembered tracked jobs were tracked before deepCut. s.mu is held.
func (s *Sweeper) oldKnown(cut time.Time) int {
	old := 0
	for _, j := range s.known {
		if j.trackedAt.Before(cut) {
			old++
		}
	}
	return old
}

// sawKnown reports whether id is in the self-check's sample of tracked jobs, and records
// its created_at when it is.
func (s *Sweeper) sawKnown(id string, created time.Time) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	j, ok := s.known[id]
	if ok && !created.IsZero() {
		j.created = created
	}
	return ok
}

// depth is the cost model's input after pages pages, bottom the oldest created_at read,
// tracked the listed jobs of the self-check's sample (scaled to the outstanding count when the
// sample holds fewer: bounded, or another replica's deliveries).
// deep: the next pages are the deep tier's, read every DeepEvery sweeps, so each costs that
// much less per second.
func (s *Sweeper) depth(n uint64, oldest, start, top, bottom, floor time.Time, pages, tracked int, deep bool) depth {
	s.mu.Lock()
	defer s.mu.Unlock()
	density := float64(tracked)
	if k := len(s.known); k > 0 && uint64(k) < n {
		density *= float64(n) / float64(k)
	}
	edge := bottom.Add(s.o.TrackSlack) // jobs tracked before it may be below the pages read
	var below float64
	if len(s.known) >= 20 {
		k := 0
		for _, j := range s.known {
			if j.trackedAt.Before(edge) {
				k++
			}
		}
		below = float64(k) / float64(len(s.known))
	} else if span := start.Sub(oldest); span > 0 {
		below = min(1, max(0, float64(edge.Sub(oldest))/float64(span)))
	}
	interval := s.o.Interval
	if deep {
		interval *= DeepEvery
	}
	return depth{
		outstanding: float64(n), below: below, pages: pages, span: top.Sub(bottom), tracked: density,
		remaining: bottom.Sub(floor), interval: interval, pollEvery: s.o.PollInterval,
		safetyEvery: s.o.SafetyInterval,
	}
}

// due reports whether a listed terminal job should be hinted now, and marks it.
func (s *Sweeper) due(id string, now time.Time) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	if at, ok := s.acted[id]; ok && (at.IsZero() || now.Before(at)) {
		return false
	}
	s.acted[id] = now.Add(hintRetry)
	return true
}

// track tracks a listed job once (BRIDGE_TRACK_ALL).
func (s *Sweeper) track(ctx context.Context, id string) {
	if s.o.Track == nil {
		return
	}
	s.mu.Lock()
	_, done := s.ensured[id]
	s.mu.Unlock()
	if done {
		return
	}
	if err := s.o.Track(ctx, id); err != nil {
		s.log.Warn("track listed job failed", "job_id", id, "error", err)
		return
	}
	s.mu.Lock()
	s.ensured[id] = struct{}{}
	s.mu.Unlock()
}

// hintRun is the hints of one sweep: at most cap(sem) at once, wg for their end.
type hintRun struct {
	sem chan struct{}
	wg  sync.WaitGroup
}

// hint starts fetching the due jobs in run, without waiting for them (only for a free
// place), counting the reported ones created before deepCut as deep ends.
func (s *Sweeper) hint(ctx context.Context, run *hintRun, jobs []reducto.JobSummary, deepCut time.Time) {
	for _, j := range jobs {
		id := j.ID
		select {
		case run.sem <- struct{}{}:
		case <-ctx.Done():
			return
		}
		run.wg.Go(func() {
			defer func() { <-run.sem }()
			reported, err := s.hints.HintTracked(ctx, id)
			s.mu.Lock()
			defer s.mu.Unlock()
			switch {
			case err != nil:
				delete(s.acted, id) // ask again next sweep
				s.log.Debug("hint from the list failed", "job_id", id, "error", err)
			case reported:
				s.acted[id] = time.Time{} // never again
				delete(s.known, id)
				s.ends++
				if !j.CreatedAt.IsZero() {
					if j.CreatedAt.Before(deepCut) {
						s.deepEnds++
					}
					s.age(s.o.Now().Sub(j.CreatedAt))
				}
				s.m.ListReported()
			}
		})
	}
}

// age remembers a reported job's age (s.mu held).
func (s *Sweeper) age(d time.Duration) {
	if len(s.ages) < maxAges {
		s.ages = append(s.ages, d.Seconds())
		return
	}
	s.ages[s.agesNext] = d.Seconds()
	s.agesNext = (s.agesNext + 1) % maxAges
}

// idle records a sweep with nothing tracked: nothing to page, coverage for what comes next.
func (s *Sweeper) idle(now time.Time) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.cov = Coverage{Healthy: s.healthy(), Horizon: now}
	s.covUntil = now.Add(3 * s.o.Interval)
	s.m.SweepDepth(0)
}

func (s *Sweeper) healthy() bool { return s.clean >= s.needClean && s.failures == 0 }

// failed records a sweep that could not page (or count the outstanding jobs): MissSweeps
// in a row withdraw coverage (until then it lapses on its own once stale).
func (s *Sweeper) failed(err error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.failures++
	s.clean = 0
	if s.failures < MissSweeps {
		s.log.Debug("list sweep failed", "error", err)
		return
	}
	if s.failures == MissSweeps {
		s.log.Warn("list sweep failing; coverage withdrawn, covered jobs fall back to per-job polling", "sweeps", s.failures, "error", err)
	}
	s.withdraw()
}

// withdraw ends coverage until enough clean sweeps.
func (s *Sweeper) withdraw() {
	s.clean, s.needClean = 0, MissSweeps
	s.cov.Healthy = false
	s.m.SweepHealthy(false)
}

// finish runs the self-check after a sweep that read pages down to bottom (or to the end of
// the list) and records the coverage. A shallow sweep (the deep tier left out) keeps what it
// knows of the deep tier, and the coverage of the latest deep sweep while it is fresh; a
// skipped one (the top pages left out) what it knows of the top.
func (s *Sweeper) finish(start time.Time, seen map[string]struct{}, bottom time.Time, end bool, pages, dups int, shallow, skipped bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if !shallow && !skipped {
		for id, at := range s.acted {
			if _, ok := seen[id]; !ok && (at.IsZero() || !start.Before(at)) {
				delete(s.acted, id) // below the pages read: no longer listed
			}
		}
		for id := range s.ensured {
			if _, ok := seen[id]; !ok {
				delete(s.ensured, id)
			}
		}
	}
	misses := 0
	for id, j := range s.known {
		if _, ok := seen[id]; ok {
			j.seen, j.misses = true, 0
			continue
		}
		if j.seen {
			continue // listed before, now below the pages read or gone: nothing to expect
		}
		// Created no earlier than s.o.TrackSlack before its tracking, and before the sweep began:
		// the list must show it when that lies within the pages read.
		inRange := end || !j.trackedAt.Add(-s.o.TrackSlack).Before(bottom)
		if !inRange || !j.trackedAt.Before(start.Add(-s.o.Interval)) {
			continue
		}
		if j.misses++; j.misses >= MissSweeps {
			misses++
			s.m.SweepMiss()
			delete(s.known, id)
			if len(s.uncovered) >= maxKnown {
				clear(s.uncovered)
			}
			s.uncovered[id] = struct{}{}
			s.log.Warn("list sweep: a tracked job the list should show is missing; coverage withdrawn, per-job polling",
				"job_id", id, "tracked_at", j.trackedAt, "sweeps", j.misses)
		}
	}
	s.failures = 0
	if misses > 0 {
		s.withdraw()
	} else if s.clean++; !s.cov.Healthy && s.healthy() {
		if s.needClean > 1 {
			s.log.Info("list sweep healthy again; covered jobs polled as a safety net only", "sweeps", s.clean)
		}
		s.m.SweepHealthy(true)
	}
	horizon := time.Time{}
	if !end {
		horizon = bottom.Add(s.o.TrackSlack)
	}
	cov := Coverage{Healthy: s.healthy(), All: end, Horizon: horizon}
	now := s.o.Now()
	switch {
	case !shallow:
		s.deep, s.deepUntil = cov, now.Add((DeepEvery+2)*s.o.Interval+now.Sub(start))
	case now.Before(s.deepUntil) && !cov.All && (s.deep.All || s.deep.Horizon.Before(cov.Horizon)):
		cov.All, cov.Horizon = s.deep.All, s.deep.Horizon
	}
	s.cov = cov
	s.covUntil = now.Add(3*s.o.Interval + now.Sub(start))
	s.m.SweepDepth(pages)
	s.log.Debug("list sweep", "pages", pages, "shallow", shallow, "skipped", skipped, "listed", len(seen), "repeated", dups, "bottom", bottom, "end", end, "healthy", s.cov.Healthy)
}
