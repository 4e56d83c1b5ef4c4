package reducto

import (
	"bytes"
	"encoding/json"
	"log/slog"
	"slices"
	"strings"
	"testing"
)

// TestDecodeJobOddFields: an optional field of an unexpected JSON type never costs the status or
// the result; it is converted when the conversion is exact and dropped (and named) when not.
func TestDecodeJobOddFields(t *testing.T) {
	const result = `{"job_id":"j","usage":{"num_pages":3},"result":{"type":"full","chunks":[{"content":"h\u00e9llo"}]}}`
	tests := []struct {
		name    string
		fields  string // spliced into {"status":"Completed","result":...,<fields>}
		want    Job    // the fields compared (ID, Status and Result are checked for every case)
		dropped []string
	}{
		{name: "documented types", fields: `"num_pages":3,"total_pages":4,"duration":12.5,"progress":50,"reason":"r","type":"Parse","created_at":"2026-11-29T14:00:00Z"`,
			want: Job{NumPages: new(3), TotalPages: new(4), Duration: new(12.5), Progress: new(50.0), Reason: "r", Type: "Parse"}},
		{name: "num_pages float integral", fields: `"num_pages":3.0`, want: Job{NumPages: new(3)}},
		{name: "num_pages exponent", fields: `"num_pages":3e0`, want: Job{NumPages: new(3)}},
		{name: "num_pages string", fields: `"num_pages":"3"`, want: Job{NumPages: new(3)}},
		{name: "num_pages string with spaces", fields: `"num_pages":" 3 "`, want: Job{NumPages: new(3)}},
		{name: "num_pages string float integral", fields: `"num_pages":"3.0"`, want: Job{NumPages: new(3)}},
		{name: "num_pages fraction dropped", fields: `"num_pages":3.5`, dropped: []string{"num_pages"}},
		{name: "num_pages string fraction dropped", fields: `"num_pages":"3.5"`, dropped: []string{"num_pages"}},
		{name: "num_pages beyond int dropped", fields: `"num_pages":99999999999999999999999`, dropped: []string{"num_pages"}},
		{name: "num_pages beyond float dropped", fields: `"num_pages":1e400`, dropped: []string{"num_pages"}},
		{name: "num_pages word dropped", fields: `"num_pages":"three"`, dropped: []string{"num_pages"}},
		{name: "num_pages NaN string dropped", fields: `"num_pages":"NaN"`, dropped: []string{"num_pages"}},
		{name: "num_pages hex string dropped", fields: `"num_pages":"0x3"`, dropped: []string{"num_pages"}},
		{name: "num_pages bool dropped", fields: `"num_pages":true`, dropped: []string{"num_pages"}},
		{name: "num_pages object dropped", fields: `"num_pages":{"n":3}`, dropped: []string{"num_pages"}},
		{name: "num_pages null", fields: `"num_pages":null`},
		{name: "total_pages float integral", fields: `"total_pages":2.0`, want: Job{TotalPages: new(2)}},
		{name: "total_pages list dropped", fields: `"total_pages":[2]`, dropped: []string{"total_pages"}},
		{name: "duration string", fields: `"duration":"12"`, want: Job{Duration: new(12.0)}},
		{name: "duration string float", fields: `"duration":"12.25"`, want: Job{Duration: new(12.25)}},
		{name: "duration Inf string dropped", fields: `"duration":"Infinity"`, dropped: []string{"duration"}},
		{name: "duration beyond float dropped", fields: `"duration":1e400`, dropped: []string{"duration"}},
		{name: "progress string", fields: `"progress":"50"`, want: Job{Progress: new(50.0)}},
		{name: "progress empty string dropped", fields: `"progress":""`, dropped: []string{"progress"}},
		{name: "progress object dropped", fields: `"progress":{}`, dropped: []string{"progress"}},
		{name: "created_at number dropped", fields: `"created_at":12345`, dropped: []string{"created_at"}},
		{name: "created_at unparsable dropped", fields: `"created_at":"yesterday"`, dropped: []string{"created_at"}},
		{name: "reason number stringified", fields: `"reason":5`, want: Job{Reason: "5"}},
		{name: "reason object dropped", fields: `"reason":{"why":"x"}`, dropped: []string{"reason"}},
		{name: "type object dropped", fields: `"type":{}`, dropped: []string{"type"}},
		{name: "type number dropped", fields: `"type":1`, dropped: []string{"type"}},
		{name: "error code float", fields: `"error":{"code":400.0,"name":"DOCUMENT_CORRUPT","message":"m"}`,
			want: Job{Error: &JobError{Code: 400, Name: "DOCUMENT_CORRUPT", Message: "m"}}},
		{name: "error code string", fields: `"error":{"code":"400"}`, want: Job{Error: &JobError{Code: 400}}},
		{name: "error code fraction dropped", fields: `"error":{"code":400.5,"name":"X"}`,
			want: Job{Error: &JobError{Name: "X"}}, dropped: []string{"error.code"}},
		{name: "error odd name and message dropped", fields: `"error":{"code":500,"name":7,"message":{"text":"m"}}`,
			want: Job{Error: &JobError{Code: 500}}, dropped: []string{"error.name", "error.message"}},
		{name: "error string kept as message", fields: `"error":"some string"`, want: Job{Error: &JobError{Message: "some string"}}},
		{name: "error list kept as its JSON", fields: `"error":[1,2]`, want: Job{Error: &JobError{Message: "[1,2]"}}},
		{name: "error empty object", fields: `"error":{}`, want: Job{Error: &JobError{}}},
		{name: "error null", fields: `"error":null`},
		{name: "everything odd at once", fields: `"num_pages":"x","total_pages":2.0,"duration":[],"progress":"50","reason":false,"type":{},"created_at":12345,"error":{"code":"400","name":null}`,
			want:    Job{TotalPages: new(2), Progress: new(50.0), Error: &JobError{Code: 400}},
			dropped: []string{"duration", "num_pages", "reason", "type", "created_at"}}, // decodeJob's order
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			body := `{"status":"Completed","result":` + result + `,` + tt.fields + `}`
			j, dropped, err := decodeJob("job-1", []byte(body))
			if err != nil {
				t.Fatalf("decodeJob(%s): %v", body, err)
			}
			if j.ID != "job-1" || j.Status != StatusCompleted || j.Outcome() != OutcomeCompleted {
				t.Errorf("id, status, outcome = %q, %q, %q", j.ID, j.Status, j.Outcome())
			}
			if string(j.Result) != result {
				t.Errorf("result = %s, want byte-for-byte %s", j.Result, result)
			}
			if !slices.Equal(dropped, tt.dropped) {
				t.Errorf("dropped = %q, want %q", dropped, tt.dropped)
			}
			eqPtr(t, "num_pages", j.NumPages, tt.want.NumPages)
			eqPtr(t, "total_pages", j.TotalPages, tt.want.TotalPages)
			eqPtr(t, "duration", j.Duration, tt.want.Duration)
			eqPtr(t, "progress", j.Progress, tt.want.Progress)
			if j.Reason != tt.want.Reason || j.Type != tt.want.Type {
				t.Errorf("reason, type = %q, %q, want %q, %q", j.Reason, j.Type, tt.want.Reason, tt.want.Type)
			}
			if (j.Error == nil) != (tt.want.Error == nil) {
				t.Fatalf("error = %+v, want %+v", j.Error, tt.want.Error)
			}
			if j.Error != nil {
				got := *j.Error
				if got.Raw == nil || !json.Valid(got.Raw) || !strings.Contains(body, string(got.Raw)) {
					t.Errorf("error raw = %s, want the value as sent", got.Raw)
				}
				if w := tt.want.Error; got.Code != w.Code || got.Name != w.Name || got.Message != w.Message {
					t.Errorf("error = %+v, want %+v", got, *tt.want.Error)
				}
			}
			if strings.Contains(tt.fields, "created_at\":\"2026") == j.CreatedAt.IsZero() {
				t.Errorf("created_at = %v", j.CreatedAt)
			}
		})
	}
}

func eqPtr[T comparable](t *testing.T, name string, got, want *T) {
	t.Helper()
	switch {
	case got == nil && want == nil:
	case got == nil || want == nil:
		t.Errorf("%s = %v, want %v", name, deref(got), deref(want))
	case *got != *want:
		t.Errorf("%s = %v, want %v", name, *got, *want)
	}
}

func deref[T any](p *T) any {
	if p == nil {
		return nil
	}
	return *p
}

// TestDecodeJobMalformedOnlyWithoutStatus: what still fails a poll is a body that is not a JSON
// object, or whose status is not a non-empty string, whatever else it holds.
func TestDecodeJobMalformedOnlyWithoutStatus(t *testing.T) {
	for _, body := range []string{
		``, `null`, `[]`, `"Completed"`, `3`, `{}`, `{"status":null}`, `{"status":""}`, `{"status":3}`,
		`{"status":{"value":"Completed"}}`, `{"status":["Completed"]}`, `{"status":true}`,
		`{"status":3,"result":{"a":1},"num_pages":3}`, `{"status":"Completed"`, `{"status":"Completed","result":{}`,
	} {
		j, dropped, err := decodeJob("j", []byte(body))
		if err == nil || j != nil || dropped != nil {
			t.Errorf("decodeJob(%s) = %+v, %q, %v, want a malformed error", body, j, dropped, err)
		}
	}
}

// TestJobErrorRawVerbatim: Raw is Reducto's error value byte for byte, unknown fields, order,
// spacing and escapes included; the typed fields are a view of it.
func TestJobErrorRawVerbatim(t *testing.T) {
	tests := []struct{ name, raw string }{
		{"documented", `{"code":400,"name":"DOCUMENT_CORRUPT","message":"could not open","job_id":"j-1"}`},
		{"unknown fields, spacing and escapes", `{ "job_id" : "j-1", "code": 4e2, "name":"DOCUMENT_CORRUPT", "message":"caf\u00e9 <b>", "category":"Input", "retryable":false, "details":{"page":[3,4]}, "added_later":null }`},
		{"string", `"some \"quoted\" string"`},
		{"list", `[1, {"a":2}]`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			body := `{"status":"Failed","reason":"r","error":` + tt.raw + `,"result":null}`
			j, _, err := decodeJob("j-1", []byte(body))
			if err != nil {
				t.Fatal(err)
			}
			if j.Error == nil || string(j.Error.Raw) != tt.raw {
				t.Fatalf("error raw = %s, want %s", j.Error.Raw, tt.raw)
			}
			// Raw must not alias the body: the caller may reuse its buffer.
			b := []byte(body)
			j2, _, _ := decodeJob("j-1", b)
			for i := range b {
				b[i] = 'x'
			}
			if string(j2.Error.Raw) != tt.raw {
				t.Errorf("error raw aliases the body: %s", j2.Error.Raw)
			}
		})
	}
	j, _, _ := decodeJob("j-1", []byte(`{"status":"Failed","error":{ "job_id" : "j-1", "code": 4e2, "name":"DOCUMENT_CORRUPT", "message":"caf\u00e9"}}`))
	if e := j.Error; e.Code != 400 || e.Name != "DOCUMENT_CORRUPT" || e.Message != "café" {
		t.Errorf("typed view = %+v", e)
	}
	for _, body := range []string{`{"status":"Failed"}`, `{"status":"Failed","error":null}`} {
		if j, _, _ := decodeJob("j", []byte(body)); j.Error != nil {
			t.Errorf("%s: error = %+v, want nil", body, j.Error)
		}
	}
}

// TestGetJobLogsDroppedFieldNames: GetJob names the fields it dropped at debug, never their values.
func TestGetJobLogsDroppedFieldNames(t *testing.T) {
	var logs bytes.Buffer
	log := slog.New(slog.NewJSONHandler(&logs, &slog.HandlerOptions{Level: slog.LevelDebug}))
	const secret = "VALUE-THAT-MUST-NOT-BE-LOGGED"
	c := newTestClient(t, fixed(200, `{"status":"Completed","num_pages":"`+secret+`","type":{"x":"`+secret+`"},"result":{"a":1}}`), WithLogger(log))
	j, err := c.GetJob(t.Context(), "job-1")
	if err != nil || j.Status != StatusCompleted || string(j.Result) != `{"a":1}` {
		t.Fatalf("GetJob = %+v, %v", j, err)
	}
	out := logs.String()
	if !strings.Contains(out, `"fields":["type","num_pages"]`) && !strings.Contains(out, `"fields":["num_pages","type"]`) {
		t.Errorf("dropped field names not logged:\n%s", out)
	}
	if strings.Contains(out, secret) {
		t.Errorf("a dropped value was logged:\n%s", out)
	}
}

func TestResultURL(t *testing.T) {
	tests := []struct {
		name, result, want string
	}{
		{"parse response", `{"job_id":"j","result":{"type":"url","url":"https://s3.example/r?sig=1","result_id":"r"}}`, "https://s3.example/r?sig=1"},
		{"bare url result", `{"type":"url","url":"https://s3.example/r","result_id":"r"}`, "https://s3.example/r"},
		{"pipeline parse step", `{"job_id":"j","result":{"parse":{"result":{"type":"url","url":"https://s3.example/p"}},"extract":null}}`, "https://s3.example/p"},
		{"full result", `{"job_id":"j","result":{"type":"full","chunks":[]}}`, ""},
		{"url type without url", `{"result":{"type":"url"}}`, ""},
		{"extract array", `{"result":[{"type":"url","url":"https://x"}]}`, ""},
		{"not json", `{`, ""},
		{"none", ``, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			j := &Job{Result: json.RawMessage(tt.result)}
			got, ok := j.ResultURL()
			if got != tt.want || ok != (tt.want != "") {
				t.Errorf("ResultURL() = %q, %v; want %q", got, ok, tt.want)
			}
		})
	}
}
