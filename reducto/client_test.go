package reducto

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

const testKey = "sk-test-SECRET-3f9a1c"

// newTestClient serves h on 127.0.0.1 and returns a client for it.
func newTestClient(t *testing.T, h http.HandlerFunc, opts ...Option) *Client {
	t.Helper()
	srv := httptest.NewServer(h)
	t.Cleanup(srv.Close)
	c, err := New(srv.URL, testKey, opts...)
	if err != nil {
		t.Fatalf("New: %v", err)
	}
	return c
}

// fixed answers every request with one status, headers and body.
func fixed(status int, body string, hdr ...string) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		for i := 0; i+1 < len(hdr); i += 2 {
			w.Header().Set(hdr[i], hdr[i+1])
		}
		if strings.HasPrefix(strings.TrimSpace(body), "{") || strings.HasPrefix(strings.TrimSpace(body), "[") {
			w.Header().Set("Content-Type", "application/json")
		}
		w.WriteHeader(status)
		fmt.Fprint(w, body)
	}
}

func TestGetJobDecodesDocumentedShapes(t *testing.T) {
	tests := []struct {
		name    string
		body    string
		status  Status
		outcome Outcome
		check   func(t *testing.T, j *Job)
	}{
		{
			// Verbatim generated example from docs.reducto.ai get-job.md.
			name:    "docs example pending",
			body:    `{"status":"Pending","result":{"job_id":"job_id","duration":0,"usage":{"num_pages":0},"result":{},"response_type":"parse","pdf_url":"pdf_url","studio_link":"studio_link","document_properties":{}},"progress":0,"reason":"reason","error":{"code":0,"name":"TIMEOUT","message":"message","job_id":"job_id"}}`,
			status:  StatusPending,
			outcome: "",
			check: func(t *testing.T, j *Job) {
				if j.Progress == nil || *j.Progress != 0 {
					t.Errorf("progress = %v, want 0", j.Progress)
				}
				if j.Error == nil || j.Error.Name != "TIMEOUT" {
					t.Errorf("error = %+v, want name TIMEOUT", j.Error)
				}
			},
		},
		{
			// Enhanced shape with nulls everywhere (withone.ai mirror).
			name:    "enhanced all null",
			body:    `{ "status": "Completed", "result": null, "progress": null, "reason": null, "type": "Parse", "num_pages": null, "total_pages": null, "source": null, "duration": null, "created_at": null, "raw_config": null, "bucket": null }`,
			status:  StatusCompleted,
			outcome: OutcomeCompleted,
			check: func(t *testing.T, j *Job) {
				if j.Result != nil || j.Progress != nil || j.Duration != nil || j.NumPages != nil || !j.CreatedAt.IsZero() {
					t.Errorf("nulls decoded as values: %+v", j)
				}
				if j.Type != "Parse" {
					t.Errorf("type = %q, want Parse", j.Type)
				}
			},
		},
		{
			name:    "completed full result kept verbatim",
			body:    `{"status":"Completed","progress":100,"type":"Parse","num_pages":7,"total_pages":7,"duration":12.4,"created_at":"2026-11-29T14:00:00.123Z","result":{"job_id":"j","duration":12.4,"usage":{"num_pages":7},"result":{"type":"full","chunks":[{"content":"héllo \u00e9"}]}}}`,
			status:  StatusCompleted,
			outcome: OutcomeCompleted,
			check: func(t *testing.T, j *Job) {
				want := `{"job_id":"j","duration":12.4,"usage":{"num_pages":7},"result":{"type":"full","chunks":[{"content":"héllo \u00e9"}]}}`
				if string(j.Result) != want {
					t.Errorf("result = %s, want byte-for-byte %s", j.Result, want)
				}
				if j.NumPages == nil || *j.NumPages != 7 || j.Duration == nil || *j.Duration != 12.4 {
					t.Errorf("num_pages/duration = %v/%v", j.NumPages, j.Duration)
				}
				if got := j.CreatedAt.UTC().Format(time.RFC3339Nano); got != "2026-11-29T14:00:00.123Z" {
					t.Errorf("created_at = %s", got)
				}
			},
		},
		{
			name:    "url result",
			body:    `{"status":"Completed","result":{"job_id":"j","duration":1,"usage":{"num_pages":900},"result":{"type":"url","url":"https://s3/x.json","result_id":"r1"}}}`,
			status:  StatusCompleted,
			outcome: OutcomeCompleted,
			check: func(t *testing.T, j *Job) {
				if !bytes.Contains(j.Result, []byte(`"type":"url"`)) {
					t.Errorf("url result lost: %s", j.Result)
				}
			},
		},
		{
			name:    "extract result is a list",
			body:    `{"status":"Completed","type":"Extract","result":{"usage":{"num_pages":1,"num_fields":2},"result":[{"total":3}],"citations":null}}`,
			status:  StatusCompleted,
			outcome: OutcomeCompleted,
		},
		{
			name:    "failed with error detail",
			body:    `{"status":"Failed","reason":"The document is corrupt","error":{"code":400,"name":"DOCUMENT_CORRUPT","message":"could not open","job_id":"j"}}`,
			status:  StatusFailed,
			outcome: OutcomeFailed,
			check: func(t *testing.T, j *Job) {
				if j.Error == nil || j.Error.Code != 400 || j.Error.Name != "DOCUMENT_CORRUPT" || j.Error.Message != "could not open" {
					t.Errorf("error = %+v", j.Error)
				}
				if j.Reason != "The document is corrupt" {
					t.Errorf("reason = %q", j.Reason)
				}
			},
		},
		{name: "failed JOB_CANCELLED", body: `{"status":"Failed","error":{"code":499,"name":"JOB_CANCELLED"}}`, status: StatusFailed, outcome: OutcomeCancelled},
		{name: "failed reason cancelled", body: `{"status":"Failed","reason":"Job was cancelled by the user"}`, status: StatusFailed, outcome: OutcomeCancelled},
		{name: "cancelled status", body: `{"status":"Cancelled"}`, status: StatusCancelled, outcome: OutcomeCancelled},
		{name: "idle", body: `{"status":"Idle"}`, status: StatusIdle},
		{name: "in progress", body: `{"status":"InProgress","progress":42.5}`, status: StatusInProgress},
		{name: "completing", body: `{"status":"Completing"}`, status: StatusCompleting},
		{name: "unknown status is not terminal", body: `{"status":"Thinking"}`, status: "Thinking"},
		{name: "lower-case completed", body: `{"status":"completed"}`, status: "completed", outcome: OutcomeCompleted},
		{name: "unknown fields ignored", body: `{"status":"Pending","new_field":{"x":[1,2]},"studio_link":"s"}`, status: StatusPending},
		{
			name:    "error string kept as message",
			body:    `{"status":"Failed","error":"boom"}`,
			status:  StatusFailed,
			outcome: OutcomeFailed,
			check: func(t *testing.T, j *Job) {
				if j.Error == nil || j.Error.Message != "boom" || string(j.Error.Raw) != `"boom"` {
					t.Errorf("error = %+v", j.Error)
				}
			},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var gotPath, gotAuth string
			c := newTestClient(t, func(w http.ResponseWriter, r *http.Request) {
				gotPath, gotAuth = r.URL.Path, r.Header.Get("Authorization")
				fixed(200, tt.body)(w, r)
			})
			j, err := c.GetJob(t.Context(), "job-1")
			if err != nil {
				t.Fatalf("GetJob: %v", err)
			}
			if gotPath != "/job/job-1" || gotAuth != "Bearer "+testKey {
				t.Errorf("request path %q auth %q", gotPath, gotAuth)
			}
			if j.ID != "job-1" || j.Status != tt.status {
				t.Errorf("id, status = %q, %q, want job-1, %q", j.ID, j.Status, tt.status)
			}
			if got := j.Outcome(); got != tt.outcome {
				t.Errorf("outcome = %q, want %q", got, tt.outcome)
			}
			if got, want := j.Status.Terminal(), tt.outcome != ""; got != want {
				t.Errorf("terminal = %v, want %v", got, want)
			}
			if tt.check != nil {
				tt.check(t, j)
			}
		})
	}
}

func TestErrorShapesAndClassification(t *testing.T) {
	tests := []struct {
		name      string
		status    int
		body      string
		hdr       []string
		sentinel  error
		transient bool
		message   string
		errName   string
		code      int
		retry     time.Duration
	}{
		{name: "422 fastapi list", status: 422, body: `{"detail": [{"loc": ["loc"], "msg": "msg", "type": "type", "ctx": {}}]}`, message: "loc: msg"},
		{name: "422 nested loc", status: 422, body: `{"detail":[{"loc":["body","input",0],"msg":"Field required","type":"missing"}]}`, message: "body.input.0: Field required"},
		{name: "404 detail string", status: 404, body: `{"detail":"Job not found"}`, sentinel: ErrNotFound, message: "Job not found"},
		{name: "400 error object", status: 400, body: `{"error":{"message":"Failed to download file from url. Please check the document url and try again","type":"file_download_failure","code":400}}`, message: "Failed to download file from url. Please check the document url and try again", errName: "file_download_failure"},
		{name: "410 deleted", status: 410, body: `{"error":{"message":"Job has been deleted","type":"JOB_DELETED","code":410}}`, sentinel: ErrGone, errName: "JOB_DELETED"},
		{name: "409 deletion in progress", status: 409, body: `{"error":{"message":"in progress","type":"JOB_DELETION_IN_PROGRESS","code":409}}`, sentinel: ErrGone},
		{name: "401", status: 401, body: `{"detail":"Not authenticated"}`, sentinel: ErrUnauthorized},
		{name: "403", status: 403, body: ``, sentinel: ErrUnauthorized},
		{name: "429 code 2000", status: 429, body: `{"message": "[CODE 2000] rate limit exceeded, please use webhooks instead of polling"}`, sentinel: ErrRateLimited, transient: true, code: 2000},
		{name: "429 code 1000", status: 429, body: `{"message": "[CODE 1000] rate limit exceeded, retry with exponential backoff"}`, sentinel: ErrRateLimited, transient: true, code: 1000},
		{name: "429 infra shed", status: 429, body: `{"message":"Too Many Requests"}`, sentinel: ErrRateLimited, transient: true, code: 0},
		{name: "429 empty body", status: 429, body: ``, sentinel: ErrRateLimited, transient: true},
		{name: "429 retry-after seconds", status: 429, body: `{"message":"[CODE 2000] x"}`, hdr: []string{"Retry-After", "3"}, sentinel: ErrRateLimited, transient: true, code: 2000, retry: 3 * time.Second},
		{name: "429 retry-after-ms", status: 429, body: ``, sentinel: ErrRateLimited, hdr: []string{"Retry-After-Ms", "1500"}, transient: true, retry: 1500 * time.Millisecond},
		{name: "429 retry-after capped", status: 429, body: ``, sentinel: ErrRateLimited, hdr: []string{"Retry-After", "3600"}, transient: true, retry: 60 * time.Second},
		{name: "429 retry-after garbage", status: 429, body: ``, sentinel: ErrRateLimited, hdr: []string{"Retry-After", "soon"}, transient: true},
		{name: "429 retry-after negative", status: 429, body: ``, sentinel: ErrRateLimited, hdr: []string{"Retry-After", "-5"}, transient: true},
		// Beyond the int64 range of a Duration: saturate to the cap, never wrap to "at once".
		{name: "429 retry-after huge", status: 429, body: ``, sentinel: ErrRateLimited, hdr: []string{"Retry-After", "1e10"}, transient: true, retry: 60 * time.Second},
		{name: "429 retry-after-ms huge", status: 429, body: ``, sentinel: ErrRateLimited, hdr: []string{"Retry-After-Ms", "1e300"}, transient: true, retry: 60 * time.Second},
		{name: "long message cut on a rune", status: 400, body: `{"detail":"` + strings.Repeat("é", 400) + `"}`, message: strings.Repeat("é", 256) + "..."},
		{name: "408", status: 408, body: ``, transient: true},
		// Every 5xx is transient, 500 included: a 500 on a status read says nothing about the job.
		{name: "500 transient", status: 500, body: `{"error":{"message":"content extraction error","type":"internal","code":500}}`, transient: true},
		{name: "502", status: 502, body: `{"detail":"LLM service error"}`, transient: true},
		{name: "503", status: 503, body: `{"detail":"Service unavailable"}`, transient: true},
		{name: "504", status: 504, body: ``, transient: true},
		{name: "442 password protected", status: 442, body: `{"error":{"message":"password","type":"document_access_error","code":442}}`, transient: false},
		{name: "502 proxy html", status: 502, body: `<html><body>Bad Gateway</body></html>`, hdr: []string{"Content-Type", "text/html"}, sentinel: ErrMalformedResponse, transient: true},
		{name: "400 unknown json shape", status: 400, body: `{"oops":1}`, transient: false},
		// What Reducto's docs say a missing key gets: unauthorized only, not malformed, not transient.
		{name: "403 html page", status: 403, body: `<!DOCTYPE html><html><body>Forbidden</body></html>`, hdr: []string{"Content-Type", "text/html"}, sentinel: ErrUnauthorized},
		{name: "401 html page", status: 401, body: `<html>Unauthorized</html>`, hdr: []string{"Content-Type", "text/html"}, sentinel: ErrUnauthorized},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := newTestClient(t, fixed(tt.status, tt.body, tt.hdr...))
			_, err := c.GetJob(t.Context(), "j")
			var apiErr *APIError
			if !errors.As(err, &apiErr) {
				t.Fatalf("err = %v, want *APIError", err)
			}
			if apiErr.StatusCode != tt.status || apiErr.Op != "get job" {
				t.Errorf("status, op = %d, %q", apiErr.StatusCode, apiErr.Op)
			}
			if tt.sentinel != nil && !errors.Is(err, tt.sentinel) {
				t.Errorf("errors.Is(%v, %v) = false", err, tt.sentinel)
			}
			for _, s := range []error{ErrNotFound, ErrGone, ErrUnauthorized, ErrRateLimited, ErrMalformedResponse} {
				if s != tt.sentinel && errors.Is(err, s) {
					t.Errorf("unexpectedly matches %v", s)
				}
			}
			if got := IsTransient(err); got != tt.transient {
				t.Errorf("IsTransient = %v, want %v", got, tt.transient)
			}
			if tt.message != "" && apiErr.Message != tt.message {
				t.Errorf("message = %q, want %q", apiErr.Message, tt.message)
			}
			if tt.errName != "" && apiErr.Name != tt.errName {
				t.Errorf("name = %q, want %q", apiErr.Name, tt.errName)
			}
			if apiErr.RateLimitCode != tt.code {
				t.Errorf("rate limit code = %d, want %d", apiErr.RateLimitCode, tt.code)
			}
			got, ok := RetryAfter(err)
			if got != tt.retry || ok != (tt.retry > 0) {
				t.Errorf("RetryAfter = %v, %v, want %v", got, ok, tt.retry)
			}
		})
	}
}

func TestRetryAfterHTTPDate(t *testing.T) {
	now := time.Date(2026, 11, 29, 12, 0, 0, 0, time.UTC)
	h := http.Header{}
	h.Set("Retry-After", now.Add(7*time.Second).Format(http.TimeFormat))
	if got := parseRetryAfter(h, now, time.Minute); got != 7*time.Second {
		t.Errorf("http date: got %v, want 7s", got)
	}
	h.Set("Retry-After", now.Add(-time.Hour).Format(http.TimeFormat))
	if got := parseRetryAfter(h, now, time.Minute); got != 0 {
		t.Errorf("past date: got %v, want 0", got)
	}
	h = http.Header{}
	h.Set("retry-after-ms", "250.5")
	h.Set("Retry-After", "9")
	if got := parseRetryAfter(h, now, time.Minute); got != 250500*time.Microsecond {
		t.Errorf("ms wins: got %v, want 250.5ms", got)
	}
}

func TestMalformedSuccessBodies(t *testing.T) {
	tests := []struct{ name, body string }{
		{"truncated json", `{"status":"Completed","result":{"chunks":[`},
		{"html page", `<!doctype html><html>maintenance</html>`},
		{"not an object", `["Completed"]`},
		{"object without status", `{"job_id":"j"}`},
		{"empty status", `{"status":""}`},
		{"status not a string", `{"status":3}`},
		{"empty body", ``},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := newTestClient(t, fixed(200, tt.body))
			j, err := c.GetJob(t.Context(), "j")
			if err == nil {
				t.Fatalf("GetJob = %+v, want error", j)
			}
			if !errors.Is(err, ErrMalformedResponse) {
				t.Errorf("err = %v, want ErrMalformedResponse", err)
			}
			if !IsTransient(err) {
				t.Errorf("malformed body not transient: %v", err)
			}
		})
	}
}

func TestTruncatedBodyIsTransient(t *testing.T) {
	c := newTestClient(t, func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Length", "1000")
		w.WriteHeader(200)
		fmt.Fprint(w, `{"status":"Comp`)
	})
	_, err := c.GetJob(t.Context(), "j")
	if err == nil || !IsTransient(err) {
		t.Fatalf("err = %v, want a transient error", err)
	}
}

func TestNetworkErrorsAreTransient(t *testing.T) {
	// A port nobody listens on: take one and close it.
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := l.Addr().String()
	l.Close()
	c, err := New("http://"+addr, testKey)
	if err != nil {
		t.Fatal(err)
	}
	_, err = c.GetJob(t.Context(), "j")
	if err == nil || !IsTransient(err) {
		t.Fatalf("connection refused: err = %v, want transient", err)
	}
	if !notSubmitted(err) {
		t.Errorf("connection refused should count as not submitted: %v", err)
	}
}

func TestTimeoutAndCancellation(t *testing.T) {
	release := make(chan struct{})
	arrived := make(chan struct{}, 4)
	slow := func(w http.ResponseWriter, r *http.Request) {
		arrived <- struct{}{}
		select {
		case <-r.Context().Done():
		case <-release:
		}
	}
	t.Cleanup(func() { close(release) })

	t.Run("per-request timeout is transient", func(t *testing.T) {
		c := newTestClient(t, slow, WithTimeout(50*time.Millisecond))
		_, err := c.GetJob(t.Context(), "j")
		if !errors.Is(err, context.DeadlineExceeded) || !IsTransient(err) {
			t.Fatalf("err = %v, want transient deadline exceeded", err)
		}
	})
	t.Run("caller cancel mid-request is not transient", func(t *testing.T) {
		c := newTestClient(t, slow)
		ctx, cancel := context.WithCancel(t.Context())
		errc := make(chan error, 1)
		go func() {
			_, err := c.GetJob(ctx, "j")
			errc <- err
		}()
		<-arrived // the request is in flight
		cancel()
		err := <-errc
		if !errors.Is(err, context.Canceled) || IsTransient(err) {
			t.Fatalf("err = %v, want context.Canceled, not transient", err)
		}
	})
}

func TestCancelJobRetriesTransient(t *testing.T) {
	tests := []struct {
		name      string
		responses []int
		wantCalls int
		wantErr   error
	}{
		{"ok", []int{200}, 1, nil},
		{"503 then ok", []int{503, 200}, 2, nil},
		{"429 twice then ok", []int{429, 429, 200}, 3, nil},
		{"404 not retried", []int{404}, 1, ErrNotFound},
		{"500 retried (a cancel is idempotent)", []int{500, 200}, 2, nil},
		{"500 to the end", []int{500}, 4, nil},
		{"403 not retried", []int{403}, 1, ErrUnauthorized},
		{"gives up after retries", []int{502, 502, 502, 502, 502}, 4, nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var calls atomic.Int32
			c := newTestClient(t, func(w http.ResponseWriter, r *http.Request) {
				n := int(calls.Add(1)) - 1
				if r.Method != http.MethodPost || r.URL.Path != "/cancel/j%201" && r.URL.RawPath != "/cancel/j%201" {
					t.Errorf("request %s %s (raw %s)", r.Method, r.URL.Path, r.URL.RawPath)
				}
				status := tt.responses[min(n, len(tt.responses)-1)]
				if status == 429 {
					w.Header().Set("Retry-After-Ms", "1")
				}
				fixed(status, `null`)(w, r)
			}, WithRetries(3))
			err := c.CancelJob(t.Context(), "j 1")
			if got := int(calls.Load()); got != tt.wantCalls {
				t.Errorf("calls = %d, want %d", got, tt.wantCalls)
			}
			last := tt.responses[min(tt.wantCalls-1, len(tt.responses)-1)]
			if last == 200 && err != nil {
				t.Errorf("err = %v, want nil", err)
			}
			if last != 200 && err == nil {
				t.Errorf("err = nil, want failure")
			}
			if tt.wantErr != nil && !errors.Is(err, tt.wantErr) {
				t.Errorf("err = %v, want %v", err, tt.wantErr)
			}
		})
	}
}

func TestCancelJobStopsOnContextCancel(t *testing.T) {
	var calls atomic.Int32
	c := newTestClient(t, func(w http.ResponseWriter, r *http.Request) {
		calls.Add(1)
		w.Header().Set("Retry-After", "30")
		fixed(429, `{"message":"[CODE 1000] x"}`)(w, r)
	})
	ctx, cancel := context.WithTimeout(t.Context(), 100*time.Millisecond)
	defer cancel()
	start := time.Now()
	err := c.CancelJob(ctx, "j")
	if !errors.Is(err, ErrRateLimited) {
		t.Errorf("err = %v, want the last rate-limit error", err)
	}
	if elapsed := time.Since(start); elapsed > 5*time.Second {
		t.Errorf("CancelJob waited %v despite its context ending at 100ms", elapsed)
	}
	if calls.Load() != 1 {
		t.Errorf("calls = %d, want 1", calls.Load())
	}
}

func TestSubmit(t *testing.T) {
	body := json.RawMessage(`{"input":"https://example.com/a.pdf","async":{"metadata":{"k":"v"},"webhook":{"mode":"direct","url":"https://x/webhooks/reducto"}}}`)
	tests := []struct {
		name      string
		responses []int
		wantCalls int
		wantID    string
	}{
		{"ok", []int{200}, 1, "204a39e4-dd10-4c83-a978-0cee4af8cde2"},
		{"429 retried", []int{429, 200}, 2, "204a39e4-dd10-4c83-a978-0cee4af8cde2"},
		{"503 retried", []int{503, 200}, 2, "204a39e4-dd10-4c83-a978-0cee4af8cde2"},
		{"500 may have created a job: not retried", []int{500, 200}, 1, ""},
		{"502 may have created a job: not retried", []int{502, 200}, 1, ""},
		{"504 not retried", []int{504, 200}, 1, ""},
		{"422 not retried", []int{422}, 1, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var calls atomic.Int32
			c := newTestClient(t, func(w http.ResponseWriter, r *http.Request) {
				n := int(calls.Add(1)) - 1
				got := new(bytes.Buffer)
				got.ReadFrom(r.Body)
				if r.URL.Path != "/parse_async" || got.String() != string(body) || r.Header.Get("Content-Type") != "application/json" {
					t.Errorf("request %s body %s ct %q", r.URL.Path, got, r.Header.Get("Content-Type"))
				}
				status := tt.responses[min(n, len(tt.responses)-1)]
				if status != 200 {
					w.Header().Set("Retry-After-Ms", "1")
					fixed(status, `{"detail":"no"}`)(w, r)
					return
				}
				fixed(200, `{"job_id":"204a39e4-dd10-4c83-a978-0cee4af8cde2"}`)(w, r)
			})
			id, err := c.Submit(t.Context(), EndpointParse, body)
			if int(calls.Load()) != tt.wantCalls {
				t.Errorf("calls = %d, want %d", calls.Load(), tt.wantCalls)
			}
			if id != tt.wantID {
				t.Errorf("id = %q, want %q", id, tt.wantID)
			}
			if (err == nil) != (tt.wantID != "") {
				t.Errorf("err = %v", err)
			}
		})
	}
}

func TestSubmitRejectsBadArguments(t *testing.T) {
	c := newTestClient(t, func(w http.ResponseWriter, r *http.Request) {
		t.Errorf("no request expected, got %s", r.URL.Path)
	})
	if _, err := c.Submit(t.Context(), "classify", json.RawMessage(`{}`)); err == nil || IsTransient(err) {
		t.Errorf("unknown endpoint: err = %v, want permanent error", err)
	}
	if _, err := c.Submit(t.Context(), EndpointSplit, json.RawMessage(`{`)); err == nil || IsTransient(err) {
		t.Errorf("bad json: err = %v, want permanent error", err)
	}
	if _, err := c.GetJob(t.Context(), ""); err == nil || IsTransient(err) {
		t.Errorf("empty id: err = %v, want permanent error", err)
	}
	if _, err := c.ListJobs(t.Context(), ListOptions{Limit: 501}); err == nil {
		t.Error("limit 501 accepted")
	}
}

func TestSubmitMalformedResponse(t *testing.T) {
	c := newTestClient(t, fixed(200, `{"id":"x"}`))
	if _, err := c.Submit(t.Context(), EndpointParse, json.RawMessage(`{}`)); !errors.Is(err, ErrMalformedResponse) {
		t.Errorf("err = %v, want ErrMalformedResponse", err)
	}
}

func TestListJobs(t *testing.T) {
	var gotQuery string
	c := newTestClient(t, func(w http.ResponseWriter, r *http.Request) {
		gotQuery = r.URL.RawQuery
		// Verbatim example from docs.reducto.ai/api-reference/get-jobs.
		fixed(200, `{"jobs":[{"job_id":"<string>","status":"Pending","type":"Parse","raw_config":"<string>","created_at":"2023-11-07T05:31:56Z","num_pages":123,"total_pages":123,"duration":123,"source":null,"bucket":null}],"next_cursor":"<string>"}`)(w, r)
	})
	l, err := c.ListJobs(t.Context(), ListOptions{Cursor: "c1", Limit: 500, ExcludeConfigs: true})
	if err != nil {
		t.Fatal(err)
	}
	if gotQuery != "cursor=c1&exclude_configs=true&limit=500" {
		t.Errorf("query = %q", gotQuery)
	}
	if len(l.Jobs) != 1 || l.NextCursor != "<string>" {
		t.Fatalf("list = %+v", l)
	}
	j := l.Jobs[0]
	if j.ID != "<string>" || j.Status != StatusPending || j.Type != "Parse" || *j.NumPages != 123 || j.CreatedAt.Year() != 2023 {
		t.Errorf("job = %+v", j)
	}

	c = newTestClient(t, fixed(200, `{"jobs":[],"next_cursor":null}`))
	if l, err := c.ListJobs(t.Context(), ListOptions{}); err != nil || l.NextCursor != "" || len(l.Jobs) != 0 {
		t.Errorf("last page = %+v, %v", l, err)
	}
	c = newTestClient(t, fixed(200, `{"next_cursor":null}`))
	if _, err := c.ListJobs(t.Context(), ListOptions{}); !errors.Is(err, ErrMalformedResponse) {
		t.Errorf("missing jobs: err = %v, want malformed", err)
	}
}

// countingLimiter records waits and throttles.
type countingLimiter struct {
	waits     atomic.Int32
	throttled atomic.Int32
	lastRA    atomic.Int64
	mu        sync.Mutex
	ops       []string // every Wait's op, then "429 <op> <code>" for every Throttled
}

func (l *countingLimiter) Wait(ctx context.Context, op string) error {
	l.waits.Add(1)
	l.mu.Lock()
	l.ops = append(l.ops, op)
	l.mu.Unlock()
	return ctx.Err()
}

func (l *countingLimiter) Throttled(e *APIError) {
	l.throttled.Add(1)
	l.lastRA.Store(int64(e.RetryAfter))
	l.mu.Lock()
	l.ops = append(l.ops, fmt.Sprintf("429 %s %d", e.Op, e.RateLimitCode))
	l.mu.Unlock()
}

func TestLimiterAndObserver(t *testing.T) {
	lim := &countingLimiter{}
	var observed []string
	var n atomic.Int32
	c := newTestClient(t, func(w http.ResponseWriter, r *http.Request) {
		if n.Add(1) == 2 {
			w.Header().Set("Retry-After", "2")
			fixed(429, `{"message":"[CODE 2000] x"}`)(w, r)
			return
		}
		fixed(200, `{"status":"Pending"}`)(w, r)
	}, WithLimiter(lim), WithObserver(func(op string, code int, _ time.Duration) {
		observed = append(observed, fmt.Sprintf("%s %d", op, code))
	}))
	c.GetJob(t.Context(), "a")
	c.GetJob(t.Context(), "b")
	if lim.waits.Load() != 2 {
		t.Errorf("limiter waits = %d, want 2", lim.waits.Load())
	}
	if lim.throttled.Load() != 1 || time.Duration(lim.lastRA.Load()) != 2*time.Second {
		t.Errorf("throttled = %d (retry-after %v), want 1 (2s)", lim.throttled.Load(), time.Duration(lim.lastRA.Load()))
	}
	if strings.Join(observed, ",") != "get job 200,get job 429" {
		t.Errorf("observed = %v", observed)
	}
	c.CancelJob(t.Context(), "d")
	lim.mu.Lock()
	if got := strings.Join(lim.ops, ","); got != "get job,get job,429 get job 2000,cancel job" {
		t.Errorf("limiter saw %q, want each request's op and the 429's code", got)
	}
	lim.mu.Unlock()

	ctx, cancel := context.WithCancel(t.Context())
	cancel()
	if _, err := c.GetJob(ctx, "c"); !errors.Is(err, context.Canceled) {
		t.Errorf("limiter wait on cancelled ctx: err = %v", err)
	}
}

// TestKeyNeverLeaks drives every failure path with a server that echoes the Authorization header
// back in its bodies, and checks errors, logs and printed forms of the client.
func TestKeyNeverLeaks(t *testing.T) {
	var logs bytes.Buffer
	log := slog.New(slog.NewJSONHandler(&logs, &slog.HandlerOptions{Level: slog.LevelDebug}))
	echo := func(status int) http.HandlerFunc {
		return func(w http.ResponseWriter, r *http.Request) {
			w.Header().Set("Retry-After-Ms", "1")
			fixed(status, fmt.Sprintf(`{"detail":"you sent %s"}`, r.Header.Get("Authorization")))(w, r)
		}
	}
	var errs []error
	for _, status := range []int{400, 401, 404, 422, 429, 500, 502} {
		c := newTestClient(t, echo(status), WithLogger(log), WithRetries(1))
		_, err := c.GetJob(t.Context(), "j")
		errs = append(errs, err)
		errs = append(errs, c.CancelJob(t.Context(), "j"))
		_, err = c.Submit(t.Context(), EndpointParse, json.RawMessage(`{}`))
		errs = append(errs, err)
		_, err = c.ListJobs(t.Context(), ListOptions{})
		errs = append(errs, err)
		log.Info("client", "client", c)
		for _, s := range []string{fmt.Sprint(c), fmt.Sprintf("%+v", c), fmt.Sprintf("%#v", c), fmt.Sprintf("%v", *c)} {
			if strings.Contains(s, testKey) {
				t.Errorf("printed client contains the key: %s", s)
			}
		}
	}
	c := newTestClient(t, fixed(200, `<html>`+testKey+`</html>`), WithLogger(log))
	_, err := c.GetJob(t.Context(), "j")
	errs = append(errs, err)
	c, _ = New("http://127.0.0.1:1", testKey, WithLogger(log))
	_, err = c.GetJob(t.Context(), "j")
	errs = append(errs, err)
	for _, err := range errs {
		if err == nil {
			t.Fatal("expected every call to fail")
		}
		if strings.Contains(err.Error(), testKey) || strings.Contains(fmt.Sprintf("%+v", err), testKey) {
			t.Errorf("error leaks the key: %v", err)
		}
	}
	if logs.Len() == 0 {
		t.Fatal("no logs captured; the test would prove nothing")
	}
	if strings.Contains(logs.String(), testKey) {
		t.Errorf("logs leak the key:\n%s", logs.String())
	}
}

// TestKeyNeverLeaksEscaped: a server that echoes the key with JSON escapes (as encoders do for
// '/', '<' or non-ASCII, or for everything) must not get it into errors either: the scrub
// runs on the decoded text too.
func TestKeyNeverLeaksEscaped(t *testing.T) {
	var esc strings.Builder
	for _, r := range testKey {
		fmt.Fprintf(&esc, `\u%04x`, r)
	}
	for _, body := range []string{
		`{"detail":"you sent Bearer ` + esc.String() + `"}`,
		`{"error":{"message":"denied","type":"` + esc.String() + `"}}`,
		`{"detail":{"echo":"` + esc.String() + `"}}`,
		`{"detail":"` + strings.Repeat("x", 500) + esc.String() + `"}`, // across the cut
	} {
		c := newTestClient(t, fixed(401, body))
		_, err := c.GetJob(t.Context(), "j")
		var apiErr *APIError
		if !errors.As(err, &apiErr) {
			t.Fatalf("err = %v, want *APIError", err)
		}
		for _, s := range []string{err.Error(), apiErr.Name, unescapeJSON(apiErr.Message)} {
			if strings.Contains(s, testKey) || strings.Contains(s, testKey[:len(testKey)/2]) {
				t.Errorf("body %.60s...: error leaks the key: %q", body, s)
			}
		}
	}
}

func TestNewValidates(t *testing.T) {
	for _, base := range []string{"", "platform.reducto.ai", "ftp://x", "http://"} {
		if _, err := New(base, testKey); err == nil {
			t.Errorf("New(%q) accepted", base)
		}
	}
	if _, err := New(DefaultBaseURL, ""); err == nil {
		t.Error("empty key accepted")
	}
	c, err := New("http://127.0.0.1:9/v1/", testKey)
	if err != nil || c.base.Path != "/v1" {
		t.Errorf("base path = %q, %v", c.base.Path, err)
	}
}
