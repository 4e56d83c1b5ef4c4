package reductosim

import (
	"context"
	"encoding/json"
	"errors"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"
)

func TestRateLimits(t *testing.T) {
	tests := []struct {
		name           string
		opts           Options
		path           string
		wantBody       string
		wantRetryAfter string
	}{
		{"job limit", Options{JobRateLimit: 0.001}, "/job/{id}",
			`{"message": "[CODE 2000] rate limit exceeded, please use webhooks instead of polling"}`, ""},
		{"job limit with retry-after", Options{JobRateLimit: 0.001, RetryAfter: 1500 * time.Millisecond}, "/job/{id}",
			`{"message": "[CODE 2000] rate limit exceeded, please use webhooks instead of polling"}`, "2"},
		{"global limit", Options{GlobalRateLimit: 0.001}, "/jobs",
			`{"message": "[CODE 1000] rate limit exceeded, retry with exponential backoff"}`, ""},
		{"global limit with retry-after", Options{GlobalRateLimit: 0.001, RetryAfter: 3 * time.Second}, "/version",
			`{"message": "[CODE 1000] rate limit exceeded, retry with exponential backoff"}`, "3"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f := newFixture(t, tt.opts)
			id := f.sim.Create(JobSpec{})
			path := strings.Replace(tt.path, "{id}", id, 1)
			// With a rate far below one per second, the bucket holds one token: the first
			// request passes, the second is limited.
			if r := f.call(t, "GET", path, ""); r.code != 200 {
				t.Fatalf("first request: got %d %s, want 200", r.code, r.body)
			}
			r := f.call(t, "GET", path, "")
			if r.code != 429 || string(r.body) != tt.wantBody {
				t.Fatalf("got %d %s, want 429 %s", r.code, r.body, tt.wantBody)
			}
			if got := r.header.Get("Retry-After"); got != tt.wantRetryAfter {
				t.Errorf("got Retry-After %q, want %q", got, tt.wantRetryAfter)
			}
		})
	}
	t.Run("job limit leaves other endpoints alone", func(t *testing.T) {
		f := newFixture(t, Options{JobRateLimit: 0.001})
		for range 3 {
			if r := f.call(t, "GET", "/jobs", ""); r.code != 200 {
				t.Fatalf("got %d, want 200", r.code)
			}
		}
	})
	t.Run("burst", func(t *testing.T) {
		f := newFixture(t, Options{JobRateLimit: 0.001, RateBurst: 3})
		id := f.sim.Create(JobSpec{})
		var codes []int
		for range 4 {
			codes = append(codes, f.call(t, "GET", "/job/"+id, "").code)
		}
		if codes[0] != 200 || codes[2] != 200 || codes[3] != 429 {
			t.Errorf("got %v, want three 200s then 429", codes)
		}
	})
}

func TestFaults(t *testing.T) {
	tests := []struct {
		name     string
		faults   Faults
		wantCode int
		wantBody string
	}{
		{"500", Faults{Err500: 1}, 500, body500},
		{"502", Faults{Err502: 1}, 502, body502},
		{"503", Faults{Err503: 1}, 503, body503},
		{"504", Faults{Err504: 1}, 504, body504},
		{"shed 429", Faults{Shed429: 1}, 429, `{"message":"Too Many Requests"}`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f := newFixture(t, Options{Faults: tt.faults})
			r := f.call(t, "GET", "/jobs", "")
			if r.code != tt.wantCode || string(r.body) != tt.wantBody {
				t.Fatalf("got %d %s, want %d %s", r.code, r.body, tt.wantCode, tt.wantBody)
			}
			if tt.wantCode >= 500 {
				var e struct {
					Error struct {
						Message, Type string
						Code          int
					}
				}
				if err := json.Unmarshal(r.body, &e); err != nil || e.Error.Code != tt.wantCode || e.Error.Message == "" || e.Error.Type == "" {
					t.Errorf("got %s, want the documented {error:{message,type,code}} shape", r.body)
				}
			}
			f.sim.SetFaults(Faults{})
			if r := f.call(t, "GET", "/jobs", ""); r.code != 200 {
				t.Errorf("after SetFaults(Faults{}): got %d, want 200", r.code)
			}
		})
	}
}

func TestMalformedFault(t *testing.T) {
	f := newFixture(t, Options{Faults: Faults{Malformed: 1}})
	id := f.sim.Create(JobSpec{})
	var truncated, html int
	for range 30 {
		r := f.call(t, "GET", "/job/"+id, "")
		switch {
		case r.code == 200:
			var v any
			if json.Unmarshal(r.body, &v) == nil {
				t.Fatalf("got valid JSON %s, want it truncated", r.body)
			}
			if !strings.HasPrefix(string(r.body), `{"status":"Completed"`) {
				t.Fatalf("got %s, want the start of the real answer", r.body)
			}
			truncated++
		case r.code == 502 && r.header.Get("Content-Type") == "text/html":
			if !strings.Contains(string(r.body), "<h1>502 Bad Gateway</h1>") {
				t.Fatalf("got %s, want a proxy page", r.body)
			}
			html++
		default:
			t.Fatalf("got %d %s, want 200 truncated JSON or an HTML 502", r.code, r.body)
		}
	}
	if truncated == 0 || html == 0 {
		t.Errorf("got %d truncated and %d html answers, want both kinds", truncated, html)
	}
	if st := f.sim.Stats(); st.Faults != 30 || st.Statuses[200]+st.Statuses[502] != 30 {
		t.Errorf("got %d faults and statuses %v, want 30 counted once each", st.Faults, st.Statuses)
	}
}

func TestSlowFault(t *testing.T) {
	t.Run("delays", func(t *testing.T) {
		f := newFixture(t, Options{Faults: Faults{Slow: 1, SlowDelay: 50 * time.Millisecond}})
		start := time.Now()
		if r := f.call(t, "GET", "/jobs", ""); r.code != 200 {
			t.Fatalf("got %d, want 200", r.code)
		}
		if d := time.Since(start); d < 50*time.Millisecond {
			t.Errorf("got an answer after %v, want at least 50ms", d)
		}
	})
	t.Run("honours cancellation", func(t *testing.T) {
		sim, err := New(Options{Faults: Faults{Slow: 1, SlowDelay: time.Hour}, WebhookTick: -1, Seed: 1})
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(sim.Close)
		ctx, cancel := context.WithCancel(context.Background())
		req := httptest.NewRequestWithContext(ctx, "GET", "/jobs", nil)
		rec := httptest.NewRecorder()
		returned := make(chan struct{})
		go func() {
			sim.ServeHTTP(rec, req)
			close(returned)
		}()
		cancel()
		select {
		case <-returned:
		case <-time.After(5 * time.Second):
			t.Fatal("handler still waiting 5s after the request was cancelled")
		}
		if rec.Body.Len() != 0 {
			t.Errorf("got body %q, want nothing written", rec.Body.String())
		}
		if n := sim.Stats().Statuses[StatusClientClosed]; n != 1 {
			t.Errorf("got %d client-closed, want 1", n)
		}
	})
	t.Run("over http", func(t *testing.T) {
		f := newFixture(t, Options{Faults: Faults{Slow: 1, SlowDelay: time.Hour}})
		ctx, cancel := context.WithTimeout(context.Background(), 50*time.Millisecond)
		defer cancel()
		req, _ := http.NewRequestWithContext(ctx, "GET", f.ts.URL+"/version", nil)
		_, err := f.ts.Client().Do(req)
		if !errors.Is(err, context.DeadlineExceeded) {
			t.Fatalf("got %v, want a deadline error", err)
		}
		// ts.Close in the cleanup waits for the handler: it must return despite the hour.
	})
}

func TestShedCarriesRetryAfter(t *testing.T) {
	f := newFixture(t, Options{Faults: Faults{Shed429: 1}, RetryAfter: 250 * time.Millisecond})
	r := f.call(t, "GET", "/jobs", "")
	if r.code != 429 || r.header.Get("Retry-After") != "1" {
		t.Errorf("got %d with Retry-After %q, want 429 with 1 (rounded up)", r.code, r.header.Get("Retry-After"))
	}
}
