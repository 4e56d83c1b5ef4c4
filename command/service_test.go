package command

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/micro"
	dto "github.com/prometheus/client_model/go"
	"go.uber.org/goleak"

	"github.com/reducto-bridge/reducto-bridge/internal/natstest"
	"github.com/reducto-bridge/reducto-bridge/internal/reductotest"
	"github.com/reducto-bridge/reducto-bridge/metrics"
	"github.com/reducto-bridge/reducto-bridge/reducto"
)

func TestFireAndForget(t *testing.T) {
	jobs := &reductotest.Jobs{Cancelled: make(chan string, 1)}
	tracker := &fakeTracker{called: make(chan trackCall, 1)}
	e := start(t, jobs, nil, tracker.track, Options{})

	if err := e.nc.Publish(prefix+".cancel", []byte(`{"job_id":"`+jobID+`"}`)); err != nil {
		t.Fatalf("publish: %v", err)
	}
	if got := recv(t, jobs.Cancelled, "the cancel"); got != jobID {
		t.Errorf("cancelled %q, want %q", got, jobID)
	}
	if got := recv(t, tracker.called, "the track"); got.id != jobID {
		t.Errorf("tracked %q, want %q", got.id, jobID)
	}
	// A malformed fire-and-forget request is answered nowhere and breaks nothing.
	if err := e.nc.Publish(prefix+".submit", []byte(`nonsense`)); err != nil {
		t.Fatalf("publish: %v", err)
	}
	if code, desc := replyCode(t, request(t, e.nc, prefix+".submit", []byte(`{"endpoint":"parse","body":{}}`))); code != 200 {
		t.Errorf("submit after fire-and-forget = %d %q, want 200", code, desc)
	}
}

// TestMalformedKeepsServing sends garbage of every kind and then a good request.
func TestMalformedKeepsServing(t *testing.T) {
	e := start(t, &reductotest.Jobs{}, nil, (&fakeTracker{}).track, Options{})
	garbage := [][]byte{
		nil,
		{0xff, 0xfe, 0x00},
		[]byte(strings.Repeat("[", 100000)),
		[]byte(`{"job_id":"\u0000"}`),
		[]byte(`{"job_id":"` + strings.Repeat("\x00", 10) + `"}`),
		[]byte(`{"endpoint":"parse","body":{"async":[]}}`),
		[]byte(strings.Repeat(`{"a":`, 5000) + "1" + strings.Repeat("}", 5000)),
	}
	for _, subj := range []string{prefix + ".cancel", prefix + ".submit"} {
		for i, g := range garbage {
			code, desc := replyCode(t, request(t, e.nc, subj, g))
			if code != 400 {
				t.Errorf("%s garbage %d: reply = %d %q, want 400", subj, i, code, desc)
			}
		}
	}
	if code, desc := replyCode(t, request(t, e.nc, prefix+".cancel", []byte(`{"job_id":"`+jobID+`"}`))); code != 200 {
		t.Errorf("cancel after garbage = %d %q, want 200", code, desc)
	}
}

func TestDiscovery(t *testing.T) {
	// A cancel's Reducto call takes 50 ms, for the processing time in STATS.
	jobs := &reductotest.Jobs{GetJobFunc: func(ctx context.Context, id string) (*reducto.Job, error) {
		select {
		case <-time.After(50 * time.Millisecond):
		case <-ctx.Done():
			return nil, ctx.Err()
		}
		return &reducto.Job{Status: "Pending"}, nil
	}}
	e := start(t, jobs, nil, (&fakeTracker{}).track, Options{Version: "1.2.3"})

	var ping micro.Ping
	msg := request(t, e.nc, "$SRV.PING."+ServiceName, nil)
	if err := json.Unmarshal(msg.Data, &ping); err != nil {
		t.Fatalf("ping reply %q: %v", msg.Data, err)
	}
	if ping.Name != ServiceName || ping.Version != "1.2.3" || ping.ID == "" {
		t.Errorf("ping = %+v, want name %s version 1.2.3 and an id", ping, ServiceName)
	}

	var info micro.Info
	msg = request(t, e.nc, "$SRV.INFO."+ServiceName, nil)
	if err := json.Unmarshal(msg.Data, &info); err != nil {
		t.Fatalf("info reply %q: %v", msg.Data, err)
	}
	got := map[string]string{}
	for _, ep := range info.Endpoints {
		got[ep.Name] = ep.Subject + " queue " + ep.QueueGroup
	}
	want := map[string]string{
		"cancel": prefix + ".cancel queue " + micro.DefaultQueueGroup,
		"submit": prefix + ".submit queue " + micro.DefaultQueueGroup,
	}
	if fmt.Sprint(got) != fmt.Sprint(want) {
		t.Errorf("info endpoints = %v, want %v", got, want)
	}
	if info.Description == "" {
		t.Error("info has no description")
	}

	// STATS counts the replies and errors of the real work, and its processing time runs to the
	// reply: a cancel whose Reducto call takes 50 ms is not an 11 us hand-off.
	replyCode(t, request(t, e.nc, prefix+".cancel", []byte(`{"job_id":"`+jobID+`"}`)))
	replyCode(t, request(t, e.nc, prefix+".cancel", []byte(`{}`)))
	var stats micro.Stats
	msg = request(t, e.nc, "$SRV.STATS."+ServiceName, nil)
	if err := json.Unmarshal(msg.Data, &stats); err != nil {
		t.Fatalf("stats reply %q: %v", msg.Data, err)
	}
	if stats.Type != micro.StatsResponseType || stats.ID != ping.ID || stats.Started.IsZero() {
		t.Errorf("stats type %q, id %q, started %v; want %s, the ping's id %q, a start time", stats.Type, stats.ID, stats.Started, micro.StatsResponseType, ping.ID)
	}
	var cancel *micro.EndpointStats
	for _, ep := range stats.Endpoints {
		if ep.Name == EndpointCancel {
			cancel = ep
		}
	}
	if cancel == nil {
		t.Fatalf("stats has no cancel endpoint: %s", msg.Data)
	}
	if cancel.NumRequests != 2 || cancel.NumErrors != 1 || !strings.HasPrefix(cancel.LastError, "400:") || cancel.QueueGroup != micro.DefaultQueueGroup {
		t.Errorf("cancel stats = %+v, want 2 requests, 1 error, last error 400, queue group q", cancel)
	}
	if cancel.ProcessingTime < 50*time.Millisecond || cancel.AverageProcessingTime != cancel.ProcessingTime/2 {
		t.Errorf("cancel processing time %v (average %v), want at least the 50 ms Reducto took, averaged over 2", cancel.ProcessingTime, cancel.AverageProcessingTime)
	}
	// The service answers at every scope micro does: all services, by name, by name and id.
	for _, subj := range []string{"$SRV.PING", "$SRV.INFO." + ServiceName + "." + ping.ID, "$SRV.STATS." + ServiceName + "." + ping.ID} {
		var id micro.ServiceIdentity
		if err := json.Unmarshal(request(t, e.nc, subj, nil).Data, &id); err != nil || id.ID != ping.ID {
			t.Errorf("%s: identity %+v (%v), want id %s", subj, id, err, ping.ID)
		}
	}
}

// TestFlood sends 2,000 cancels at once for unknown jobs: every one is answered 404, and no
// more than Concurrency run at a time.
func TestFlood(t *testing.T) {
	const n, limit = 2000, 64
	var inFlight, peak atomic.Int64
	jobs := &reductotest.Jobs{GetJobFunc: func(ctx context.Context, id string) (*reducto.Job, error) {
		cur := inFlight.Add(1)
		defer inFlight.Add(-1)
		for p := peak.Load(); cur > p && !peak.CompareAndSwap(p, cur); p = peak.Load() {
		}
		// Reducto takes a moment; without it the bound would never be reached.
		tm := time.NewTimer(time.Millisecond)
		defer tm.Stop()
		select {
		case <-tm.C:
		case <-ctx.Done():
		}
		return nil, apiErr(404, "Job not found")
	}}
	e := start(t, jobs, nil, (&fakeTracker{}).track, Options{Concurrency: limit})

	var wg sync.WaitGroup
	codes := make([]int, n)
	errs := make([]error, n)
	for i := range n {
		wg.Go(func() {
			msg, err := e.nc.Request(prefix+".cancel", fmt.Appendf(nil, `{"job_id":"unknown-%d"}`, i), 30*time.Second)
			if err != nil {
				errs[i] = err
				return
			}
			c, _ := strconv2(msg)
			codes[i] = c
		})
	}
	wg.Wait()
	bad := 0
	for i := range n {
		if errs[i] != nil || codes[i] != 404 {
			if bad < 5 {
				t.Errorf("request %d: code %d, error %v; want 404", i, codes[i], errs[i])
			}
			bad++
		}
	}
	if bad > 0 {
		t.Errorf("%d of %d requests not answered 404", bad, n)
	}
	if p := peak.Load(); p > limit {
		t.Errorf("peak concurrent Reducto calls = %d, want at most %d", p, limit)
	}
	t.Logf("peak concurrency %d", peak.Load())
}

// strconv2 reads a reply's code without a *testing.T (for use in goroutines).
func strconv2(msg *nats.Msg) (int, string) {
	c := msg.Header.Get(micro.ErrorCodeHeader)
	if c == "" {
		return 200, ""
	}
	var code int
	fmt.Sscan(c, &code)
	return code, msg.Header.Get(micro.ErrorHeader)
}

// TestConcurrentHandling proves commands run in parallel, across both endpoints: four
// requests are all inside Reducto calls at the same time.
func TestConcurrentHandling(t *testing.T) {
	const n = 4
	entered := make(chan struct{}, n)
	release := make(chan struct{})
	block := func() {
		entered <- struct{}{}
		<-release
	}
	jobs := &reductotest.Jobs{
		GetJobFunc: func(_ context.Context, id string) (*reducto.Job, error) {
			block()
			return &reducto.Job{ID: id, Status: reducto.StatusPending}, nil
		},
		SubmitFunc: func(context.Context, reducto.Endpoint, json.RawMessage) (string, error) {
			block()
			return "job-1", nil
		},
	}
	e := start(t, jobs, nil, (&fakeTracker{}).track, Options{Concurrency: n})
	unblock := sync.OnceFunc(func() { close(release) })
	t.Cleanup(unblock) // runs before Stop, so a failed test does not hang in it

	replies := make(chan int, n)
	for i := range n {
		subj, data := prefix+".cancel", fmt.Sprintf(`{"job_id":"job-%d"}`, i)
		if i%2 == 1 {
			subj, data = prefix+".submit", `{"endpoint":"parse","body":{}}`
		}
		go func() {
			msg, err := e.nc.Request(subj, []byte(data), reqWait)
			if err != nil {
				replies <- -1
				return
			}
			c, _ := strconv2(msg)
			replies <- c
		}()
	}
	for range n {
		recv(t, entered, "a command inside Reducto (commands not handled concurrently?)")
	}
	unblock()
	for range n {
		if c := recv(t, replies, "a reply"); c != 200 {
			t.Errorf("reply code = %d, want 200", c)
		}
	}
}

// TestStopWaitsForCommands stops the service while a cancel is inside Reducto: the command
// still finishes and replies, and Stop returns only afterwards.
func TestStopWaitsForCommands(t *testing.T) {
	entered := make(chan struct{}, 1)
	release := make(chan struct{})
	jobs := &reductotest.Jobs{GetJobFunc: func(_ context.Context, id string) (*reducto.Job, error) {
		entered <- struct{}{}
		<-release
		return &reducto.Job{ID: id, Status: reducto.StatusPending}, nil
	}}
	tracker := &fakeTracker{}
	s := natstest.RunServer(t)
	client := natstest.Connect(t, s)
	svc, err := Start(natstest.Connect(t, s), jobs, nil, tracker.track, Options{Prefix: prefix})
	if err != nil {
		t.Fatalf("Start: %v", err)
	}
	unblock := sync.OnceFunc(func() { close(release) })
	t.Cleanup(unblock)

	reply := make(chan *nats.Msg, 1)
	go func() {
		msg, err := client.Request(prefix+".cancel", []byte(`{"job_id":"`+jobID+`"}`), reqWait)
		if err != nil {
			t.Errorf("request: %v", err)
		}
		reply <- msg
	}()
	recv(t, entered, "the cancel to reach Reducto")

	stopped := make(chan error, 1)
	go func() { stopped <- svc.Stop() }()
	// No signal says the service has unsubscribed; its PING stops answering when it has.
	deadline := time.Now().Add(signalMax)
	for {
		_, err := client.Request("$SRV.PING."+ServiceName, nil, time.Second)
		if errors.Is(err, nats.ErrNoResponders) {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("service still answers PING after Stop: %v", err)
		}
	}
	// Stop must not return while the command is held. Proving that something does not happen
	// takes a wait; a Stop that does not wait returns well within it.
	select {
	case err := <-stopped:
		t.Fatalf("Stop returned (%v) while a command was in flight", err)
	case <-time.After(200 * time.Millisecond):
	}
	unblock()
	if msg := recv(t, reply, "the reply"); msg != nil {
		if code, desc := replyCode(t, msg); code != 200 {
			t.Errorf("in-flight cancel reply = %d %q, want 200", code, desc)
		}
	}
	if err := recv(t, stopped, "Stop"); err != nil {
		t.Errorf("Stop: %v", err)
	}
	if calls := tracker.recorded(); len(calls) != 1 {
		t.Errorf("tracker calls = %d, want 1", len(calls))
	}
	if err := svc.Stop(); err != nil {
		t.Errorf("second Stop: %v", err)
	}
}

// TestLateRequestAfterStop hands the handler a request after Stop (a straggler of the drain):
// it is answered 503 at once.
func TestLateRequestAfterStop(t *testing.T) {
	jobs := &reductotest.Jobs{}
	s := natstest.RunServer(t)
	client := natstest.Connect(t, s)
	svc, err := Start(natstest.Connect(t, s), jobs, nil, (&fakeTracker{}).track, Options{Prefix: prefix})
	if err != nil {
		t.Fatalf("Start: %v", err)
	}
	if err := svc.Stop(); err != nil {
		t.Fatalf("Stop: %v", err)
	}
	inbox := nats.NewInbox()
	sub, err := client.SubscribeSync(inbox)
	if err != nil {
		t.Fatalf("subscribe: %v", err)
	}
	if err := client.Flush(); err != nil {
		t.Fatalf("flush: %v", err)
	}
	svc.handler(EndpointCancel, svc.cancel)(&nats.Msg{Subject: prefix + ".cancel", Data: []byte(`{"job_id":"` + jobID + `"}`), Reply: inbox})
	msg, err := sub.NextMsg(reqWait)
	if err != nil {
		t.Fatalf("no reply to a late request: %v", err)
	}
	if code, desc := replyCode(t, msg); code != 503 || !strings.Contains(desc, "stopping") {
		t.Errorf("late reply = %d %q, want 503 stopping", code, desc)
	}
	if gets := jobs.Gets(); len(gets) != 0 {
		t.Errorf("late request reached Reducto %d times, want 0", len(gets))
	}
}

// TestNoLeak runs commands of every kind, including fire-and-forget, and checks that Stop
// leaves no goroutine behind.
func TestNoLeak(t *testing.T) {
	s := natstest.RunServer(t)
	client := natstest.Connect(t, s)
	svcConn := natstest.Connect(t, s)
	// The client's first request starts its reply subscription: do it before the baseline.
	if _, err := client.Request("warm.up", nil, time.Second); !errors.Is(err, nats.ErrNoResponders) {
		t.Fatalf("warm-up request: %v, want no responders", err)
	}
	baseline := goleak.IgnoreCurrent()

	jobs := &reductotest.Jobs{Cancelled: make(chan string, 2)} // room for both cancels: a full channel drops the signal
	svc, err := Start(svcConn, jobs, &fakeEvents{}, (&fakeTracker{}).track, Options{Prefix: prefix, PublicURL: "https://b.example"})
	if err != nil {
		t.Fatalf("Start: %v", err)
	}
	for _, r := range []struct{ subj, data string }{
		{prefix + ".cancel", `{"job_id":"` + jobID + `"}`},
		{prefix + ".cancel", `{`},
		{prefix + ".submit", `{"endpoint":"parse","body":{"input":"x"},"metadata":1}`},
		{prefix + ".submit", `{"endpoint":"nope","body":{}}`},
	} {
		request(t, client, r.subj, []byte(r.data))
	}
	if err := client.Publish(prefix+".cancel", []byte(`{"job_id":"ff"}`)); err != nil {
		t.Fatalf("publish: %v", err)
	}
	<-jobs.Cancelled // the first cancel
	recv(t, jobs.Cancelled, "the fire-and-forget cancel")
	if err := svc.Stop(); err != nil {
		t.Fatalf("Stop: %v", err)
	}
	goleak.VerifyNone(t, baseline)
}

func TestMetrics(t *testing.T) {
	m := metrics.New()
	jobs := &reductotest.Jobs{GetJobFunc: func(_ context.Context, id string) (*reducto.Job, error) {
		if id == "missing" {
			return nil, apiErr(404, "")
		}
		return &reducto.Job{ID: id, Status: reducto.StatusPending}, nil
	}}
	e := start(t, jobs, nil, (&fakeTracker{}).track, Options{Metrics: m})
	for _, r := range []struct{ subj, data string }{
		{prefix + ".cancel", `{"job_id":"a"}`},
		{prefix + ".cancel", `{"job_id":"b"}`},
		{prefix + ".cancel", `{"job_id":"missing"}`},
		{prefix + ".submit", `{"endpoint":"parse","body":{}}`},
		{prefix + ".submit", `[]`},
	} {
		request(t, e.nc, r.subj, []byte(r.data))
	}
	want := map[string]float64{"cancel/200": 2, "cancel/404": 1, "submit/200": 1, "submit/400": 1}
	got := map[string]float64{}
	families, err := m.Registry.Gather()
	if err != nil {
		t.Fatalf("gather: %v", err)
	}
	for _, f := range families {
		if f.GetName() != "reducto_bridge_commands_total" {
			continue
		}
		for _, mt := range f.GetMetric() {
			got[label(mt, "command")+"/"+label(mt, "code")] = mt.GetCounter().GetValue()
		}
	}
	if fmt.Sprint(got) != fmt.Sprint(want) {
		t.Errorf("commands_total = %v, want %v", got, want)
	}
}

func label(m *dto.Metric, name string) string {
	for _, l := range m.GetLabel() {
		if l.GetName() == name {
			return l.GetValue()
		}
	}
	return ""
}

func TestHeaderValue(t *testing.T) {
	tests := []struct{ in, want string }{
		{"unknown job", "unknown job"},
		{"a\r\nb", "a  b"},
		{"  ", "error"},
		{"", "error"},
		{strings.Repeat("a", maxDescription+5), strings.Repeat("a", maxDescription) + "..."},
		{strings.Repeat("a", maxDescription-1) + "é", strings.Repeat("a", maxDescription-1) + "..."},
	}
	for _, tt := range tests {
		if got := headerValue(tt.in); got != tt.want {
			t.Errorf("headerValue(%q) = %q, want %q", tt.in, got, tt.want)
		}
	}
}
