package reducto

import (
	"context"
	"crypto/x509"
	"errors"
	"fmt"
	"io"
	"syscall"
	"testing"
)

// TestIsTransientByStatus pins the classification of every HTTP answer the bridge can get, through
// the client as a real answer would go, together with the sentinels each one matches.
func TestIsTransientByStatus(t *testing.T) {
	const (
		jsonBody = `{"detail":"x"}`
		htmlBody = `<!DOCTYPE html><html><body>error</body></html>`
	)
	tests := []struct {
		status    int
		body      string
		transient bool
		sentinels []error // exactly the sentinels the error matches
	}{
		{400, jsonBody, false, nil},
		{401, jsonBody, false, []error{ErrUnauthorized}},
		{401, htmlBody, false, []error{ErrUnauthorized}},
		{401, ``, false, []error{ErrUnauthorized}},
		{403, jsonBody, false, []error{ErrUnauthorized}},
		// A missing key gets an HTML page (Reducto's docs): unauthorized only.
		{403, htmlBody, false, []error{ErrUnauthorized}},
		{403, ``, false, []error{ErrUnauthorized}},
		{404, jsonBody, false, []error{ErrNotFound}},
		{404, ``, false, []error{ErrNotFound}},
		// An HTML 404 is a proxy's, not Reducto's: malformed, so transient.
		{404, htmlBody, true, []error{ErrNotFound, ErrMalformedResponse}},
		{400, htmlBody, true, []error{ErrMalformedResponse}},
		{408, jsonBody, true, nil},
		{409, jsonBody, false, []error{ErrGone}},
		{410, jsonBody, false, []error{ErrGone}},
		{422, jsonBody, false, nil},
		{442, jsonBody, false, nil},
		{429, `{"message":"[CODE 1000] x"}`, true, []error{ErrRateLimited}},
		{429, `{"message":"[CODE 2000] x"}`, true, []error{ErrRateLimited}},
		{429, ``, true, []error{ErrRateLimited}},
		{429, htmlBody, true, []error{ErrRateLimited, ErrMalformedResponse}},
		{500, `{"error":{"message":"content extraction error","type":"internal","code":500}}`, true, nil},
		{500, ``, true, nil},
		{500, htmlBody, true, []error{ErrMalformedResponse}},
		{501, jsonBody, true, nil},
		{502, jsonBody, true, nil},
		{502, htmlBody, true, []error{ErrMalformedResponse}},
		{503, jsonBody, true, nil},
		{504, ``, true, nil},
		{599, jsonBody, true, nil},
	}
	all := []error{ErrNotFound, ErrGone, ErrUnauthorized, ErrRateLimited, ErrMalformedResponse}
	for _, tt := range tests {
		kind := "json"
		switch tt.body {
		case htmlBody:
			kind = "html"
		case ``:
			kind = "empty"
		}
		t.Run(fmt.Sprintf("%d %s", tt.status, kind), func(t *testing.T) {
			hdr := []string{}
			if tt.body == htmlBody {
				hdr = []string{"Content-Type", "text/html"}
			}
			c := newTestClient(t, fixed(tt.status, tt.body, hdr...))
			_, err := c.GetJob(t.Context(), "j")
			var apiErr *APIError
			if !errors.As(err, &apiErr) || apiErr.StatusCode != tt.status {
				t.Fatalf("err = %v, want an *APIError with status %d", err, tt.status)
			}
			if got := IsTransient(err); got != tt.transient {
				t.Errorf("IsTransient = %v, want %v", got, tt.transient)
			}
			for _, s := range all {
				want := false
				for _, w := range tt.sentinels {
					want = want || w == s
				}
				if got := errors.Is(err, s); got != want {
					t.Errorf("errors.Is(%v) = %v, want %v", s, got, want)
				}
			}
		})
	}
}

func TestIsTransientWithoutAnswer(t *testing.T) {
	tests := []struct {
		name      string
		err       error
		transient bool
	}{
		{"nil", nil, false},
		{"connection refused", fmt.Errorf("get job: %w", &dialError{syscall.ECONNREFUSED}), true},
		{"connection reset", fmt.Errorf("get job: %w", syscall.ECONNRESET), true},
		{"per-request timeout", fmt.Errorf("get job: %w", context.DeadlineExceeded), true},
		{"truncated body", fmt.Errorf("get job: read response: %w", io.ErrUnexpectedEOF), true},
		{"malformed 200 body", fmt.Errorf("get job: %w: job body has no status", ErrMalformedResponse), true},
		{"caller cancelled", fmt.Errorf("get job: %w", context.Canceled), false},
		{"unknown certificate authority", fmt.Errorf("get job: %w", &x509.UnknownAuthorityError{}), false},
		{"invalid argument", fmt.Errorf("get job: %w: empty job id", errInvalidArgument), false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := IsTransient(tt.err); got != tt.transient {
				t.Errorf("IsTransient(%v) = %v, want %v", tt.err, got, tt.transient)
			}
		})
	}
}

// TestNotSubmittedIgnoresIsTransient: Submit has no idempotency key, so it retries only what
// certainly created no job, and the 5xx rule of IsTransient must not leak into it.
func TestNotSubmittedIgnoresIsTransient(t *testing.T) {
	for status, want := range map[int]bool{
		400: false, 401: false, 403: false, 408: false, 422: false,
		429: true, 500: false, 501: false, 502: false, 503: true, 504: false, 599: false,
	} {
		err := &APIError{Op: "submit parse", StatusCode: status}
		if got := notSubmitted(err); got != want {
			t.Errorf("notSubmitted(%d) = %v, want %v", status, got, want)
		}
	}
	if notSubmitted(fmt.Errorf("submit parse: %w", context.DeadlineExceeded)) {
		t.Error("a timeout may have created a job")
	}
	if !notSubmitted(fmt.Errorf("submit parse: %w", &dialError{syscall.ECONNREFUSED})) {
		t.Error("a refused connection created nothing")
	}
}
