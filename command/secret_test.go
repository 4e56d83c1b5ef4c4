package command

import (
	"context"
	"encoding/json"
	"log/slog"
	"net/url"
	"strings"
	"testing"

	"github.com/nats-io/nats.go/micro"

	"github.com/reducto-bridge/reducto-bridge/internal/logtest"
	"github.com/reducto-bridge/reducto-bridge/internal/reductotest"
	"github.com/reducto-bridge/reducto-bridge/reducto"
)

// TestSecretsNeverInRepliesLogsOrStats: a Reducto error whose text echoes the submitted body
// (the direct webhook's URL with ?token=, the metadata's webhook_token) or another configured
// secret reaches the caller's error description, the log and $SRV.STATS with the secrets
// redacted.
func TestSecretsNeverInRepliesLogsOrStats(t *testing.T) {
	const (
		token  = "s3cret/t+k" // query-escaped in the URL: s3cret%2Ft%2Bk
		apiKey = "rk-live-0123456789"
	)
	leaks := func(s string) bool {
		return strings.Contains(s, "s3cret") || strings.Contains(s, url.QueryEscape(token)) || strings.Contains(s, apiKey)
	}
	jobs := &reductotest.Jobs{SubmitFunc: func(_ context.Context, _ reducto.Endpoint, body json.RawMessage) (string, error) {
		// Reducto's validation error quotes the request: here, the whole body and the key.
		return "", &reducto.APIError{Op: "submit parse", StatusCode: 422,
			Message: "invalid request " + string(body) + " (key " + apiKey + ")"}
	}}
	var logs logtest.Buffer
	e := start(t, jobs, nil, (&fakeTracker{}).track, Options{
		PublicURL:    "https://bridge.example.com",
		WebhookToken: token,
		Secrets:      []string{apiKey, ""},
		Logger:       slog.New(slog.NewTextHandler(&logs, &slog.HandlerOptions{Level: slog.LevelDebug})),
	})

	req := `{"endpoint":"parse","body":{"input":"x"},"metadata":{"tenant":"a","webhook_token":"` + token + `"}}`
	code, desc := replyCode(t, request(t, e.nc, prefix+".submit", []byte(req)))
	if code != 422 || !strings.HasPrefix(desc, "reducto rejected the request (422): invalid request") {
		t.Errorf("reply = %d %q, want 422 with Reducto's message", code, desc)
	}
	if leaks(desc) || !strings.Contains(desc, "[redacted]") {
		t.Errorf("description %q: the secrets are not redacted", desc)
	}
	// Whatever the submitted body, Reducto got the token (it needs it), so the test is real.
	if s := jobs.Submits(); len(s) != 1 || !strings.Contains(s[0].Body, url.QueryEscape(token)) {
		t.Fatalf("submits = %+v, want one carrying the webhook URL's token", s)
	}

	msg := request(t, e.nc, "$SRV.STATS."+ServiceName, nil)
	var stats micro.Stats
	if err := json.Unmarshal(msg.Data, &stats); err != nil {
		t.Fatalf("stats reply %q: %v", msg.Data, err)
	}
	var lastError string
	for _, ep := range stats.Endpoints {
		if ep.Name == EndpointSubmit {
			lastError = ep.LastError
		}
	}
	if !strings.HasPrefix(lastError, "422:") || leaks(lastError) || leaks(string(msg.Data)) {
		t.Errorf("$SRV.STATS last error %q (stats %s): want 422 with the secrets redacted", lastError, msg.Data)
	}
	if got := logs.String(); !strings.Contains(got, "code=422") || leaks(got) {
		t.Errorf("logs:\n%s\nwant the 422 logged with the secrets redacted", got)
	}
}

// TestSubmitTracksWithoutToken: the metadata goes to Reducto as the caller gave it (a
// webhook_token there authenticates the caller's own direct webhook), but the job is tracked
// without it, so it reaches neither the track stream nor the job's events.
func TestSubmitTracksWithoutToken(t *testing.T) {
	jobs := &reductotest.Jobs{}
	tracker := &fakeTracker{}
	e := start(t, jobs, nil, tracker.track, Options{})
	req := `{"endpoint":"parse","body":{"input":"x"},"metadata":{"tenant":"a","webhook_token":"tok"}}`
	if code, desc := replyCode(t, request(t, e.nc, prefix+".submit", []byte(req))); code != 200 {
		t.Fatalf("reply = %d %q, want 200", code, desc)
	}
	if s := jobs.Submits(); len(s) != 1 || !strings.Contains(s[0].Body, `"webhook_token":"tok"`) {
		t.Errorf("submits = %+v, want the caller's metadata as given", s)
	}
	if calls := tracker.recorded(); len(calls) != 1 || calls[0].metadata != `{"tenant":"a"}` {
		t.Errorf("track calls = %+v, want one with metadata {\"tenant\":\"a\"}", calls)
	}
}
