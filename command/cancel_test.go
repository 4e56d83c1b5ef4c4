package command

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/reducto-bridge/reducto-bridge/event"
	"github.com/reducto-bridge/reducto-bridge/internal/reductotest"
	"github.com/reducto-bridge/reducto-bridge/reducto"
)

func TestCancel(t *testing.T) {
	getFails := func(err error) func(context.Context, string) (*reducto.Job, error) {
		return func(context.Context, string) (*reducto.Job, error) { return nil, err }
	}
	status := func(s reducto.Status) func(context.Context, string) (*reducto.Job, error) {
		return func(_ context.Context, id string) (*reducto.Job, error) { return &reducto.Job{ID: id, Status: s}, nil }
	}
	cancelFails := func(err error) func(context.Context, string) error {
		return func(context.Context, string) error { return err }
	}
	rateLimited := &reducto.APIError{Op: "get job", StatusCode: 429, Message: "[CODE 2000] rate limit exceeded", RetryAfter: 2 * time.Second}
	body := func(id string) string { return fmt.Sprintf(`{"job_id":%q}`, id) }

	tests := []struct {
		name      string
		req       string
		events    *fakeEvents
		getJob    func(context.Context, string) (*reducto.Job, error)
		cancelJob func(context.Context, string) error
		trackErr  error
		wantCode  int
		wantDesc  string // a substring of the description
		wantGet   bool   // GetJob was called
		wantCall  bool   // CancelJob was called
		wantTrack bool   // the tracker was called
	}{
		{name: "success", req: body(jobID), wantCode: 200, wantGet: true, wantCall: true, wantTrack: true},
		{name: "unknown keys ignored", req: `{"job_id":"` + jobID + `","why":"x"}`, wantCode: 200, wantGet: true, wantCall: true, wantTrack: true},
		{name: "not json", req: `{"job_id":`, wantCode: 400, wantDesc: "not valid json"},
		{name: "empty body", req: ``, wantCode: 400, wantDesc: "not valid json"},
		{name: "array", req: `["` + jobID + `"]`, wantCode: 400, wantDesc: "not a json object"},
		{name: "json null", req: `null`, wantCode: 400, wantDesc: "not a json object"},
		{name: "bare string", req: `"` + jobID + `"`, wantCode: 400, wantDesc: "not a json object"},
		{name: "missing job_id", req: `{"id":"x"}`, wantCode: 400, wantDesc: "missing job_id"},
		{name: "null job_id", req: `{"job_id":null}`, wantCode: 400, wantDesc: "missing job_id"},
		{name: "number job_id", req: `{"job_id":42}`, wantCode: 400, wantDesc: "job_id is not a string"},
		{name: "empty job_id", req: `{"job_id":""}`, wantCode: 400, wantDesc: "invalid job id"},
		{name: "dotted job_id", req: body("a.b"), wantCode: 400, wantDesc: "invalid job id"},
		{name: "wildcard job_id", req: body("a>"), wantCode: 400, wantDesc: "invalid job id"},
		{name: "space in job_id", req: body("a b"), wantCode: 400, wantDesc: "invalid job id"},
		{name: "long job_id", req: body(strings.Repeat("x", 257)), wantCode: 400, wantDesc: "invalid job id"},
		// encoding/json would read the bad byte as U+FFFD: a valid id, but not the one sent.
		{name: "invalid UTF-8 in job_id", req: "{\"job_id\":\"" + jobID + "\xff\"}", wantCode: 400, wantDesc: "not valid UTF-8"},
		{name: "invalid UTF-8 elsewhere", req: "{\"job_id\":\"" + jobID + "\",\"x\":\"\xfe\"}", wantCode: 400, wantDesc: "not valid UTF-8"},
		{
			name:     "event already published",
			req:      body(jobID),
			events:   &fakeEvents{ev: &event.Event{JobID: jobID, Kind: event.Completed, Status: "Completed"}},
			wantCode: 409, wantDesc: "job already completed (status Completed)",
		},
		{
			name:     "expired event",
			req:      body(jobID),
			events:   &fakeEvents{ev: &event.Event{JobID: jobID, Kind: event.Expired}},
			wantCode: 409, wantDesc: "job already expired",
		},
		{
			name:     "lookup error is not fatal",
			req:      body(jobID),
			events:   &fakeEvents{err: errors.New("stream unavailable")},
			wantCode: 200, wantGet: true, wantCall: true, wantTrack: true,
		},
		{name: "unknown job", req: body(jobID), getJob: getFails(apiErr(404, "Job not found")), wantCode: 404, wantDesc: "unknown job", wantGet: true},
		{name: "job gone 410", req: body(jobID), getJob: getFails(apiErr(410, "JOB_DELETED")), wantCode: 409, wantDesc: "job deleted", wantGet: true},
		{name: "job deleting 409", req: body(jobID), getJob: getFails(apiErr(409, "deletion in progress")), wantCode: 409, wantDesc: "job deleted", wantGet: true},
		{name: "completed", req: body(jobID), getJob: status(reducto.StatusCompleted), wantCode: 409, wantDesc: "job already Completed", wantGet: true},
		{name: "failed", req: body(jobID), getJob: status(reducto.StatusFailed), wantCode: 409, wantDesc: "job already Failed", wantGet: true},
		{name: "cancelled", req: body(jobID), getJob: status(reducto.StatusCancelled), wantCode: 409, wantDesc: "job already Cancelled", wantGet: true},
		{name: "in progress", req: body(jobID), getJob: status(reducto.StatusInProgress), wantCode: 200, wantGet: true, wantCall: true, wantTrack: true},
		{name: "rate limited", req: body(jobID), getJob: getFails(rateLimited), wantCode: 429, wantDesc: "reducto rate limit, retry after 2s", wantGet: true},
		{name: "unauthorized", req: body(jobID), getJob: getFails(apiErr(401, "bad key")), wantCode: 502, wantDesc: "reducto rejected the bridge's API key", wantGet: true},
		{name: "forbidden", req: body(jobID), getJob: getFails(apiErr(403, "")), wantCode: 502, wantDesc: "API key", wantGet: true},
		{name: "reducto 503", req: body(jobID), getJob: getFails(apiErr(503, "maintenance")), wantCode: 502, wantDesc: "reducto error (503): maintenance", wantGet: true},
		{name: "reducto 500", req: body(jobID), getJob: getFails(apiErr(500, "internal")), wantCode: 502, wantDesc: "reducto error (500): internal", wantGet: true},
		{name: "reducto 422", req: body(jobID), getJob: getFails(apiErr(422, "job_id: bad")), wantCode: 502, wantDesc: "reducto error (422): job_id: bad", wantGet: true},
		{
			name: "malformed", req: body(jobID), wantGet: true,
			getJob:   getFails(fmt.Errorf("get job: %w: job body has no status", reducto.ErrMalformedResponse)),
			wantCode: 502, wantDesc: "reducto sent a malformed response",
		},
		{name: "nil job", req: body(jobID), getJob: getFails(nil), wantCode: 502, wantDesc: "malformed", wantGet: true},
		{name: "connection refused", req: body(jobID), getJob: getFails(refused()), wantCode: 503, wantDesc: "reducto unreachable: connection refused", wantGet: true},
		{
			name: "timeout", req: body(jobID), wantGet: true,
			getJob:   getFails(fmt.Errorf("get job: %w", context.DeadlineExceeded)),
			wantCode: 503, wantDesc: "reducto unreachable: timeout",
		},
		{name: "cancel 404", req: body(jobID), cancelJob: cancelFails(apiErr(404, "")), wantCode: 404, wantDesc: "unknown job", wantGet: true, wantCall: true},
		{name: "cancel 410", req: body(jobID), cancelJob: cancelFails(apiErr(410, "")), wantCode: 409, wantDesc: "job deleted", wantGet: true, wantCall: true},
		{
			name: "cancel 409", req: body(jobID), wantGet: true, wantCall: true,
			cancelJob: cancelFails(apiErr(409, "job already finished")),
			wantCode:  409, wantDesc: "reducto refused the cancel: job already finished",
		},
		{name: "cancel 429", req: body(jobID), cancelJob: cancelFails(apiErr(429, "")), wantCode: 429, wantDesc: "rate limit", wantGet: true, wantCall: true},
		{name: "cancel 502", req: body(jobID), cancelJob: cancelFails(apiErr(502, "")), wantCode: 502, wantDesc: "reducto error (502)", wantGet: true, wantCall: true},
		{name: "cancel unreachable", req: body(jobID), cancelJob: cancelFails(refused()), wantCode: 503, wantDesc: "unreachable", wantGet: true, wantCall: true},
		{
			name: "tracking fails", req: body(jobID), trackErr: errors.New("stream full"),
			wantCode: 503, wantDesc: "cancel requested but tracking failed", wantGet: true, wantCall: true, wantTrack: true,
		},
	}
	s := natstestServer(t)
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			jobs := &reductotest.Jobs{GetJobFunc: tt.getJob, CancelJobFunc: tt.cancelJob}
			tracker := &fakeTracker{err: tt.trackErr}
			var events Events
			if tt.events != nil {
				events = tt.events
			}
			e := startOnServer(t, s, jobs, events, tracker.track, Options{})

			code, desc := replyCode(t, request(t, e.nc, prefix+".cancel", []byte(tt.req)))
			if code != tt.wantCode || !strings.Contains(desc, tt.wantDesc) {
				t.Errorf("reply = %d %q, want %d containing %q", code, desc, tt.wantCode, tt.wantDesc)
			}
			gets, cancels := jobs.Gets(), jobs.Cancels()
			if got := len(gets) > 0; got != tt.wantGet {
				t.Errorf("GetJob called = %v, want %v", got, tt.wantGet)
			}
			if got := len(cancels) > 0; got != tt.wantCall {
				t.Errorf("CancelJob called = %v, want %v", got, tt.wantCall)
			}
			if tt.wantCall && (len(cancels) != 1 || cancels[0].ID != jobID) {
				t.Errorf("CancelJob calls = %+v, want one for %s", cancels, jobID)
			}
			calls := tracker.recorded()
			if got := len(calls) > 0; got != tt.wantTrack {
				t.Errorf("tracker called = %v, want %v", got, tt.wantTrack)
			}
			if tt.wantTrack && (len(calls) != 1 || calls[0] != (trackCall{id: jobID})) {
				t.Errorf("tracker calls = %+v, want one for %s without metadata", calls, jobID)
			}
		})
	}
}

func TestCancelReplyBody(t *testing.T) {
	tracker := &fakeTracker{}
	e := start(t, &reductotest.Jobs{}, nil, tracker.track, Options{})
	msg := request(t, e.nc, prefix+".cancel", []byte(`{"job_id":"`+jobID+`"}`))
	if code, desc := replyCode(t, msg); code != 200 {
		t.Fatalf("reply = %d %q, want 200", code, desc)
	}
	var got CancelReply
	if err := json.Unmarshal(msg.Data, &got); err != nil {
		t.Fatalf("reply body %q: %v", msg.Data, err)
	}
	if want := (CancelReply{JobID: jobID, Cancel: "requested"}); got != want {
		t.Errorf("reply = %+v, want %+v", got, want)
	}
	if want := `{"job_id":"` + jobID + `","cancel":"requested"}`; string(msg.Data) != want {
		t.Errorf("reply body = %s, want %s", msg.Data, want)
	}
}

// TestCancelDescriptionIsClean checks that an error description stays one header line of
// bounded length whatever Reducto's message contains.
func TestCancelDescriptionIsClean(t *testing.T) {
	long := "line one\r\nline two\t" + strings.Repeat("é", 400)
	jobs := &reductotest.Jobs{GetJobFunc: func(context.Context, string) (*reducto.Job, error) { return nil, apiErr(500, long) }}
	e := start(t, jobs, nil, (&fakeTracker{}).track, Options{})
	code, desc := replyCode(t, request(t, e.nc, prefix+".cancel", []byte(`{"job_id":"`+jobID+`"}`)))
	if code != 502 {
		t.Errorf("code = %d, want 502", code)
	}
	if strings.ContainsAny(desc, "\r\n\t") {
		t.Errorf("description %q contains control characters", desc)
	}
	if !strings.HasPrefix(desc, "reducto error (500): line one  line two") {
		t.Errorf("description = %q, want Reducto's message on one line", desc)
	}
	if len(desc) > maxDescription+len("...") || !strings.HasSuffix(desc, "...") {
		t.Errorf("description is %d bytes (%q), want it cut at %d", len(desc), desc[len(desc)-10:], maxDescription)
	}
}
