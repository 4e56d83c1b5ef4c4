package reductosim

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"
)

// getEnumStatuses is the status enum of GET /job/{id} in the spec and the official SDKs.
var getEnumStatuses = map[string]bool{StatusPending: true, StatusIdle: true, StatusCompleted: true, StatusFailed: true}

// TestStatusesOverLifetime walks jobs through their lives and checks the status GET /job and
// GET /jobs report at each step, by default and with the opt-in vocabulary.
func TestStatusesOverLifetime(t *testing.T) {
	// Queue 10s, run 100s: queued at 5s, running at 60s, in the last 5% at 106s, done at 120s.
	spec := JobSpec{Queue: 10 * time.Second, Duration: 100 * time.Second}
	tests := []struct {
		name  string
		opts  Options
		spec  JobSpec
		steps []time.Duration
		want  []string
	}{
		{"default completes", Options{}, spec,
			[]time.Duration{5 * time.Second, 60 * time.Second, 106 * time.Second, 120 * time.Second},
			[]string{StatusIdle, StatusPending, StatusPending, StatusCompleted}},
		{"default fails", Options{}, JobSpec{Queue: spec.Queue, Duration: spec.Duration, Outcome: OutcomeFail},
			[]time.Duration{5 * time.Second, 60 * time.Second, 120 * time.Second},
			[]string{StatusIdle, StatusPending, StatusFailed}},
		{"default without queue", Options{}, JobSpec{Duration: spec.Duration},
			[]time.Duration{0, 50 * time.Second, 100 * time.Second},
			[]string{StatusPending, StatusPending, StatusCompleted}},
		{"default never ends", Options{}, JobSpec{Queue: spec.Queue, Outcome: OutcomeNever},
			[]time.Duration{5 * time.Second, 24 * time.Hour},
			[]string{StatusIdle, StatusPending}},
		{"lifecycle", Options{Lifecycle: true}, spec,
			[]time.Duration{5 * time.Second, 60 * time.Second, 106 * time.Second, 120 * time.Second},
			[]string{StatusPending, StatusInProgress, StatusCompleting, StatusCompleted}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f := newFixture(t, tt.opts)
			id := f.sim.Create(tt.spec)
			for i, at := range tt.steps {
				got := f.jobAt(t, id, at)["status"]
				if got != tt.want[i] {
					t.Errorf("at %v: GET /job status %v, want %s", at, got, tt.want[i])
				}
				if !tt.opts.Lifecycle && !getEnumStatuses[got.(string)] {
					t.Errorf("at %v: default status %v is outside the GET /job enum", at, got)
				}
				if l := listStatus(t, f, id); l != tt.want[i] {
					t.Errorf("at %v: GET /jobs status %s, want %s (the same as GET /job)", at, l, tt.want[i])
				}
			}
		})
	}
}

// TestCancelledStatusIsOptIn checks a cancelled job reports Failed by default, and the
// list-only Cancelled only with CancelAsCancelled, on GET /job and GET /jobs alike.
func TestCancelledStatusIsOptIn(t *testing.T) {
	for _, tt := range []struct {
		style CancelStyle
		want  string
	}{{CancelAsFailed, StatusFailed}, {CancelAsCancelled, StatusCancelled}} {
		f := newFixture(t, Options{CancelStyle: tt.style})
		id := f.sim.Create(JobSpec{Queue: time.Minute, Duration: time.Minute})
		f.sim.Cancel(id)
		if got := f.jobAt(t, id, time.Second)["status"]; got != tt.want {
			t.Errorf("style %d: GET /job status %v, want %s", tt.style, got, tt.want)
		}
		if got := listStatus(t, f, id); got != tt.want {
			t.Errorf("style %d: GET /jobs status %s, want %s", tt.style, got, tt.want)
		}
	}
}

func listStatus(t *testing.T, f *fixture, id string) string {
	t.Helper()
	var p struct {
		Jobs []struct {
			JobID  string `json:"job_id"`
			Status string `json:"status"`
		} `json:"jobs"`
	}
	r := f.call(t, "GET", "/jobs?limit=500", "")
	if err := json.Unmarshal(r.body, &p); err != nil {
		t.Fatalf("GET /jobs: %v %s", err, r.body)
	}
	for _, j := range p.Jobs {
		if j.JobID == id {
			return j.Status
		}
	}
	t.Fatalf("job %s not listed", id)
	return ""
}

// parseResponse mirrors the SDKs' ParseResponse with the required fields as pointers, so that
// a test can tell a missing field from a zero one.
type parseResponse struct {
	JobID    *string  `json:"job_id"`
	Duration *float64 `json:"duration"`
	Usage    *struct {
		NumPages *int `json:"num_pages"`
	} `json:"usage"`
	Result *struct {
		Type     string            `json:"type"`
		Chunks   []json.RawMessage `json:"chunks"`
		URL      string            `json:"url"`
		ResultID string            `json:"result_id"`
	} `json:"result"`
}

func (p *parseResponse) check(t *testing.T, id string, pages int, wantType string) {
	t.Helper()
	switch {
	case p.JobID == nil || *p.JobID != id:
		t.Errorf("ParseResponse.job_id = %v, want %s", p.JobID, id)
	case p.Duration == nil:
		t.Error("ParseResponse.duration missing")
	case p.Usage == nil || p.Usage.NumPages == nil || *p.Usage.NumPages != pages:
		t.Errorf("ParseResponse.usage.num_pages missing or not %d", pages)
	case p.Result == nil || p.Result.Type != wantType:
		t.Errorf("ParseResponse.result = %+v, want type %s", p.Result, wantType)
	case wantType == "full" && len(p.Result.Chunks) == 0:
		t.Error("full result without chunks")
	case wantType == "url" && (p.Result.URL == "" || p.Result.ResultID == ""):
		t.Errorf("url result %+v without url or result_id", p.Result)
	}
}

// TestPipelineResultIsParseResponse checks a pipeline's result is a PipelineResponse whose
// parse step is a whole ParseResponse, as the SDKs validate it.
func TestPipelineResultIsParseResponse(t *testing.T) {
	for _, outcome := range []Outcome{OutcomeComplete, OutcomeCompleteURL} {
		t.Run(outcome.String(), func(t *testing.T) {
			f := newFixture(t, Options{})
			id := f.sim.Create(JobSpec{Type: TypePipeline, NumPages: 5, Outcome: outcome})
			var job struct {
				Result struct {
					JobID *string `json:"job_id"`
					Usage *struct {
						NumPages *int `json:"num_pages"`
					} `json:"usage"`
					Result map[string]json.RawMessage `json:"result"`
				} `json:"result"`
			}
			r := f.call(t, "GET", "/job/"+id, "")
			if err := json.Unmarshal(r.body, &job); err != nil {
				t.Fatal(err)
			}
			res := job.Result
			if res.JobID == nil || *res.JobID != id || res.Usage == nil || res.Usage.NumPages == nil || *res.Usage.NumPages != 5 {
				t.Errorf("got pipeline result %s, want job_id and usage.num_pages", r.body)
			}
			for _, k := range []string{"extract", "split"} {
				if string(res.Result[k]) != "null" {
					t.Errorf("result.%s = %s, want null", k, res.Result[k])
				}
			}
			var parse parseResponse
			if err := json.Unmarshal(res.Result["parse"], &parse); err != nil {
				t.Fatalf("result.parse %s: %v", res.Result["parse"], err)
			}
			// force_url_result does not apply to pipelines: always the full result.
			parse.check(t, id, 5, "full")
		})
	}
}

// TestURLResultsOnlyForParse submits force_url_result to every endpoint: only parse answers
// with a URL result.
func TestURLResultsOnlyForParse(t *testing.T) {
	tests := []struct {
		path, body string
		wantURL    bool
	}{
		{"/parse_async", `{"input":"https://x/y.pdf","settings":{"force_url_result":true}}`, true},
		{"/parse_async", `{"input":"https://x/y.pdf"}`, false},
		{"/extract_async", `{"input":"https://x/y.pdf","settings":{"force_url_result":true}}`, false},
		{"/split_async", `{"input":"https://x/y.pdf","split_description":[],"settings":{"force_url_result":true}}`, false},
		{"/pipeline_async", `{"input":"https://x/y.pdf","pipeline_id":"p","settings":{"force_url_result":true}}`, false},
		{"/edit_async", `{"document_url":"https://x/y.pdf","edit_instructions":"e","settings":{"force_url_result":true}}`, false},
	}
	for _, tt := range tests {
		t.Run(tt.path+"/"+strings.TrimPrefix(strings.TrimSuffix(tt.body, "}"), "{"), func(t *testing.T) {
			f := newFixture(t, Options{})
			id := f.submit(t, tt.path, tt.body)
			f.clock.Advance(24 * time.Hour)
			r := f.call(t, "GET", "/job/"+id, "")
			var job struct {
				Status string          `json:"status"`
				Result json.RawMessage `json:"result"`
			}
			if err := json.Unmarshal(r.body, &job); err != nil || job.Status != StatusCompleted {
				t.Fatalf("got %s (%v), want Completed", r.body, err)
			}
			if got := bytes.Contains(job.Result, []byte(`"type":"url"`)); got != tt.wantURL {
				t.Errorf("URL result: got %v, want %v in %.200s", got, tt.wantURL, job.Result)
			}
			snap, _ := f.sim.Job(id)
			wantOutcome := OutcomeComplete
			if tt.wantURL {
				wantOutcome = OutcomeCompleteURL
				var p struct{ Result parseResponse }
				_ = json.Unmarshal(r.body, &p)
				p.Result.check(t, id, snap.Spec.NumPages, "url")
			}
			if snap.Spec.Outcome != wantOutcome {
				t.Errorf("got outcome %v, want %v", snap.Spec.Outcome, wantOutcome)
			}
		})
	}
	// A spec asking for a URL outcome on another type is served inline too.
	f := newFixture(t, Options{})
	for _, typ := range []string{TypeExtract, TypeSplit, TypeEdit, TypePipeline} {
		id := f.sim.Create(JobSpec{Type: typ, Outcome: OutcomeCompleteURL})
		r := f.call(t, "GET", "/job/"+id, "")
		if bytes.Contains(r.body, []byte(`"type":"url"`)) {
			t.Errorf("%s with OutcomeCompleteURL: got a URL result %.200s", typ, r.body)
		}
	}
}

// TestErrorFaultsAreExclusive draws the four 5xx faults over many requests: each answer is one
// of them, each kind shows up, and each is counted once.
func TestErrorFaultsAreExclusive(t *testing.T) {
	f := newFixture(t, Options{Faults: Faults{Err500: 0.25, Err502: 0.25, Err503: 0.25, Err504: 0.25}})
	const n = 200
	codes := map[int]int{}
	for range n {
		codes[f.call(t, "GET", "/jobs", "").code]++
	}
	for _, c := range []int{500, 502, 503, 504} {
		if codes[c] == 0 {
			t.Errorf("no %d among %v", c, codes)
		}
	}
	if codes[500]+codes[502]+codes[503]+codes[504] != n {
		t.Errorf("got %v, want only 5xx", codes)
	}
	if st := f.sim.Stats(); st.Faults != n || st.Statuses[504] != int64(codes[504]) {
		t.Errorf("got faults %d statuses %v, want %d and %d 504s", st.Faults, st.Statuses, n, codes[504])
	}
}

// TestOddTypes checks odd answers: optional fields change JSON type, status and result do not.
func TestOddTypes(t *testing.T) {
	tests := []struct {
		name    string
		spec    JobSpec
		at      time.Duration
		cancel  bool
		want    []string // substrings of the odd answer
		wantNot []string
	}{
		{"running", JobSpec{Duration: 10 * time.Second, NumPages: 2}, 5 * time.Second,
			false, []string{`"progress":"50"`, `"total_pages":2.0`, `"num_pages":null`, `"duration":null`}, nil},
		{"queued", JobSpec{Queue: 10 * time.Second, Duration: 10 * time.Second, NumPages: 2}, 5 * time.Second,
			false, []string{`"status":"Idle"`, `"progress":"0"`, `"total_pages":2.0`}, nil},
		{"completed", JobSpec{Duration: 12500 * time.Millisecond}, time.Minute,
			false, []string{`"status":"Completed"`, `"num_pages":3.0`, `"total_pages":3.0`, `"duration":"12.5"`, `"progress":"100"`}, []string{`"error"`}},
		{"failed", JobSpec{Duration: 12500 * time.Millisecond, Outcome: OutcomeFail}, time.Minute,
			false, []string{`"status":"Failed"`, `"duration":"12.5"`, `"num_pages":null`, `"progress":null`,
				`"error":{"code":400.0,"name":"DOCUMENT_CORRUPT"`, `"job_id":"`}, nil},
		{"cancelled", JobSpec{Duration: time.Hour}, time.Minute,
			true, []string{`"status":"Failed"`, `"error":{"code":400.0,"name":"JOB_CANCELLED"`}, nil},
		{"no progress", JobSpec{Duration: time.Hour, Progress: ProgressNone}, time.Minute,
			false, []string{`"progress":null`}, nil},
	}
	for _, tt := range tests {
		for _, via := range []string{"spec", "fault"} {
			t.Run(tt.name+"/"+via, func(t *testing.T) {
				plain := newFixture(t, Options{})
				odd := newFixture(t, Options{})
				sp := tt.spec
				if via == "spec" {
					sp.OddTypes = true
				} else {
					odd.sim.SetFaults(Faults{OddTypes: 1})
				}
				pid, oid := plain.sim.Create(tt.spec), odd.sim.Create(sp)
				if tt.cancel {
					plain.clock.Advance(time.Second)
					odd.clock.Advance(time.Second)
					plain.sim.Cancel(pid)
					odd.sim.Cancel(oid)
				}
				plain.clock.Set(t0.Add(tt.at))
				odd.clock.Set(t0.Add(tt.at))
				pr := plain.call(t, "GET", "/job/"+pid, "")
				or := odd.call(t, "GET", "/job/"+oid, "")
				if or.code != 200 || !json.Valid(or.body) {
					t.Fatalf("got %d %s, want 200 valid JSON", or.code, or.body)
				}
				body := strings.ReplaceAll(string(or.body), oid, pid) // same seed: same ids, but be sure
				for _, w := range tt.want {
					if !strings.Contains(body, w) {
						t.Errorf("odd answer lacks %s: %s", w, or.body)
					}
				}
				for _, w := range tt.wantNot {
					if strings.Contains(body, w) {
						t.Errorf("odd answer has %s: %s", w, or.body)
					}
				}
				var p, o struct {
					Status string
					Result json.RawMessage
					Reason *string
				}
				_ = json.Unmarshal(pr.body, &p)
				_ = json.Unmarshal([]byte(body), &o)
				if p.Status != o.Status || !bytes.Equal(p.Result, o.Result) || (p.Reason == nil) != (o.Reason == nil) {
					t.Errorf("odd answer changed status, result or reason:\nplain %s\nodd   %s", pr.body, or.body)
				}
				if st := odd.sim.Stats(); st.OddTypes != 1 || st.Jobs[oid].OddTypes != 1 {
					t.Errorf("got Stats.OddTypes %d, job %d, want 1 and 1", st.OddTypes, st.Jobs[oid].OddTypes)
				}
				if st := plain.sim.Stats(); st.OddTypes != 0 {
					t.Errorf("plain server counted %d odd answers", st.OddTypes)
				}
			})
		}
	}
	t.Run("fraction", func(t *testing.T) {
		f := newFixture(t, Options{Faults: Faults{OddTypes: 0.5}})
		id := f.sim.Create(JobSpec{Duration: time.Second})
		f.clock.Advance(time.Minute)
		const n = 100
		odd := 0
		for range n {
			r := f.call(t, "GET", "/job/"+id, "")
			if strings.Contains(string(r.body), `"num_pages":3.0`) {
				odd++
			} else if !strings.Contains(string(r.body), `"num_pages":3,`) {
				t.Fatalf("got %s, want num_pages 3 or 3.0", r.body)
			}
		}
		if odd < 25 || odd > 75 {
			t.Errorf("got %d odd answers of %d, want about half", odd, n)
		}
		if st := f.sim.Stats(); st.OddTypes != int64(odd) || st.Faults != 0 {
			t.Errorf("got Stats.OddTypes %d faults %d, want %d and 0", st.OddTypes, st.Faults, odd)
		}
		// The cached terminal body was not spoiled by the odd ones.
		f.sim.SetFaults(Faults{})
		if r := f.call(t, "GET", "/job/"+id, ""); !strings.Contains(string(r.body), `"num_pages":3,"total_pages":3,`) {
			t.Errorf("after odd answers: got %s, want the plain body", r.body)
		}
	})
}

// TestFlap checks a flapping job's GET /job answers: 404, real, 404, real... while it is not
// terminal, then the real answer every time.
func TestFlap(t *testing.T) {
	const nf = http.StatusNotFound
	type step struct {
		at     time.Duration
		code   int
		status string // for 200s
	}
	tests := []struct {
		name   string
		spec   JobSpec
		cancel time.Duration // cancel at this time when > 0
		steps  []step
	}{
		{"completes", JobSpec{Queue: 10 * time.Second, Duration: 10 * time.Second}, 0, []step{
			{1 * time.Second, nf, ""}, {2 * time.Second, 200, StatusIdle}, {3 * time.Second, nf, ""},
			{11 * time.Second, 200, StatusPending}, {12 * time.Second, nf, ""}, {13 * time.Second, 200, StatusPending},
			{14 * time.Second, nf, ""}, {20 * time.Second, 200, StatusCompleted}, {21 * time.Second, 200, StatusCompleted},
			{22 * time.Second, 200, StatusCompleted}}},
		// After an odd number of flaps the next non-terminal answer would be real; a terminal
		// job answers for real whatever the parity.
		{"terminal after a real answer", JobSpec{Duration: 10 * time.Second}, 0, []step{
			{1 * time.Second, nf, ""}, {2 * time.Second, 200, StatusPending}, {10 * time.Second, 200, StatusCompleted},
			{11 * time.Second, 200, StatusCompleted}}},
		{"fails", JobSpec{Duration: 10 * time.Second, Outcome: OutcomeFail}, 0, []step{
			{1 * time.Second, nf, ""}, {2 * time.Second, 200, StatusPending}, {3 * time.Second, nf, ""},
			{10 * time.Second, 200, StatusFailed}, {11 * time.Second, 200, StatusFailed}}},
		{"cancelled", JobSpec{Outcome: OutcomeNever}, 5 * time.Second, []step{
			{1 * time.Second, nf, ""}, {2 * time.Second, 200, StatusPending}, {3 * time.Second, nf, ""},
			{6 * time.Second, 200, StatusFailed}, {7 * time.Second, 200, StatusFailed}}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f := newFixture(t, Options{})
			sp := tt.spec
			sp.Flap = true
			id := f.sim.Create(sp)
			flaps := 0
			for _, s := range tt.steps {
				if tt.cancel > 0 && s.at > tt.cancel && f.clock.Now().Before(t0.Add(tt.cancel)) {
					f.clock.Set(t0.Add(tt.cancel))
					f.sim.Cancel(id)
				}
				f.clock.Set(t0.Add(s.at))
				r := f.call(t, "GET", "/job/"+id, "")
				if r.code != s.code {
					t.Fatalf("at %v: got %d %s, want %d", s.at, r.code, r.body, s.code)
				}
				if s.code == nf {
					flaps++
					if string(r.body) != bodyJobNotFound {
						t.Errorf("at %v: got 404 body %s, want the unknown-job body", s.at, r.body)
					}
					continue
				}
				if got := r.json(t)["status"]; got != s.status {
					t.Errorf("at %v: got status %v, want %s", s.at, got, s.status)
				}
			}
			st := f.sim.Stats()
			if st.Flaps != int64(flaps) || st.Jobs[id].Flaps != int64(flaps) || st.Jobs[id].Gets != int64(len(tt.steps)) {
				t.Errorf("got Stats.Flaps %d, job flaps %d gets %d, want %d, %d, %d",
					st.Flaps, st.Jobs[id].Flaps, st.Jobs[id].Gets, flaps, flaps, len(tt.steps))
			}
			if st.Statuses[nf] != int64(flaps) {
				t.Errorf("got %d 404s counted, want %d", st.Statuses[nf], flaps)
			}
		})
	}
	t.Run("deleted job answers its deletion", func(t *testing.T) {
		f := newFixture(t, Options{})
		id := f.sim.Create(JobSpec{Duration: time.Hour, Flap: true})
		f.sim.Delete(id, http.StatusConflict, time.Minute)
		for range 3 {
			if r := f.call(t, "GET", "/job/"+id, ""); r.code != http.StatusConflict {
				t.Fatalf("got %d, want 409 every time", r.code)
			}
		}
	})
	t.Run("other jobs do not flap", func(t *testing.T) {
		f := newFixture(t, Options{})
		id := f.sim.Create(JobSpec{Duration: time.Hour})
		f.sim.Create(JobSpec{Duration: time.Hour, Flap: true})
		for range 4 {
			if r := f.call(t, "GET", "/job/"+id, ""); r.code != 200 {
				t.Fatalf("got %d, want 200", r.code)
			}
		}
	})
	t.Run("answers cut by a malformed fault do not count", func(t *testing.T) {
		f := newFixture(t, Options{})
		id := f.sim.Create(JobSpec{Duration: time.Hour, Flap: true})
		f.sim.SetFaults(Faults{Malformed: 1})
		// Until one truncated 200 (the handler ran into a capture) has been answered: without
		// the guard, that run would have used up the first flap.
		truncated := false
		for range 50 {
			if f.call(t, "GET", "/job/"+id, "").code == 200 {
				truncated = true
				break
			}
		}
		if !truncated {
			t.Fatal("no truncated answer in 50 malformed ones")
		}
		f.sim.SetFaults(Faults{})
		if r := f.call(t, "GET", "/job/"+id, ""); r.code != nf {
			t.Errorf("first answer after the faults: got %d, want the first flap's 404", r.code)
		}
	})
}

// TestFlapFault checks Faults.Flap picks a fraction of jobs at creation, reproducibly from the
// seed, and leaves the seeded ids alone when off.
func TestFlapFault(t *testing.T) {
	flapping := func(faults Faults) (ids []string, flaps []bool) {
		f := newFixture(t, Options{Seed: 99, Faults: faults})
		for range 200 {
			id := f.sim.Create(JobSpec{Duration: time.Hour})
			snap, _ := f.sim.Job(id)
			ids, flaps = append(ids, id), append(flaps, snap.Spec.Flap)
		}
		return ids, flaps
	}
	plainIDs, none := flapping(Faults{})
	zeroIDs, _ := flapping(Faults{Flap: 0, OddTypes: 0.5})
	for i := range plainIDs {
		if none[i] {
			t.Fatalf("job %d flaps without the fault", i)
		}
		if plainIDs[i] != zeroIDs[i] {
			t.Fatalf("job %d: id %s with Flap 0, %s without faults: want the same seeded ids", i, zeroIDs[i], plainIDs[i])
		}
	}
	ids1, half1 := flapping(Faults{Flap: 0.5})
	ids2, half2 := flapping(Faults{Flap: 0.5})
	n := 0
	for i := range half1 {
		if ids1[i] != ids2[i] || half1[i] != half2[i] {
			t.Fatalf("job %d: same seed, different draw (%s %v, %s %v)", i, ids1[i], half1[i], ids2[i], half2[i])
		}
		if half1[i] {
			n++
		}
	}
	if n < 60 || n > 140 {
		t.Errorf("got %d of 200 jobs flapping, want about 100", n)
	}
	_, all := flapping(Faults{Flap: 1})
	for i, fl := range all {
		if !fl {
			t.Fatalf("job %d does not flap with Flap 1", i)
		}
	}

	// A submitted job flaps too, and its first poll is the 404.
	f := newFixture(t, Options{Faults: Faults{Flap: 1}})
	id := f.submit(t, "/parse_async", `{"input":"https://x/y.pdf"}`)
	if r := f.call(t, "GET", "/job/"+id, ""); r.code != http.StatusNotFound {
		t.Errorf("first poll of a flapping submitted job: got %d, want 404", r.code)
	}
	if r := f.call(t, "GET", "/job/"+id, ""); r.code != 200 {
		t.Errorf("second poll: got %d, want 200", r.code)
	}
}

// listEntry is one SingleJob of GET /jobs, as far as these tests read it.
type listEntry struct {
	JobID     string `json:"job_id"`
	Status    string `json:"status"`
	CreatedAt string `json:"created_at"`
}

// listPage fetches one page of GET /jobs (cursor "" for the first) and returns its entries and
// next_cursor ("" for null).
func listPage(t *testing.T, f *fixture, limit int, cursor string) ([]listEntry, string) {
	t.Helper()
	path := "/jobs?exclude_configs=true&limit=" + strconv.Itoa(limit)
	if cursor != "" {
		path += "&cursor=" + url.QueryEscape(cursor)
	}
	r := f.call(t, "GET", path, "")
	if r.code != http.StatusOK {
		t.Fatalf("GET %s: got %d %s, want 200", path, r.code, r.body)
	}
	var p struct {
		Jobs       []listEntry `json:"jobs"`
		NextCursor *string     `json:"next_cursor"`
	}
	if err := json.Unmarshal(r.body, &p); err != nil {
		t.Fatalf("GET %s: %v %s", path, err, r.body)
	}
	next := ""
	if p.NextCursor != nil {
		next = *p.NextCursor
	}
	return p.Jobs, next
}

func ids(es []listEntry) []string {
	out := make([]string, len(es))
	for i, e := range es {
		out[i] = e.JobID
	}
	return out
}

// TestListCursors pages through GET /jobs while jobs are created between two page requests:
// the default keyset cursor neither repeats nor skips, an offset cursor (OffsetCursors) is
// the numeric offset of the next page and repeats the entries the new jobs pushed down, but
// skips none.
func TestListCursors(t *testing.T) {
	for _, offsets := range []bool{false, true} {
		t.Run(fmt.Sprintf("offsets=%v", offsets), func(t *testing.T) {
			f := newFixture(t, Options{OffsetCursors: offsets})
			var old []string // newest first
			for range 5 {
				old = append([]string{f.sim.Create(JobSpec{Duration: time.Hour})}, old...)
				f.clock.Advance(time.Millisecond)
			}
			p1, c1 := listPage(t, f, 2, "")
			if got := ids(p1); !slices.Equal(got, old[:2]) {
				t.Fatalf("page 1 = %v, want the two newest %v", got, old[:2])
			}
			if offsets && c1 != "2" {
				t.Errorf("offset cursor after page 1 = %q, want \"2\"", c1)
			}
			// Two jobs arrive between the pages: the listing shifts by two.
			newer := []string{f.sim.Create(JobSpec{Duration: time.Hour})}
			f.clock.Advance(time.Millisecond)
			newer = append(newer, f.sim.Create(JobSpec{Duration: time.Hour}))
			p2, c2 := listPage(t, f, 2, c1)
			p3, c3 := listPage(t, f, 2, c2)
			var rest []listEntry
			cur := c3
			for cur != "" {
				var p []listEntry
				p, cur = listPage(t, f, 2, cur)
				rest = append(rest, p...)
			}
			all := slices.Concat(ids(p1), ids(p2), ids(p3), ids(rest))
			seen := map[string]int{}
			for _, id := range all {
				seen[id]++
			}
			for _, id := range old {
				if seen[id] == 0 {
					t.Errorf("job %s created before paging was skipped (pages %v)", id, all)
				}
			}
			for _, id := range newer {
				if seen[id] != 0 {
					t.Errorf("job %s created after page 1 appears on a later page", id)
				}
			}
			repeats := 0
			for _, n := range seen {
				repeats += n - 1
			}
			if !offsets {
				if repeats != 0 || !slices.Equal(ids(p2), old[2:4]) {
					t.Errorf("keyset cursor: page 2 = %v, %d repeats; want %v and none", ids(p2), repeats, old[2:4])
				}
				return
			}
			// Offset 2 of the shifted listing [n2 n1 o1 o2 o3 o4 o5] is o1, o2: page 1 again.
			if !slices.Equal(ids(p2), old[:2]) || repeats != 2 {
				t.Errorf("offset cursor: page 2 = %v with %d repeats; want page 1 again %v, 2 repeats", ids(p2), repeats, old[:2])
			}
			if c2 != "4" {
				t.Errorf("offset cursor after page 2 = %q, want \"4\"", c2)
			}
		})
	}
	f := newFixture(t, Options{OffsetCursors: true})
	for _, bad := range []string{"-1", "abc", "MTIzLjQ"} {
		if r := f.call(t, "GET", "/jobs?cursor="+bad, ""); r.code != http.StatusUnprocessableEntity {
			t.Errorf("offset cursor %q: got %d %s, want 422", bad, r.code, r.body)
		}
	}
}

// TestBackgroundTraffic checks the untracked jobs the simulator creates by itself: Poisson at
// the rate, on the simulator clock, each created at its own arrival instant, listed by
// GET /jobs, answering GET /job, marked in Stats; and stopped by SetBackground.
func TestBackgroundTraffic(t *testing.T) {
	var specCalls []string
	f := newFixture(t, Options{
		Background: Background{Rate: 5},
		// The submitted jobs' model (Options.Spec) applies to background jobs too.
		Spec: func(endpoint string, _ []byte) JobSpec {
			specCalls = append(specCalls, endpoint)
			return JobSpec{Duration: 3 * time.Second, Progress: ProgressNone}
		},
	})
	tracked := f.sim.Create(JobSpec{Duration: time.Hour})
	if st := f.sim.Stats(); st.BackgroundJobs != 0 {
		t.Fatalf("at the start: %d background jobs, want 0", st.BackgroundJobs)
	}
	f.clock.Advance(20 * time.Second)
	list, next := listPage(t, f, 500, "")
	if next != "" {
		t.Fatalf("next_cursor %q, want all jobs on one page", next)
	}
	st := f.sim.Stats()
	// 100 expected; a Poisson count is within 100 +- 40 with overwhelming probability, and the
	// seed is fixed anyway.
	if st.BackgroundJobs < 60 || st.BackgroundJobs > 140 {
		t.Fatalf("after 20 s at 5/s: %d background jobs, want about 100", st.BackgroundJobs)
	}
	if int64(len(list)) != st.BackgroundJobs+1 {
		t.Errorf("GET /jobs lists %d jobs, want the %d background jobs and the tracked one", len(list), st.BackgroundJobs)
	}
	if int64(len(specCalls)) != st.BackgroundJobs || specCalls[0] != "/parse_async" {
		t.Errorf("Options.Spec called %d times (first %v), want once per background job, for /parse_async", len(specCalls), specCalls[:min(1, len(specCalls))])
	}
	created := map[string]bool{}
	completed := 0
	for _, e := range list {
		js := st.Jobs[e.JobID]
		if js.Background == (e.JobID == tracked) {
			t.Errorf("job %s: Background %v, want %v", e.JobID, js.Background, e.JobID != tracked)
		}
		if e.JobID == tracked {
			continue
		}
		at, err := time.Parse(time.RFC3339Nano, e.CreatedAt)
		if err != nil || at.Before(t0) || at.After(t0.Add(20*time.Second)) {
			t.Errorf("background job %s created_at %q, want within the 20 s", e.JobID, e.CreatedAt)
		}
		created[e.CreatedAt] = true
		if e.Status == StatusCompleted {
			completed++
		}
	}
	// Each was created at its own arrival time, not all at the request that found them.
	if len(created) < len(list)-5 {
		t.Errorf("%d distinct created_at among %d background jobs, want one each", len(created), len(list)-1)
	}
	// Those older than 3 s have ended, the latest have not.
	if completed == 0 || completed == len(list)-1 {
		t.Errorf("%d of %d background jobs completed, want those older than 3 s only", completed, len(list)-1)
	}
	bgID := list[0].JobID
	if bgID == tracked {
		bgID = list[1].JobID
	}
	if r := f.call(t, "GET", "/job/"+bgID, ""); r.code != http.StatusOK {
		t.Errorf("GET /job of background job: %d %s, want 200", r.code, r.body)
	}

	f.sim.SetBackground(Background{})
	f.clock.Advance(20 * time.Second)
	if got := f.sim.Stats().BackgroundJobs; got != st.BackgroundJobs {
		t.Errorf("after SetBackground(zero): %d background jobs, want still %d", got, st.BackgroundJobs)
	}
	// A given Spec replaces Options.Spec.
	f.sim.SetBackground(Background{Rate: 1, Spec: func() JobSpec { return JobSpec{Type: TypeExtract, Duration: time.Hour} }})
	calls := len(specCalls)
	f.clock.Advance(30 * time.Second)
	st2 := f.sim.Stats()
	extracts := 0
	for _, js := range st2.Jobs {
		if js.Background && js.Type == TypeExtract {
			extracts++
		}
	}
	if extracts == 0 || int64(extracts) != st2.BackgroundJobs-st.BackgroundJobs || len(specCalls) != calls {
		t.Errorf("with Background.Spec: %d Extract jobs of %d new, Options.Spec called %d more times; want all new, 0", extracts, st2.BackgroundJobs-st.BackgroundJobs, len(specCalls)-calls)
	}
	if _, err := New(Options{Background: Background{Rate: -1}}); !errors.Is(err, ErrInvalidOptions) {
		t.Errorf("negative background rate: got %v, want ErrInvalidOptions", err)
	}
}

// TestListStaleness checks that with ListStaleness GET /jobs reports statuses as of that long
// ago while GET /job stays current, for a natural end and for a cancellation.
func TestListStaleness(t *testing.T) {
	f := newFixture(t, Options{ListStaleness: 5 * time.Second})
	done := f.sim.Create(JobSpec{Duration: 10 * time.Second})
	cancelled := f.sim.Create(JobSpec{Duration: time.Hour})
	f.clock.Set(t0.Add(8 * time.Second))
	f.sim.Cancel(cancelled)
	steps := []struct {
		at                time.Duration
		getDone, listDone string
		getCanc, listCanc string
	}{
		{9 * time.Second, StatusPending, StatusPending, StatusFailed, StatusPending},
		{12 * time.Second, StatusCompleted, StatusPending, StatusFailed, StatusPending},
		{13500 * time.Millisecond, StatusCompleted, StatusPending, StatusFailed, StatusFailed},
		{15 * time.Second, StatusCompleted, StatusCompleted, StatusFailed, StatusFailed},
	}
	for _, s := range steps {
		if got := f.jobAt(t, done, s.at)["status"]; got != s.getDone {
			t.Errorf("at %v: GET /job status %v, want %s (current)", s.at, got, s.getDone)
		}
		if got := f.jobAt(t, cancelled, s.at)["status"]; got != s.getCanc {
			t.Errorf("at %v: GET /job of the cancelled job %v, want %s (current)", s.at, got, s.getCanc)
		}
		if got := listStatus(t, f, done); got != s.listDone {
			t.Errorf("at %v: GET /jobs status %s, want %s (as of 5 s ago)", s.at, got, s.listDone)
		}
		if got := listStatus(t, f, cancelled); got != s.listCanc {
			t.Errorf("at %v: GET /jobs status of the cancelled job %s, want %s (as of 5 s ago)", s.at, got, s.listCanc)
		}
	}
	// A job created within the window is listed, as queued.
	fresh := f.sim.Create(JobSpec{Duration: time.Second})
	f.clock.Advance(2 * time.Second)
	if got := listStatus(t, f, fresh); got != StatusIdle {
		t.Errorf("job created 2 s ago: GET /jobs status %s, want %s (before its creation, 5 s ago)", got, StatusIdle)
	}
	if _, err := New(Options{ListStaleness: -time.Second}); !errors.Is(err, ErrInvalidOptions) {
		t.Errorf("negative staleness: got %v, want ErrInvalidOptions", err)
	}
}
