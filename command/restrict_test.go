package command

import (
	"context"
	"errors"
	"strings"
	"sync"
	"testing"

	"github.com/reducto-bridge/reducto-bridge/event"
	"github.com/reducto-bridge/reducto-bridge/internal/reductotest"
)

// TestCancelTrackedOnly checks BRIDGE_CANCEL_TRACKED_ONLY: a job with neither a track message
// nor an event is refused with a 403 and Reducto hears nothing of it; a tracked job is
// cancelled as usual; when tracking cannot be checked, nothing is sent either.
func TestCancelTrackedOnly(t *testing.T) {
	tests := []struct {
		name       string
		tracked    bool
		trackedErr error
		events     *fakeEvents
		wantCode   int
		wantDesc   string
		wantReduc  bool // GetJob and CancelJob were called
	}{
		{name: "untracked job refused", wantCode: 403, wantDesc: "does not track the job"},
		{name: "tracked job cancelled", tracked: true, wantCode: 200, wantReduc: true},
		{name: "job with an event: 409 as before", events: &fakeEvents{ev: &event.Event{JobID: jobID, Kind: event.Completed}}, wantCode: 409, wantDesc: "already completed"},
		{name: "track queue unreadable", trackedErr: errors.New("stream unavailable"), wantCode: 503, wantDesc: "cannot check"},
		{name: "no track message, events unreadable", events: &fakeEvents{err: errors.New("stream unavailable")}, wantCode: 503, wantDesc: "cannot check"},
		{name: "tracked, events unreadable", tracked: true, events: &fakeEvents{err: errors.New("stream unavailable")}, wantCode: 200, wantReduc: true},
	}
	s := natstestServer(t)
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			jobs := &reductotest.Jobs{}
			tracker := &fakeTracker{}
			var (
				mu    sync.Mutex
				asked []string
			)
			var events Events
			if tt.events != nil {
				events = tt.events
			}
			e := startOnServer(t, s, jobs, events, tracker.track, Options{
				CancelTrackedOnly: true,
				Tracked: func(_ context.Context, id string) (bool, error) {
					mu.Lock()
					defer mu.Unlock()
					asked = append(asked, id)
					return tt.tracked, tt.trackedErr
				},
			})
			code, desc := replyCode(t, request(t, e.nc, prefix+".cancel", []byte(`{"job_id":"`+jobID+`"}`)))
			if code != tt.wantCode || !strings.Contains(desc, tt.wantDesc) {
				t.Errorf("reply = %d %q, want %d containing %q", code, desc, tt.wantCode, tt.wantDesc)
			}
			if got := len(jobs.Gets())+len(jobs.Cancels()) > 0; got != tt.wantReduc {
				t.Errorf("Reducto called = %v (gets %d, cancels %d), want %v", got, len(jobs.Gets()), len(jobs.Cancels()), tt.wantReduc)
			}
			if tt.wantReduc != (len(tracker.recorded()) > 0) {
				t.Errorf("tracker calls = %+v, want some = %v", tracker.recorded(), tt.wantReduc)
			}
			mu.Lock()
			defer mu.Unlock()
			if tt.events == nil || tt.events.ev == nil {
				if len(asked) != 1 || asked[0] != jobID {
					t.Errorf("Tracked asked for %v, want [%s]", asked, jobID)
				}
			}
		})
	}
}

// TestCancelTrackedOnlyNeedsTracked checks that the option cannot be set without its lookup.
func TestCancelTrackedOnlyNeedsTracked(t *testing.T) {
	s := natstestServer(t)
	if _, err := Start(connect(t, s), &reductotest.Jobs{}, nil, (&fakeTracker{}).track, Options{Prefix: prefix, CancelTrackedOnly: true}); err == nil {
		t.Fatal("Start with CancelTrackedOnly and no Tracked succeeded")
	}
}

// TestSubmitRefusesWebhooks checks BRIDGE_SUBMIT_WEBHOOKS=false: a body that sets its own
// webhook, in any place Reducto reads one, is refused with a 403 naming the field and never
// reaches Reducto; a body without one is submitted with the bridge's webhook added.
func TestSubmitRefusesWebhooks(t *testing.T) {
	const public = "https://bridge.example.com"
	tests := []struct {
		name      string
		req       string
		wantField string // empty: accepted
		wantBody  string // accepted: what Reducto receives
	}{
		{name: "v3 direct webhook", req: `{"endpoint":"parse","body":{"input":"x","async":{"webhook":{"mode":"direct","url":"https://evil.example/h"}}}}`, wantField: "body.async.webhook"},
		{name: "v3 svix webhook", req: `{"endpoint":"extract","body":{"input":"x","async":{"webhook":{"mode":"svix","channels":["c"]}}}}`, wantField: "body.async.webhook"},
		{name: "edit legacy webhook", req: `{"endpoint":"edit","body":{"document_url":"u","edit_instructions":"i","webhook":{"mode":"direct","url":"https://evil.example/h"}}}`, wantField: "body.webhook"},
		{name: "edit disabled webhook", req: `{"endpoint":"edit","body":{"document_url":"u","edit_instructions":"i","webhook":{"mode":"disabled"}}}`, wantField: "body.webhook"},
		{name: "legacy top-level webhook on parse", req: `{"endpoint":"parse","body":{"document_url":"u","webhook":{"mode":"direct","url":"https://evil.example/h"}}}`, wantField: "body.webhook"},
		{name: "async webhook on edit", req: `{"endpoint":"edit","body":{"document_url":"u","edit_instructions":"i","async":{"webhook":{"mode":"direct","url":"https://evil.example/h"}}}}`, wantField: "body.async.webhook"},
		{
			name:     "no webhook: the bridge's is added",
			req:      `{"endpoint":"parse","body":{"input":"x","async":{"priority":true}},"metadata":{"k":1}}`,
			wantBody: `{"async":{"metadata":{"k":1},"priority":true,"webhook":{"mode":"direct","url":"https://bridge.example.com/webhooks/reducto"}},"input":"x"}`,
		},
		{
			name:     "null webhook is no webhook",
			req:      `{"endpoint":"parse","body":{"input":"x","async":{"webhook":null}}}`,
			wantBody: `{"async":{"webhook":{"mode":"direct","url":"https://bridge.example.com/webhooks/reducto"}},"input":"x"}`,
		},
	}
	s := natstestServer(t)
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			jobs := &reductotest.Jobs{}
			tracker := &fakeTracker{}
			e := startOnServer(t, s, jobs, nil, tracker.track, Options{PublicURL: public, RefuseWebhooks: true})
			code, desc := replyCode(t, request(t, e.nc, prefix+".submit", []byte(tt.req)))
			submits := jobs.Submits()
			if tt.wantField != "" {
				if code != 403 || !strings.Contains(desc, tt.wantField+" is set") {
					t.Errorf("reply = %d %q, want 403 naming %s", code, desc, tt.wantField)
				}
				if strings.Contains(desc, "evil") {
					t.Errorf("description %q repeats the caller's URL", desc)
				}
				if len(submits) != 0 || len(tracker.recorded()) != 0 {
					t.Errorf("submits %+v, tracks %+v; want none", submits, tracker.recorded())
				}
				return
			}
			if code != 200 {
				t.Fatalf("reply = %d %q, want 200", code, desc)
			}
			if len(submits) != 1 || submits[0].Body != tt.wantBody {
				t.Errorf("submits = %+v, want one with body %s", submits, tt.wantBody)
			}
			if calls := tracker.recorded(); len(calls) != 1 || !calls[0].webhook {
				t.Errorf("tracker calls = %+v, want one expecting the bridge's webhook", calls)
			}
		})
	}
}
