package sweep

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/reducto-bridge/reducto-bridge/internal/logtest"
	"github.com/reducto-bridge/reducto-bridge/metrics"
	"github.com/reducto-bridge/reducto-bridge/reducto"
)

func TestWorthPaging(t *testing.T) {
	base := depth{outstanding: 10000, below: 0.5, pages: 1, span: 50 * time.Second, remaining: 100 * time.Second,
		interval: time.Second, pollEvery: 30 * time.Second, safetyEvery: time.Minute}
	tests := []struct {
		name string
		edit func(*depth)
		want bool
	}{
		// 2 pages more cost 2 req/s; 5,000 stragglers save 5000*(1/30-1/60) = 83 req/s.
		{"many stragglers: page on", func(*depth) {}, true},
		// 10 stragglers save 0.17 req/s < 2 req/s.
		{"few stragglers: poll them", func(d *depth) { d.outstanding = 20 }, false},
		// 120 stragglers save exactly 2 req/s: the tie pages.
		{"break-even pages", func(d *depth) { d.outstanding = 240 }, true},
		{"119 stragglers: just not", func(d *depth) { d.outstanding = 238 }, false},
		{"floor reached", func(d *depth) { d.remaining = 0 }, false},
		{"no span known", func(d *depth) { d.span = 0 }, false},
		// Every job created at once (span 0): 5,000 stragglers at 450 tracked per page need 12
		// pages, 12 req/s < 83 req/s.
		{"no span, tracked density: page on", func(d *depth) { d.span, d.tracked = 0, 450 }, true},
		// 240 stragglers save 4 req/s; at 60 per page, 4 pages cost 4 req/s; at 50, 5.
		{"no span, density break-even", func(d *depth) { d.span, d.tracked, d.outstanding = 0, 60, 480 }, true},
		{"no span, too sparse", func(d *depth) { d.span, d.tracked, d.outstanding = 0, 50, 480 }, false},
		// The fewer pages win: the span says 2 pages (2 req/s, the saving), the density 6.
		{"span and density: the fewer pages", func(d *depth) { d.tracked, d.outstanding = 20, 240 }, true},
		// A sparser sweep makes each page cheaper per second.
		{"slow sweeps: cheaper pages", func(d *depth) { d.outstanding, d.interval = 60, 30*time.Second }, true},
		// When the safety net polls as often as the backoff, coverage saves nothing.
		{"safety net as frequent as polls", func(d *depth) { d.safetyEvery = d.pollEvery }, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			d := base
			tt.edit(&d)
			if got := worthPaging(d); got != tt.want {
				t.Errorf("worthPaging(%+v) = %v, want %v", d, got, tt.want)
			}
		})
	}
}

// fakeList is an account's job list, newest first, served by pages of the limit asked, with a
// numeric cursor. It can omit ids, repeat the previous page's last entries (an offset cursor
// shifted by new jobs) and fail.
type fakeList struct {
	mu      sync.Mutex
	jobs    []reducto.JobSummary
	omit    map[string]bool
	repeat  int   // entries of the previous page repeated at the start of the next
	fail    error // every page fails
	pages   int
	cursors []string
}

func (l *fakeList) ListJobs(ctx context.Context, o reducto.ListOptions) (*reducto.JobList, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.pages++
	l.cursors = append(l.cursors, o.Cursor)
	if o.Limit != PageLimit || !o.ExcludeConfigs {
		return nil, fmt.Errorf("list options %+v, want limit %d and exclude_configs", o, PageLimit)
	}
	if l.fail != nil {
		return nil, l.fail
	}
	start := 0
	if o.Cursor != "" {
		fmt.Sscan(o.Cursor, &start)
		start = max(0, start-l.repeat)
	}
	var page []reducto.JobSummary
	i := start
	for ; i < len(l.jobs) && len(page) < o.Limit; i++ {
		if !l.omit[l.jobs[i].ID] {
			page = append(page, l.jobs[i])
		}
	}
	out := &reducto.JobList{Jobs: page}
	if i < len(l.jobs) {
		out.NextCursor = fmt.Sprint(i)
	}
	return out, nil
}

func (l *fakeList) set(f func(l *fakeList)) {
	l.mu.Lock()
	defer l.mu.Unlock()
	f(l)
}

func (l *fakeList) pageCount() int {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.pages
}

// fakeHints records hinted ids; ids in tracked are reported.
type fakeHints struct {
	mu      sync.Mutex
	tracked map[string]bool
	hinted  map[string]int
}

func (h *fakeHints) HintTracked(_ context.Context, id string) (bool, error) {
	h.mu.Lock()
	defer h.mu.Unlock()
	h.hinted[id]++
	return h.tracked[id], nil
}

func (h *fakeHints) count(id string) int {
	h.mu.Lock()
	defer h.mu.Unlock()
	return h.hinted[id]
}

// account is n jobs created every gap, the newest at newest; ids j0 (newest) to j<n-1>.
func account(n int, newest time.Time, gap time.Duration, status reducto.Status) []reducto.JobSummary {
	jobs := make([]reducto.JobSummary, n)
	for i := range jobs {
		jobs[i] = reducto.JobSummary{ID: fmt.Sprintf("j%d", i), Status: status, CreatedAt: newest.Add(-time.Duration(i) * gap)}
	}
	return jobs
}

func fixed(n uint64, oldest time.Time) Outstanding {
	return func(context.Context) (Tracked, error) { return Tracked{Count: n, Oldest: oldest}, nil }
}

// TestPagingStopsAtTheOldestTrackedJob: 3,000 jobs 100 ms apart; the oldest tracked job was
// tracked 120 s ago, so the floor (minus DefaultTrackSlack) is 150 s ago, job 1500.
//   - When the self-check's sample says most tracked jobs are that old, the sweep reads pages
//     1-4 (jobs 0-1999: page 4 is the first below the floor) and stops, never pages 5-6.
//   - With jobs tracked evenly over those 120 s (no sample), page 3 (down to 149.9 s) leaves
//     only the jobs tracked in the first 0.1 s possibly below it: not worth a page.
//   - With few outstanding jobs the cost model stops after the first page: polling them is
//     cheaper than paging down to them.
func TestPagingStopsAtTheOldestTrackedJob(t *testing.T) {
	now := time.Now()
	for _, tt := range []struct {
		name        string
		outstanding uint64
		sample      bool
		pages       int
	}{
		{"many outstanding, most of them old: down to the floor", 10000, true, 4},
		{"many outstanding, tracked evenly: as deep as pays", 10000, false, 3},
		{"few outstanding: the first page only", 10, false, 1},
	} {
		t.Run(tt.name, func(t *testing.T) {
			l := &fakeList{jobs: account(3000, now, 100*time.Millisecond, "Pending")}
			s, err := New(l, &fakeHints{hinted: map[string]int{}}, fixed(tt.outstanding, now.Add(-120*time.Second)),
				Options{MaxRate: 1000, Now: func() time.Time { return now }})
			if err != nil {
				t.Fatal(err)
			}
			if tt.sample {
				for i := range 30 {
					s.Covers(fmt.Sprintf("old%d", i), now.Add(-120*time.Second))
				}
			}
			s.sweep(t.Context())
			if l.pages != tt.pages {
				t.Errorf("pages read = %d (cursors %q), want %d", l.pages, l.cursors, tt.pages)
			}
		})
	}
	// A job told covered has its poll up to SafetyInterval away: the sweep keeps paging down
	// to it though the cost model alone would stop (few outstanding jobs).
	t.Run("a job told covered is paged down to", func(t *testing.T) {
		l := &fakeList{jobs: account(3000, now, 100*time.Millisecond, "Pending")}
		n := uint64(10000)
		s, _ := New(l, &fakeHints{hinted: map[string]int{}},
			func(context.Context) (Tracked, error) {
				return Tracked{Count: n, Oldest: now.Add(-120 * time.Second)}, nil
			},
			Options{MaxRate: 1000, Now: func() time.Time { return now }})
		for i := range 30 {
			s.Covers(fmt.Sprintf("old%d", i), now.Add(-120*time.Second))
		}
		s.sweep(t.Context()) // 4 pages: horizon 199.9 s + 30 s ago
		if !s.Covers("old-covered", now.Add(-110*time.Second)) {
			t.Fatal("a job tracked 110 s ago is not covered after the deep sweep")
		}
		n, l.pages = 10, 0
		s.sweep(t.Context())
		// Down to 110 s + 30 s ago: job 1400 is on page 3.
		if l.pages != 3 {
			t.Errorf("pages read = %d (cursors %q), want 3: down to the covered job", l.pages, l.cursors)
		}
	})
	// Every job created at the same time (a backlog tracked at once): the created_at span of a
	// page is zero, so only the density of tracked jobs per page tells how many pages remain;
	// 2,000 tracked among 4,000 listed are paged to the end of the list.
	t.Run("equal created_at: paged fully", func(t *testing.T) {
		created := now.Add(-10 * time.Second)
		jobs := account(4000, created, 0, "Pending")
		l := &fakeList{jobs: jobs}
		s, _ := New(l, &fakeHints{hinted: map[string]int{}}, fixed(2000, created),
			Options{MaxRate: 1000, Now: func() time.Time { return now }})
		for i := 0; i < len(jobs); i += 2 {
			s.Covers(jobs[i].ID, created)
		}
		s.sweep(t.Context())
		if l.pages != 8 {
			t.Errorf("pages read = %d (cursors %q), want all 8", l.pages, l.cursors)
		}
		if !s.Covers("late", created) {
			t.Error("a job tracked with the backlog is not covered after the full sweep")
		}
	})
	t.Run("nothing outstanding: no page", func(t *testing.T) {
		l := &fakeList{jobs: account(10, now, time.Second, "Completed")}
		s, _ := New(l, &fakeHints{hinted: map[string]int{}}, fixed(0, time.Time{}), Options{})
		s.sweep(t.Context())
		if l.pages != 0 {
			t.Errorf("pages read = %d, want 0", l.pages)
		}
	})
}

// TestTerminalJobsHintedOnce: every listed terminal job is hinted once, however often it is
// listed (repeated entries of an offset cursor, later sweeps); running ones never.
func TestTerminalJobsHintedOnce(t *testing.T) {
	now := time.Now()
	jobs := account(1200, now, 10*time.Millisecond, "Completed")
	jobs[3].Status, jobs[700].Status = "Pending", "InProgress"
	l := &fakeList{jobs: jobs, repeat: 20}
	h := &fakeHints{hinted: map[string]int{}, tracked: map[string]bool{"j5": true, "j600": true}}
	s, _ := New(l, h, fixed(100000, now.Add(-time.Hour)), Options{MaxRate: 1000, Now: func() time.Time { return now }})
	s.sweep(t.Context())
	s.sweep(t.Context())
	if l.pages != 6 {
		t.Errorf("pages = %d, want 3 per sweep", l.pages)
	}
	for _, id := range []string{"j0", "j5", "j499", "j500", "j600", "j1199"} {
		if n := h.count(id); n != 1 {
			t.Errorf("%s hinted %d times, want 1", id, n)
		}
	}
	for _, id := range []string{"j3", "j700"} {
		if n := h.count(id); n != 0 {
			t.Errorf("running job %s hinted %d times", id, n)
		}
	}
}

// TestSelfCheckWithdrawsCoverage: a tracked job the list never shows, though its tracked time
// lies within the pages read, withdraws coverage after MissSweeps sweeps (WARN, metrics);
// MissSweeps clean sweeps restore it for the others, not for the missing job. Failing pages
// withdraw it too.
func TestSelfCheckWithdrawsCoverage(t *testing.T) {
	now := time.Now()
	clock := func() time.Time { return now }
	logs := &logtest.Buffer{}
	m := metrics.New()
	l := &fakeList{jobs: account(100, now, time.Second, "Pending"), omit: map[string]bool{"j10": true}}
	s, err := New(l, &fakeHints{hinted: map[string]int{}}, fixed(2, now.Add(-90*time.Second)),
		Options{Interval: time.Millisecond, MaxRate: 1000, Now: clock, Metrics: m,
			Logger: slog.New(slog.NewTextHandler(logs, nil))})
	if err != nil {
		t.Fatal(err)
	}
	sweeps := func(n int) {
		for range n {
			s.sweep(t.Context())
		}
	}
	trackedAt := func(i int) time.Time { return now.Add(-time.Duration(i) * time.Second) }
	// The poller tells the sweeper of both jobs before any sweep: neither is covered yet.
	if s.Covers("j10", trackedAt(10)) || s.Covers("j20", trackedAt(20)) {
		t.Fatal("covered before any sweep")
	}
	sweeps(1)
	if !s.Covers("j20", trackedAt(20)) {
		t.Fatal("a listed job is not covered after a clean sweep")
	}
	sweeps(MissSweeps - 1)
	if s.Covers("j20", trackedAt(20)) || s.Covers("j10", trackedAt(10)) {
		t.Error("coverage not withdrawn after the list missed a tracked job for MissSweeps sweeps")
	}
	if !strings.Contains(logs.String(), "level=WARN") || !strings.Contains(logs.String(), "job_id=j10") {
		t.Errorf("no WARN naming the missing job:\n%s", logs)
	}
	if got := gauge(t, m, "reducto_bridge_list_sweep_healthy"); got != 0 {
		t.Errorf("healthy gauge %v, want 0", got)
	}
	if got := gauge(t, m, "reducto_bridge_list_sweep_misses_total"); got != 1 {
		t.Errorf("misses %v, want 1", got)
	}
	sweeps(MissSweeps - 1)
	if s.Covers("j20", trackedAt(20)) {
		t.Error("coverage back before MissSweeps clean sweeps")
	}
	sweeps(1)
	if !s.Covers("j20", trackedAt(20)) {
		t.Error("coverage not restored after MissSweeps clean sweeps")
	}
	if s.Covers("j10", trackedAt(10)) {
		t.Error("the job the list misses is covered again")
	}
	if got := gauge(t, m, "reducto_bridge_list_sweep_healthy"); got != 1 {
		t.Errorf("healthy gauge %v, want 1", got)
	}

	// Pages failing: coverage goes after MissSweeps failed sweeps.
	l.set(func(l *fakeList) { l.fail = errors.New("503 from GET /jobs") })
	sweeps(MissSweeps)
	if s.Covers("j20", trackedAt(20)) {
		t.Error("coverage kept while pages fail")
	}
	if got := gauge(t, m, "reducto_bridge_list_sweep_healthy"); got != 0 {
		t.Errorf("healthy gauge %v while pages fail, want 0", got)
	}
	if !strings.Contains(logs.String(), "list sweep failing") {
		t.Errorf("no warning about failing pages:\n%s", logs)
	}
}

// gauge reads one unlabelled metric, or the sum of a labelled one.
func gauge(t *testing.T, m *metrics.Metrics, name string) float64 {
	t.Helper()
	mfs, err := m.Registry.Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, mf := range mfs {
		if mf.GetName() != name {
			continue
		}
		sum := 0.0
		for _, mt := range mf.GetMetric() {
			switch {
			case mt.GetGauge() != nil:
				sum += mt.GetGauge().GetValue()
			case mt.GetCounter() != nil:
				sum += mt.GetCounter().GetValue()
			}
		}
		return sum
	}
	return 0
}

// TestTrackAll: with Track set (BRIDGE_TRACK_ALL) every listed job is tracked once, even with
// nothing tracked yet, and terminal ones are hinted.
func TestTrackAll(t *testing.T) {
	now := time.Now()
	jobs := account(3, now, time.Second, "Completed")
	jobs[1].Status = "Pending"
	l := &fakeList{jobs: jobs}
	h := &fakeHints{hinted: map[string]int{}}
	var mu sync.Mutex
	tracked := map[string]int{}
	s, _ := New(l, h, fixed(0, time.Time{}), Options{MaxRate: 1000, Now: func() time.Time { return now },
		Track: func(_ context.Context, id string) error {
			mu.Lock()
			defer mu.Unlock()
			tracked[id]++
			return nil
		}})
	s.sweep(t.Context())
	s.sweep(t.Context())
	for _, j := range jobs {
		if tracked[j.ID] != 1 {
			t.Errorf("%s tracked %d times, want 1", j.ID, tracked[j.ID])
		}
	}
	if h.count("j0") != 1 || h.count("j2") != 1 || h.count("j1") != 0 {
		t.Errorf("hints %v, want j0 and j2 once", h.hinted)
	}
}

// TestDeepTier: 3,000 jobs 100 ms apart, the oldest tracked job 250 s old (floor: job 2800,
// page 6), DeepAge 150 s (job 1500, page 4). While deep jobs are at most DeepShare of the
// reported ones, sweeps 2 to DeepEvery stop at page 4 and every DeepEvery-th sweep reads down to the
// floor; the deep sweep's coverage holds for the deep jobs until it is stale. Reported jobs
// are counted as ends, deep or not, by their created_at.
func TestDeepTier(t *testing.T) {
	now := time.Now()
	run := func(t *testing.T, ends, deepEnds float64, o Options, sweeps int) (*Sweeper, []int, *time.Time) {
		jobs := account(3000, now, 100*time.Millisecond, "Pending")
		jobs[10].Status, jobs[2000].Status = "Completed", "Completed"
		l := &fakeList{jobs: jobs}
		clock := now
		o.MaxRate, o.Now = 1000, func() time.Time { return clock }
		if o.Interval == 0 {
			o.Interval = time.Second
		}
		s, err := New(l, &fakeHints{hinted: map[string]int{}, tracked: map[string]bool{"j10": true, "j2000": true}},
			fixed(10000, now.Add(-250*time.Second)), o)
		if err != nil {
			t.Fatal(err)
		}
		s.ends, s.deepEnds = ends, deepEnds
		for i := range 30 {
			s.Covers(fmt.Sprintf("old%d", i), now.Add(-250*time.Second))
		}
		var pages []int
		for range sweeps {
			before := l.pageCount()
			s.sweep(t.Context())
			pages = append(pages, l.pageCount()-before)
		}
		return s, pages, &clock
	}
	// A backlog tracked at once crosses DeepAge together: many old jobs still outstanding turn
	// the tier off, however few of the ends were deep so far.
	t.Run("many old outstanding jobs: every sweep deep", func(t *testing.T) {
		s, _, _ := run(t, 1000, 5, Options{DeepAge: 150 * time.Second}, 0)
		for i := range deepMaxOld + 1 {
			s.Covers(fmt.Sprintf("backlog%d", i), now.Add(-200*time.Second))
		}
		l := s.list.(*fakeList)
		var pages []int
		for range 3 {
			before := l.pageCount()
			s.sweep(t.Context())
			pages = append(pages, l.pageCount()-before)
		}
		if fmt.Sprint(pages) != "[6 6 6]" {
			t.Errorf("pages per sweep = %v, want [6 6 6]", pages)
		}
	})
	t.Run("rare deep jobs: every 8th sweep", func(t *testing.T) {
		s, pages, clock := run(t, 1000, 5, Options{DeepAge: 150 * time.Second}, 2)
		if fmt.Sprint(pages) != "[6 4]" {
			t.Fatalf("pages per sweep = %v, want [6 4]", pages)
		}
		if s.ends != 1002 || s.deepEnds != 6 {
			t.Errorf("ends %v, deep %v; want 1002 and 6 (j2000 created 200 s ago)", s.ends, s.deepEnds)
		}
		// The deep sweep's horizon (299.9 s + 30 s ago) still covers a job tracked 200 s ago.
		if !s.Covers("deep", now.Add(-200*time.Second)) {
			t.Error("a deep job is not covered between deep sweeps")
		}
		// Once the deep sweep is older than DeepEvery+2 intervals, only the shallow horizon.
		*clock = now.Add((DeepEvery + 3) * time.Second)
		s.sweep(t.Context())
		if s.Covers("deep2", now.Add(-200*time.Second)) {
			t.Error("a deep job is covered by a stale deep sweep")
		}
		if !s.Covers("shallow", now.Add(-60*time.Second)) {
			t.Error("a shallow job is not covered")
		}
		var more []int
		l := s.list.(*fakeList)
		for range DeepEvery - 2 {
			before := l.pageCount()
			s.sweep(t.Context())
			more = append(more, l.pageCount()-before)
		}
		if more[len(more)-1] != 6 {
			t.Errorf("sweeps 4-%d read %v pages, want the last one (sweep %d) down to the floor", DeepEvery+1, more, DeepEvery+1)
		}
		for _, p := range more[:len(more)-1] {
			if p > 4 {
				t.Errorf("a shallow sweep read %d pages (%v)", p, more)
			}
		}
	})
	// The tail: 10 old stragglers, told covered. A shallow sweep no longer pages down to them
	// (the deep sweeps keep that promise): one page, as the cost model says; the deep sweep
	// still reads down to them.
	t.Run("old stragglers only: one page between deep sweeps", func(t *testing.T) {
		l := &fakeList{jobs: account(3000, now, 100*time.Millisecond, "Pending")}
		n := uint64(10000)
		s, _ := New(l, &fakeHints{hinted: map[string]int{}},
			func(context.Context) (Tracked, error) {
				return Tracked{Count: n, Oldest: now.Add(-250 * time.Second)}, nil
			},
			Options{Interval: time.Second, DeepAge: 150 * time.Second, MaxRate: 1000, Now: func() time.Time { return now }})
		s.ends = 1000
		s.sweep(t.Context()) // deep: many outstanding, down to the floor
		n = 10
		for i := range 10 {
			if !s.Covers(fmt.Sprintf("old%d", i), now.Add(-250*time.Second)) {
				t.Fatal("an old straggler is not covered after the deep sweep")
			}
		}
		var pages []int
		for range DeepEvery + 1 {
			before := l.pageCount()
			s.sweep(t.Context())
			pages = append(pages, l.pageCount()-before)
		}
		want := strings.Repeat("1 ", DeepEvery-1) + "6 1" // sweeps 2 to DeepEvery+2
		if got := strings.Trim(fmt.Sprint(pages), "[]"); got != want {
			t.Errorf("pages per sweep = %v, want [%s]", pages, want)
		}
	})
	for _, tt := range []struct {
		name           string
		ends, deepEnds float64
		o              Options
	}{
		{"deep jobs too many of the ends: every sweep deep", 1000, 20, Options{DeepAge: 150 * time.Second}},
		{"too few ends to trust: every sweep deep", 50, 0, Options{DeepAge: 150 * time.Second}},
		// DeepEvery intervals of 5 s exceed half of a 60 s safety interval.
		{"deep sweeps too rare for the safety net", 1000, 0, Options{DeepAge: 150 * time.Second, Interval: 5 * time.Second, SafetyInterval: time.Minute}},
	} {
		t.Run(tt.name, func(t *testing.T) {
			_, pages, _ := run(t, tt.ends, tt.deepEnds, tt.o, 3)
			if fmt.Sprint(pages) != "[6 6 6]" {
				t.Errorf("pages per sweep = %v, want [6 6 6]", pages)
			}
		})
	}
}

// TestSkipsJobsCreatedAfterTheNewestTracked: 3,000 jobs 100 ms apart; the newest tracked job
// was tracked 120 s ago, so every job created after 115 s ago (the newest tracked time plus
// ClockMargin: jobs 0-1149) is untracked. The first sweep reads from the top; the next ones
// resume from the cursor of its deepest page whose newest job is not older than that (page 3,
// cursor "1000"), never reading pages 1-2 again, and still hint the terminal jobs they list.
// With offset cursors (entries repeated) the resumed page starts a little higher: the same.
// With BRIDGE_TRACK_ALL every listed job matters: always from the top.
func TestSkipsJobsCreatedAfterTheNewestTracked(t *testing.T) {
	now := time.Now()
	tracked := Tracked{Count: 10000, Oldest: now.Add(-200 * time.Second), Newest: now.Add(-120 * time.Second)}
	for _, tt := range []struct {
		name     string
		repeat   int
		trackAll bool
		want     string // cursors of the second and third sweeps
	}{
		{"keyset", 0, false, `["1000" "1500" "2000" "1000" "1500" "2000"]`},
		{"offset cursors", 20, false, `["980" "1460" "1940" "980" "1460" "1940"]`},
		{"track all: from the top", 0, true, `["" "500" "1000" "1500" "2000" "" "500" "1000" "1500" "2000"]`},
	} {
		t.Run(tt.name, func(t *testing.T) {
			jobs := account(3000, now, 100*time.Millisecond, "Pending")
			jobs[1300].Status = "Completed"
			l := &fakeList{jobs: jobs, repeat: tt.repeat}
			h := &fakeHints{hinted: map[string]int{}, tracked: map[string]bool{"j1300": true}}
			o := Options{MaxRate: 1000, Now: func() time.Time { return now }}
			if tt.trackAll {
				o.Track = func(context.Context, string) error { return nil }
			}
			s, err := New(l, h, func(context.Context) (Tracked, error) { return tracked, nil }, o)
			if err != nil {
				t.Fatal(err)
			}
			for i := 1500; i < 1530; i++ { // the self-check's sample: listed jobs
				s.Covers(jobs[i].ID, jobs[i].CreatedAt)
			}
			s.sweep(t.Context())
			if l.pages != 5 {
				t.Fatalf("first sweep read %d pages (cursors %q), want 5: from the top down to the floor", l.pages, l.cursors)
			}
			h.set(func() { delete(h.hinted, "j1300"); h.tracked["j1300"] = false })
			s.mu.Lock()
			delete(s.acted, "j1300") // as if its hint had failed: listed again, hinted again
			s.mu.Unlock()
			l.cursors = nil
			s.sweep(t.Context())
			s.sweep(t.Context())
			if got := fmt.Sprintf("%q", l.cursors); got != tt.want {
				t.Errorf("cursors of the next two sweeps = %s, want %s", got, tt.want)
			}
			if h.count("j1300") != 1 {
				t.Errorf("j1300 (terminal, below the skipped pages) hinted %d times after the first sweep, want 1", h.count("j1300"))
			}
			if !s.Covers("new", now) {
				t.Error("a job tracked now is not covered after resumed sweeps")
			}
		})
	}
}

// TestResumeFallsBackToTheTop: a resumed page that starts below the newest tracked time (here
// the jobs between were deleted; with cursors that do not resume as assumed, the same) may
// have skipped tracked jobs: that sweep reads from the top, and after MissSweeps such sweeps
// every sweep does (WARN). A failing resumed page falls back the same way, without counting
// as a failed sweep.
func TestResumeFallsBackToTheTop(t *testing.T) {
	now := time.Now()
	tracked := Tracked{Count: 10000, Oldest: now.Add(-200 * time.Second), Newest: now.Add(-120 * time.Second)}
	logs := &logtest.Buffer{}
	l := &fakeList{jobs: account(3000, now, 100*time.Millisecond, "Pending")}
	s, _ := New(l, &fakeHints{hinted: map[string]int{}}, func(context.Context) (Tracked, error) { return tracked, nil },
		Options{MaxRate: 1000, Now: func() time.Time { return now }, Logger: slog.New(slog.NewTextHandler(logs, nil))})
	for i := range 30 {
		s.Covers(fmt.Sprintf("j%d", 2000+i), now.Add(-200*time.Second))
	}
	s.sweep(t.Context())
	// Jobs 1000-1199 gone: the page at cursor "1000" now starts at job 1200, 120 s old.
	l.set(func(l *fakeList) {
		l.omit = map[string]bool{}
		for i := 1000; i < 1200; i++ {
			l.omit[fmt.Sprintf("j%d", i)] = true
		}
		l.cursors = nil
	})
	s.sweep(t.Context())
	if got, want := fmt.Sprintf("%q", l.cursors), `["1000" "" "500" "1000" "1700" "2200"]`; got != want {
		t.Errorf("cursors = %s, want %s: the resumed page, then from the top", got, want)
	}
	// The next sweep resumes from the page above the gap, which starts where expected.
	l.set(func(l *fakeList) { l.cursors = nil })
	s.sweep(t.Context())
	if got, want := fmt.Sprintf("%q", l.cursors), `["500" "1000" "1700" "2200"]`; got != want {
		t.Errorf("cursors = %s, want %s: resumed above the gap", got, want)
	}
	if strings.Contains(logs.String(), "level=WARN") {
		t.Errorf("a WARN after one resumed page started too low:\n%s", logs)
	}

	// Cursors that lead deeper each time they are reused: after MissSweeps resumed pages
	// started too low, every sweep reads from the top.
	sl := &staleCursors{jobs: account(3000, now, 100*time.Millisecond, "Pending")}
	s3, _ := New(sl, &fakeHints{hinted: map[string]int{}}, func(context.Context) (Tracked, error) { return tracked, nil },
		Options{MaxRate: 1000, Now: func() time.Time { return now }, Logger: slog.New(slog.NewTextHandler(logs, nil))})
	for i := range 30 {
		s3.Covers(fmt.Sprintf("j%d", 2000+i), now.Add(-200*time.Second))
	}
	for range MissSweeps + 1 {
		sl.gen++
		s3.sweep(t.Context())
	}
	if !strings.Contains(logs.String(), "level=WARN") || !strings.Contains(logs.String(), "reads from the top") {
		t.Errorf("no WARN after %d resumed pages started too low:\n%s", MissSweeps, logs)
	}
	sl.gen++
	sl.firsts = nil
	s3.sweep(t.Context())
	if fmt.Sprint(sl.firsts) != "[true]" {
		t.Errorf("pages from the top in the last sweep: %v, want one descent from the top", sl.firsts)
	}

	// A failing resumed page: from the top in the same sweep, which is clean.
	l2 := &failOnCursor{fakeList: fakeList{jobs: account(3000, now, 100*time.Millisecond, "Pending")}, cursor: "1000"}
	s2, _ := New(l2, &fakeHints{hinted: map[string]int{}}, func(context.Context) (Tracked, error) { return tracked, nil },
		Options{MaxRate: 1000, Now: func() time.Time { return now }})
	for i := range 30 {
		s2.Covers(fmt.Sprintf("j%d", 2000+i), now.Add(-200*time.Second))
	}
	s2.sweep(t.Context())
	l2.fail = true
	l2.cursors = nil
	s2.sweep(t.Context())
	if got, want := fmt.Sprintf("%q", l2.cursors), `["1000" "" "500" "1000" "1500" "2000"]`; got != want {
		t.Errorf("cursors = %s, want %s", got, want)
	}
	if s2.failures != 0 || !s2.Covers("new", now) {
		t.Errorf("a failed resumed page counted as a failed sweep (failures %d)", s2.failures)
	}
}

// staleCursors serves pages by position with cursors "gen:pos": a cursor of an earlier
// generation (sl.gen, moved on by the test between sweeps) leads 600 entries deeper than it
// did. firsts records, per page, whether it was asked from the top.
type staleCursors struct {
	jobs   []reducto.JobSummary
	gen    int
	firsts []bool
}

func (l *staleCursors) ListJobs(_ context.Context, o reducto.ListOptions) (*reducto.JobList, error) {
	pos := 0
	if o.Cursor != "" {
		var gen int
		fmt.Sscanf(o.Cursor, "%d:%d", &gen, &pos)
		if gen < l.gen {
			pos += 600
		}
	} else {
		l.firsts = append(l.firsts, true)
	}
	end := min(len(l.jobs), pos+o.Limit)
	out := &reducto.JobList{Jobs: l.jobs[min(pos, end):end]}
	if end < len(l.jobs) {
		out.NextCursor = fmt.Sprintf("%d:%d", l.gen, end)
	}
	return out, nil
}

// failOnCursor fails the page of one cursor, once fail is set.
type failOnCursor struct {
	fakeList
	cursor string
	fail   bool
	once   bool
}

func (l *failOnCursor) ListJobs(ctx context.Context, o reducto.ListOptions) (*reducto.JobList, error) {
	if l.fail && !l.once && o.Cursor == l.cursor {
		l.once = true
		l.mu.Lock()
		l.cursors = append(l.cursors, o.Cursor)
		l.mu.Unlock()
		return nil, errors.New("400 invalid cursor")
	}
	return l.fakeList.ListJobs(ctx, o)
}

// TestShallowSweepWithNothingAboveTheDeepTier: every outstanding job was tracked before the
// deep tier's age, so a shallow sweep has no page to read: it reads none and keeps the deep
// sweep's coverage; every DeepEvery-th sweep still reads down to the floor.
func TestShallowSweepWithNothingAboveTheDeepTier(t *testing.T) {
	now := time.Now()
	tracked := Tracked{Count: 10000, Oldest: now.Add(-250 * time.Second), Newest: now.Add(-200 * time.Second)}
	jobs := account(3000, now, 100*time.Millisecond, "Pending")
	l := &fakeList{jobs: jobs}
	s, _ := New(l, &fakeHints{hinted: map[string]int{}}, func(context.Context) (Tracked, error) { return tracked, nil },
		Options{Interval: time.Second, DeepAge: 150 * time.Second, MaxRate: 1000, Now: func() time.Time { return now }})
	s.ends = 1000
	s.sweep(t.Context()) // deep: many outstanding, from the top down to the floor
	tracked.Count = 10
	for i := 2500; i < 2510; i++ {
		if !s.Covers(jobs[i].ID, jobs[i].CreatedAt) {
			t.Fatal("an old job is not covered after the deep sweep")
		}
	}
	pages := []int{l.pageCount()}
	for range DeepEvery {
		before := l.pageCount()
		s.sweep(t.Context())
		pages = append(pages, l.pageCount()-before)
	}
	// The next deep sweep resumes at job 1500 (the page whose newest job is the last one not
	// older than 195 s): 3 pages down to the floor.
	want := "6 " + strings.Repeat("0 ", DeepEvery-1) + "3"
	if got := strings.Trim(fmt.Sprint(pages), "[]"); got != want {
		t.Errorf("pages per sweep = %v, want [%s]", pages, want)
	}
	if !s.Covers("old-covered", now.Add(-250*time.Second)) {
		t.Error("an old job is not covered between deep sweeps")
	}
}

// TestDeepAgeFollowsReportedAges: the deep tier's age is DeepAge until deepMinEnds reported
// ages, then the larger of DeepAge and their 99.5th percentile.
func TestDeepAgeFollowsReportedAges(t *testing.T) {
	s, _ := New(&fakeList{}, &fakeHints{}, fixed(0, time.Time{}), Options{DeepAge: 135 * time.Second})
	for range deepMinEnds - 1 {
		s.age(400 * time.Second)
	}
	if got := s.deepAge(); got != 135*time.Second {
		t.Errorf("deep age with %d ages = %v, want DeepAge", deepMinEnds-1, got)
	}
	s.ages = nil
	for i := range 1000 {
		d := 20 * time.Second
		if i%100 == 0 {
			d = 300 * time.Second // 1%: above the 99.5th percentile's rank
		}
		s.age(d)
	}
	if got := s.deepAge(); got != 300*time.Second {
		t.Errorf("deep age with 1%% of ages at 300 s = %v, want 300s", got)
	}
	s.ages = nil
	for range maxAges + 10 {
		s.age(10 * time.Second)
	}
	if len(s.ages) != maxAges {
		t.Errorf("%d ages remembered, want at most %d", len(s.ages), maxAges)
	}
	if got := s.deepAge(); got != 135*time.Second {
		t.Errorf("deep age with short jobs only = %v, want DeepAge (its least)", got)
	}
}

func (h *fakeHints) set(f func()) {
	h.mu.Lock()
	defer h.mu.Unlock()
	f()
}

// TestShallowSweepPagesDownToListedJobs: a shallow sweep pages down to the oldest remembered
// job above the deep tier by its created_at once listed: a job created and tracked 140 s ago
// lies above a 150 s tier, though its tracked time minus the slack (170 s) does not. With few
// outstanding jobs the cost model alone would stop after the first page.
func TestShallowSweepPagesDownToListedJobs(t *testing.T) {
	now := time.Now()
	jobs := account(3000, now, 100*time.Millisecond, "Pending")
	l := &fakeList{jobs: jobs}
	n := uint64(10000)
	s, _ := New(l, &fakeHints{hinted: map[string]int{}},
		func(context.Context) (Tracked, error) {
			return Tracked{Count: n, Oldest: now.Add(-250 * time.Second)}, nil
		},
		Options{Interval: time.Second, DeepAge: 150 * time.Second, MaxRate: 1000, Now: func() time.Time { return now }})
	s.ends = 1000
	s.Covers(jobs[1400].ID, jobs[1400].CreatedAt)
	s.sweep(t.Context()) // deep, down to the floor: lists j1400
	n = 10
	before := l.pageCount()
	s.sweep(t.Context())
	if got := l.pageCount() - before; got != 3 {
		t.Errorf("shallow sweep read %d pages, want 3 (down to j1400, created 140 s ago)", got)
	}
}
