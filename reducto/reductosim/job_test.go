package reductosim

import (
	"encoding/json"
	"errors"
	"net/http"
	"strconv"
	"testing"
	"time"
)

// jobAt advances the fake clock to t0+at and GETs the job.
func (f *fixture) jobAt(t *testing.T, id string, at time.Duration) map[string]any {
	t.Helper()
	f.clock.Set(t0.Add(at))
	r := f.call(t, "GET", "/job/"+id, "")
	if r.code != 200 {
		t.Fatalf("GET /job/%s at %v: got %d %s, want 200", id, at, r.code, r.body)
	}
	return r.json(t)
}

func TestProgressAndLifecycle(t *testing.T) {
	spec := JobSpec{Queue: 10 * time.Second, Duration: 100 * time.Second}
	tests := []struct {
		name         string
		lifecycle    bool
		progress     Progress
		at           time.Duration
		wantStatus   string
		wantProgress any // float64 or nil
		wantDuration any
	}{
		{"queued", false, ProgressLinear, 5 * time.Second, "Idle", 0.0, nil},
		{"running half", false, ProgressLinear, 60 * time.Second, "Pending", 50.0, nil},
		{"running quarter", false, ProgressLinear, 35 * time.Second, "Pending", 25.0, nil},
		{"completing window", false, ProgressLinear, 106 * time.Second, "Pending", 96.0, nil},
		{"done", false, ProgressLinear, 111 * time.Second, "Completed", 100.0, 110.0},
		{"lifecycle queued", true, ProgressLinear, 5 * time.Second, "Pending", 0.0, nil},
		{"lifecycle running", true, ProgressLinear, 60 * time.Second, "InProgress", 50.0, nil},
		{"lifecycle completing", true, ProgressLinear, 106 * time.Second, "Completing", 96.0, nil},
		{"lifecycle done", true, ProgressLinear, 110 * time.Second, "Completed", 100.0, 110.0},
		{"no progress running", false, ProgressNone, 60 * time.Second, "Pending", nil, nil},
		{"no progress done", true, ProgressNone, 200 * time.Second, "Completed", nil, 110.0},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f := newFixture(t, Options{Lifecycle: tt.lifecycle})
			sp := spec
			sp.Progress = tt.progress
			id := f.sim.Create(sp)
			got := f.jobAt(t, id, tt.at)
			if got["status"] != tt.wantStatus {
				t.Errorf("got status %v, want %s", got["status"], tt.wantStatus)
			}
			if got["progress"] != tt.wantProgress {
				t.Errorf("got progress %v, want %v", got["progress"], tt.wantProgress)
			}
			if got["duration"] != tt.wantDuration {
				t.Errorf("got duration %v, want %v", got["duration"], tt.wantDuration)
			}
			if got["created_at"] != "2026-01-02T03:04:05.000000Z" {
				t.Errorf("got created_at %v, want 2026-01-02T03:04:05.000000Z", got["created_at"])
			}
			if _, err := time.Parse(time.RFC3339, got["created_at"].(string)); err != nil {
				t.Errorf("created_at is not RFC 3339: %v", err)
			}
		})
	}
}

func TestEnhancedFields(t *testing.T) {
	f := newFixture(t, Options{})
	id := f.sim.Create(JobSpec{Duration: time.Second, NumPages: 4})
	want := []string{"status", "result", "progress", "reason", "type", "num_pages", "total_pages",
		"duration", "created_at", "raw_config", "source", "bucket"}
	for _, at := range []time.Duration{0, 2 * time.Second} {
		got := f.jobAt(t, id, at)
		for _, k := range want {
			if _, ok := got[k]; !ok {
				t.Errorf("at %v: field %q missing from %v", at, k, got)
			}
		}
		if _, ok := got["error"]; ok {
			t.Errorf("at %v: got an error field on a healthy job", at)
		}
		if got["total_pages"] != 4.0 || got["bucket"] != nil || got["source"] != nil {
			t.Errorf("at %v: got total_pages %v source %v bucket %v, want 4, null, null", at, got["total_pages"], got["source"], got["bucket"])
		}
	}
}

func TestOutcomes(t *testing.T) {
	tests := []struct {
		name  string
		spec  JobSpec
		check func(t *testing.T, f *fixture, job map[string]any)
	}{
		{"parse complete", JobSpec{Type: TypeParse, NumPages: 2}, func(t *testing.T, f *fixture, job map[string]any) {
			res := job["result"].(map[string]any)
			inner := res["result"].(map[string]any)
			chunks := inner["chunks"].([]any)
			block := chunks[0].(map[string]any)["blocks"].([]any)[0].(map[string]any)
			bbox := block["bbox"].(map[string]any)
			if inner["type"] != "full" || len(chunks) == 0 || block["type"] != "Text" || bbox["page"] != 1.0 || block["confidence"] != "high" {
				t.Errorf("got inner result %v, want a full result with Text blocks", inner)
			}
			usage := res["usage"].(map[string]any)
			if usage["num_pages"] != 2.0 || res["job_id"] != job["__id"] || res["duration"] == nil {
				t.Errorf("got result %v, want usage.num_pages 2, job_id and duration", res)
			}
			if job["num_pages"] != 2.0 || job["reason"] != nil || job["progress"] != 100.0 {
				t.Errorf("got job %v, want num_pages 2, no reason, progress 100", job)
			}
		}},
		{"extract complete", JobSpec{Type: TypeExtract}, func(t *testing.T, f *fixture, job map[string]any) {
			res := job["result"].(map[string]any)
			arr := res["result"].([]any)
			usage := res["usage"].(map[string]any)
			if len(arr) != 1 || arr[0].(map[string]any)["invoice_number"] == nil || usage["num_fields"] == nil {
				t.Errorf("got %v, want an extract result array with fields", res)
			}
			if _, ok := res["citations"]; !ok || res["citations"] != nil {
				t.Errorf("got citations %v, want null", res["citations"])
			}
		}},
		{"split complete", JobSpec{Type: TypeSplit, NumPages: 5}, func(t *testing.T, f *fixture, job map[string]any) {
			splits := job["result"].(map[string]any)["result"].(map[string]any)["splits"].([]any)
			first := splits[0].(map[string]any)
			if len(splits) != 3 || first["conf"] != "high" || len(first["pages"].([]any)) != 2 {
				t.Errorf("got splits %v, want 3 splits over 5 pages", splits)
			}
		}},
		{"edit complete", JobSpec{Type: TypeEdit}, func(t *testing.T, f *fixture, job map[string]any) {
			u := job["result"].(map[string]any)["document_url"].(string)
			r := f.callAuth(t, "GET", u[len(f.ts.URL):], "", "")
			if r.code != 200 || string(r.body[:5]) != "%PDF-" {
				t.Errorf("GET document_url: got %d %q, want a PDF", r.code, r.body)
			}
		}},
		{"pipeline complete", JobSpec{Type: TypePipeline}, func(t *testing.T, f *fixture, job map[string]any) {
			res := job["result"].(map[string]any)
			if res["job_id"] != job["__id"] || res["result"].(map[string]any)["parse"] == nil {
				t.Errorf("got %v, want a pipeline result", res)
			}
		}},
		{"url result", JobSpec{Outcome: OutcomeCompleteURL, ResultSize: 40_000}, func(t *testing.T, f *fixture, job map[string]any) {
			inner := job["result"].(map[string]any)["result"].(map[string]any)
			u, _ := inner["url"].(string)
			rid, _ := inner["result_id"].(string)
			if inner["type"] != "url" || u != f.ts.URL+"/results/"+rid {
				t.Fatalf("got %v, want a url result on the server", inner)
			}
			r := f.callAuth(t, "GET", "/results/"+rid, "", "") // no auth, like a presigned URL
			full := r.json(t)
			if r.code != 200 || full["type"] != "full" || len(full["chunks"].([]any)) == 0 {
				t.Errorf("GET result url: got %d, want a full result with chunks", r.code)
			}
			if n := len(r.body); n < 30_000 || n > 45_000 {
				t.Errorf("got a %d-byte full result, want about 40000", n)
			}
		}},
		{"extract url outcome is inline", JobSpec{Type: TypeExtract, Outcome: OutcomeCompleteURL}, func(t *testing.T, f *fixture, job map[string]any) {
			// Only ParseResponse has URL results; the SDKs reject one on an extract.
			res := job["result"].(map[string]any)
			if arr, ok := res["result"].([]any); !ok || len(arr) != 1 {
				t.Errorf("got result %v, want the inline extract array", res["result"])
			}
			if snap, _ := f.sim.Job(job["__id"].(string)); snap.Spec.Outcome != OutcomeComplete || snap.ResultID != "" {
				t.Errorf("got outcome %v result id %q, want complete and none", snap.Spec.Outcome, snap.ResultID)
			}
		}},
		{"fail default", JobSpec{Outcome: OutcomeFail}, func(t *testing.T, f *fixture, job map[string]any) {
			want := map[string]any{"code": 400.0, "name": DefaultErrorName, "message": DefaultReason, "job_id": job["__id"]}
			checkError(t, job, StatusFailed, DefaultReason, want)
		}},
		{"fail custom", JobSpec{Outcome: OutcomeFail, ErrorName: "TIMEOUT", ErrorCode: 504, Reason: "took too long"}, func(t *testing.T, f *fixture, job map[string]any) {
			want := map[string]any{"code": 504.0, "name": "TIMEOUT", "message": "took too long", "job_id": job["__id"]}
			checkError(t, job, StatusFailed, "took too long", want)
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f := newFixture(t, Options{})
			sp := tt.spec
			sp.Duration = 10 * time.Second
			id := f.sim.Create(sp)
			if got := f.jobAt(t, id, 5*time.Second); got["status"] != StatusPending || got["result"] != nil {
				t.Fatalf("got %v before the end, want Pending with no result", got)
			}
			job := f.jobAt(t, id, 10*time.Second)
			job["__id"] = id
			if tt.spec.Outcome != OutcomeFail && job["status"] != StatusCompleted {
				t.Fatalf("got status %v, want Completed", job["status"])
			}
			if job["duration"] != 10.0 {
				t.Errorf("got duration %v, want 10", job["duration"])
			}
			tt.check(t, f, job)
			// The cached terminal body must be served identically on the next GET.
			again := f.call(t, "GET", "/job/"+id, "")
			first := f.call(t, "GET", "/job/"+id, "")
			if string(again.body) != string(first.body) {
				t.Errorf("terminal body changed between GETs")
			}
		})
	}
}

func checkError(t *testing.T, job map[string]any, status, reason string, want map[string]any) {
	t.Helper()
	if job["status"] != status || job["reason"] != reason || job["result"] != nil {
		t.Errorf("got status %v reason %v result %v, want %s, %q, null", job["status"], job["reason"], job["result"], status, reason)
	}
	e, _ := job["error"].(map[string]any)
	for k, v := range want {
		if e[k] != v {
			t.Errorf("got error.%s %v, want %v", k, e[k], v)
		}
	}
}

func TestNeverEnds(t *testing.T) {
	f := newFixture(t, Options{Lifecycle: true})
	id := f.sim.Create(JobSpec{Outcome: OutcomeNever, Duration: time.Minute})
	got := f.jobAt(t, id, 24*time.Hour)
	if got["status"] != StatusInProgress || got["progress"] != 99.0 {
		t.Fatalf("got %v %v a day later, want InProgress at 99", got["status"], got["progress"])
	}
	if !f.sim.Cancel(id) {
		t.Fatal("got Cancel false, want true")
	}
	if got := f.jobAt(t, id, 25*time.Hour); got["status"] != StatusFailed || got["duration"] != 86400.0 {
		t.Errorf("got %v after %v, want Failed after 86400s", got["status"], got["duration"])
	}
}

func TestResultSize(t *testing.T) {
	tests := []struct {
		typ  string
		size int
	}{{TypeParse, 2048}, {TypeParse, 100_000}, {TypeExtract, 20_000}, {TypePipeline, 50_000}}
	for _, tt := range tests {
		t.Run(tt.typ+"/"+strconv.Itoa(tt.size), func(t *testing.T) {
			f := newFixture(t, Options{})
			id := f.sim.Create(JobSpec{Type: tt.typ, ResultSize: tt.size})
			r := f.call(t, "GET", "/job/"+id, "")
			var m struct{ Result json.RawMessage }
			if err := json.Unmarshal(r.body, &m); err != nil {
				t.Fatal(err)
			}
			if n := len(m.Result); n < tt.size*8/10 || n > tt.size*12/10 {
				t.Errorf("got a %d-byte result, want about %d", n, tt.size)
			}
		})
	}
}

func TestCancel(t *testing.T) {
	tests := []struct {
		name       string
		style      CancelStyle
		wantStatus string
	}{
		{"as failed (default)", CancelAsFailed, StatusFailed},
		{"as cancelled", CancelAsCancelled, StatusCancelled},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f := newFixture(t, Options{CancelStyle: tt.style})
			id := f.sim.Create(JobSpec{Duration: time.Minute})
			f.clock.Advance(15 * time.Second)
			r := f.call(t, "POST", "/cancel/"+id, "")
			if r.code != 200 || string(r.body) != "null" {
				t.Fatalf("got %d %s, want 200 null", r.code, r.body)
			}
			job := f.jobAt(t, id, time.Hour)
			want := map[string]any{"code": float64(CancelErrorCode), "name": CancelErrorName, "message": CancelReason, "job_id": id}
			checkError(t, job, tt.wantStatus, CancelReason, want)
			if job["duration"] != 15.0 || job["progress"] != nil {
				t.Errorf("got duration %v progress %v, want 15 and null", job["duration"], job["progress"])
			}
			// Cancelling again is a no-op.
			if r := f.call(t, "POST", "/cancel/"+id, ""); r.code != 200 || string(r.body) != "null" {
				t.Errorf("second cancel: got %d %s, want 200 null", r.code, r.body)
			}
			if snap, _ := f.sim.Job(id); snap.Cancels != 2 || !snap.Cancelled {
				t.Errorf("got cancels %d cancelled %v, want 2 and true", snap.Cancels, snap.Cancelled)
			}
		})
	}
	t.Run("terminal job is a no-op", func(t *testing.T) {
		f := newFixture(t, Options{})
		id := f.sim.Create(JobSpec{Duration: time.Second})
		f.clock.Advance(time.Minute)
		if r := f.call(t, "POST", "/cancel/"+id, ""); r.code != 200 || string(r.body) != "null" {
			t.Fatalf("got %d %s, want 200 null", r.code, r.body)
		}
		if got := f.jobAt(t, id, time.Hour); got["status"] != StatusCompleted {
			t.Errorf("got %v, want Completed", got["status"])
		}
		if f.sim.Cancel(id) {
			t.Error("got Cancel true on a terminal job, want false")
		}
	})
}

func TestDelete(t *testing.T) {
	tests := []struct {
		name      string
		first     int
		wantFirst int
		wantBody  string
	}{
		{"deletion in progress", 409, 409, bodyDeleting},
		{"not found first", 404, 404, bodyJobNotFound},
		{"other codes mean 409", 500, 409, bodyDeleting},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f := newFixture(t, Options{})
			id := f.sim.Create(JobSpec{Outcome: OutcomeCompleteURL})
			snap, _ := f.sim.Job(id)
			f.sim.Delete(id, tt.first, 10*time.Second)
			f.clock.Advance(9 * time.Second)
			r := f.call(t, "GET", "/job/"+id, "")
			if r.code != tt.wantFirst || string(r.body) != tt.wantBody {
				t.Fatalf("got %d %s, want %d %s", r.code, r.body, tt.wantFirst, tt.wantBody)
			}
			f.clock.Advance(time.Second)
			r = f.call(t, "GET", "/job/"+id, "")
			if r.code != 410 || string(r.body) != bodyDeleted {
				t.Fatalf("got %d %s, want 410 %s", r.code, r.body, bodyDeleted)
			}
			if r := f.call(t, "POST", "/cancel/"+id, ""); r.code != 410 {
				t.Errorf("cancel after deletion: got %d, want 410", r.code)
			}
			if r := f.callAuth(t, "GET", "/results/"+snap.ResultID, "", ""); r.code != 404 {
				t.Errorf("result after deletion: got %d, want 404", r.code)
			}
			if r := f.call(t, "GET", "/jobs", "").json(t); len(r["jobs"].([]any)) != 0 {
				t.Errorf("got %v listed, want the deleted job left out", r["jobs"])
			}
		})
	}
	t.Run("http delete", func(t *testing.T) {
		f := newFixture(t, Options{DeleteDuration: 5 * time.Second})
		running := f.sim.Create(JobSpec{Duration: time.Minute})
		done := f.sim.Create(JobSpec{})
		if r := f.call(t, "DELETE", "/job/"+running, ""); r.code != 400 || string(r.body) != bodyNotTerminal {
			t.Errorf("delete running: got %d %s, want 400 %s", r.code, r.body, bodyNotTerminal)
		}
		if r := f.call(t, "DELETE", "/job/"+done, ""); r.code != 202 || string(r.body) != `{"job_id":"`+done+`"}` {
			t.Errorf("delete done: got %d %s, want 202 with the job id", r.code, r.body)
		}
		if r := f.call(t, "GET", "/job/"+done, ""); r.code != 409 {
			t.Errorf("got %d, want 409", r.code)
		}
		f.clock.Advance(5 * time.Second)
		if r := f.call(t, "GET", "/job/"+done, ""); r.code != 410 {
			t.Errorf("got %d, want 410", r.code)
		}
	})
}

func TestListJobs(t *testing.T) {
	f := newFixture(t, Options{})
	var ids []string // oldest first
	for i := range 7 {
		ids = append(ids, f.sim.Create(JobSpec{Duration: time.Duration(i) * time.Second}))
		f.clock.Advance(time.Second)
	}
	// Two jobs at the same instant are ordered by submission.
	ids = append(ids, f.sim.Create(JobSpec{}), f.sim.Create(JobSpec{}))

	type page struct {
		Jobs []struct {
			JobID     string   `json:"job_id"`
			Status    string   `json:"status"`
			Type      string   `json:"type"`
			RawConfig *string  `json:"raw_config"`
			CreatedAt string   `json:"created_at"`
			NumPages  *int     `json:"num_pages"`
			Duration  *float64 `json:"duration"`
		} `json:"jobs"`
		NextCursor *string `json:"next_cursor"`
	}
	var got []string
	cursor := ""
	pages := 0
	for {
		path := "/jobs?limit=4"
		if cursor != "" {
			path += "&cursor=" + cursor
		}
		r := f.call(t, "GET", path, "")
		var p page
		if err := json.Unmarshal(r.body, &p); err != nil || r.code != 200 {
			t.Fatalf("got %d %s (%v), want 200", r.code, r.body, err)
		}
		pages++
		for _, j := range p.Jobs {
			got = append(got, j.JobID)
			if j.RawConfig == nil || j.Type != TypeParse || j.CreatedAt == "" {
				t.Errorf("got %+v, want raw_config, type and created_at", j)
			}
		}
		if p.NextCursor == nil {
			break
		}
		cursor = *p.NextCursor
	}
	if pages != 3 || len(got) != len(ids) {
		t.Fatalf("got %d jobs in %d pages, want %d in 3", len(got), pages, len(ids))
	}
	for i := range got {
		if want := ids[len(ids)-1-i]; got[i] != want {
			t.Errorf("position %d: got %s, want %s (newest first)", i, got[i], want)
		}
	}

	r := f.call(t, "GET", "/jobs?exclude_configs=true&limit=500", "")
	var p page
	_ = json.Unmarshal(r.body, &p)
	if len(p.Jobs) != len(ids) || p.NextCursor != nil || p.Jobs[0].RawConfig != nil {
		t.Errorf("exclude_configs: got %d jobs, cursor %v, raw_config %v; want all, null, absent", len(p.Jobs), p.NextCursor, p.Jobs[0].RawConfig)
	}
	def := f.call(t, "GET", "/jobs", "")
	_ = json.Unmarshal(def.body, &p)
	if len(p.Jobs) != len(ids) {
		t.Errorf("default limit: got %d jobs, want %d", len(p.Jobs), len(ids))
	}

	bad := []struct{ query, want string }{
		{"limit=0", `{"detail":[{"loc":["query","limit"],"msg":"Input should be greater than or equal to 1","type":"greater_than_equal"}]}`},
		{"limit=501", `{"detail":[{"loc":["query","limit"],"msg":"Input should be less than or equal to 500","type":"less_than_equal"}]}`},
		{"limit=ten", `{"detail":[{"loc":["query","limit"],"msg":"Input should be a valid integer, unable to parse string as an integer","type":"int_parsing"}]}`},
		{"exclude_configs=maybe", `{"detail":[{"loc":["query","exclude_configs"],"msg":"Input should be a valid boolean, unable to interpret input","type":"bool_parsing"}]}`},
		{"cursor=%21%21", `{"detail":[{"loc":["query","cursor"],"msg":"Invalid cursor","type":"value_error"}]}`},
	}
	for _, b := range bad {
		t.Run(b.query, func(t *testing.T) {
			r := f.call(t, "GET", "/jobs?"+b.query, "")
			if r.code != 422 || string(r.body) != b.want {
				t.Errorf("got %d %s, want 422 %s", r.code, r.body, b.want)
			}
		})
	}
	for _, limit := range []int{1, 500} {
		if r := f.call(t, "GET", "/jobs?limit="+strconv.Itoa(limit), ""); r.code != 200 {
			t.Errorf("limit=%d: got %d, want 200", limit, r.code)
		}
	}
}

func TestListStatuses(t *testing.T) {
	f := newFixture(t, Options{Lifecycle: true, CancelStyle: CancelAsCancelled})
	running := f.sim.Create(JobSpec{Duration: time.Hour})
	done := f.sim.Create(JobSpec{Duration: time.Second})
	cancelled := f.sim.Create(JobSpec{Duration: time.Hour})
	f.sim.Cancel(cancelled)
	f.clock.Advance(time.Minute)
	r := f.call(t, "GET", "/jobs", "")
	var p struct {
		Jobs []struct {
			JobID    string   `json:"job_id"`
			Status   string   `json:"status"`
			Duration *float64 `json:"duration"`
		} `json:"jobs"`
	}
	_ = json.Unmarshal(r.body, &p)
	want := map[string]string{running: StatusInProgress, done: StatusCompleted, cancelled: StatusCancelled}
	for _, j := range p.Jobs {
		if j.Status != want[j.JobID] {
			t.Errorf("job %s: got %s, want %s", j.JobID, j.Status, want[j.JobID])
		}
		if (j.Duration == nil) != (j.JobID == running) {
			t.Errorf("job %s: got duration %v, want null only while running", j.JobID, j.Duration)
		}
	}
}

func TestControlAPI(t *testing.T) {
	f := newFixture(t, Options{})
	id := f.sim.Create(JobSpec{Type: TypeSplit, Duration: time.Minute},
		WithMetadata(map[string]string{"user": "u1"}), WithDirectWebhook("http://127.0.0.1:1/hook"))
	snap, ok := f.sim.Job(id)
	if !ok {
		t.Fatal("got no job, want one")
	}
	if snap.Type != TypeSplit || string(snap.Metadata) != `{"user":"u1"}` || snap.WebhookMode != "direct" || snap.WebhookURL != "http://127.0.0.1:1/hook" {
		t.Errorf("got %+v, want a split job with metadata and a direct webhook", snap)
	}
	var cfg struct {
		Input string `json:"input"`
		Async struct {
			Metadata map[string]string `json:"metadata"`
			Webhook  struct{ Mode, URL string }
		} `json:"async"`
	}
	if err := json.Unmarshal([]byte(snap.RawConfig), &cfg); err != nil || cfg.Input == "" || cfg.Async.Metadata["user"] != "u1" || cfg.Async.Webhook.Mode != "direct" {
		t.Errorf("got raw_config %s (%v), want a v3 body", snap.RawConfig, err)
	}
	if snap.Progress == nil || *snap.Progress != 0 || snap.Status != StatusPending || !snap.Terminal.IsZero() {
		t.Errorf("got %+v, want pending at 0%%", snap)
	}
	if _, ok := f.sim.Job("nope"); ok {
		t.Error("got a job for an unknown id")
	}
	if f.sim.Cancel("nope") {
		t.Error("got Cancel true for an unknown id")
	}
	f.sim.Delete("nope", 409, time.Second) // must not panic

	raw := f.sim.Create(JobSpec{}, WithRawConfig(`{"input":"a"}`), WithSvixWebhook("c1"))
	if snap, _ := f.sim.Job(raw); snap.RawConfig != `{"input":"a"}` || snap.WebhookMode != "svix" || snap.Status != StatusCompleted {
		t.Errorf("got %+v, want the given raw_config, svix and Completed", snap)
	}
}

func TestConcurrentUse(t *testing.T) {
	f := newFixture(t, Options{Clock: ScaledClock(1000), WebhookTick: time.Millisecond})
	done := make(chan struct{})
	errs := make(chan error, 64)
	for g := range 8 {
		go func() {
			defer func() { done <- struct{}{} }()
			for i := range 25 {
				id := f.sim.Create(JobSpec{Duration: time.Duration(i) * time.Second, Outcome: Outcome(i % 4)}, WithDirectWebhook("http://127.0.0.1:1/x"))
				for _, req := range []struct{ m, p string }{{"GET", "/job/" + id}, {"GET", "/jobs?limit=5"}, {"POST", "/cancel/" + id}} {
					r, err := http.NewRequest(req.m, f.ts.URL+req.p, nil)
					if err != nil {
						errs <- err
						return
					}
					r.Header.Set("Authorization", "Bearer "+testKey)
					resp, err := f.ts.Client().Do(r)
					if err != nil {
						errs <- err
						return
					}
					resp.Body.Close()
					if resp.StatusCode != 200 {
						errs <- errors.New(req.p + ": " + resp.Status)
					}
				}
				if g%2 == 0 {
					f.sim.Delete(id, 409, time.Second)
				}
				_ = f.sim.Stats()
			}
		}()
	}
	for range 8 {
		<-done
	}
	close(errs)
	for err := range errs {
		t.Error(err)
	}
	if n := len(f.sim.Stats().Jobs); n != 200 {
		t.Errorf("got %d jobs, want 200", n)
	}
}

func TestPublicURL(t *testing.T) {
	f := newFixture(t, Options{PublicURL: "https://sim.example.com/"})
	id := f.sim.Create(JobSpec{Outcome: OutcomeCompleteURL})
	inner := f.call(t, "GET", "/job/"+id, "").json(t)["result"].(map[string]any)["result"].(map[string]any)
	if want := "https://sim.example.com/results/" + inner["result_id"].(string); inner["url"] != want {
		t.Errorf("got url %v, want %s", inner["url"], want)
	}
}
