package bridge

import (
	"bytes"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/nats-io/nats.go/micro"

	"github.com/reducto-bridge/reducto-bridge/event"
	"github.com/reducto-bridge/reducto-bridge/internal/natstest"
	"github.com/reducto-bridge/reducto-bridge/reducto/reductosim"
	"github.com/reducto-bridge/reducto-bridge/subject"
)

// Hostile input (issue 4): track messages and commands built to hurt. Each case proves that
// nothing is lost (the job is still reported, or the request still answered) and nothing
// crashes (the bridge keeps serving the jobs after it).

// logLine returns the first log line that contains every one of parts, or "".
func (h *harness) logLine(parts ...string) string {
	for line := range strings.Lines(h.logs.String()) {
		found := true
		for _, p := range parts {
			found = found && strings.Contains(line, p)
		}
		if found {
			return line
		}
	}
	return ""
}

// trackStored reports whether the track stream holds a message on the subject.
func (h *harness) trackStored(subj string) bool {
	h.t.Helper()
	s, err := h.js.Stream(h.t.Context(), subject.TrackStream)
	if err != nil {
		h.t.Fatal(err)
	}
	info, err := s.Info(h.t.Context(), jetstream.WithSubjectFilter(subj))
	if err != nil {
		h.t.Fatal(err)
	}
	return len(info.State.Subjects) > 0
}

// metricsText returns the bridge's /metrics text.
func metricsText(t *testing.T, b *Bridge) string {
	t.Helper()
	resp, err := http.Get("http://" + b.httpAddr.String() + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	return string(body)
}

func TestHostileTrackBodies(t *testing.T) {
	// A server max payload large enough that the 10 MB bodies reach the bridge.
	h := newHarness(t, natstest.Options{MaxPayload: 16 << 20}, reductosim.Options{})
	b := h.start(h.config())

	const tenMB = 10 << 20
	hugeMetadata := `{"metadata":"` + strings.Repeat("m", tenMB) + `"}`
	tests := []struct {
		name string
		body string
		warn string // the warning that must name the job
	}{
		{"10 MB of JSON, metadata too large", hugeMetadata, "track metadata too large; tracking without metadata"},
		{"10 MB that is not JSON", strings.Repeat("\x00junk{", tenMB/6+1), "track body is not a JSON object; tracking without metadata"},
		{"invalid UTF-8 body", "\xff\xfe\xfd{", "track body is not a JSON object; tracking without metadata"},
		{"invalid UTF-8 in the metadata", "{\"metadata\":{\"tenant\":\"ac\xffme\"}}", "track metadata is not valid UTF-8; tracking without metadata"},
		{"invalid UTF-8 in a key of the metadata", "{\"metadata\":{\"ten\xc3ant\":1}}", "track metadata is not valid UTF-8; tracking without metadata"},
	}
	ids := make([]string, len(tests))
	for i, tt := range tests {
		if strings.HasPrefix(tt.name, "10 MB") && len(tt.body) < tenMB {
			t.Fatalf("%s: body of %d bytes, want 10 MB", tt.name, len(tt.body))
		}
		ids[i] = h.sim.Create(reductosim.JobSpec{})
		h.track(ids[i], tt.body)
	}
	// A well-behaved job tracked after them: the bridge still serves.
	after := h.sim.Create(reductosim.JobSpec{})
	h.track(after, `{"metadata":{"tenant":"acme"}}`)

	got := h.collect(append(ids, after)...)
	for i, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ev := decode(t, got[ids[i]])
			if ev.Kind != event.Completed {
				t.Errorf("kind = %s, want completed", ev.Kind)
			}
			if ev.Metadata != nil {
				t.Errorf("metadata of %d bytes, want none", len(ev.Metadata))
			}
			if h.logLine("level=WARN", tt.warn, "job_id="+ids[i]) == "" {
				t.Errorf("no warning %q naming job %s", tt.warn, ids[i])
			}
			// The core subscription can see the event before the stream's state counts it.
			natstest.WaitFor(t, func() bool { return h.eventCount(ids[i]) >= 1 })
			if n := h.eventCount(ids[i]); n != 1 {
				t.Errorf("stream holds %d events, want 1", n)
			}
		})
	}
	if ev := decode(t, got[after]); string(ev.Metadata) != `{"tenant":"acme"}` {
		t.Errorf("job tracked after the hostile ones: metadata %s, want {\"tenant\":\"acme\"}", ev.Metadata)
	}
	if m := metricsText(t, b); !strings.Contains(m, fmt.Sprintf(`reducto_bridge_track_messages_total{result="bad_body"} %d`, len(tests))) {
		t.Errorf("/metrics does not count %d bad bodies:\n%s", len(tests), grepLines(m, "track_messages_total"))
	}
}

func TestHostileTrackSubjects(t *testing.T) {
	h := newHarness(t, natstest.Options{}, reductosim.Options{})
	b := h.start(h.config())

	tests := []struct {
		name, id string
		inLog    string // how the dropped subject shows in the warning
	}{
		{"job id of 300 characters", strings.Repeat("x", 300), strings.Repeat("x", 200)},
		{"job id of 257 characters", strings.Repeat("y", 257), strings.Repeat("y", 257)},
		{"invalid UTF-8 in the token", "hostile-\xff\xfe-id", `hostile-\xff\xfe-id`},
		{"truncated rune in the token", "hostile-\xc3", `hostile-\xc3`},
	}
	for _, tt := range tests {
		h.track(tt.id, `{"metadata":1}`) // the PubAck says the stream stored it
	}
	good := h.sim.Create(reductosim.JobSpec{})
	h.track(good, "")
	if ev := decode(t, h.collect(good)[good]); ev.Kind != event.Completed {
		t.Errorf("job tracked after the bad subjects: kind %s, want completed", ev.Kind)
	}

	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			subj := subject.Track("reducto", tt.id)
			natstest.WaitFor(t, func() bool { return !h.trackStored(subj) })
			if h.logLine("level=WARN", "invalid track subject; dropped", tt.inLog) == "" {
				t.Errorf("no warning for the dropped subject %q", subj)
			}
			if n := h.eventCount(tt.id); n != 0 {
				t.Errorf("stream holds %d events for an invalid id", n)
			}
		})
	}
	if m := metricsText(t, b); !strings.Contains(m, fmt.Sprintf(`reducto_bridge_track_messages_total{result="invalid_subject"} %d`, len(tests))) {
		t.Errorf("/metrics does not count %d invalid subjects:\n%s", len(tests), grepLines(m, "track_messages_total"))
	}
	if n := h.sim.Stats().Requests[reductosim.EndpointGetJob]; n > 2 {
		t.Errorf("%d GET /job requests; only the valid job should have been polled (1 or 2)", n)
	}
}

func TestHostileCancelRequests(t *testing.T) {
	h := newHarness(t, natstest.Options{}, reductosim.Options{})
	h.start(h.config())
	running := h.sim.Create(reductosim.JobSpec{Outcome: reductosim.OutcomeNever})

	tests := []struct {
		name, body, code string
	}{
		{"job id of 300 characters", `{"job_id":"` + strings.Repeat("x", 300) + `"}`, "400"},
		{"job id of 257 characters", `{"job_id":"` + strings.Repeat("x", 257) + `"}`, "400"},
		{"invalid UTF-8 request", "\xff\xfe\xfd", "400"},
		{"invalid UTF-8 in the job id", "{\"job_id\":\"" + running + "\xff\"}", "400"},
		{"invalid UTF-8 beside the job id", "{\"job_id\":\"" + running + "\",\"note\":\"\xfe\"}", "400"},
		{"escaped control character in the job id", `{"job_id":"a\u0000b"}`, "400"},
		{"job id with a wildcard", `{"job_id":"a.>"}`, "400"},
		{"10 kB job id", `{"job_id":"` + strings.Repeat("z", 10<<10) + `"}`, "400"},
		// After all that, a real cancel still works.
		{"valid request", `{"job_id":"` + running + `"}`, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			resp := h.cancel(t, tt.body, tt.code)
			if desc := resp.Header.Get(micro.ErrorHeader); len(desc) > 400 || strings.Contains(desc, strings.Repeat("x", 100)) {
				t.Errorf("description of %d bytes echoes the id: %.80q", len(desc), desc)
			}
		})
	}
	if ev := decode(t, h.collect(running)[running]); ev.Kind != event.Cancelled {
		t.Errorf("cancelled job: kind %s, want cancelled", ev.Kind)
	}
	if n := h.sim.Stats().Requests[reductosim.EndpointCancel]; n != 1 {
		t.Errorf("%d POST /cancel requests, want 1 (only the valid request)", n)
	}
}

// TestCancelFlood sends 10,000 cancel requests for unknown jobs at once. The bridge must answer
// every one (404), never exceed its Reducto budget, and keep polling other jobs meanwhile.
//
// The budget (BRIDGE_RATE_LIMIT) is 1,000 requests/s and each cancel costs one GET /job, so the
// flood takes about 10s (10-13s with -race on 2 cores). The simulator allows 1,200/s with a
// burst of 300, against the bridge's burst of 100 (a tenth of a second): a bridge within its
// budget never gets a 429. One that overspends does, as long as the machine can send faster
// than 1,200/s: with the budget raised tenfold, the bridge answered the flood in 5.4s and drew
// 3,691 429s on a 2-core machine with -race. The elapsed time is checked against the budget
// too, which does not depend on the simulator's limiter.
func TestCancelFlood(t *testing.T) {
	const (
		flood  = 10_000
		budget = 1000
	)
	h := newHarness(t, natstest.Options{}, reductosim.Options{JobRateLimit: budget * 1.2, GlobalRateLimit: budget * 1.2, RateBurst: 300})
	cfg := h.config()
	cfg.RateLimit = budget
	cfg.RateLimitAll = budget     // each cancel is one GET /job, which takes from both limits
	cfg.LogLevel = slog.LevelWarn // 10,000 info lines per command would only slow the test down
	h.start(cfg)

	// Replies come to one wildcard inbox; the last token is the request's index.
	inbox := nats.NewInbox()
	var (
		mu       sync.Mutex
		codes    = make(map[int]string, flood)
		dups     int
		allIn    = make(chan struct{})
		answered = func() int { mu.Lock(); defer mu.Unlock(); return len(codes) }
	)
	sub, err := h.nc.Subscribe(inbox+".*", func(m *nats.Msg) {
		i, err := strconv.Atoi(m.Subject[len(inbox)+1:])
		if err != nil {
			return
		}
		mu.Lock()
		defer mu.Unlock()
		if _, seen := codes[i]; seen {
			dups++
			return
		}
		codes[i] = m.Header.Get(micro.ErrorCodeHeader)
		if len(codes) == flood {
			close(allIn)
		}
	})
	if err != nil {
		t.Fatal(err)
	}
	defer sub.Unsubscribe()
	if err := sub.SetPendingLimits(-1, -1); err != nil {
		t.Fatal(err)
	}

	start := time.Now()
	for i := range flood {
		msg := &nats.Msg{
			Subject: subject.Cancel("reducto"),
			Reply:   inbox + "." + strconv.Itoa(i),
			Data:    fmt.Appendf(nil, `{"job_id":"unknown-%06d"}`, i),
		}
		if err := h.nc.PublishMsg(msg); err != nil {
			t.Fatal(err)
		}
	}
	if err := h.nc.Flush(); err != nil {
		t.Fatal(err)
	}

	// A tenth of the way in, track jobs: they must be reported while the flood still runs.
	natstest.WaitFor(t, func() bool { return answered() >= flood/10 })
	jobs := make(map[string]bool)
	for range 5 {
		id := h.sim.Create(reductosim.JobSpec{})
		jobs[id] = true
		h.track(id, "")
	}
	var reportedAt int // replies sent when the last job was reported
	for deadline := time.After(20 * time.Second); len(jobs) > 0; {
		select {
		case m := <-h.events:
			ev, err := event.Decode(m.Data)
			if err != nil {
				t.Fatalf("bad event: %v", err)
			}
			if !jobs[ev.JobID] || ev.Kind != event.Completed {
				t.Fatalf("unexpected event %s for %s", ev.Kind, ev.JobID)
			}
			delete(jobs, ev.JobID)
			reportedAt = answered()
		case <-deadline:
			t.Fatalf("%d jobs not reported within 20s", len(jobs))
		}
	}
	if reportedAt >= flood {
		t.Errorf("the jobs were reported only after the flood was answered; polling stopped during it")
	}
	t.Logf("jobs tracked during the flood reported after %d of %d replies", reportedAt, flood)

	select {
	case <-allIn:
	case <-time.After(60 * time.Second):
		t.Fatalf("%d of %d cancel requests answered within 60s", answered(), flood)
	}
	elapsed := time.Since(start)

	mu.Lock()
	byCode := map[string]int{}
	for _, c := range codes {
		byCode[c]++
	}
	repeated := dups
	mu.Unlock()
	if byCode["404"] != flood || repeated != 0 {
		t.Errorf("replies by code: %v and %d repeated replies, want all %d 404 once", byCode, repeated, flood)
	}
	st := h.sim.Stats()
	if st.Statuses[http.StatusTooManyRequests] != 0 || st.RateLimited2000 != 0 || st.RateLimited1000 != 0 {
		t.Errorf("the simulator answered %d 429s (%d [CODE 2000], %d [CODE 1000]): the bridge exceeded its budget",
			st.Statuses[http.StatusTooManyRequests], st.RateLimited2000, st.RateLimited1000)
	}
	gets := st.Requests[reductosim.EndpointGetJob]
	if gets < flood {
		t.Errorf("%d GET /job requests, want at least one per cancel (%d)", gets, flood)
	}
	// The budget allows its burst plus `budget` per second: faster means it was not spent.
	if min := time.Duration(float64(gets-budget/10) / budget * float64(time.Second)); elapsed < min {
		t.Errorf("%d requests in %v, faster than the budget allows (%v)", gets, elapsed, min)
	}
	t.Logf("%d cancels answered in %v; %d GET /job, %d 429s", flood, elapsed.Round(time.Millisecond), gets, st.Statuses[http.StatusTooManyRequests])
}

// grepLines returns the lines of s that contain sub.
func grepLines(s, sub string) string {
	var b bytes.Buffer
	for line := range strings.Lines(s) {
		if strings.Contains(line, sub) {
			b.WriteString(line)
		}
	}
	return b.String()
}
