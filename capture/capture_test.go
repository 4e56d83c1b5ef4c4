package capture_test

import (
	"bytes"
	"context"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"sync"
	"testing"

	"github.com/reducto-bridge/reducto-bridge/capture"
	"github.com/reducto-bridge/reducto-bridge/event"
)

// memStore is a Store in memory: what was put, under which name; a failed put stores nothing.
type memStore struct {
	mu   sync.Mutex
	objs map[string][]byte
}

func (m *memStore) PutResult(_ context.Context, name string, r io.Reader) (*event.ResultRef, error) {
	b, err := io.ReadAll(r)
	if err != nil {
		return nil, err
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.objs == nil {
		m.objs = map[string][]byte{}
	}
	m.objs[name] = b
	return &event.ResultRef{Bucket: "B", Name: name, Size: uint64(len(b)), Digest: "SHA-256=x"}, nil
}

func (m *memStore) get(name string) ([]byte, bool) {
	m.mu.Lock()
	defer m.mu.Unlock()
	b, ok := m.objs[name]
	return b, ok
}

func newCapturer(t *testing.T, store capture.Store, o capture.Options) *capture.Capturer {
	t.Helper()
	c, err := capture.New(store, o)
	if err != nil {
		t.Fatal(err)
	}
	return c
}

func TestCapture(t *testing.T) {
	body := bytes.Repeat([]byte(`{"type":"full","chunks":[]}`), 1000)
	var auth sync.Map // path -> Authorization seen
	mux := http.NewServeMux()
	mux.HandleFunc("/ok", func(w http.ResponseWriter, r *http.Request) {
		auth.Store(r.URL.Path, r.Header.Get("Authorization"))
		w.Write(body)
	})
	mux.HandleFunc("/chunked", func(w http.ResponseWriter, r *http.Request) {
		w.Write(body[:len(body)/2])
		w.(http.Flusher).Flush() // no Content-Length: only the streamed bytes tell the size
		w.Write(body[len(body)/2:])
	})
	mux.HandleFunc("/expired", func(w http.ResponseWriter, r *http.Request) { http.Error(w, "AccessDenied", http.StatusForbidden) })
	mux.HandleFunc("/gone", func(w http.ResponseWriter, r *http.Request) { http.Error(w, "NoSuchKey", http.StatusNotFound) })
	mux.HandleFunc("/flaky", func(w http.ResponseWriter, r *http.Request) { http.Error(w, "busy", http.StatusServiceUnavailable) })
	mux.HandleFunc("/to-ok", func(w http.ResponseWriter, r *http.Request) { http.Redirect(w, r, "/ok", http.StatusFound) })
	mux.HandleFunc("/to-remote-http", func(w http.ResponseWriter, r *http.Request) {
		http.Redirect(w, r, "http://results.example.com/r?X-Amz-Signature=s3cr3t", http.StatusFound)
	})
	ts := httptest.NewServer(mux)
	t.Cleanup(ts.Close)

	tests := []struct {
		name       string
		url        string
		max        int64
		wantErr    error
		noLoopback bool
	}{
		{"stored byte for byte", ts.URL + "/ok?X-Amz-Signature=s3cr3t", 0, nil, false},
		{"a redirect on loopback is followed", ts.URL + "/to-ok", 0, nil, false},
		{"exactly at the limit", ts.URL + "/ok", int64(len(body)), nil, false},
		{"over the limit, declared", ts.URL + "/ok", int64(len(body)) - 1, capture.ErrTooLarge, false},
		{"over the limit, streamed", ts.URL + "/chunked", int64(len(body)) - 1, capture.ErrTooLarge, false},
		{"403: the link expired", ts.URL + "/expired?X-Amz-Signature=s3cr3t", 0, capture.ErrRejected, false},
		{"404: the object is gone", ts.URL + "/gone", 0, capture.ErrRejected, false},
		{"503: retry", ts.URL + "/flaky", 0, capture.ErrDownload, false},
		{"refused connection: retry", "http://127.0.0.1:1/r", 0, capture.ErrDownload, false},
		{"http to a remote host: never requested", "http://results.example.com/r?X-Amz-Signature=s3cr3t", 0, capture.ErrInsecure, false},
		{"redirect to remote http: not followed", ts.URL + "/to-remote-http", 0, capture.ErrInsecure, false},
		{"not a url", "::", 0, capture.ErrInsecure, false},
		{"http on loopback without AllowLoopback: never requested", ts.URL + "/ok", 0, capture.ErrInsecure, true},
	}
	for i, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			store := &memStore{}
			c := newCapturer(t, store, capture.Options{MaxBytes: tt.max, AllowLoopback: !tt.noLoopback})
			name := "job" + strconv.Itoa(i)
			ref, err := c.Capture(t.Context(), name, tt.url)
			if !errors.Is(err, tt.wantErr) {
				t.Fatalf("Capture = %+v, %v; want error %v", ref, err, tt.wantErr)
			}
			if err != nil {
				if strings.Contains(err.Error(), "s3cr3t") {
					t.Errorf("error quotes the presigned URL's query: %v", err)
				}
				if b, ok := store.get(name); ok && len(b) > 0 {
					t.Errorf("a failed capture stored %d bytes", len(b))
				}
				if capture.Permanent(err) != (errors.Is(err, capture.ErrTooLarge) || errors.Is(err, capture.ErrInsecure)) {
					t.Errorf("Permanent(%v) = %v", err, capture.Permanent(err))
				}
				return
			}
			got, _ := store.get(name)
			if !bytes.Equal(got, body) || ref.Size != uint64(len(body)) || ref.Name != name {
				t.Errorf("stored %d bytes (ref %+v), want the %d served, byte for byte", len(got), ref, len(body))
			}
		})
	}
	auth.Range(func(k, v any) bool {
		if v != "" {
			t.Errorf("%s got Authorization %q; a capture sends none", k, v)
		}
		return true
	})
}

// TestCaptureInsecureAllowed: BRIDGE_ALLOW_INSECURE_REDUCTO lets a remote http:// link through
// (the request is made, and fails here only because the host does not resolve).
func TestCaptureInsecureAllowed(t *testing.T) {
	c := newCapturer(t, &memStore{}, capture.Options{AllowInsecure: true, Transport: refuse{}})
	_, err := c.Capture(t.Context(), "j", "http://results.example.com/r")
	if !errors.Is(err, capture.ErrDownload) || !strings.Contains(err.Error(), "refused by test transport") {
		t.Fatalf("Capture = %v, want the request made (ErrDownload from the transport)", err)
	}
}

type refuse struct{}

func (refuse) RoundTrip(*http.Request) (*http.Response, error) {
	return nil, errors.New("refused by test transport")
}
