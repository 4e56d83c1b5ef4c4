package reductosim

import (
	"bytes"
	"encoding/json"
	"errors"
	"io"
	"mime/multipart"
	"net/http"
	"net/http/httptest"
	"regexp"
	"strings"
	"testing"
	"time"

	"go.uber.org/goleak"
)

func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m)
}

const testKey = "sk-test"

var t0 = time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)

var uuidV4 = regexp.MustCompile(`^[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$`)

type fixture struct {
	sim   *Server
	clock *FakeClock
	ts    *httptest.Server
}

// newFixture starts a simulator on a fake clock (unless opts has a clock) behind an httptest
// server, with the test key, a fixed seed and no background webhook loop (tests call Sweep).
func newFixture(t *testing.T, opts Options) *fixture {
	t.Helper()
	f := &fixture{}
	if opts.Clock == nil {
		f.clock = NewFakeClock(t0)
		opts.Clock = f.clock
	}
	if opts.APIKey == "" {
		opts.APIKey = testKey
	}
	if opts.Seed == 0 {
		opts.Seed = 1
	}
	if opts.WebhookTick == 0 {
		opts.WebhookTick = -1
	}
	sim, err := New(opts)
	if err != nil {
		t.Fatalf("New: %v", err)
	}
	f.sim = sim
	f.ts = httptest.NewServer(sim)
	t.Cleanup(func() {
		f.ts.Close()
		sim.Close()
	})
	return f
}

type reply struct {
	code   int
	header http.Header
	body   []byte
}

func (r reply) json(t *testing.T) map[string]any {
	t.Helper()
	var m map[string]any
	if err := json.Unmarshal(r.body, &m); err != nil {
		t.Fatalf("decode %q: %v", r.body, err)
	}
	return m
}

// call sends a request with the test key.
func (f *fixture) call(t *testing.T, method, path, body string) reply {
	t.Helper()
	return f.callAuth(t, method, path, body, "Bearer "+testKey)
}

func (f *fixture) callAuth(t *testing.T, method, path, body, auth string) reply {
	t.Helper()
	var rd io.Reader
	if body != "" {
		rd = strings.NewReader(body)
	}
	req, err := http.NewRequest(method, f.ts.URL+path, rd)
	if err != nil {
		t.Fatal(err)
	}
	if auth != "" {
		req.Header.Set("Authorization", auth)
	}
	if body != "" {
		req.Header.Set("Content-Type", "application/json")
	}
	resp, err := f.ts.Client().Do(req)
	if err != nil {
		t.Fatalf("%s %s: %v", method, path, err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatalf("read %s %s: %v", method, path, err)
	}
	return reply{code: resp.StatusCode, header: resp.Header, body: b}
}

// submit posts a parse job and returns its id.
func (f *fixture) submit(t *testing.T, path, body string) string {
	t.Helper()
	r := f.call(t, http.MethodPost, path, body)
	if r.code != http.StatusOK {
		t.Fatalf("POST %s: got %d %s, want 200", path, r.code, r.body)
	}
	id, _ := r.json(t)["job_id"].(string)
	if !uuidV4.MatchString(id) {
		t.Fatalf("POST %s: got job_id %q, want a UUID v4", path, id)
	}
	return id
}

func TestAuth(t *testing.T) {
	f := newFixture(t, Options{})
	id := f.sim.Create(JobSpec{})
	tests := []struct {
		name, method, path, body, auth string
		want                           int
	}{
		// No Authorization header at all: the edge's 403 HTML page, as Reducto's docs say.
		{"no header", "GET", "/job/" + id, "", "", 403},
		{"submit without key", "POST", "/parse_async", `{"input":"https://x/y.pdf"}`, "", 403},
		{"cancel without key", "POST", "/cancel/" + id, "", "", 403},
		{"list without key", "GET", "/jobs", "", "", 403},
		{"upload without key", "POST", "/upload", "", "", 403},
		{"delete without key", "DELETE", "/job/" + id, "", "", 403},
		// A header with a wrong key or scheme: 401 JSON.
		{"wrong key", "GET", "/job/" + id, "", "Bearer nope", 401},
		{"basic scheme", "GET", "/job/" + id, "", "Basic " + testKey, 401},
		{"key without scheme", "GET", "/job/" + id, "", testKey, 401},
		{"submit with wrong key", "POST", "/parse_async", `{"input":"https://x/y.pdf"}`, "Bearer nope", 401},
		{"right key", "GET", "/job/" + id, "", "Bearer " + testKey, 200},
		{"scheme is case-insensitive", "GET", "/job/" + id, "", "bearer " + testKey, 200},
		{"version needs no key", "GET", "/version", "", "", 200},
		{"presigned put needs no key", "PUT", "/presigned/abc", "data", "", 200},
		{"unknown path is 404 before auth", "GET", "/nope", "", "", 404},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := f.callAuth(t, tt.method, tt.path, tt.body, tt.auth)
			if r.code != tt.want {
				t.Fatalf("got %d %s, want %d", r.code, r.body, tt.want)
			}
			ct := r.header.Get("Content-Type")
			switch tt.want {
			case 401:
				if string(r.body) != bodyUnauthorized || ct != "application/json" {
					t.Errorf("got body %s (%s), want %s (application/json)", r.body, ct, bodyUnauthorized)
				}
			case 403:
				if string(r.body) != htmlForbidden || ct != "text/html" {
					t.Errorf("got body %q (%s), want the 403 HTML page (text/html)", r.body, ct)
				}
			}
		})
	}
}

func TestAuthDisabledWithoutKey(t *testing.T) {
	sim, err := New(Options{Clock: NewFakeClock(t0), WebhookTick: -1, Seed: 1})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(sim.Close)
	rec := httptest.NewRecorder()
	sim.ServeHTTP(rec, httptest.NewRequest("GET", "/jobs", nil))
	if rec.Code != 200 {
		t.Fatalf("got %d, want 200", rec.Code)
	}
}

func TestRoutes(t *testing.T) {
	f := newFixture(t, Options{})
	tests := []struct {
		name, method, path string
		want               int
		body               string
	}{
		{"unknown path", "GET", "/nope", 404, bodyNotFound},
		{"job without id", "GET", "/job/", 404, bodyNotFound},
		{"nested job path", "GET", "/job/a/b", 404, bodyNotFound},
		{"wrong method on submit", "GET", "/parse_async", 405, bodyMethodNotAllowed},
		{"wrong method on job", "POST", "/job/abc", 405, bodyMethodNotAllowed},
		{"wrong method on cancel", "GET", "/cancel/abc", 405, bodyMethodNotAllowed},
		{"unknown job", "GET", "/job/abc", 404, bodyJobNotFound},
		{"cancel unknown job", "POST", "/cancel/abc", 404, bodyJobNotFound},
		{"delete unknown job", "DELETE", "/job/abc", 404, bodyJobNotFound},
		{"sync parse is not simulated", "POST", "/parse", 404, bodyNotFound},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := f.call(t, tt.method, tt.path, "")
			if r.code != tt.want || string(r.body) != tt.body {
				t.Fatalf("got %d %s, want %d %s", r.code, r.body, tt.want, tt.body)
			}
			if ct := r.header.Get("Content-Type"); ct != "application/json" {
				t.Errorf("got Content-Type %q, want application/json", ct)
			}
		})
	}
}

func TestVersion(t *testing.T) {
	f := newFixture(t, Options{})
	r := f.callAuth(t, "GET", "/version", "", "")
	var v string
	if err := json.Unmarshal(r.body, &v); err != nil || v != Version {
		t.Fatalf("got %s (%v), want JSON string %q", r.body, err, Version)
	}
}

func TestSubmit(t *testing.T) {
	f := newFixture(t, Options{})
	tests := []struct {
		name, path, body string
		wantType         string
	}{
		{"parse url", "/parse_async", `{"input":"https://example.com/a.pdf"}`, TypeParse},
		{"parse list", "/parse_async", `{"input":["https://example.com/a.pdf","https://example.com/b.pdf"]}`, TypeParse},
		{"parse upload object", "/parse_async", `{"input":{"file_id":"reducto://x.pdf","presigned_url":null}}`, TypeParse},
		{"parse with async", "/parse_async", `{"input":"reducto://x.pdf","async":{"metadata":{"a":1},"priority":true,"webhook":{"mode":"svix","channels":[]}}}`, TypeParse},
		{"extract", "/extract_async", `{"input":"jobid://abc","instructions":{"schema":{}}}`, TypeExtract},
		{"split", "/split_async", `{"input":"https://x/y.pdf","split_description":[{"name":"a","description":"b"}]}`, TypeSplit},
		{"pipeline", "/pipeline_async", `{"input":"https://x/y.pdf","pipeline_id":"p1"}`, TypePipeline},
		{"edit", "/edit_async", `{"document_url":"https://x/y.pdf","edit_instructions":"fill it","webhook":{"mode":"direct","url":"http://127.0.0.1:1/h","metadata":{"k":"v"}}}`, TypeEdit},
		{"edit with upload object", "/edit_async", `{"document_url":{"file_id":"reducto://a.pdf"},"edit_instructions":"x"}`, TypeEdit},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			id := f.submit(t, tt.path, tt.body)
			got := f.call(t, "GET", "/job/"+id, "").json(t)
			if got["type"] != tt.wantType {
				t.Errorf("got type %v, want %s", got["type"], tt.wantType)
			}
			if got["raw_config"] != tt.body {
				t.Errorf("got raw_config %v, want %s", got["raw_config"], tt.body)
			}
		})
	}
}

func TestSubmitValidation(t *testing.T) {
	f := newFixture(t, Options{})
	tests := []struct {
		name, path, body, want string
	}{
		{"missing input", "/parse_async", `{"async":{}}`,
			`{"detail":[{"loc":["body","input"],"msg":"Field required","type":"missing"}]}`},
		{"null input", "/extract_async", `{"input":null}`,
			`{"detail":[{"loc":["body","input"],"msg":"Field required","type":"missing"}]}`},
		{"empty body", "/parse_async", ``,
			`{"detail":[{"loc":["body"],"msg":"Field required","type":"missing"}]}`},
		{"invalid json", "/parse_async", `{"input":`,
			`{"detail":[{"loc":["body",9],"msg":"JSON decode error","type":"json_invalid"}]}`},
		{"body not an object", "/parse_async", `[1]`,
			`{"detail":[{"loc":["body"],"msg":"Input should be a valid dictionary or object to extract fields from","type":"model_attributes_type"}]}`},
		{"input a number", "/parse_async", `{"input":5}`,
			`{"detail":[{"loc":["body","input"],"msg":"Input should be a valid string","type":"string_type"}]}`},
		{"input list of numbers", "/parse_async", `{"input":["a",2]}`,
			`{"detail":[{"loc":["body","input",1],"msg":"Input should be a valid string","type":"string_type"}]}`},
		{"input object without file_id", "/parse_async", `{"input":{}}`,
			`{"detail":[{"loc":["body","input","file_id"],"msg":"Field required","type":"missing"}]}`},
		{"priority not a bool", "/parse_async", `{"input":"x","async":{"priority":"soon"}}`,
			`{"detail":[{"loc":["body","async","priority"],"msg":"Input should be a valid boolean","type":"bool_type"}]}`},
		{"direct webhook without url", "/parse_async", `{"input":"x","async":{"webhook":{"mode":"direct"}}}`,
			`{"detail":[{"loc":["body","async","webhook","url"],"msg":"Field required","type":"missing"}]}`},
		{"v3 disabled webhook mode", "/parse_async", `{"input":"x","async":{"webhook":{"mode":"disabled"}}}`,
			`{"detail":[{"loc":["body","async","webhook","mode"],"msg":"Input should be 'svix' or 'direct'","type":"literal_error"}]}`},
		{"split without description", "/split_async", `{"input":"x"}`,
			`{"detail":[{"loc":["body","split_description"],"msg":"Field required","type":"missing"}]}`},
		{"pipeline without id", "/pipeline_async", `{"input":"x"}`,
			`{"detail":[{"loc":["body","pipeline_id"],"msg":"Field required","type":"missing"}]}`},
		{"legacy body on parse", "/parse_async", `{"document_url":"https://x/y.pdf"}`,
			`{"detail":[{"loc":["body","input"],"msg":"Field required","type":"missing"}]}`},
		{"edit missing both", "/edit_async", `{}`,
			`{"detail":[{"loc":["body","document_url"],"msg":"Field required","type":"missing"},{"loc":["body","edit_instructions"],"msg":"Field required","type":"missing"}]}`},
		{"edit with v3 input", "/edit_async", `{"input":"x","edit_instructions":"y"}`,
			`{"detail":[{"loc":["body","document_url"],"msg":"Field required","type":"missing"}]}`},
		{"edit bad webhook mode", "/edit_async", `{"document_url":"x","edit_instructions":"y","webhook":{"mode":"sms"}}`,
			`{"detail":[{"loc":["body","webhook","mode"],"msg":"Input should be 'disabled', 'svix' or 'direct'","type":"enum"}]}`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := f.call(t, "POST", tt.path, tt.body)
			if r.code != http.StatusUnprocessableEntity || string(r.body) != tt.want {
				t.Fatalf("got %d %s, want 422 %s", r.code, r.body, tt.want)
			}
		})
	}
	if n := len(f.sim.Stats().Jobs); n != 0 {
		t.Errorf("got %d jobs after invalid submissions, want 0", n)
	}
}

func TestSpecOption(t *testing.T) {
	var gotEndpoint, gotBody string
	f := newFixture(t, Options{Spec: func(endpoint string, body []byte) JobSpec {
		gotEndpoint, gotBody = endpoint, string(body)
		return JobSpec{Duration: time.Minute, NumPages: 7}
	}})
	body := `{"input":"x"}`
	id := f.submit(t, "/extract_async", body)
	if gotEndpoint != "/extract_async" || gotBody != body {
		t.Errorf("got Spec(%q, %q), want Spec(/extract_async, %s)", gotEndpoint, gotBody, body)
	}
	snap, ok := f.sim.Job(id)
	if !ok || snap.Spec.Duration != time.Minute || snap.Spec.NumPages != 7 || snap.Type != TypeExtract {
		t.Errorf("got snapshot %+v, want the Spec's job typed Extract", snap)
	}
}

func TestDefaultSpec(t *testing.T) {
	f := newFixture(t, Options{})
	var durations []time.Duration
	for range 200 {
		id := f.submit(t, "/parse_async", `{"input":"x"}`)
		snap, _ := f.sim.Job(id)
		if snap.Spec.Outcome != OutcomeComplete || snap.Spec.Progress != ProgressLinear || snap.Spec.ResultSize != 2048 {
			t.Fatalf("got spec %+v, want complete, linear, 2048 bytes", snap.Spec)
		}
		durations = append(durations, snap.Spec.Duration)
	}
	below := 0
	for _, d := range durations {
		if d < 20*time.Second {
			below++
		}
	}
	// The median of a lognormal with median 20s: about half below.
	if below < 70 || below > 130 {
		t.Errorf("got %d of 200 durations below 20s, want about 100", below)
	}
	id := f.submit(t, "/parse_async", `{"input":"x","settings":{"force_url_result":true}}`)
	if snap, _ := f.sim.Job(id); snap.Spec.Outcome != OutcomeCompleteURL {
		t.Errorf("got outcome %v with force_url_result, want complete-url", snap.Spec.Outcome)
	}
}

func TestSeedIsDeterministic(t *testing.T) {
	ids := func() []string {
		sim, err := New(Options{Seed: 42, WebhookTick: -1})
		if err != nil {
			t.Fatal(err)
		}
		defer sim.Close()
		return []string{sim.Create(JobSpec{}), sim.Create(JobSpec{})}
	}
	a, b := ids(), ids()
	if a[0] != b[0] || a[1] != b[1] {
		t.Errorf("got ids %v and %v with the same seed, want equal", a, b)
	}
}

func TestUpload(t *testing.T) {
	f := newFixture(t, Options{})
	t.Run("multipart file", func(t *testing.T) {
		var buf bytes.Buffer
		mw := multipart.NewWriter(&buf)
		fw, _ := mw.CreateFormFile("file", "invoice.pdf")
		_, _ = fw.Write([]byte("%PDF-1.4 test"))
		_ = mw.Close()
		req, _ := http.NewRequest("POST", f.ts.URL+"/upload", &buf)
		req.Header.Set("Content-Type", mw.FormDataContentType())
		req.Header.Set("Authorization", "Bearer "+testKey)
		resp, err := f.ts.Client().Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		var got struct {
			FileID       string  `json:"file_id"`
			PresignedURL *string `json:"presigned_url"`
		}
		if err := json.NewDecoder(resp.Body).Decode(&got); err != nil || resp.StatusCode != 200 {
			t.Fatalf("got %d (%v), want 200", resp.StatusCode, err)
		}
		if !regexp.MustCompile(`^reducto://[0-9a-f-]{36}\.pdf$`).MatchString(got.FileID) || got.PresignedURL != nil {
			t.Errorf("got %+v, want reducto://<uuid>.pdf and a null presigned_url", got)
		}
	})
	t.Run("presigned", func(t *testing.T) {
		r := f.call(t, "POST", "/upload", "")
		m := r.json(t)
		id, _ := m["file_id"].(string)
		u, _ := m["presigned_url"].(string)
		if r.code != 200 || !strings.HasPrefix(id, "reducto://") || !strings.HasPrefix(u, f.ts.URL+"/presigned/") {
			t.Fatalf("got %d %s, want a reducto:// id and a presigned URL on the server", r.code, r.body)
		}
		req, _ := http.NewRequest("PUT", u, strings.NewReader("bytes"))
		resp, err := f.ts.Client().Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != 200 {
			t.Errorf("got PUT %d, want 200", resp.StatusCode)
		}
	})
}

func TestNewRejectsBadOptions(t *testing.T) {
	tests := []struct {
		name string
		opts Options
	}{
		{"secret not base64", Options{WebhookSecret: "whsec_!!!"}},
		{"negative rate", Options{JobRateLimit: -1}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			sim, err := New(tt.opts)
			if err == nil {
				sim.Close()
				t.Fatal("got nil error, want one")
			}
			if !errors.Is(err, ErrInvalidOptions) {
				t.Errorf("got %v, want ErrInvalidOptions", err)
			}
		})
	}
}

// TestResultURLExpires: with ResultURLTTL, each GET /job hands out a fresh link, which serves
// the result until its expiry on the simulator clock and then answers 403 AccessDenied.
func TestResultURLExpires(t *testing.T) {
	f := newFixture(t, Options{ResultURLTTL: time.Minute})
	id := f.sim.Create(JobSpec{Outcome: OutcomeCompleteURL, Duration: time.Second, ResultSize: 8_000})
	f.clock.Advance(2 * time.Second)
	link := func() string {
		t.Helper()
		r := f.call(t, "GET", "/job/"+id, "")
		inner := r.json(t)["result"].(map[string]any)["result"].(map[string]any)
		u, _ := inner["url"].(string)
		if r.code != 200 || inner["type"] != "url" || !strings.HasPrefix(u, f.ts.URL+"/results/") {
			t.Fatalf("GET /job: %d, url result %v", r.code, inner)
		}
		return strings.TrimPrefix(u, f.ts.URL)
	}
	first := link()
	if r := f.callAuth(t, "GET", first, "", ""); r.code != 200 || r.json(t)["type"] != "full" {
		t.Fatalf("fresh link: got %d %.100s, want the full result", r.code, r.body)
	}
	f.clock.Advance(time.Minute + time.Second)
	if r := f.callAuth(t, "GET", first, "", ""); r.code != 403 || !strings.Contains(string(r.body), "Request has expired") {
		t.Fatalf("expired link: got %d %.100s, want 403 AccessDenied", r.code, r.body)
	}
	second := link()
	if second == first {
		t.Fatalf("GET /job after expiry handed out the same link %s", first)
	}
	if r := f.callAuth(t, "GET", second, "", ""); r.code != 200 {
		t.Fatalf("fresh link after expiry: got %d, want 200", r.code)
	}
	rid := strings.TrimPrefix(strings.SplitN(second, "?", 2)[0], "/results/")
	if r := f.callAuth(t, "GET", "/results/"+rid, "", ""); r.code != 403 {
		t.Fatalf("link without expiry: got %d, want 403", r.code)
	}
}
