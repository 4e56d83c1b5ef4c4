package poller

import (
	"context"
	"crypto/x509"
	"encoding/json"
	"errors"
	"fmt"
	"net/url"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/reducto-bridge/reducto-bridge/capture"
	"github.com/reducto-bridge/reducto-bridge/event"
	"github.com/reducto-bridge/reducto-bridge/reducto"
)

// The policy of decide, row by row (the README's table). No NATS, no clock: each row is one
// call.

var (
	testPolicy = policy{
		sched:           schedule{initial: 2 * time.Second, max: 30 * time.Second, multiplier: 1.5},
		confirmAfter:    2 * time.Second,
		ttl:             12 * time.Hour,
		webhookInterval: 5 * time.Minute,
		sweptInterval:   time.Minute,
		authRetry:       30 * time.Second,
	}
	tracked = time.Date(2026, 11, 29, 14, 0, 0, 0, time.UTC)
	now     = tracked.Add(time.Minute)
	late    = tracked.Add(12*time.Hour + time.Second) // past the TTL
)

// A delivery at attempt 4 polls after the schedule's 4th interval: 2s * 1.5^3.
const next4 = 6750 * time.Millisecond

func apiErr(code int) *reducto.APIError {
	return &reducto.APIError{Op: "get job", StatusCode: code, Message: fmt.Sprintf("status %d", code)}
}

func job(s reducto.Status) *reducto.Job { return &reducto.Job{ID: "j", Status: s} }

func TestDecide(t *testing.T) {
	result := json.RawMessage(`{"job_id":"j","duration":3,"usage":{"num_pages":2},"result":{"type":"full","chunks":[]}}`)
	errRaw := json.RawMessage(`{"code":400.0,"name":"DOCUMENT_CORRUPT","message":"bad pdf","job_id":"j","category":"Input"}`)
	pct, dur, pages := 100.0, 12.4, 7
	completed := &reducto.Job{ID: "j", Status: "Completed", Type: "Parse", Progress: &pct, Duration: &dur, NumPages: &pages, Result: result}
	urlDone := &reducto.Job{ID: "j", Status: "Completed", Type: "Parse",
		Result: json.RawMessage(`{"job_id":"j","result":{"type":"url","url":"https://s3.example/r?sig=x","result_id":"r"}}`)}
	captured := &event.ResultRef{Bucket: "REDUCTO_RESULTS", Name: "j", Size: 9, Digest: "SHA-256=abc="}
	capDownload := fmt.Errorf("%w: HTTP 503 from s3.example", capture.ErrDownload)
	capRejected := fmt.Errorf("%w: HTTP 403 from s3.example", capture.ErrRejected)
	capTooLarge := fmt.Errorf("%w: 300 bytes, limit 200", capture.ErrTooLarge)
	capInsecure := fmt.Errorf("%w: http://s3.example", capture.ErrInsecure)
	failed := &reducto.Job{ID: "j", Status: "Failed", Reason: "corrupt",
		Error: &reducto.JobError{Code: 400, Name: "DOCUMENT_CORRUPT", Message: "bad pdf", Raw: errRaw}}

	refused := fmt.Errorf("get job: %w", &url.Error{Op: "Get", URL: "https://platform.reducto.ai/job/j", Err: syscall.ECONNREFUSED})
	timeout := fmt.Errorf("get job: %w", &url.Error{Op: "Get", URL: "https://platform.reducto.ai/job/j", Err: context.DeadlineExceeded})
	malformed := fmt.Errorf("get job: %w: job body has no status", reducto.ErrMalformedResponse)
	tlsErr := fmt.Errorf("get job: %w", &url.Error{Op: "Get", URL: "https://platform.reducto.ai/job/j", Err: &x509.UnknownAuthorityError{}})
	withRetryAfter := func(code int, ra time.Duration) *reducto.APIError {
		e := apiErr(code)
		e.RetryAfter = ra
		return e
	}
	html403 := &reducto.APIError{Op: "get job", StatusCode: 403, Name: "malformed", Message: "non-JSON error body (text/html, 120 bytes)"}
	typed := &reducto.APIError{Op: "get job", StatusCode: 400, Name: "file_download_failure", Message: "Failed to download file"}
	// What the client returns for a 3xx (it never follows one): not transient, not about the job.
	redirect := &reducto.APIError{Op: "get job", StatusCode: 302, Name: "redirect",
		Message: "redirect to http://elsewhere.example not followed (the API key is never sent elsewhere; check the base URL)"}

	type want struct {
		action  action
		after   time.Duration
		predict bool
		kind    event.Kind // report
		errName string     // report: the event's error name ("" for none)
		errCode int
	}
	tests := []struct {
		row      string // the policy row
		name     string
		d        delivery
		a        answer
		now      time.Time
		want     want
		checkEv  func(t *testing.T, ev *event.Event)
		evidence bool // give the delivery an earlier permanent answer
	}{
		// 200, terminal status: report its kind, Reducto's values verbatim.
		{row: "terminal", name: "Completed", a: answer{job: completed}, want: want{action: report, kind: event.Completed},
			checkEv: func(t *testing.T, ev *event.Event) {
				if string(ev.Result) != string(result) || ev.Status != "Completed" || ev.Type != "Parse" ||
					*ev.Progress != 100 || *ev.Duration != 12.4 || *ev.NumPages != 7 || ev.Polls != 3 {
					t.Errorf("event does not pass Reducto's values through: %+v", ev)
				}
				if !ev.TrackedAt.Equal(tracked) || !ev.ObservedAt.Equal(now) || string(ev.Metadata) != `{"k":1}` {
					t.Errorf("tracked_at %v observed_at %v metadata %s", ev.TrackedAt, ev.ObservedAt, ev.Metadata)
				}
			}},
		{row: "terminal", name: "Failed, error object verbatim", a: answer{job: failed}, want: want{action: report, kind: event.Failed, errName: "DOCUMENT_CORRUPT", errCode: 400},
			checkEv: func(t *testing.T, ev *event.Event) {
				b, err := json.Marshal(ev.Error)
				if err != nil || string(b) != string(errRaw) {
					t.Errorf("event error = %s (%v), want Reducto's object verbatim %s", b, err, errRaw)
				}
				if ev.Reason != "corrupt" || ev.Result != nil {
					t.Errorf("reason %q result %s", ev.Reason, ev.Result)
				}
			}},
		{row: "terminal", name: "Cancelled", a: answer{job: job("Cancelled")}, want: want{action: report, kind: event.Cancelled}},
		{row: "terminal", name: "Canceled (US spelling)", a: answer{job: job("Canceled")}, want: want{action: report, kind: event.Cancelled}},
		{row: "terminal", name: "Failed with JOB_CANCELLED", a: answer{job: &reducto.Job{Status: "Failed", Error: &reducto.JobError{Name: "JOB_CANCELLED"}}},
			want: want{action: report, kind: event.Cancelled, errName: "JOB_CANCELLED"}},
		{row: "terminal", name: "Failed, reason says cancelled", a: answer{job: &reducto.Job{Status: "Failed", Reason: "Job was cancelled by the user"}},
			want: want{action: report, kind: event.Cancelled}},
		{row: "terminal", name: "lower-case completed", a: answer{job: job("completed")}, want: want{action: report, kind: event.Completed}},
		{row: "terminal", name: "terminal after the TTL is still its kind", a: answer{job: completed}, now: late, want: want{action: report, kind: event.Completed}},
		{row: "terminal", name: "terminal while confirming a 404", a: answer{job: completed}, evidence: true, want: want{action: report, kind: event.Completed}},

		// A completed job's URL result, with BRIDGE_CAPTURE_URL_RESULTS: captured, or the
		// event waits for it (transient), or reports completed saying why not (permanent, TTL).
		{row: "url capture", name: "captured: result_ref next to Reducto's url result", a: answer{job: urlDone, captured: captured},
			want: want{action: report, kind: event.Completed},
			checkEv: func(t *testing.T, ev *event.Event) {
				if string(ev.Result) != string(urlDone.Result) || ev.ResultRef != captured || ev.CaptureError != "" {
					t.Errorf("result %s result_ref %+v capture_error %q; want Reducto's url result and the ref", ev.Result, ev.ResultRef, ev.CaptureError)
				}
			}},
		{row: "url capture", name: "download failed: poll again with backoff", a: answer{job: urlDone, captureErr: capDownload}, want: want{action: pollAgain, after: next4}},
		{row: "url capture", name: "link expired (403): poll again for a fresh link", a: answer{job: urlDone, captureErr: capRejected}, want: want{action: pollAgain, after: next4}},
		{row: "url capture", name: "download failed past the TTL: completed, capture_error", a: answer{job: urlDone, captureErr: capDownload}, now: late,
			want: want{action: report, kind: event.Completed},
			checkEv: func(t *testing.T, ev *event.Event) {
				if string(ev.Result) != string(urlDone.Result) || ev.ResultRef != nil || !strings.Contains(ev.CaptureError, "BRIDGE_JOB_TTL") {
					t.Errorf("result %s result_ref %+v capture_error %q", ev.Result, ev.ResultRef, ev.CaptureError)
				}
			}},
		{row: "url capture", name: "too large: completed at once, capture_error", a: answer{job: urlDone, captureErr: capTooLarge},
			want: want{action: report, kind: event.Completed},
			checkEv: func(t *testing.T, ev *event.Event) {
				if string(ev.Result) != string(urlDone.Result) || ev.ResultRef != nil || !strings.Contains(ev.CaptureError, "BRIDGE_CAPTURE_MAX_BYTES") {
					t.Errorf("result %s result_ref %+v capture_error %q", ev.Result, ev.ResultRef, ev.CaptureError)
				}
			}},
		{row: "url capture", name: "not https: completed at once, capture_error", a: answer{job: urlDone, captureErr: capInsecure},
			want: want{action: report, kind: event.Completed},
			checkEv: func(t *testing.T, ev *event.Event) {
				if ev.CaptureError == "" || ev.ResultRef != nil {
					t.Errorf("capture_error %q result_ref %+v", ev.CaptureError, ev.ResultRef)
				}
			}},
		{row: "url capture", name: "download cut short by shutdown: hand back, no event", a: answer{job: urlDone, captureErr: context.Canceled}, want: want{action: pollAgain}},

		// 200, any other status (known or not): poll again.
		{row: "pending", name: "Pending", a: answer{job: job("Pending")}, want: want{action: pollAgain, after: next4, predict: true}},
		{row: "pending", name: "Idle", a: answer{job: job("Idle")}, want: want{action: pollAgain, after: next4, predict: true}},
		{row: "pending", name: "InProgress", a: answer{job: job("InProgress")}, want: want{action: pollAgain, after: next4, predict: true}},
		{row: "pending", name: "Completing", a: answer{job: job("Completing")}, want: want{action: pollAgain, after: next4, predict: true}},
		{row: "pending", name: "unknown status", a: answer{job: job("Thinking")}, want: want{action: pollAgain, after: next4, predict: true}},
		{row: "pending", name: "webhook job: the safety-net interval", d: delivery{webhook: true}, a: answer{job: job("Pending")},
			want: want{action: pollAgain, after: 5 * time.Minute}},
		// A re-track with BRIDGE_RETRACK_KEEPS_SCHEDULE: the delivery carries the step the job
		// had reached (and the first track's time as trackedAt); the schedule goes on from it.
		{row: "pending", name: "re-tracked at step 3: the schedule goes on", d: delivery{step: 3}, a: answer{job: job("Pending")},
			want: want{action: pollAgain, after: 22781250 * time.Microsecond, predict: true}}, // interval 7
		{row: "pending", name: "re-tracked, past the first track's TTL: expired", d: delivery{step: 3}, a: answer{job: job("Pending")}, now: late,
			want: want{action: report, kind: event.Expired},
			checkEv: func(t *testing.T, ev *event.Event) {
				if !ev.TrackedAt.Equal(tracked) {
					t.Errorf("tracked_at %v, want the first track's %v", ev.TrackedAt, tracked)
				}
			}},
		{row: "pending", name: "swept job, too many covered for the budget: the stretched interval", d: delivery{swept: true, sweptEvery: 20 * time.Minute}, a: answer{job: job("Pending")},
			want: want{action: pollAgain, after: 20 * time.Minute}},
		{row: "pending", name: "swept job, stretched interval shorter than the safety net: the safety net", d: delivery{swept: true, sweptEvery: time.Second}, a: answer{job: job("Pending")},
			want: want{action: pollAgain, after: time.Minute}},
		{row: "pending", name: "swept job, stretched past the TTL: polled at the TTL", d: delivery{swept: true, sweptEvery: 20 * time.Minute}, a: answer{job: job("Pending")},
			now: tracked.Add(12*time.Hour - 5*time.Minute), want: want{action: pollAgain, after: 5 * time.Minute}},
		{row: "pending", name: "swept job: the list safety-net interval", d: delivery{swept: true}, a: answer{job: job("Pending")},
			want: want{action: pollAgain, after: time.Minute}},
		{row: "pending", name: "swept webhook job: the longer safety net", d: delivery{swept: true, webhook: true}, a: answer{job: job("InProgress")},
			want: want{action: pollAgain, after: 5 * time.Minute}},
		{row: "pending", name: "swept job near the TTL: polled at the TTL, not after", d: delivery{swept: true}, a: answer{job: job("Pending")},
			now: tracked.Add(12*time.Hour - 20*time.Second), want: want{action: pollAgain, after: 20 * time.Second}},
		{row: "pending", name: "swept job just before the TTL: not sooner than the schedule", d: delivery{swept: true}, a: answer{job: job("Pending")},
			now: tracked.Add(12*time.Hour - time.Second), want: want{action: pollAgain, after: next4}},
		{row: "pending", name: "swept job past the TTL: expired", d: delivery{swept: true}, a: answer{job: job("Pending")}, now: late,
			want: want{action: report, kind: event.Expired}},
		{row: "terminal", name: "swept job: terminal is reported", d: delivery{swept: true}, a: answer{job: job("Completed")},
			want: want{action: report, kind: event.Completed}},
		{row: "transient", name: "swept job, 500: backoff, not the safety net", d: delivery{swept: true}, a: answer{err: apiErr(500)},
			want: want{action: pollAgain, after: next4}},
		// The budget binds (more outstanding jobs than it polls every interval): every poll at
		// least fairEvery after the previous one, the schedule's prediction left out.
		{row: "pending", name: "budget binds: the fair interval, no prediction", d: delivery{fairEvery: 17 * time.Minute}, a: answer{job: job("Pending")},
			want: want{action: pollAgain, after: 17 * time.Minute}},
		{row: "pending", name: "budget does not bind: the schedule, predicted", d: delivery{fairEvery: time.Second}, a: answer{job: job("Pending")},
			want: want{action: pollAgain, after: next4, predict: true}},
		{row: "pending", name: "budget binds near the TTL: polled at the TTL, not after", d: delivery{fairEvery: 17 * time.Minute}, a: answer{job: job("Pending")},
			now: tracked.Add(12*time.Hour - 5*time.Minute), want: want{action: pollAgain, after: 5 * time.Minute}},
		{row: "pending", name: "budget binds just before the TTL: the schedule, predicted", d: delivery{fairEvery: 17 * time.Minute}, a: answer{job: job("Pending")},
			now: tracked.Add(12*time.Hour - time.Second), want: want{action: pollAgain, after: next4, predict: true}},
		{row: "pending", name: "budget binds, webhook job: the longer of the two", d: delivery{webhook: true, fairEvery: 17 * time.Minute}, a: answer{job: job("Pending")},
			want: want{action: pollAgain, after: 17 * time.Minute}},
		{row: "pending", name: "budget binds, swept job: the longer of the two", d: delivery{swept: true, sweptEvery: 20 * time.Minute, fairEvery: 17 * time.Minute}, a: answer{job: job("Pending")},
			want: want{action: pollAgain, after: 20 * time.Minute}},
		{row: "transient", name: "budget binds, 500: the fair interval", d: delivery{fairEvery: 17 * time.Minute}, a: answer{err: apiErr(500)},
			want: want{action: pollAgain, after: 17 * time.Minute}},
		{row: "transient", name: "budget binds, 429 with a longer Retry-After: Retry-After", d: delivery{fairEvery: time.Minute}, a: answer{err: withRetryAfter(429, 2*time.Minute)},
			want: want{action: pollAgain, after: 2 * time.Minute}},
		{row: "interrupted", name: "budget binds, interrupted poll: at once", d: delivery{fairEvery: 17 * time.Minute}, a: answer{err: context.Canceled},
			want: want{action: pollAgain, after: 0}},
		{row: "unauthorized", name: "budget binds, 401: the auth retry", d: delivery{fairEvery: 17 * time.Minute}, a: answer{err: apiErr(401)},
			want: want{action: pollAgain, after: 30 * time.Second}},
		{row: "terminal", name: "budget binds: terminal is reported", d: delivery{fairEvery: 17 * time.Minute}, a: answer{job: job("Completed")},
			want: want{action: report, kind: event.Completed}},
		{row: "pending", name: "404 then Pending is never a failure", a: answer{job: job("Pending")}, evidence: true,
			want: want{action: pollAgain, after: next4, predict: true}},
		{row: "pending", name: "past the TTL: expired with the last state", a: answer{job: &reducto.Job{Status: "Pending", Progress: &pct}}, now: late,
			want: want{action: report, kind: event.Expired},
			checkEv: func(t *testing.T, ev *event.Event) {
				if ev.Status != "Pending" || ev.Progress == nil || ev.Error != nil {
					t.Errorf("expired event %+v, want the last status and no error", ev)
				}
			}},

		// 200 whose body cannot be read as a job: poll again (transient).
		{row: "unreadable 200", name: "malformed body", a: answer{err: malformed}, want: want{action: pollAgain, after: next4}},
		{row: "unreadable 200", name: "neither job nor error", a: answer{}, want: want{action: pollAgain, after: next4}},

		// network, timeout, 408, 429, any 5xx: poll again with backoff; never an event but
		// expired at the TTL, which carries the last error.
		{row: "transient", name: "connection refused", a: answer{err: refused}, want: want{action: pollAgain, after: next4}},
		{row: "transient", name: "timeout", a: answer{err: timeout}, want: want{action: pollAgain, after: next4}},
		{row: "transient", name: "re-tracked at step 10: backoff at the cap", d: delivery{step: 10}, a: answer{err: apiErr(503)}, want: want{action: pollAgain, after: 30 * time.Second}},
		{row: "transient", name: "408", a: answer{err: apiErr(408)}, want: want{action: pollAgain, after: next4}},
		{row: "transient", name: "429 [CODE 2000]", a: answer{err: &reducto.APIError{StatusCode: 429, RateLimitCode: 2000}}, want: want{action: pollAgain, after: next4}},
		{row: "transient", name: "429 [CODE 1000]", a: answer{err: &reducto.APIError{StatusCode: 429, RateLimitCode: 1000}}, want: want{action: pollAgain, after: next4}},
		{row: "transient", name: "429 code-less", a: answer{err: apiErr(429)}, want: want{action: pollAgain, after: next4}},
		{row: "transient", name: "429 Retry-After longer than the schedule", a: answer{err: withRetryAfter(429, 20*time.Second)}, want: want{action: pollAgain, after: 20 * time.Second}},
		{row: "transient", name: "503 Retry-After shorter than the schedule", a: answer{err: withRetryAfter(503, time.Second)}, want: want{action: pollAgain, after: next4}},
		{row: "transient", name: "500", a: answer{err: apiErr(500)}, want: want{action: pollAgain, after: next4}},
		{row: "transient", name: "500 while confirming a 404", a: answer{err: apiErr(500)}, evidence: true, want: want{action: pollAgain, after: next4}},
		{row: "transient", name: "501", a: answer{err: apiErr(501)}, want: want{action: pollAgain, after: next4}},
		{row: "transient", name: "502", a: answer{err: apiErr(502)}, want: want{action: pollAgain, after: next4}},
		{row: "transient", name: "503", a: answer{err: apiErr(503)}, want: want{action: pollAgain, after: next4}},
		{row: "transient", name: "504", a: answer{err: apiErr(504)}, want: want{action: pollAgain, after: next4}},
		{row: "transient", name: "599", a: answer{err: apiErr(599)}, want: want{action: pollAgain, after: next4}},
		{row: "transient", name: "TLS misconfiguration", a: answer{err: tlsErr}, want: want{action: pollAgain, after: next4}},
		{row: "transient", name: "TLS misconfiguration past the TTL: expired with the error", a: answer{err: tlsErr}, now: late,
			want: want{action: report, kind: event.Expired, errName: "POLL_FAILED"}},
		{row: "transient", name: "500 past the TTL: expired with the error", a: answer{err: apiErr(500)}, now: late,
			want: want{action: report, kind: event.Expired, errName: "HTTP_500", errCode: 500}},
		{row: "transient", name: "network error past the TTL", a: answer{err: refused}, now: late,
			want: want{action: report, kind: event.Expired, errName: "POLL_FAILED"}},

		// 3xx: the base URL is misconfigured (the client never follows a redirect): poll again
		// with backoff, never failed; expired at the TTL like every other non-answer.
		{row: "3xx redirect", name: "302", a: answer{err: redirect}, want: want{action: pollAgain, after: next4}},
		{row: "3xx redirect", name: "302 while confirming a 404", a: answer{err: redirect}, evidence: true, want: want{action: pollAgain, after: next4}},
		{row: "3xx redirect", name: "302 past the TTL: expired with the status", a: answer{err: redirect}, now: late,
			want: want{action: report, kind: event.Expired, errName: "HTTP_302", errCode: 302}},

		// 401/403: never fail the job, keep it parked.
		{row: "unauthorized", name: "401", a: answer{err: apiErr(401)}, want: want{action: pollAgain, after: 30 * time.Second}},
		{row: "unauthorized", name: "403", a: answer{err: apiErr(403)}, want: want{action: pollAgain, after: 30 * time.Second}},
		{row: "unauthorized", name: "403 HTML page", a: answer{err: html403}, want: want{action: pollAgain, after: 30 * time.Second}},
		{row: "unauthorized", name: "401 while confirming", a: answer{err: apiErr(401)}, evidence: true, want: want{action: pollAgain, after: 30 * time.Second}},
		{row: "unauthorized", name: "401 past the TTL: no event either", a: answer{err: apiErr(401)}, now: late, want: want{action: pollAgain, after: 30 * time.Second}},

		// 404: failed NOT_FOUND only when confirmed.
		{row: "404", name: "first 404: confirm", a: answer{err: apiErr(404)}, want: want{action: confirm, after: 2 * time.Second}},
		{row: "404", name: "confirmed 404", a: answer{err: apiErr(404)}, evidence: true, want: want{action: report, kind: event.Failed, errName: "NOT_FOUND", errCode: 404},
			checkEv: func(t *testing.T, ev *event.Event) {
				if ev.Error.Message != "status 404" || ev.Status != "" || ev.Polls != 3 {
					t.Errorf("failed event %+v error %+v", ev, ev.Error)
				}
			}},
		{row: "404", name: "first 404 past the TTL: still confirmed first", a: answer{err: apiErr(404)}, now: late, want: want{action: confirm, after: 2 * time.Second}},

		// 409/410: failed JOB_DELETED only when confirmed.
		{row: "deleted", name: "first 409: confirm", a: answer{err: apiErr(409)}, want: want{action: confirm, after: 2 * time.Second}},
		{row: "deleted", name: "first 410: confirm", a: answer{err: apiErr(410)}, want: want{action: confirm, after: 2 * time.Second}},
		{row: "deleted", name: "confirmed 409", a: answer{err: apiErr(409)}, evidence: true, want: want{action: report, kind: event.Failed, errName: "JOB_DELETED", errCode: 409}},
		{row: "deleted", name: "confirmed 410", a: answer{err: apiErr(410)}, evidence: true, want: want{action: report, kind: event.Failed, errName: "JOB_DELETED", errCode: 410}},

		// other 4xx: failed HTTP_<code> only when confirmed.
		{row: "other 4xx", name: "first 400: confirm", a: answer{err: apiErr(400)}, want: want{action: confirm, after: 2 * time.Second}},
		{row: "other 4xx", name: "first 422: confirm", a: answer{err: apiErr(422)}, want: want{action: confirm, after: 2 * time.Second}},
		{row: "other 4xx", name: "confirmed 400", a: answer{err: apiErr(400)}, evidence: true, want: want{action: report, kind: event.Failed, errName: "HTTP_400", errCode: 400}},
		{row: "other 4xx", name: "confirmed 422", a: answer{err: apiErr(422)}, evidence: true, want: want{action: report, kind: event.Failed, errName: "HTTP_422", errCode: 422}},
		{row: "other 4xx", name: "confirmed 442", a: answer{err: apiErr(442)}, evidence: true, want: want{action: report, kind: event.Failed, errName: "HTTP_442", errCode: 442}},
		{row: "other 4xx", name: "confirmed 400 with Reducto's error type", a: answer{err: typed}, evidence: true,
			want: want{action: report, kind: event.Failed, errName: "file_download_failure", errCode: 400}},

		// not an answer: the poll was cut short by shutdown.
		{row: "interrupted", name: "context cancelled", a: answer{err: fmt.Errorf("get job: %w", context.Canceled)}, want: want{action: pollAgain}},
		{row: "interrupted", name: "cancelled past the TTL", a: answer{err: context.Canceled}, now: late, want: want{action: pollAgain}},
	}
	for _, tt := range tests {
		t.Run(tt.row+"/"+tt.name, func(t *testing.T) {
			d := tt.d
			d.id, d.metadata, d.trackedAt, d.attempt, d.polls = "j", json.RawMessage(`{"k":1}`), tracked, 4, 3
			if tt.evidence {
				d.evidence = apiErr(404)
			}
			at := tt.now
			if at.IsZero() {
				at = now
			}
			v := decide(d, tt.a, at, testPolicy)
			if v.action != tt.want.action {
				t.Fatalf("action = %v, want %v (verdict %+v)", v.action, tt.want.action, v)
			}
			if v.action != report {
				if v.event != nil {
					t.Errorf("a %v verdict carries an event", v.action)
				}
				if v.after != tt.want.after || v.predict != tt.want.predict {
					t.Errorf("after %v predict %v, want %v %v", v.after, v.predict, tt.want.after, tt.want.predict)
				}
				return
			}
			ev := v.event
			if ev == nil || ev.Kind != tt.want.kind || ev.JobID != "j" {
				t.Fatalf("event %+v, want kind %s", ev, tt.want.kind)
			}
			switch {
			case tt.want.errName == "" && ev.Error != nil && tt.want.kind != event.Completed && tt.want.kind != event.Cancelled:
				t.Errorf("error %+v, want none", ev.Error)
			case tt.want.errName != "" && (ev.Error == nil || ev.Error.Name != tt.want.errName || (tt.want.errCode != 0 && ev.Error.Code != tt.want.errCode)):
				t.Errorf("error %+v, want name %s code %d", ev.Error, tt.want.errName, tt.want.errCode)
			}
			if tt.checkEv != nil {
				tt.checkEv(t, ev)
			}
		})
	}
}

// TestDecideNoStatusFailsAJobUnconfirmed: whatever HTTP status a single GET answers, it never
// produces a failed, completed or cancelled event; and confirmed, only 4xx other than 401, 403,
// 408 and 429 do.
func TestDecideNoStatusFailsAJobUnconfirmed(t *testing.T) {
	d := delivery{id: "j", trackedAt: tracked, attempt: 3, polls: 2}
	for code := 300; code <= 599; code++ {
		if v := decide(d, answer{err: apiErr(code)}, now, testPolicy); v.action == report {
			t.Errorf("%d unconfirmed: reported %s", code, v.event.Kind)
		}
		confirmed := d
		confirmed.evidence = apiErr(404)
		v := decide(confirmed, answer{err: apiErr(code)}, now, testPolicy)
		permanent := code >= 400 && code < 500 && code != 401 && code != 403 && code != 408 && code != 429
		if got := v.action == report; got != permanent {
			t.Errorf("%d confirmed: reported = %v, want %v", code, got, permanent)
		}
		if v.action == report && v.event.Kind != event.Failed {
			t.Errorf("%d confirmed: kind %s, want failed", code, v.event.Kind)
		}
	}
}

// TestClassify pins what each error says, for the metrics.
func TestClassify(t *testing.T) {
	tests := []struct {
		err  error
		want class
	}{
		{apiErr(404), classGone},
		{apiErr(409), classGone},
		{apiErr(410), classGone},
		{apiErr(400), classPermanent},
		{apiErr(401), classUnauthorized},
		{apiErr(429), classRateLimited},
		{apiErr(500), classTransient},
		{apiErr(503), classTransient},
		{&reducto.APIError{StatusCode: 302, Name: "redirect"}, classBroken},
		{fmt.Errorf("x: %w", context.Canceled), classInterrupted},
		{errors.New("something else"), classTransient},
	}
	for _, tt := range tests {
		if got := classify(tt.err); got != tt.want {
			t.Errorf("classify(%v) = %d, want %d", tt.err, got, tt.want)
		}
	}
}

// TestEventKind: every outcome of a terminal job is an event kind of the same spelling.
func TestEventKind(t *testing.T) {
	tests := []struct {
		o    reducto.Outcome
		want event.Kind
	}{
		{reducto.OutcomeCompleted, event.Completed},
		{reducto.OutcomeFailed, event.Failed},
		{reducto.OutcomeCancelled, event.Cancelled},
	}
	for _, tt := range tests {
		got := eventKind(tt.o)
		if got != tt.want || !got.Valid() || string(got) != string(tt.o) {
			t.Errorf("eventKind(%q) = %q, want %q", tt.o, got, tt.want)
		}
	}
}

func BenchmarkDecide(b *testing.B) {
	d := delivery{id: "j", trackedAt: tracked, attempt: 9, polls: 8, draw: 0.4}
	a := answer{job: job("Pending")}
	for range b.N {
		_ = decide(d, a, now, testPolicy)
	}
}
