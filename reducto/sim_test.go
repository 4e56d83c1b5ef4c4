package reducto_test

import (
	"encoding/json"
	"errors"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/reducto-bridge/reducto-bridge/reducto"
	"github.com/reducto-bridge/reducto-bridge/reducto/reductosim"
)

// TestAgainstSimulator runs the client against the simulator end to end: the two were written
// independently from the same reference, so agreement here is evidence for both.
func TestAgainstSimulator(t *testing.T) {
	clock := reductosim.NewFakeClock(time.Date(2026, 11, 29, 12, 0, 0, 0, time.UTC))
	sim, err := reductosim.New(reductosim.Options{APIKey: "k", Clock: clock, Seed: 7, WebhookTick: -1,
		Spec: func(string, []byte) reductosim.JobSpec {
			return reductosim.JobSpec{Duration: 10 * time.Second, NumPages: 4}
		}})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(sim.Close)
	srv := httptest.NewServer(sim)
	t.Cleanup(srv.Close)
	c, err := reducto.New(srv.URL, "k")
	if err != nil {
		t.Fatal(err)
	}
	ctx := t.Context()

	id, err := c.Submit(ctx, reducto.EndpointParse, json.RawMessage(`{"input":"https://example.com/a.pdf","async":{"metadata":{"k":1}}}`))
	if err != nil || id == "" {
		t.Fatalf("Submit = %q, %v", id, err)
	}
	clock.Advance(5 * time.Second)
	j, err := c.GetJob(ctx, id)
	if err != nil {
		t.Fatal(err)
	}
	if j.Status.Terminal() || j.Progress == nil || *j.Progress < 49 || *j.Progress > 51 || j.Type != "Parse" {
		t.Errorf("half-way job = %+v (progress %v)", j, j.Progress)
	}
	clock.Advance(6 * time.Second)
	j, err = c.GetJob(ctx, id)
	if err != nil {
		t.Fatal(err)
	}
	if j.Outcome() != reducto.OutcomeCompleted || !strings.Contains(string(j.Result), `"type":"full"`) || j.NumPages == nil || *j.NumPages != 4 {
		t.Errorf("finished job = %+v, result %.80s", j, j.Result)
	}

	t.Run("failed", func(t *testing.T) {
		id := sim.Create(reductosim.JobSpec{Outcome: reductosim.OutcomeFail, ErrorName: "DOCUMENT_EMPTY"})
		j, err := c.GetJob(ctx, id)
		if err != nil || j.Outcome() != reducto.OutcomeFailed || j.Error == nil || j.Error.Name != "DOCUMENT_EMPTY" || j.Reason == "" {
			t.Errorf("failed job = %+v, %v", j, err)
		}
	})
	t.Run("url result", func(t *testing.T) {
		id := sim.Create(reductosim.JobSpec{Outcome: reductosim.OutcomeCompleteURL})
		j, err := c.GetJob(ctx, id)
		if err != nil || !strings.Contains(string(j.Result), `"type":"url"`) {
			t.Errorf("url job = %+v, %v", j, err)
		}
	})
	for _, style := range []reductosim.CancelStyle{reductosim.CancelAsFailed, reductosim.CancelAsCancelled} {
		t.Run("cancel", func(t *testing.T) {
			s2, _ := reductosim.New(reductosim.Options{APIKey: "k", Clock: clock, CancelStyle: style, WebhookTick: -1})
			t.Cleanup(s2.Close)
			srv2 := httptest.NewServer(s2)
			t.Cleanup(srv2.Close)
			c2, _ := reducto.New(srv2.URL, "k")
			id := s2.Create(reductosim.JobSpec{Outcome: reductosim.OutcomeNever})
			if err := c2.CancelJob(ctx, id); err != nil {
				t.Fatal(err)
			}
			j, err := c2.GetJob(ctx, id)
			if err != nil || j.Outcome() != reducto.OutcomeCancelled {
				t.Errorf("cancelled job (style %d) = %+v, %v", style, j, err)
			}
			if err := c2.CancelJob(ctx, "nope"); !errors.Is(err, reducto.ErrNotFound) {
				t.Errorf("cancel unknown: %v, want ErrNotFound", err)
			}
		})
	}
	t.Run("deleted then gone", func(t *testing.T) {
		id := sim.Create(reductosim.JobSpec{})
		sim.Delete(id, 409, time.Second)
		if _, err := c.GetJob(ctx, id); !errors.Is(err, reducto.ErrGone) {
			t.Errorf("deleting: %v, want ErrGone", err)
		}
		clock.Advance(2 * time.Second)
		_, err := c.GetJob(ctx, id)
		var apiErr *reducto.APIError
		if !errors.Is(err, reducto.ErrGone) || !errors.As(err, &apiErr) || apiErr.StatusCode != 410 {
			t.Errorf("deleted: %v, want 410 ErrGone", err)
		}
	})
	t.Run("unknown", func(t *testing.T) {
		if _, err := c.GetJob(ctx, "no-such-job"); !errors.Is(err, reducto.ErrNotFound) || reducto.IsTransient(err) {
			t.Errorf("unknown: %v", err)
		}
	})
	t.Run("wrong key", func(t *testing.T) {
		bad, _ := reducto.New(srv.URL, "wrong")
		if _, err := bad.GetJob(ctx, id); !errors.Is(err, reducto.ErrUnauthorized) {
			t.Errorf("wrong key: %v", err)
		}
	})
	t.Run("list", func(t *testing.T) {
		for range 4 {
			sim.Create(reductosim.JobSpec{})
			clock.Advance(time.Second)
		}
		var all []reducto.JobSummary
		cursor := ""
		for {
			l, err := c.ListJobs(ctx, reducto.ListOptions{Cursor: cursor, Limit: 2, ExcludeConfigs: true})
			if err != nil {
				t.Fatal(err)
			}
			all = append(all, l.Jobs...)
			if l.NextCursor == "" {
				break
			}
			cursor = l.NextCursor
		}
		// 1 submitted, failed, url, 4 more; the deleted job is not listed.
		if len(all) != 7 {
			t.Errorf("listed %d jobs over pages of 2, want 7", len(all))
		}
		for i := 1; i < len(all); i++ {
			if all[i].CreatedAt.After(all[i-1].CreatedAt) {
				t.Errorf("list not newest first at %d", i)
			}
		}
	})
}

func TestSimulatorFaultsClassify(t *testing.T) {
	tests := []struct {
		name      string
		opts      reductosim.Options
		sentinel  error
		code      int
		transient bool
	}{
		{"code 2000", reductosim.Options{JobRateLimit: 1, RateBurst: 1, RetryAfter: 2 * time.Second}, reducto.ErrRateLimited, 2000, true},
		{"code 1000", reductosim.Options{GlobalRateLimit: 1, RateBurst: 1}, reducto.ErrRateLimited, 1000, true},
		{"shed", reductosim.Options{Faults: reductosim.Faults{Shed429: 1}}, reducto.ErrRateLimited, 0, true},
		{"500", reductosim.Options{Faults: reductosim.Faults{Err500: 1}}, nil, 0, true}, // every 5xx is transient
		{"502", reductosim.Options{Faults: reductosim.Faults{Err502: 1}}, nil, 0, true},
		{"503", reductosim.Options{Faults: reductosim.Faults{Err503: 1}}, nil, 0, true},
		{"malformed", reductosim.Options{Faults: reductosim.Faults{Malformed: 1}}, nil, 0, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			tt.opts.APIKey, tt.opts.WebhookTick = "k", -1
			sim, err := reductosim.New(tt.opts)
			if err != nil {
				t.Fatal(err)
			}
			t.Cleanup(sim.Close)
			srv := httptest.NewServer(sim)
			t.Cleanup(srv.Close)
			c, _ := reducto.New(srv.URL, "k")
			id := sim.Create(reductosim.JobSpec{})
			var err2 error
			for range 3 { // the first request may spend the burst
				if _, err2 = c.GetJob(t.Context(), id); err2 != nil {
					break
				}
			}
			if err2 == nil {
				t.Fatal("no error from a faulty simulator")
			}
			if got := reducto.IsTransient(err2); got != tt.transient {
				t.Errorf("IsTransient(%v) = %v, want %v", err2, got, tt.transient)
			}
			if tt.sentinel != nil && !errors.Is(err2, tt.sentinel) {
				t.Errorf("%v does not match %v", err2, tt.sentinel)
			}
			var apiErr *reducto.APIError
			if tt.code != 0 && (!errors.As(err2, &apiErr) || apiErr.RateLimitCode != tt.code) {
				t.Errorf("rate limit code of %v, want %d", err2, tt.code)
			}
			if tt.name == "code 2000" {
				if ra, ok := reducto.RetryAfter(err2); !ok || ra != 2*time.Second {
					t.Errorf("RetryAfter = %v, %v, want 2s", ra, ok)
				}
			}
		})
	}
}
