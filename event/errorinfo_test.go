package event_test

import (
	"encoding/json"
	"testing"

	"github.com/reducto-bridge/reducto-bridge/event"
)

func TestErrorInfoJSON(t *testing.T) {
	marshal := []struct {
		name string
		in   event.ErrorInfo
		want string
	}{
		{"Reducto's object verbatim", event.ErrorInfo{Code: 400, Name: "X", Raw: json.RawMessage(`{"code":400.0,"name":"X","job_id":"j","extra":[1]}`)},
			`{"code":400.0,"name":"X","job_id":"j","extra":[1]}`},
		{"the bridge's own", event.ErrorInfo{Code: 404, Name: "NOT_FOUND", Message: "Job not found"}, `{"code":404,"name":"NOT_FOUND","message":"Job not found"}`},
		{"a raw value that is not an object falls back to the typed fields", event.ErrorInfo{Message: "boom", Raw: json.RawMessage(`"boom"`)}, `{"code":0,"name":"","message":"boom"}`},
		{"invalid raw JSON is never written", event.ErrorInfo{Code: 1, Name: "N", Raw: json.RawMessage(`{"code":`)}, `{"code":1,"name":"N"}`},
	}
	for _, tt := range marshal {
		b, err := json.Marshal(tt.in)
		if err != nil || string(b) != tt.want {
			t.Errorf("%s: marshal = %s, %v; want %s", tt.name, b, err, tt.want)
		}
	}
	unmarshal := []struct {
		in        string
		code      int
		name, msg string
		keepsRaw  bool
	}{
		{`{"code":400,"name":"DOCUMENT_CORRUPT","message":"m"}`, 400, "DOCUMENT_CORRUPT", "m", true},
		{`{"code":400.0,"name":"N"}`, 400, "N", "", true},
		{`{"code":"422","name":"N"}`, 422, "N", "", true},
		{`{"code":3.5,"name":7,"message":{"x":1}}`, 0, "", "", true},
		{`"just text"`, 0, "", "just text", false},
		{`12`, 0, "", "12", false},
		{`null`, 0, "", "", false},
	}
	for _, tt := range unmarshal {
		var e event.ErrorInfo
		if err := json.Unmarshal([]byte(tt.in), &e); err != nil {
			t.Errorf("%s: %v", tt.in, err)
			continue
		}
		if e.Code != tt.code || e.Name != tt.name || e.Message != tt.msg || (e.Raw != nil) != tt.keepsRaw {
			t.Errorf("%s: got %+v", tt.in, e)
		}
		if tt.keepsRaw && string(e.Raw) != tt.in {
			t.Errorf("%s: raw %s, want verbatim", tt.in, e.Raw)
		}
	}
	// An event whose error has an odd shape still decodes.
	ev, err := event.Decode([]byte(`{"job_id":"j","kind":"failed","error":{"code":400.0,"name":"X","job_id":"j"}}`))
	if err != nil || ev.Error == nil || ev.Error.Code != 400 {
		t.Errorf("Decode = %+v, %v", ev, err)
	}
}
