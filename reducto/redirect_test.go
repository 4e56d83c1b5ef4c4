package reducto

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"
)

// TestRedirectNotFollowed: a 3xx is an error that names only the Location's host; the client
// never sends the key to the redirect target, with its own http.Client or the caller's, and
// including an https to http downgrade.
func TestRedirectNotFollowed(t *testing.T) {
	var reached, withAuth atomic.Int32
	target := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		reached.Add(1)
		if r.Header.Get("Authorization") != "" {
			withAuth.Add(1)
		}
		w.Header().Set("Content-Type", "application/json")
		w.Write([]byte(`{"status":"Completed","job_id":"j","result":{}}`))
	}))
	defer target.Close()
	location := target.URL + "/elsewhere?token=query-secret-77"
	redirect := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Location", location)
		w.Header().Set("Content-Type", "text/html")
		w.WriteHeader(http.StatusFound)
		w.Write([]byte(`<a href="` + location + `">moved</a>`))
	})
	plain := httptest.NewServer(redirect)
	defer plain.Close()
	tlsSrv := httptest.NewTLSServer(redirect) // https -> http downgrade
	defer tlsSrv.Close()

	tests := []struct {
		name string
		base string
		opts []Option
	}{
		{"default client", plain.URL, nil},
		{"caller's client", plain.URL, []Option{WithHTTPClient(&http.Client{})}},
		{"caller's client that follows redirects", plain.URL, []Option{WithHTTPClient(&http.Client{
			CheckRedirect: func(*http.Request, []*http.Request) error { return nil },
		})}},
		{"https to http", tlsSrv.URL, []Option{WithHTTPClient(tlsSrv.Client())}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			reached.Store(0)
			withAuth.Store(0)
			c, err := New(tt.base, testKey, append(tt.opts, WithRetries(0))...)
			if err != nil {
				t.Fatal(err)
			}
			calls := map[string]func() error{
				"get job":    func() error { _, err := c.GetJob(context.Background(), "j"); return err },
				"cancel job": func() error { return c.CancelJob(context.Background(), "j") },
				"list jobs":  func() error { _, err := c.ListJobs(context.Background(), ListOptions{}); return err },
				"submit": func() error {
					_, err := c.Submit(context.Background(), EndpointParse, []byte(`{"input":"x"}`))
					return err
				},
			}
			for op, call := range calls {
				err := call()
				if err == nil {
					t.Errorf("%s: no error for a 302", op)
					continue
				}
				if !errors.Is(err, ErrRedirect) {
					t.Errorf("%s: %v is not ErrRedirect", op, err)
				}
				var apiErr *APIError
				if !errors.As(err, &apiErr) || apiErr.StatusCode != http.StatusFound {
					t.Errorf("%s: %v is not an *APIError with status 302", op, err)
				}
				if IsTransient(err) || notSubmitted(err) {
					t.Errorf("%s: a redirect is a misconfiguration, not transient", op)
				}
				msg := err.Error()
				host := strings.TrimPrefix(target.URL, "http://")
				if !strings.Contains(msg, host) {
					t.Errorf("%s: %q does not name the Location's host %s", op, msg, host)
				}
				for _, leak := range []string{"query-secret-77", "/elsewhere", testKey} {
					if strings.Contains(msg, leak) {
						t.Errorf("%s: %q shows %q", op, msg, leak)
					}
				}
			}
			if n := reached.Load(); n != 0 {
				t.Errorf("the redirect target was reached %d times (%d with Authorization)", n, withAuth.Load())
			}
		})
	}
}

// TestRedirectWithoutLocation: a 3xx without a usable Location is still a redirect error.
func TestRedirectWithoutLocation(t *testing.T) {
	c := newTestClient(t, fixed(http.StatusMovedPermanently, ""))
	_, err := c.GetJob(context.Background(), "j")
	if !errors.Is(err, ErrRedirect) || IsTransient(err) {
		t.Fatalf("GetJob = %v, want a non-transient ErrRedirect", err)
	}
}

// TestBaseURLCredentialsNeverShown: user information in the base URL (user:password@, or a
// token where a user name goes) appears in no error, log line or description of the client.
func TestBaseURLCredentialsNeverShown(t *testing.T) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := l.Addr().String()
	l.Close() // connections are refused: the error carries the request URL
	for _, base := range []string{"http://usr-7a1c:pw-secret-93f0@" + addr, "http://tok-secret-24be@" + addr} {
		var logs bytes.Buffer
		c, err := New(base, testKey, WithRetries(0), WithLogger(slog.New(slog.NewTextHandler(&logs, &slog.HandlerOptions{Level: slog.LevelDebug}))))
		if err != nil {
			t.Fatal(err)
		}
		_, getErr := c.GetJob(context.Background(), "j")
		cancelErr := c.CancelJob(context.Background(), "j")
		_, submitErr := c.Submit(context.Background(), EndpointParse, []byte(`{}`))
		if getErr == nil || cancelErr == nil || submitErr == nil {
			t.Fatalf("no error from a closed port: %v %v %v", getErr, cancelErr, submitErr)
		}
		out := strings.Join([]string{getErr.Error(), cancelErr.Error(), submitErr.Error(), logs.String(),
			c.String(), fmt.Sprintf("%v %+v %#v", c, c, c)}, "\n")
		for _, secret := range []string{"usr-7a1c", "pw-secret-93f0", "tok-secret-24be"} {
			if strings.Contains(out, secret) {
				t.Errorf("%s: output shows %q:\n%s", base, secret, out)
			}
		}
		if !strings.Contains(out, addr) {
			t.Errorf("output does not name the host %s:\n%s", addr, out)
		}
	}
}
