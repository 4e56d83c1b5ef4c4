package reductosim

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"sync/atomic"
	"testing"
	"time"
)

func TestStats(t *testing.T) {
	f := newFixture(t, Options{JobRateLimit: 0.001, RateBurst: 2})
	a := f.submit(t, "/parse_async", `{"input":"x"}`)
	b := f.sim.Create(JobSpec{Duration: time.Minute})
	f.call(t, "GET", "/job/"+a, "")
	f.call(t, "GET", "/job/"+b, "")
	f.call(t, "GET", "/job/"+b, "") // 429 [CODE 2000]
	f.call(t, "POST", "/cancel/"+b, "")
	f.call(t, "POST", "/parse_async", `{}`)          // 422
	f.callAuth(t, "GET", "/jobs", "", "")            // 403: no header
	f.callAuth(t, "GET", "/jobs", "", "Bearer nope") // 401: wrong key
	f.sim.SetFaults(Faults{Shed429: 1})
	f.call(t, "GET", "/version", "") // shed
	f.sim.SetFaults(Faults{})
	f.clock.Advance(time.Hour)

	st := f.sim.Stats()
	wantReq := map[string]int64{EndpointParse: 2, EndpointGetJob: 3, EndpointCancel: 1, EndpointJobs: 2, EndpointVersion: 1}
	for k, v := range wantReq {
		if st.Requests[k] != v {
			t.Errorf("Requests[%s]: got %d, want %d", k, st.Requests[k], v)
		}
	}
	wantStatus := map[int]int64{200: 4, 422: 1, 401: 1, 403: 1, 429: 2}
	for k, v := range wantStatus {
		if st.Statuses[k] != v {
			t.Errorf("Statuses[%d]: got %d, want %d (all: %v)", k, st.Statuses[k], v, st.Statuses)
		}
	}
	if st.RateLimited2000 != 1 || st.RateLimited1000 != 0 || st.Shed429 != 1 || st.Faults != 1 {
		t.Errorf("got 2000=%d 1000=%d shed=%d faults=%d, want 1, 0, 1, 1", st.RateLimited2000, st.RateLimited1000, st.Shed429, st.Faults)
	}
	ja, jb := st.Jobs[a], st.Jobs[b]
	if len(st.Jobs) != 2 || ja.Gets != 1 || jb.Gets != 1 || jb.Cancels != 1 || !jb.Cancelled {
		t.Errorf("got jobs %+v, want a: 1 get; b: 1 get, 1 cancel", st.Jobs)
	}
	if ja.Created != t0 || ja.Status != StatusCompleted || ja.Outcome != OutcomeComplete {
		t.Errorf("got %+v, want created at t0 and Completed", ja)
	}
	if d, ok := ja.Elapsed(); !ok || d <= 0 {
		t.Errorf("got elapsed %v %v, want the job's duration", d, ok)
	}
	if jb.Terminal != t0 || jb.Status != StatusFailed {
		t.Errorf("got %+v, want cancelled (terminal) at t0", jb)
	}
}

// BenchmarkGetJob measures GET /job/{id} over real loopback HTTP with keep-alive connections,
// on a mix of running and completed jobs.
func BenchmarkGetJob(b *testing.B) {
	sim, err := New(Options{APIKey: testKey, Seed: 1, WebhookTick: -1})
	if err != nil {
		b.Fatal(err)
	}
	defer sim.Close()
	ids := make([]string, 1000)
	for i := range ids {
		spec := JobSpec{Duration: time.Hour}
		if i%2 == 0 {
			spec = JobSpec{Type: []string{TypeParse, TypeExtract, TypeSplit}[i%3]}
		}
		ids[i] = sim.Create(spec)
	}
	ts := httptest.NewServer(sim)
	defer ts.Close()
	tr := &http.Transport{MaxIdleConns: 256, MaxIdleConnsPerHost: 256, IdleConnTimeout: time.Minute}
	defer tr.CloseIdleConnections()
	client := &http.Client{Transport: tr}
	auth := "Bearer " + testKey
	var next atomic.Int64
	b.SetParallelism(8)
	b.ResetTimer()
	start := time.Now()
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			id := ids[next.Add(1)%int64(len(ids))]
			req, _ := http.NewRequestWithContext(context.Background(), http.MethodGet, ts.URL+"/job/"+id, nil)
			req.Header.Set("Authorization", auth)
			resp, err := client.Do(req)
			if err != nil {
				b.Error(err)
				return
			}
			_, _ = io.Copy(io.Discard, resp.Body)
			resp.Body.Close()
			if resp.StatusCode != http.StatusOK {
				b.Error(fmt.Errorf("got %d, want 200", resp.StatusCode))
				return
			}
		}
	})
	b.ReportMetric(float64(b.N)/time.Since(start).Seconds(), "req/s")
}
