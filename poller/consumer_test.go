package poller_test

import (
	"bytes"
	"context"
	"errors"
	"log/slog"
	"net"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/reducto-bridge/reducto-bridge/event"
	"github.com/reducto-bridge/reducto-bridge/internal/natstest"
	"github.com/reducto-bridge/reducto-bridge/internal/reductotest"
	"github.com/reducto-bridge/reducto-bridge/poller"
	"github.com/reducto-bridge/reducto-bridge/publisher"
	"github.com/reducto-bridge/reducto-bridge/reducto"
	"github.com/reducto-bridge/reducto-bridge/subject"
	"github.com/reducto-bridge/reducto-bridge/track"
)

// countingQueue is the track queue with its fetches counted and its Recreate refused while
// blocked (a consumer that cannot be made again yet: a sustained outage to measure).
type countingQueue struct {
	*track.Queue
	fetches atomic.Int64
	blocked atomic.Bool
}

func (q *countingQueue) Consumer() jetstream.Consumer {
	return countingConsumer{q.Queue.Consumer(), &q.fetches}
}

func (q *countingQueue) Recreate(ctx context.Context) error {
	if q.blocked.Load() {
		return errors.New("recreate blocked by the test")
	}
	return q.Queue.Recreate(ctx)
}

type countingConsumer struct {
	jetstream.Consumer
	n *atomic.Int64
}

func (c countingConsumer) Fetch(n int, opts ...jetstream.FetchOpt) (jetstream.MessageBatch, error) {
	c.n.Add(1)
	return c.Consumer.Fetch(n, opts...)
}

// logBuffer collects a poller's log lines.
type logBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (l *logBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func (l *logBuffer) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}

func (l *logBuffer) count(s string) int { return strings.Count(l.String(), s) }

// startCounting runs a poller on a countingQueue until the test ends.
func (e *env) startCounting(t *testing.T) (*poller.Poller, *countingQueue, *logBuffer) {
	t.Helper()
	q := &countingQueue{Queue: e.queue}
	logs := &logBuffer{}
	o := e.opts
	o.Logger = slog.New(slog.NewTextHandler(logs, &slog.HandlerOptions{Level: slog.LevelDebug}))
	p, err := poller.New(q, e.jobs, e.pub, o)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() {
		defer close(done)
		p.Run(ctx)
	}()
	t.Cleanup(func() {
		cancel()
		<-done
	})
	return p, q, logs
}

// fetchRate waits for n more fetches and returns their rate per second.
func fetchRate(t *testing.T, q *countingQueue, n int64) (float64, time.Duration) {
	t.Helper()
	start, from := time.Now(), q.fetches.Load()
	natstest.WaitFor(t, func() bool { return q.fetches.Load() >= from+n })
	took := time.Since(start)
	return float64(q.fetches.Load()-from) / took.Seconds(), took
}

// TestDeletedConsumerRecovers: a consumer deleted by hand (nats consumer rm) makes every
// fetch end at once with "no responders". The poller backs off instead of spinning, warns
// once naming the consumer and the error, reports FetchFailing, recreates the consumer, and
// then delivers the job tracked before the deletion (the work-queue stream kept it) and a new
// one.
func TestDeletedConsumerRecovers(t *testing.T) {
	e := newEnv(t, 30*time.Second)
	e.jobs.Script("kept", reductotest.Status(reducto.StatusPending))
	p, q, logs := e.startCounting(t)
	e.track(t, "kept", `{}`)
	for id := range e.jobs.Polled {
		if id == "kept" {
			break
		}
	}
	if _, _, failing := p.FetchFailing(); failing {
		t.Fatal("FetchFailing before the deletion")
	}

	q.blocked.Store(true)
	if err := e.js.DeleteConsumer(t.Context(), subject.TrackStream, track.ConsumerName); err != nil {
		t.Fatal(err)
	}
	natstest.WaitFor(t, func() bool { _, _, failing := p.FetchFailing(); return failing })
	rate, took := fetchRate(t, q, 3)
	t.Logf("fetches during the outage: %.1f/s (3 in %v)", rate, took.Round(time.Millisecond))
	if rate > 10 {
		t.Errorf("%.0f fetches/s while the consumer is gone, want a backoff (at most 10/s)", rate)
	}
	since, err, failing := p.FetchFailing()
	if !failing || since.IsZero() || err == nil || !strings.Contains(err.Error(), "no responders") {
		t.Errorf("FetchFailing = %v, %v, %v; want failing since the deletion with no responders", since, err, failing)
	}
	// The fetch in progress at the deletion ends with "consumer deleted"; later ones find
	// no responders.
	const warn = `level=WARN msg="cannot fetch jobs: consumer gone; recreating it" consumer=reducto-bridge error=`
	n := logs.count(warn+`"nats: no responders available for request"`) + logs.count(warn+`"nats: consumer deleted"`)
	if n != 1 {
		t.Errorf("%d warnings %q, want 1; logs:\n%s", n, warn, logs)
	}

	// The consumer can be recreated again: polling resumes on its own.
	e.jobs.Script("kept", reductotest.Answer{Job: &reducto.Job{Status: reducto.StatusCompleted, Result: []byte(`{}`)}})
	q.blocked.Store(false)
	if m := e.next(t); m.ev.JobID != "kept" || m.ev.Kind != event.Completed {
		t.Fatalf("first event after recovery: %s %s, want kept completed", m.ev.JobID, m.ev.Kind)
	}
	// The delivery of a job proves that fetching works again.
	if _, err, failing := p.FetchFailing(); failing {
		t.Errorf("FetchFailing after a delivery: %v", err)
	}
	e.jobs.Script("new", reductotest.Answer{Job: &reducto.Job{Status: reducto.StatusCompleted, Result: []byte(`{}`)}})
	e.track(t, "new", `{}`)
	if m := e.next(t); m.ev.JobID != "new" {
		t.Fatalf("event for %s, want new", m.ev.JobID)
	}
	if n := logs.count("level=WARN"); n != 1 {
		t.Errorf("%d warnings, want 1; logs:\n%s", n, logs)
	}
	if n := logs.count(`level=INFO msg="fetching jobs again" consumer=reducto-bridge`); n != 1 {
		t.Errorf("%d recovery lines, want 1; logs:\n%s", n, logs)
	}
}

var _ poller.EventPublisher = (*publisher.Publisher)(nil)

// TestNATSOutageDoesNotSpin: while the NATS server is down, fetches stay a few a second (each
// pull waits out its expiry in the reconnect buffer), the poller warns at most once, and after
// the server is back on the same store the job tracked before the outage gets its event.
func TestNATSOutageDoesNotSpin(t *testing.T) {
	o := natstest.Options{StoreDir: t.TempDir(), Port: freePort(t)}
	s := natstest.RunServer(t, o)
	// A short AckWait: the Nak of the poll in progress at the shutdown may be lost.
	e := newEnvOn(t, s, 2*time.Second)
	e.jobs.Script("kept", reductotest.Status(reducto.StatusPending))
	_, q, logs := e.startCounting(t)
	e.track(t, "kept", `{}`)
	for id := range e.jobs.Polled {
		if id == "kept" {
			break
		}
	}
	s.Shutdown()
	s.WaitForShutdown()
	rate, took := fetchRate(t, q, 2)
	t.Logf("fetches while NATS is down: %.1f/s (2 in %v)", rate, took.Round(time.Millisecond))
	if rate > 10 {
		t.Errorf("%.0f fetches/s while NATS is down, want at most 10/s", rate)
	}
	if n := logs.count("level=WARN"); n > 1 {
		t.Errorf("%d warnings during one outage, want at most 1; logs:\n%s", n, logs)
	}
	e.jobs.Script("kept", reductotest.Answer{Job: &reducto.Job{Status: reducto.StatusCompleted, Result: []byte(`{}`)}})
	natstest.RunServer(t, o)
	t.Cleanup(func() {
		if t.Failed() {
			t.Logf("logs:\n%s", logs)
		}
	})
	if m := e.next(t); m.ev.JobID != "kept" || m.ev.Kind != event.Completed {
		t.Fatalf("event after the outage: %s %s, want kept completed", m.ev.JobID, m.ev.Kind)
	}
}

func freePort(t *testing.T) int {
	t.Helper()
	_, port, err := net.SplitHostPort(natstest.FreeAddr(t))
	if err != nil {
		t.Fatal(err)
	}
	n, err := strconv.Atoi(port)
	if err != nil {
		t.Fatal(err)
	}
	return n
}
