package event_test

import (
	"bytes"
	"encoding/json"
	"errors"
	"testing"
	"time"

	"github.com/reducto-bridge/reducto-bridge/event"
)

var (
	observed = time.Date(2026, 11, 29, 14, 0, 13, 456_000_000, time.UTC)
	tracked  = time.Date(2026, 11, 29, 14, 0, 0, 123_000_000, time.UTC)
)

// sameEvent compares events by their JSON, which is what the contract fixes.
func sameEvent(a, b *event.Event) bool {
	ja, erra := json.Marshal(a)
	jb, errb := json.Marshal(b)
	return erra == nil && errb == nil && bytes.Equal(ja, jb)
}

func TestDecode(t *testing.T) {
	full := &event.Event{
		JobID: "j1", Kind: event.Failed, Status: "Failed", Type: "Extract", Reason: "r",
		Error:     &event.ErrorInfo{Code: 500, Name: "INTERNAL", Message: "m"},
		ResultRef: &event.ResultRef{Bucket: "REDUCTO_RESULTS", Name: "j1", Size: 10, Digest: "SHA-256=abc="}, CaptureError: "url result exceeds BRIDGE_CAPTURE_MAX_BYTES",
		Metadata: json.RawMessage(`{"x":"y"}`), Progress: new(42.5), Duration: new(1.5), NumPages: new(3),
		TrackedAt: tracked, ObservedAt: observed, Polls: 9,
	}
	t.Run("round trip", func(t *testing.T) {
		for _, ev := range []*event.Event{full, {JobID: "j2", Kind: event.Expired}} {
			data, err := json.Marshal(ev)
			if err != nil {
				t.Fatalf("marshal: %v", err)
			}
			got, err := event.Decode(data)
			if err != nil {
				t.Fatalf("decode %s: %v", data, err)
			}
			if !sameEvent(got, ev) || !got.ObservedAt.Equal(ev.ObservedAt) || !got.TrackedAt.Equal(ev.TrackedAt) {
				t.Errorf("round trip: got %+v, want %+v", got, ev)
			}
		}
	})
	bad := []struct {
		name string
		data string
	}{
		{"not json", `{"job_id":`},
		{"array", `[1]`},
		{"no job id", `{"kind":"completed"}`},
		{"no kind", `{"job_id":"j"}`},
		{"bad time", `{"job_id":"j","kind":"completed","observed_at":"yesterday"}`},
	}
	for _, tt := range bad {
		t.Run(tt.name, func(t *testing.T) {
			if _, err := event.Decode([]byte(tt.data)); !errors.Is(err, event.ErrMalformedEvent) {
				t.Errorf("got %v, want ErrMalformedEvent", err)
			}
		})
	}
	t.Run("unknown kind accepted", func(t *testing.T) {
		got, err := event.Decode([]byte(`{"job_id":"j","kind":"archived","extra":1}`))
		if err != nil || got.Kind != "archived" {
			t.Errorf("got %+v, %v, want kind archived", got, err)
		}
	})
}
