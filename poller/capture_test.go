package poller_test

import (
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/reducto-bridge/reducto-bridge/capture"
	"github.com/reducto-bridge/reducto-bridge/event"
	"github.com/reducto-bridge/reducto-bridge/metrics"
	"github.com/reducto-bridge/reducto-bridge/reducto"
	"github.com/reducto-bridge/reducto-bridge/reducto/reductosim"
	"github.com/reducto-bridge/reducto-bridge/subject"
)

const captureKey = "sk-capture-secret-key"

// urlHost is the host of the simulator's result links, apart from its API host (as S3 is
// apart from platform.reducto.ai): it serves the simulator's /results, records every
// request's headers, and can fail the first requests or let the link expire first.
type urlHost struct {
	sim      *reductosim.Server
	clock    *reductosim.FakeClock
	fail     int32 // the first fail requests answer 503
	expire   int32 // the first expire requests find the link expired (the clock jumps first)
	requests atomic.Int32
	mu       sync.Mutex
	headers  []http.Header
	urls     []string
}

func (h *urlHost) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	n := h.requests.Add(1)
	h.mu.Lock()
	h.headers = append(h.headers, r.Header.Clone())
	h.urls = append(h.urls, r.URL.String())
	h.mu.Unlock()
	if n <= h.fail {
		http.Error(w, "SlowDown", http.StatusServiceUnavailable)
		return
	}
	if n <= h.fail+h.expire {
		h.clock.Advance(2 * time.Minute) // past the link's ResultURLTTL
	}
	h.sim.ServeHTTP(w, r)
}

type captureEnv struct {
	*env
	sim   *reductosim.Server
	links *urlHost
}

// newCaptureEnv: the simulator (fake clock, links valid 1 minute) with its API on one
// loopback host and its result links on another, a client with the key, and a poller that
// captures URL results into the env's REDUCTO_RESULTS.
func newCaptureEnv(t *testing.T, links *urlHost, o capture.Options) *captureEnv {
	t.Helper()
	links.clock = reductosim.NewFakeClock(time.Date(2026, 12, 1, 12, 0, 0, 0, time.UTC))
	lh := httptest.NewServer(links)
	t.Cleanup(lh.Close)
	sim, err := reductosim.New(reductosim.Options{APIKey: captureKey, Seed: 1, Clock: links.clock,
		ResultURLTTL: time.Minute, PublicURL: lh.URL, WebhookTick: -1})
	if err != nil {
		t.Fatal(err)
	}
	links.sim = sim
	api := httptest.NewServer(sim)
	t.Cleanup(api.Close)
	t.Cleanup(sim.Close)
	client, err := reducto.New(api.URL, captureKey, reducto.WithRetries(0))
	if err != nil {
		t.Fatal(err)
	}
	e := newEnv(t, 30*time.Second)
	o.AllowLoopback = true // the simulator's links are http://127.0.0.1
	c, err := capture.New(e.pub, o)
	if err != nil {
		t.Fatal(err)
	}
	e.opts.Capture = c
	e.opts.Metrics = metrics.New()
	e.start(t, client, e.pub)
	return &captureEnv{env: e, sim: sim, links: links}
}

// served is what the simulator serves for the job's result link (fetched around the
// recording host, with a link valid now).
func (c *captureEnv) served(t *testing.T, id string) []byte {
	t.Helper()
	snap, ok := c.sim.Job(id)
	if !ok || snap.ResultID == "" {
		t.Fatalf("job %s has no url result", id)
	}
	exp := c.links.clock.Now().Add(time.Second).UnixNano()
	rec := httptest.NewRecorder()
	c.sim.ServeHTTP(rec, httptest.NewRequest("GET", "/results/"+snap.ResultID+"?expires="+itoa(exp), nil))
	if rec.Code != 200 || rec.Body.Len() == 0 {
		t.Fatalf("result link of %s: %d", id, rec.Code)
	}
	return rec.Body.Bytes()
}

func itoa(n int64) string { b, _ := json.Marshal(n); return string(b) }

// stored is the object the event's result_ref names.
func (c *captureEnv) stored(t *testing.T, ref *event.ResultRef) []byte {
	t.Helper()
	if ref == nil {
		t.Fatal("event has no result_ref")
	}
	obs, err := c.js.ObjectStore(t.Context(), ref.Bucket)
	if err != nil {
		t.Fatal(err)
	}
	b, err := obs.GetBytes(t.Context(), ref.Name)
	if err != nil {
		t.Fatalf("get %s/%s: %v", ref.Bucket, ref.Name, err)
	}
	return b
}

// captures is reducto_bridge_url_captures_total{result=result}, or with result "bytes"
// reducto_bridge_url_capture_bytes_total.
func (c *captureEnv) captures(t *testing.T, result string) float64 {
	t.Helper()
	mfs, err := c.opts.Metrics.Registry.Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, mf := range mfs {
		for _, m := range mf.GetMetric() {
			switch {
			case result == "bytes" && mf.GetName() == "reducto_bridge_url_capture_bytes_total":
				return m.GetCounter().GetValue()
			case mf.GetName() == "reducto_bridge_url_captures_total" && len(m.GetLabel()) == 1 && m.GetLabel()[0].GetValue() == result:
				return m.GetCounter().GetValue()
			}
		}
	}
	return 0
}

// checkCaptured: one completed event, Reducto's url result in it, and the link's content,
// byte for byte, in the object the result_ref names; the key never reached the link host.
func (c *captureEnv) checkCaptured(t *testing.T, id string, m *eventMsg) {
	t.Helper()
	ev := m.ev
	if ev.Kind != event.Completed || ev.CaptureError != "" {
		t.Fatalf("event %s kind %s capture_error %q, want completed and captured", m.subject, ev.Kind, ev.CaptureError)
	}
	job := &reducto.Job{Result: ev.Result}
	u, ok := job.ResultURL()
	if !ok || !strings.Contains(u, "/results/") {
		t.Fatalf("event result %.200s is not Reducto's url result", ev.Result)
	}
	want, got := c.served(t, id), c.stored(t, ev.ResultRef)
	if string(got) != string(want) || ev.ResultRef.Size != uint64(len(want)) || ev.ResultRef.Name != id || ev.ResultRef.Bucket != subject.ResultsBucket {
		t.Fatalf("stored %d bytes (ref %+v), want the %d bytes the link serves, byte for byte", len(got), ev.ResultRef, len(want))
	}
	c.links.mu.Lock()
	defer c.links.mu.Unlock()
	for i, h := range c.links.headers {
		for k, vs := range h {
			for _, v := range vs {
				if strings.Contains(v, captureKey) || strings.EqualFold(k, "Authorization") {
					t.Errorf("request %d to the link host carried %s: %q", i+1, k, v)
				}
			}
		}
	}
}

// onlyEvent: the job's event is the stream's only one for it, and the track message is gone.
func (c *captureEnv) onlyEvent(t *testing.T, id string) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for {
		m, err := c.queue.Last(t.Context(), id)
		if err != nil {
			t.Fatal(err)
		}
		if m == nil {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("track message not acked within 10s")
		}
		time.Sleep(10 * time.Millisecond) // polling a condition, not timing a result
	}
	if n := c.storedEvents(t, id); n != 1 {
		t.Fatalf("stream holds %d events for %s, want 1", n, id)
	}
	select {
	case m := <-c.events:
		t.Fatalf("a second event %s", m.subject)
	default:
	}
}

// TestCaptureURLResult: a completed job's URL result is downloaded from its link before the
// event is published: the event carries Reducto's result and a result_ref to the same bytes.
// Failed downloads (503 twice) keep the job tracked and polled, then exactly one event, with
// the capture; an expired link is replaced by the fresh one of the next GET /job; a result
// over the bound is reported at once without capture, saying so.
func TestCaptureURLResult(t *testing.T) {
	t.Run("captured byte for byte, 2 MB in chunks", func(t *testing.T) {
		c := newCaptureEnv(t, &urlHost{}, capture.Options{})
		id := c.sim.Create(reductosim.JobSpec{Outcome: reductosim.OutcomeCompleteURL, ResultSize: 2 << 20})
		c.track(t, id, "")
		c.checkCaptured(t, id, c.next(t))
		c.onlyEvent(t, id)
		if n := c.links.requests.Load(); n != 1 {
			t.Errorf("%d downloads, want 1", n)
		}
		if got, bytes := c.captures(t, "captured"), c.captures(t, "bytes"); got != 1 || bytes != float64(len(c.served(t, id))) {
			t.Errorf("captures_total{captured} %v, capture_bytes_total %v; want 1 and the %d bytes stored", got, bytes, len(c.served(t, id)))
		}
	})
	t.Run("download fails twice, then one event with the capture", func(t *testing.T) {
		c := newCaptureEnv(t, &urlHost{fail: 2}, capture.Options{})
		id := c.sim.Create(reductosim.JobSpec{Outcome: reductosim.OutcomeCompleteURL, ResultSize: 50_000})
		c.track(t, id, "")
		c.checkCaptured(t, id, c.next(t))
		c.onlyEvent(t, id)
		if n := c.links.requests.Load(); n != 3 {
			t.Errorf("%d downloads, want 3 (2 failed, 1 stored)", n)
		}
		if gets := c.sim.Stats().Requests[reductosim.EndpointGetJob]; gets != 3 {
			t.Errorf("%d GET /job, want 3: each failed download is retried like a transient poll", gets)
		}
		if failed, got := c.captures(t, "failed"), c.captures(t, "captured"); failed != 2 || got != 1 {
			t.Errorf("captures_total failed %v captured %v, want 2 and 1", failed, got)
		}
	})
	t.Run("expired link: the next GET /job's fresh link is captured", func(t *testing.T) {
		c := newCaptureEnv(t, &urlHost{expire: 1}, capture.Options{})
		id := c.sim.Create(reductosim.JobSpec{Outcome: reductosim.OutcomeCompleteURL, ResultSize: 50_000})
		c.track(t, id, "")
		c.checkCaptured(t, id, c.next(t))
		c.onlyEvent(t, id)
		c.links.mu.Lock()
		defer c.links.mu.Unlock()
		if len(c.links.urls) != 2 || c.links.urls[0] == c.links.urls[1] {
			t.Errorf("links requested %q, want 2 different ones (the expired and the fresh)", c.links.urls)
		}
	})
	t.Run("over BRIDGE_CAPTURE_MAX_BYTES: completed without capture, saying so", func(t *testing.T) {
		c := newCaptureEnv(t, &urlHost{}, capture.Options{MaxBytes: 10_000})
		id := c.sim.Create(reductosim.JobSpec{Outcome: reductosim.OutcomeCompleteURL, ResultSize: 50_000})
		c.track(t, id, "")
		ev := c.next(t).ev
		job := &reducto.Job{Result: ev.Result}
		if _, ok := job.ResultURL(); ev.Kind != event.Completed || !ok || ev.ResultRef != nil ||
			!strings.Contains(ev.CaptureError, "BRIDGE_CAPTURE_MAX_BYTES") {
			t.Fatalf("event kind %s result %.100s ref %+v capture_error %q", ev.Kind, ev.Result, ev.ResultRef, ev.CaptureError)
		}
		c.onlyEvent(t, id)
		if refused, got := c.captures(t, "refused"), c.captures(t, "captured"); refused != 1 || got != 0 {
			t.Errorf("captures_total refused %v captured %v, want 1 and 0", refused, got)
		}
	})
}
