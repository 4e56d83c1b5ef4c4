package event_test

import (
	"encoding/json"
	"os"
	"slices"
	"testing"

	"github.com/reducto-bridge/reducto-bridge/event"
)

// TestSchemaDocumentMatchesEvent keeps docs/event.schema.json and the Event type together: the
// schema's $id is the ce-dataschema every event carries, its properties are exactly the fields
// a full event has, and its kind enum is the four kinds. (Events from a real run are validated
// against the schema in internal/bridge.)
func TestSchemaDocumentMatchesEvent(t *testing.T) {
	data, err := os.ReadFile("../docs/event.schema.json")
	if err != nil {
		t.Fatal(err)
	}
	var schema struct {
		ID         string `json:"$id"`
		Properties map[string]struct {
			Enum []string `json:"enum"`
		} `json:"properties"`
		Required []string `json:"required"`
	}
	if err := json.Unmarshal(data, &schema); err != nil {
		t.Fatalf("docs/event.schema.json: %v", err)
	}
	if schema.ID != event.DataSchema {
		t.Errorf("$id %q, want event.DataSchema %q", schema.ID, event.DataSchema)
	}
	full := &event.Event{
		JobID: "j", Kind: event.Completed, Status: "Completed", Type: "Parse", Reason: "r",
		Error:     &event.ErrorInfo{Code: 1, Name: "N"},
		Result:    json.RawMessage(`{}`),
		ResultRef: &event.ResultRef{Bucket: "b", Name: "j", Size: 1, Digest: "SHA-256=x"}, CaptureError: "c",
		Metadata: json.RawMessage(`1`), Progress: new(1.0), Duration: new(1.0), NumPages: new(1),
		TrackedAt: observed, ObservedAt: observed, Polls: 1,
	}
	body, err := json.Marshal(full)
	if err != nil {
		t.Fatal(err)
	}
	var fields map[string]json.RawMessage
	if err := json.Unmarshal(body, &fields); err != nil {
		t.Fatal(err)
	}
	for f := range fields {
		if _, ok := schema.Properties[f]; !ok {
			t.Errorf("the event has field %q, the schema does not", f)
		}
	}
	for p := range schema.Properties {
		if _, ok := fields[p]; !ok {
			t.Errorf("the schema has property %q, the event does not", p)
		}
	}
	kinds := []string{string(event.Completed), string(event.Failed), string(event.Cancelled), string(event.Expired)}
	if got := schema.Properties["kind"].Enum; !slices.Equal(got, kinds) {
		t.Errorf("kind enum %v, want %v", got, kinds)
	}
	for _, k := range kinds {
		if !event.Kind(k).Valid() {
			t.Errorf("%s is not a valid kind", k)
		}
	}
	// The minimal event the bridge publishes has exactly the required fields.
	minimal, _ := json.Marshal(&event.Event{JobID: "j", Kind: event.Expired, ObservedAt: observed})
	var min map[string]json.RawMessage
	json.Unmarshal(minimal, &min)
	for _, r := range schema.Required {
		if _, ok := min[r]; !ok {
			t.Errorf("required %q is absent from a minimal event %s", r, minimal)
		}
	}
}
