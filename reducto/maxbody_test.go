package reducto

import (
	"context"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"strconv"
	"sync/atomic"
	"testing"
	"time"
)

// countingTransport counts the response body bytes the client reads.
type countingTransport struct {
	rt   http.RoundTripper
	read atomic.Int64
}

func (t *countingTransport) RoundTrip(r *http.Request) (*http.Response, error) {
	resp, err := t.rt.RoundTrip(r)
	if resp != nil {
		resp.Body = &countingBody{ReadCloser: resp.Body, n: &t.read}
	}
	return resp, err
}

type countingBody struct {
	io.ReadCloser
	n *atomic.Int64
}

func (b *countingBody) Read(p []byte) (int, error) {
	n, err := b.ReadCloser.Read(p)
	b.n.Add(int64(n))
	return n, err
}

// hugeBody serves an endless JSON-looking body until the client goes away, counting what it
// managed to write; declared sets a Content-Length of 5 GB, otherwise the body is chunked.
func hugeBody(status int, declared bool, served *atomic.Int64) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		if declared {
			w.Header().Set("Content-Length", strconv.FormatInt(5<<30, 10))
		}
		w.WriteHeader(status)
		chunk := make([]byte, 32<<10)
		for i := range chunk {
			chunk[i] = ' '
		}
		copy(chunk, `{"status":"Completed","result":"`)
		for r.Context().Err() == nil {
			n, err := w.Write(chunk)
			served.Add(int64(n))
			if err != nil {
				return
			}
			if f, ok := w.(http.Flusher); ok && !declared {
				f.Flush()
			}
		}
	}
}

// TestMaxBody: an answer larger than WithMaxBody is refused without being read: at once when
// its Content-Length says so, after limit+1 bytes when it is chunked. The error is
// ErrMalformedResponse (transient), whatever the status.
func TestMaxBody(t *testing.T) {
	const limit = 64 << 10
	tests := []struct {
		name     string
		status   int
		declared bool
		maxRead  int64
	}{
		{"200 with Content-Length 5 GB", 200, true, 0},
		{"200 chunked without end", 200, false, limit + 1},
		{"500 with Content-Length 5 GB", 500, true, 0},
		{"500 chunked without end", 500, false, limit + 1},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var served atomic.Int64
			srv := httptest.NewServer(hugeBody(tt.status, tt.declared, &served))
			defer srv.Close()
			ct := &countingTransport{rt: http.DefaultTransport.(*http.Transport).Clone()}
			c, err := New(srv.URL, testKey, WithHTTPClient(&http.Client{Transport: ct}), WithMaxBody(limit))
			if err != nil {
				t.Fatal(err)
			}
			start := time.Now()
			_, err = c.GetJob(context.Background(), "j")
			elapsed := time.Since(start)
			if tt.status == 200 && !errors.Is(err, ErrMalformedResponse) {
				t.Errorf("GetJob = %v, want ErrMalformedResponse", err)
			}
			if tt.status == 500 {
				var apiErr *APIError
				if !errors.As(err, &apiErr) || apiErr.StatusCode != 500 {
					t.Errorf("GetJob = %v, want a 500 *APIError", err)
				}
			}
			if !IsTransient(err) {
				t.Errorf("GetJob = %v, not transient", err)
			}
			if n := ct.read.Load(); n > tt.maxRead {
				t.Errorf("client read %d body bytes, want at most %d (limit %d)", n, tt.maxRead, limit)
			}
			if elapsed > 2*time.Second {
				t.Errorf("GetJob took %v", elapsed)
			}
			// The server can fill socket buffers before it notices; it must stop far short of
			// the 5 GB it offers.
			srv.Close()
			if n := served.Load(); n > 32<<20 {
				t.Errorf("server wrote %d bytes before the client gave up", n)
			}
		})
	}
}

// TestMaxBodyAllowsLimit: a body of exactly the limit is read.
func TestMaxBodyAllowsLimit(t *testing.T) {
	body := `{"status":"Pending","job_id":"j"}`
	c := newTestClient(t, fixed(200, body), WithMaxBody(int64(len(body))))
	if _, err := c.GetJob(context.Background(), "j"); err != nil {
		t.Fatalf("GetJob = %v", err)
	}
	c = newTestClient(t, fixed(200, body), WithMaxBody(int64(len(body))-1))
	if _, err := c.GetJob(context.Background(), "j"); !errors.Is(err, ErrMalformedResponse) {
		t.Fatalf("GetJob one byte over = %v, want ErrMalformedResponse", err)
	}
}
