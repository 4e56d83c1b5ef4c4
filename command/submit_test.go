package command

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"testing"

	"github.com/reducto-bridge/reducto-bridge/internal/reductotest"
	"github.com/reducto-bridge/reducto-bridge/reducto"
)

// TestSubmitBody checks the body Reducto receives: the bridge's webhook and the metadata are
// added where the endpoint's shape wants them, and everything the caller set is kept.
func TestSubmitBody(t *testing.T) {
	const (
		public = "https://bridge.example.com"
		hook   = `{"mode":"direct","url":"https://bridge.example.com/webhooks/reducto"}`
	)
	tests := []struct {
		name     string
		opts     Options
		req      string
		wantEP   reducto.Endpoint
		wantBody string // exactly what Reducto must receive
		wantMeta string // metadata handed to the tracker
	}{
		{
			name:     "direct webhook with token and metadata",
			opts:     Options{PublicURL: public, WebhookToken: "t o&k/=?"},
			req:      `{"endpoint":"parse","body":{"input":"https://x/a.pdf?a=1&b=<2>","async":{"priority":true}},"metadata":{"tenant":"t1","n":[1, 2]}}`,
			wantEP:   reducto.EndpointParse,
			wantBody: `{"async":{"metadata":{"tenant":"t1","n":[1,2]},"priority":true,"webhook":{"mode":"direct","url":"https://bridge.example.com/webhooks/reducto?token=t+o%26k%2F%3D%3F"}},"input":"https://x/a.pdf?a=1&b=<2>"}`,
			wantMeta: `{"tenant":"t1","n":[1, 2]}`,
		},
		{
			name:     "direct webhook without token, no metadata",
			opts:     Options{PublicURL: public},
			req:      `{"endpoint":"extract","body":{"input":"jobid://abc","instructions":{"schema":{}}}}`,
			wantEP:   reducto.EndpointExtract,
			wantBody: `{"async":{"webhook":` + hook + `},"input":"jobid://abc","instructions":{"schema":{}}}`,
		},
		{
			name:     "public URL with a path",
			opts:     Options{PublicURL: "https://example.com/bridge/"},
			req:      `{"endpoint":"split","body":{"input":"x"}}`,
			wantEP:   reducto.EndpointSplit,
			wantBody: `{"async":{"webhook":{"mode":"direct","url":"https://example.com/bridge/webhooks/reducto"}},"input":"x"}`,
		},
		{
			name:     "svix",
			opts:     Options{PublicURL: public, WebhookToken: "ignored", WebhookSvix: true},
			req:      `{"endpoint":"pipeline","body":{"input":"x","pipeline_id":"p"},"metadata":"m"}`,
			wantEP:   reducto.EndpointPipeline,
			wantBody: `{"async":{"metadata":"m","webhook":{"mode":"svix"}},"input":"x","pipeline_id":"p"}`,
			wantMeta: `"m"`,
		},
		{
			name:     "caller's webhook and metadata kept",
			opts:     Options{PublicURL: public},
			req:      `{"endpoint":"parse","body":{"input":"x","async":{"webhook":{"mode":"svix","channels":["c"]},"metadata":{"mine":1}}},"metadata":{"theirs":2}}`,
			wantEP:   reducto.EndpointParse,
			wantBody: `{"input":"x","async":{"webhook":{"mode":"svix","channels":["c"]},"metadata":{"mine":1}}}`,
			wantMeta: `{"theirs":2}`,
		},
		{
			name:     "caller's null webhook replaced",
			opts:     Options{PublicURL: public},
			req:      `{"endpoint":"parse","body":{"input":"x","async":{"webhook":null}}}`,
			wantEP:   reducto.EndpointParse,
			wantBody: `{"async":{"webhook":` + hook + `},"input":"x"}`,
		},
		{
			name:     "no public URL: metadata only",
			req:      `{"endpoint":"parse","body":{"input":"x","async":{"priority":false}},"metadata":[1]}`,
			wantEP:   reducto.EndpointParse,
			wantBody: `{"async":{"metadata":[1],"priority":false},"input":"x"}`,
			wantMeta: `[1]`,
		},
		{
			name:     "nothing to add: body byte-for-byte",
			req:      `{"endpoint":"parse","body":{ "input" : "a<b>&c",  "z":1, "a":{"b" : 2} },"metadata":null}`,
			wantEP:   reducto.EndpointParse,
			wantBody: `{ "input" : "a<b>&c",  "z":1, "a":{"b" : 2} }`,
		},
		{
			name:     "edit: legacy webhook with metadata",
			opts:     Options{PublicURL: public, WebhookToken: "tok"},
			req:      `{"endpoint":"edit","body":{"document_url":"https://x/a.docx","edit_instructions":"fix"},"metadata":{"k":"v"}}`,
			wantEP:   reducto.EndpointEdit,
			wantBody: `{"document_url":"https://x/a.docx","edit_instructions":"fix","webhook":{"metadata":{"k":"v"},"mode":"direct","url":"https://bridge.example.com/webhooks/reducto?token=tok"}}`,
			wantMeta: `{"k":"v"}`,
		},
		{
			name:     "edit: svix",
			opts:     Options{PublicURL: public, WebhookSvix: true},
			req:      `{"endpoint":"edit","body":{"document_url":"u","edit_instructions":"i"},"metadata":1}`,
			wantEP:   reducto.EndpointEdit,
			wantBody: `{"document_url":"u","edit_instructions":"i","webhook":{"metadata":1,"mode":"svix"}}`,
			wantMeta: `1`,
		},
		{
			name:     "edit: caller's webhook kept, metadata added",
			opts:     Options{PublicURL: public},
			req:      `{"endpoint":"edit","body":{"document_url":"u","edit_instructions":"i","webhook":{"mode":"disabled"}},"metadata":1}`,
			wantEP:   reducto.EndpointEdit,
			wantBody: `{"document_url":"u","edit_instructions":"i","webhook":{"metadata":1,"mode":"disabled"}}`,
			wantMeta: `1`,
		},
		{
			name:     "edit: no public URL, nothing added",
			req:      `{"endpoint":"edit","body":{"document_url":"u","edit_instructions":"i"},"metadata":1}`,
			wantEP:   reducto.EndpointEdit,
			wantBody: `{"document_url":"u","edit_instructions":"i"}`,
			wantMeta: `1`,
		},
		{
			name:     "no async key in edit",
			opts:     Options{PublicURL: public},
			req:      `{"endpoint":"edit","body":{"document_url":"u","edit_instructions":"i","async":{"x":1}}}`,
			wantEP:   reducto.EndpointEdit,
			wantBody: `{"async":{"x":1},"document_url":"u","edit_instructions":"i","webhook":` + hook + `}`,
		},
	}
	s := natstestServer(t)
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			jobs := &reductotest.Jobs{}
			tracker := &fakeTracker{}
			e := startOnServer(t, s, jobs, nil, tracker.track, tt.opts)

			msg := request(t, e.nc, prefix+".submit", []byte(tt.req))
			if code, desc := replyCode(t, msg); code != 200 {
				t.Fatalf("reply = %d %q, want 200", code, desc)
			}
			if want := `{"job_id":"job-1"}`; string(msg.Data) != want {
				t.Errorf("reply body = %s, want %s", msg.Data, want)
			}
			submits := jobs.Submits()
			if len(submits) != 1 {
				t.Fatalf("Submit calls = %d, want 1", len(submits))
			}
			if submits[0].Endpoint != tt.wantEP {
				t.Errorf("endpoint = %q, want %q", submits[0].Endpoint, tt.wantEP)
			}
			if submits[0].Body != tt.wantBody {
				t.Errorf("body sent to Reducto:\n got %s\nwant %s", submits[0].Body, tt.wantBody)
			}
			calls := tracker.recorded()
			// The job expects a webhook exactly when the bridge added its own.
			wantHook := tt.opts.PublicURL != "" &&
				(!strings.Contains(tt.req, `"webhook"`) || strings.Contains(tt.req, `"webhook":null`))
			if want := []trackCall{{"job-1", tt.wantMeta, wantHook}}; len(calls) != 1 || calls[0] != want[0] {
				t.Errorf("tracker calls = %+v, want %+v", calls, want)
			}
		})
	}
}

func TestSubmitErrors(t *testing.T) {
	submitFails := func(err error) func(context.Context, reducto.Endpoint, json.RawMessage) (string, error) {
		return func(context.Context, reducto.Endpoint, json.RawMessage) (string, error) { return "", err }
	}
	const good = `{"endpoint":"parse","body":{"input":"x"}}`
	tests := []struct {
		name       string
		req        string
		submit     func(context.Context, reducto.Endpoint, json.RawMessage) (string, error)
		trackErr   error
		wantCode   int
		wantDesc   string
		wantSubmit bool
	}{
		{name: "not json", req: `{"endpoint":`, wantCode: 400, wantDesc: "not valid json"},
		{name: "not an object", req: `[]`, wantCode: 400, wantDesc: "not a json object"},
		{name: "missing endpoint", req: `{"body":{}}`, wantCode: 400, wantDesc: "missing endpoint"},
		{name: "endpoint not a string", req: `{"endpoint":1,"body":{}}`, wantCode: 400, wantDesc: "endpoint is not a string"},
		{name: "unknown endpoint", req: `{"endpoint":"classify-secret-thing","body":{}}`, wantCode: 400, wantDesc: "unknown endpoint"},
		{name: "endpoint with suffix", req: `{"endpoint":"parse_async","body":{}}`, wantCode: 400, wantDesc: "unknown endpoint"},
		{name: "missing body", req: `{"endpoint":"parse"}`, wantCode: 400, wantDesc: "missing body"},
		{name: "null body", req: `{"endpoint":"parse","body":null}`, wantCode: 400, wantDesc: "missing body"},
		{name: "body not an object", req: `{"endpoint":"parse","body":["x"]}`, wantCode: 400, wantDesc: "body is not a json object"},
		{name: "body string", req: `{"endpoint":"parse","body":"{}"}`, wantCode: 400, wantDesc: "body is not a json object"},
		{name: "async not an object", req: `{"endpoint":"parse","body":{"async":true},"metadata":1}`, wantCode: 400, wantDesc: "body.async is not a json object"},
		{name: "edit webhook not an object", req: `{"endpoint":"edit","body":{"webhook":"direct"},"metadata":1}`, wantCode: 400, wantDesc: "body.webhook is not a json object"},
		{name: "invalid UTF-8 in the body", req: "{\"endpoint\":\"parse\",\"body\":{\"input\":\"\xff\"}}", wantCode: 400, wantDesc: "not valid UTF-8"},
		{name: "invalid UTF-8 in the metadata", req: "{\"endpoint\":\"parse\",\"body\":{},\"metadata\":\"\xc3\"}", wantCode: 400, wantDesc: "not valid UTF-8"},
		{name: "reducto 422", req: good, submit: submitFails(apiErr(422, "input: Field required")), wantCode: 422, wantDesc: "reducto rejected the request (422): input: Field required", wantSubmit: true},
		{name: "reducto 400", req: good, submit: submitFails(apiErr(400, "bad input")), wantCode: 422, wantDesc: "reducto rejected the request (400): bad input", wantSubmit: true},
		{name: "reducto 413", req: good, submit: submitFails(apiErr(413, "")), wantCode: 422, wantDesc: "(413)", wantSubmit: true},
		{name: "rate limited", req: good, submit: submitFails(apiErr(429, "[CODE 1000] rate limit exceeded")), wantCode: 429, wantDesc: "reducto rate limit", wantSubmit: true},
		{name: "unauthorized", req: good, submit: submitFails(apiErr(401, "")), wantCode: 502, wantDesc: "API key", wantSubmit: true},
		{name: "forbidden", req: good, submit: submitFails(apiErr(403, "")), wantCode: 502, wantDesc: "API key", wantSubmit: true},
		{name: "reducto 500", req: good, submit: submitFails(apiErr(500, "boom")), wantCode: 502, wantDesc: "reducto error (500): boom", wantSubmit: true},
		{name: "reducto 504", req: good, submit: submitFails(apiErr(504, "")), wantCode: 502, wantDesc: "reducto error (504)", wantSubmit: true},
		{
			name: "malformed", req: good, wantSubmit: true,
			submit:   submitFails(fmt.Errorf("submit parse: %w: no job_id in response", reducto.ErrMalformedResponse)),
			wantCode: 502, wantDesc: "malformed",
		},
		{name: "unreachable", req: good, submit: submitFails(refused()), wantCode: 503, wantDesc: "reducto unreachable: connection refused", wantSubmit: true},
		{
			name: "tracking fails", req: good, trackErr: errors.New("no stream"), wantSubmit: true,
			wantCode: 503, wantDesc: "submitted job job-1 but tracking failed",
		},
	}
	s := natstestServer(t)
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			jobs := &reductotest.Jobs{SubmitFunc: tt.submit}
			tracker := &fakeTracker{err: tt.trackErr}
			e := startOnServer(t, s, jobs, nil, tracker.track, Options{PublicURL: "https://b.example"})

			code, desc := replyCode(t, request(t, e.nc, prefix+".submit", []byte(tt.req)))
			if code != tt.wantCode || !strings.Contains(desc, tt.wantDesc) {
				t.Errorf("reply = %d %q, want %d containing %q", code, desc, tt.wantCode, tt.wantDesc)
			}
			if strings.Contains(desc, "secret") {
				t.Errorf("description %q repeats the request", desc)
			}
			submits := jobs.Submits()
			if got := len(submits) > 0; got != tt.wantSubmit {
				t.Errorf("Submit called = %v, want %v", got, tt.wantSubmit)
			}
			wantTrack := tt.wantCode == 200 || tt.trackErr != nil
			if got := len(tracker.recorded()) > 0; got != wantTrack {
				t.Errorf("tracker called = %v, want %v", got, wantTrack)
			}
		})
	}
}

func TestStartOptions(t *testing.T) {
	s := natstestServer(t)
	nc := connect(t, s)
	track := (&fakeTracker{}).track
	tests := []struct {
		name string
		o    Options
	}{
		{"relative public URL", Options{PublicURL: "bridge.example.com/x"}},
		{"ftp public URL", Options{PublicURL: "ftp://bridge.example.com"}},
		{"bad prefix", Options{Prefix: "a.*"}},
		{"bad version", Options{Version: "v1"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if svc, err := Start(nc, &reductotest.Jobs{}, nil, track, tt.o); err == nil {
				_ = svc.Stop()
				t.Errorf("Start(%+v) error = nil, want an error", tt.o)
			}
		})
	}
	if _, err := Start(nc, nil, nil, track, Options{}); err == nil {
		t.Error("Start without jobs: error = nil, want an error")
	}
	if _, err := Start(nc, &reductotest.Jobs{}, nil, nil, Options{}); err == nil {
		t.Error("Start without tracker: error = nil, want an error")
	}
}
