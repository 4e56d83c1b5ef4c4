package sweep_test

import (
	"context"
	"net/http/httptest"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/reducto-bridge/reducto-bridge/event"
	"github.com/reducto-bridge/reducto-bridge/internal/natstest"
	"github.com/reducto-bridge/reducto-bridge/poller"
	"github.com/reducto-bridge/reducto-bridge/publisher"
	"github.com/reducto-bridge/reducto-bridge/reducto"
	"github.com/reducto-bridge/reducto-bridge/reducto/reductosim"
	"github.com/reducto-bridge/reducto-bridge/subject"
	"github.com/reducto-bridge/reducto-bridge/sweep"
	"github.com/reducto-bridge/reducto-bridge/track"
)

const prefix = "reducto"

// hintFunc adapts a function to sweep.Hinter (the poller is made after the sweeper).
type hintFunc func(ctx context.Context, id string) (bool, error)

func (f hintFunc) HintTracked(ctx context.Context, id string) (bool, error) { return f(ctx, id) }

// trackState is the sweeper's Outstanding, read from the track stream as the bridge does.
func trackState(js jetstream.JetStream) sweep.Outstanding {
	return func(ctx context.Context) (sweep.Tracked, error) {
		s, err := js.Stream(ctx, subject.TrackStream)
		if err != nil {
			return sweep.Tracked{}, err
		}
		st := s.CachedInfo().State
		return sweep.Tracked{Count: st.Msgs, Oldest: st.FirstTime, Newest: st.LastTime}, nil
	}
}

// TestListFindsTrackedJobs: the simulator's account holds tracked and untracked jobs; the
// poller's own schedule is an hour (first poll, backoff and safety net), so only the list can
// find a job's end within the test. A tracked job that completes gets its event after exactly
// one GET /job; an untracked job that completes gets no event and no GET /job.
func TestListFindsTrackedJobs(t *testing.T) {
	s := natstest.RunServer(t)
	nc, js := natstest.JetStream(t, s)
	ctx := t.Context()
	pub, err := publisher.Setup(ctx, js, publisher.Options{Prefix: prefix, Source: "test", MaxAge: time.Hour, Duplicates: time.Minute})
	if err != nil {
		t.Fatal(err)
	}
	queue, err := track.Setup(ctx, js, track.Options{Prefix: prefix, AckWait: 30 * time.Second})
	if err != nil {
		t.Fatal(err)
	}
	sim, err := reductosim.New(reductosim.Options{APIKey: "sim-key", WebhookTick: -1})
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(sim)
	defer srv.Close()
	defer sim.Close()
	client, err := reducto.New(srv.URL, "sim-key")
	if err != nil {
		t.Fatal(err)
	}
	events := make(chan *nats.Msg, 10)
	sub, err := nc.ChanSubscribe(subject.EventsAll(prefix), events)
	if err != nil {
		t.Fatal(err)
	}
	defer sub.Unsubscribe()

	var p *poller.Poller
	sw, err := sweep.New(client, hintFunc(func(ctx context.Context, id string) (bool, error) { return p.HintTracked(ctx, id) }),
		trackState(js), sweep.Options{Interval: 50 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	p, err = poller.New(queue, client, pub, poller.Options{InitialInterval: time.Hour, MaxInterval: time.Hour,
		SweptPollInterval: time.Hour, Coverage: sw})
	if err != nil {
		t.Fatal(err)
	}
	runCtx, stop := context.WithCancel(context.Background())
	var wg sync.WaitGroup
	wg.Go(func() { p.Run(runCtx) })
	wg.Go(func() { sw.Run(runCtx) })
	defer func() { stop(); wg.Wait() }()

	// Untracked traffic around the tracked jobs, older and newer.
	var untracked []string
	for range 5 {
		untracked = append(untracked, sim.Create(reductosim.JobSpec{Duration: 200 * time.Millisecond}))
	}
	done := sim.Create(reductosim.JobSpec{Duration: 300 * time.Millisecond})
	never := sim.Create(reductosim.JobSpec{Outcome: reductosim.OutcomeNever}) // keeps sweeps going
	for range 5 {
		untracked = append(untracked, sim.Create(reductosim.JobSpec{Duration: 200 * time.Millisecond, Outcome: reductosim.OutcomeFail}))
	}
	for _, id := range []string{done, never} {
		if _, err := js.Publish(ctx, subject.Track(prefix, id), []byte(`{"metadata":{"via":"list"}}`)); err != nil {
			t.Fatal(err)
		}
	}

	select {
	case m := <-events:
		ev, err := event.Decode(m.Data)
		if err != nil {
			t.Fatal(err)
		}
		if ev.JobID != done || ev.Kind != event.Completed || string(ev.Metadata) != `{"via":"list"}` {
			t.Fatalf("event %s %s metadata %s, want %s completed with the track's metadata", ev.JobID, ev.Kind, ev.Metadata, done)
		}
	case <-time.After(15 * time.Second):
		t.Fatal("no event: the list sweep did not find the finished tracked job")
	}
	// More sweeps after the event, every untracked job finished meanwhile.
	lists := func() int64 { return sim.Stats().Requests[reductosim.EndpointJobs] }
	after := lists()
	natstest.WaitFor(t, func() bool {
		st := sim.Stats()
		for _, id := range untracked {
			if st.Jobs[id].Terminal.IsZero() {
				return false
			}
		}
		return lists() >= after+5
	})
	st := sim.Stats()
	if got := st.Jobs[done].Gets; got != 1 {
		t.Errorf("GET /job for the finished tracked job: %d, want 1", got)
	}
	if got := st.Jobs[never].Gets; got != 0 {
		t.Errorf("GET /job for the running tracked job: %d, want 0 (covered: its poll is an hour away)", got)
	}
	for _, id := range untracked {
		if got := st.Jobs[id].Gets; got != 0 {
			t.Errorf("untracked job %s: %d GET /job, want 0", id, got)
		}
		if ev, err := pub.Lookup(ctx, id); err != nil || ev != nil {
			t.Errorf("untracked job %s: event %v (%v), want none", id, ev, err)
		}
		if _, err := queue.Last(ctx, id); err != nil {
			t.Fatal(err)
		}
		if m, _ := queue.Last(ctx, id); m != nil {
			t.Errorf("untracked job %s was tracked", id)
		}
	}
	select {
	case m := <-events:
		t.Errorf("unexpected event on %s", m.Subject)
	default:
	}
	if m, _ := queue.Last(ctx, done); m != nil {
		t.Error("the reported job's track message is still there")
	}
}

// countingList serves one page of one running job and counts the pages asked.
type countingList struct {
	pages atomic.Int64
}

func (l *countingList) ListJobs(context.Context, reducto.ListOptions) (*reducto.JobList, error) {
	l.pages.Add(1)
	return &reducto.JobList{Jobs: []reducto.JobSummary{{ID: "r", Status: "Pending", CreatedAt: time.Now()}}}, nil
}

// TestLeaseFailover: two sweepers for one API key on one server: only the lease holder pages;
// the other takes the holder's coverage; when the holder dies without releasing the lease
// (its context cancelled), the other pages within one lease period.
func TestLeaseFailover(t *testing.T) {
	s := natstest.RunServer(t)
	_, js := natstest.JetStream(t, s)
	kv, err := sweep.SetupBucket(t.Context(), js, 1)
	if err != nil {
		t.Fatal(err)
	}
	const apiKey = "very-secret-api-key"
	key := sweep.LeaseKey(apiKey)
	if !strings.HasPrefix(key, "sweeper.") || len(key) != len("sweeper.")+16 || strings.Contains(key, apiKey) {
		t.Fatalf("lease key %q", key)
	}
	const period = time.Second
	type replica struct {
		list  *countingList
		sw    *sweep.Sweeper
		lease *sweep.Lease
		stop  context.CancelFunc
		done  chan struct{}
	}
	start := func() *replica {
		r := &replica{list: &countingList{}, lease: sweep.NewLease(kv, key, period, nil), done: make(chan struct{})}
		r.sw, err = sweep.New(r.list, hintFunc(func(context.Context, string) (bool, error) { return false, nil }),
			func(context.Context) (sweep.Tracked, error) {
				return sweep.Tracked{Count: 1, Oldest: time.Now().Add(-time.Second)}, nil
			},
			sweep.Options{Interval: 20 * time.Millisecond, Lease: r.lease})
		if err != nil {
			t.Fatal(err)
		}
		ctx, cancel := context.WithCancel(context.Background())
		r.stop = cancel
		go func() {
			defer close(r.done)
			r.sw.Run(ctx)
		}()
		t.Cleanup(func() { cancel(); <-r.done })
		return r
	}
	a := start()
	natstest.WaitFor(t, func() bool { return a.list.pages.Load() > 0 })
	b := start()
	// b reads the lease and takes a's coverage: a job tracked now is covered on b too.
	natstest.WaitFor(t, func() bool { return b.sw.Covers("x", time.Now()) })
	base := a.list.pages.Load()
	natstest.WaitFor(t, func() bool { return a.list.pages.Load() >= base+10 })
	if n := b.list.pages.Load(); n != 0 || b.lease.Held() {
		t.Fatalf("the replica without the lease paged %d times (held %v)", n, b.lease.Held())
	}
	e, err := kv.Get(t.Context(), key)
	if err != nil {
		t.Fatal(err)
	}
	if strings.Contains(string(e.Value()), apiKey) {
		t.Errorf("lease value holds the API key: %s", e.Value())
	}

	// The holder dies: its context ends, the lease is not released.
	a.stop()
	<-a.done
	died := time.Now()
	deadline := time.After(2 * period)
	for b.list.pages.Load() == 0 {
		select {
		case <-deadline:
			t.Fatal("no takeover within two lease periods")
		case <-time.After(5 * time.Millisecond):
		}
	}
	if took := time.Since(died); took > period {
		t.Errorf("takeover after %v, want within the lease period %v", took, period)
	} else {
		t.Logf("takeover after %v (lease period %v)", took.Round(time.Millisecond), period)
	}
	if !b.lease.Held() {
		t.Error("the paging replica does not hold the lease")
	}
	// A clean shutdown releases it at once.
	b.stop()
	<-b.done
	b.sw.Release(t.Context())
	if _, err := kv.Get(t.Context(), key); err == nil {
		t.Error("lease still there after Release")
	}
}
