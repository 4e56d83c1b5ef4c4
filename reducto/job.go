package reducto

import (
	"bytes"
	"encoding/json"
	"fmt"
	"math"
	"regexp"
	"strconv"
	"strings"
	"time"
)

// Status is a job status as Reducto reports it. It is an open string: the spec's GET /job enum
// is Pending, Idle, Completed and Failed; the docs and the list endpoint add InProgress,
// Completing and Cancelled; anything else is treated as not finished.
type Status string

// Statuses Reducto documents.
const (
	StatusPending    Status = "Pending"
	StatusIdle       Status = "Idle"
	StatusInProgress Status = "InProgress"
	StatusCompleting Status = "Completing"
	StatusCompleted  Status = "Completed"
	StatusFailed     Status = "Failed"
	StatusCancelled  Status = "Cancelled"
)

// Terminal reports whether a job in this status will not change any more. Comparison ignores
// case, as third-party material shows lower-case statuses.
func (s Status) Terminal() bool {
	return s.is(StatusCompleted) || s.is(StatusFailed) || s.is(StatusCancelled) || s.is("Canceled")
}

func (s Status) is(t Status) bool { return strings.EqualFold(string(s), string(t)) }

// Outcome is how a terminal job ended, in the bridge's event vocabulary.
type Outcome string

// Outcomes of a terminal job; the zero value means "not terminal".
const (
	OutcomeCompleted Outcome = "completed"
	OutcomeFailed    Outcome = "failed"
	OutcomeCancelled Outcome = "cancelled"
)

// ErrorNameCancelled is the error name Reducto gives a job that failed because it was cancelled.
const ErrorNameCancelled = "JOB_CANCELLED"

// JobError is Reducto's ErrorDetail on a failed job: {code, name, message, job_id, ...}.
//
// Raw is the error value exactly as Reducto sent it, byte for byte: every field, job_id and
// any field added later included. Code, Name and Message are a best-effort typed view of it:
// a code sent as 400.0 or "400" reads as 400, a field of a type that does not convert is left
// empty (Raw still holds it). When the error is not an object, Raw holds it as sent all the
// same (a JSON string keeps its quotes and escapes) and Message is its text: the decoded
// string, or the JSON of any other value. Raw is nil only when the error is absent or null,
// and then [Job.Error] is nil too.
type JobError struct {
	Code    int             `json:"code,omitempty"`
	Name    string          `json:"name,omitempty"`
	Message string          `json:"message,omitempty"`
	Raw     json.RawMessage `json:"-"`
}

// Job is what GET /job/{id} returns, with the fields the bridge needs typed and the result
// kept byte-for-byte. Optional fields Reducto sent with an unexpected JSON type are converted
// when the conversion is exact (a num_pages of 3.0 or "3" is 3, a progress of "50" is 50) and
// left unset when not (a num_pages of 3.5, a type of {}).
type Job struct {
	// ID is the job id that was asked for (GET /job does not echo it).
	ID         string
	Status     Status
	Progress   *float64 // as reported (the docs print it as a percentage); nil when null
	Reason     string   // a numeric reason is kept as its JSON text
	Error      *JobError
	Type       string // Parse, Extract, Split, Edit, Pipeline, Classify
	Duration   *float64
	NumPages   *int
	TotalPages *int
	CreatedAt  time.Time // zero when absent or unparsable
	// Result is Reducto's result verbatim: a full result, a {"type":"url",...} result, or an
	// extract/split/edit result. nil when absent or null.
	Result json.RawMessage
}

// Outcome maps a terminal job to its event kind: Completed is completed; Cancelled, or Failed
// with error name JOB_CANCELLED or a reason that says it was cancelled, is cancelled; any other
// Failed is failed. A job that is not terminal has the zero Outcome.
func (j *Job) Outcome() Outcome {
	switch {
	case j.Status.is(StatusCompleted):
		return OutcomeCompleted
	case j.Status.is(StatusCancelled) || j.Status.is("Canceled"):
		return OutcomeCancelled
	case j.Status.is(StatusFailed):
		if j.cancelled() {
			return OutcomeCancelled
		}
		return OutcomeFailed
	}
	return ""
}

func (j *Job) cancelled() bool {
	if j.Error != nil && strings.EqualFold(j.Error.Name, ErrorNameCancelled) {
		return true
	}
	return strings.Contains(strings.ToLower(j.Reason), "cancel")
}

// jobWire is GET /job's body. Every field is raw, so that a field of an unexpected type
// cannot fail the decoding of the others; decodeJob converts each one on its own. (A struct
// rather than a map keeps encoding/json's case-insensitive key matching.)
type jobWire struct {
	Status     json.RawMessage `json:"status"`
	Progress   json.RawMessage `json:"progress"`
	Reason     json.RawMessage `json:"reason"`
	Error      json.RawMessage `json:"error"`
	Type       json.RawMessage `json:"type"`
	Duration   json.RawMessage `json:"duration"`
	NumPages   json.RawMessage `json:"num_pages"`
	TotalPages json.RawMessage `json:"total_pages"`
	CreatedAt  json.RawMessage `json:"created_at"`
	Result     json.RawMessage `json:"result"`
}

// errorWire is the error object, raw field by field like jobWire.
type errorWire struct {
	Code    json.RawMessage `json:"code"`
	Name    json.RawMessage `json:"name"`
	Message json.RawMessage `json:"message"`
}

// decodeJob parses a GET /job body. Only a body that is not a JSON object, or that has no
// non-empty string status, is malformed. Every optional field is read on its own: kept when
// it has the documented type, converted when it converts exactly (see [Job]), and otherwise
// dropped, its name (never its value) listed in dropped. Result is kept verbatim whatever the
// other fields hold.
func decodeJob(id string, body []byte) (j *Job, dropped []string, err error) {
	var w jobWire
	if err := json.Unmarshal(body, &w); err != nil {
		return nil, nil, fmt.Errorf("%w: job body: %v", ErrMalformedResponse, err)
	}
	status, ok := stringOf(w.Status)
	if !ok || status == "" {
		return nil, nil, fmt.Errorf("%w: job body has no status", ErrMalformedResponse)
	}
	j = &Job{ID: id, Status: Status(status), Result: nonNull(w.Result)}
	drop := func(name string) { dropped = append(dropped, name) }

	j.Progress = floatField(w.Progress, "progress", drop)
	j.Duration = floatField(w.Duration, "duration", drop)
	j.NumPages = intField(w.NumPages, "num_pages", drop)
	j.TotalPages = intField(w.TotalPages, "total_pages", drop)
	if raw := nonNull(w.Reason); raw != nil {
		if s, ok := stringOf(raw); ok {
			j.Reason = s
		} else if n, ok := numberText(raw); ok {
			j.Reason = n
		} else {
			drop("reason")
		}
	}
	if raw := nonNull(w.Type); raw != nil {
		if s, ok := stringOf(raw); ok {
			j.Type = s
		} else {
			drop("type")
		}
	}
	if raw := nonNull(w.CreatedAt); raw != nil {
		if s, ok := stringOf(raw); ok {
			j.CreatedAt = parseTime(s)
		}
		if j.CreatedAt.IsZero() {
			drop("created_at")
		}
	}
	if raw := nonNull(w.Error); raw != nil {
		j.Error = decodeJobError(raw, drop)
	}
	return j, dropped, nil
}

// decodeJobError reads a non-null error value. An object gives the typed fields that
// convert; anything else becomes the message (see [JobError]). The error is kept either
// way: the status already says what happened, and Raw says the rest.
func decodeJobError(raw json.RawMessage, drop func(string)) *JobError {
	je := &JobError{Raw: raw}
	var ew errorWire
	if json.Unmarshal(raw, &ew) != nil { // not an object
		if s, ok := stringOf(raw); ok {
			je.Message = s
		} else {
			je.Message = string(raw)
		}
		return je
	}
	if code := intField(ew.Code, "error.code", drop); code != nil {
		je.Code = *code
	}
	if raw := nonNull(ew.Name); raw != nil {
		if s, ok := stringOf(raw); ok {
			je.Name = s
		} else {
			drop("error.name")
		}
	}
	if raw := nonNull(ew.Message); raw != nil {
		if s, ok := stringOf(raw); ok {
			je.Message = s
		} else {
			drop("error.message")
		}
	}
	return je
}

// stringOf returns the string a raw JSON value holds, if it is a string.
func stringOf(raw json.RawMessage) (string, bool) {
	if len(raw) == 0 || raw[0] != '"' {
		return "", false
	}
	var s string
	if json.Unmarshal(raw, &s) != nil {
		return "", false
	}
	return s, true
}

// jsonNumber is the grammar of a JSON number.
var jsonNumber = regexp.MustCompile(`^-?(?:0|[1-9][0-9]*)(?:\.[0-9]+)?(?:[eE][+-]?[0-9]+)?$`)

// numberText returns the JSON number a raw value holds, written as a number or as a string
// holding one ("3", " 12.5 "). Other strings ("NaN", "0x10", "1_000", "") are not numbers.
func numberText(raw json.RawMessage) (string, bool) {
	if len(raw) == 0 {
		return "", false
	}
	t := string(raw)
	if raw[0] == '"' {
		s, ok := stringOf(raw)
		if !ok {
			return "", false
		}
		t = strings.TrimSpace(s)
	}
	if !jsonNumber.MatchString(t) {
		return "", false
	}
	return t, true
}

// floatField converts an optional number: nil when absent or null; nil, and name dropped,
// when it is not a number or a string holding one, or is beyond float64's range.
func floatField(raw json.RawMessage, name string, drop func(string)) *float64 {
	if raw = nonNull(raw); raw == nil {
		return nil
	}
	if t, ok := numberText(raw); ok {
		if f, err := strconv.ParseFloat(t, 64); err == nil {
			return &f
		}
	}
	drop(name)
	return nil
}

// intField converts an optional integer like floatField; a number with a fraction (3.5) or
// beyond int's range is dropped, an integral one in any notation (3.0, 3e0, "3") is kept.
func intField(raw json.RawMessage, name string, drop func(string)) *int {
	if raw = nonNull(raw); raw == nil {
		return nil
	}
	if t, ok := numberText(raw); ok {
		if n, err := strconv.ParseInt(t, 10, strconv.IntSize); err == nil {
			i := int(n)
			return &i
		}
		// 2^63 (or 2^31) is exact as a float64; math.MaxInt is not.
		if f, err := strconv.ParseFloat(t, 64); err == nil && f == math.Trunc(f) &&
			f >= float64(math.MinInt) && f < -float64(math.MinInt) {
			i := int(f)
			return &i
		}
	}
	drop(name)
	return nil
}

// nonNull returns nil for an absent or JSON-null raw value.
func nonNull(raw json.RawMessage) json.RawMessage {
	if len(raw) == 0 || bytes.Equal(raw, []byte("null")) {
		return nil
	}
	return raw
}

// parseTime accepts RFC 3339 with or without a zone (Python's isoformat omits it for naive
// datetimes) and returns the zero time for anything else.
func parseTime(s string) time.Time {
	for _, layout := range []string{time.RFC3339Nano, "2006-01-02T15:04:05.999999999", "2006-01-02 15:04:05.999999999Z07:00"} {
		if t, err := time.Parse(layout, s); err == nil {
			return t
		}
	}
	return time.Time{}
}

// JobSummary is one entry of GET /jobs.
type JobSummary struct {
	ID         string
	Status     Status
	Type       string
	CreatedAt  time.Time
	NumPages   *int
	TotalPages *int
	Duration   *float64
	RawConfig  string // empty when listed with ExcludeConfigs
}

// JobList is one page of GET /jobs; NextCursor is empty on the last page.
type JobList struct {
	Jobs       []JobSummary
	NextCursor string
}

type jobListWire struct {
	Jobs []struct {
		ID         string   `json:"job_id"`
		Status     string   `json:"status"`
		Type       *string  `json:"type"`
		RawConfig  *string  `json:"raw_config"`
		CreatedAt  *string  `json:"created_at"`
		NumPages   *int     `json:"num_pages"`
		TotalPages *int     `json:"total_pages"`
		Duration   *float64 `json:"duration"`
	} `json:"jobs"`
	NextCursor *string `json:"next_cursor"`
}

func decodeJobList(body []byte) (*JobList, error) {
	var w jobListWire
	if err := json.Unmarshal(body, &w); err != nil {
		return nil, fmt.Errorf("%w: jobs body: %v", ErrMalformedResponse, err)
	}
	if w.Jobs == nil {
		return nil, fmt.Errorf("%w: jobs body has no jobs list", ErrMalformedResponse)
	}
	l := &JobList{Jobs: make([]JobSummary, 0, len(w.Jobs))}
	if w.NextCursor != nil {
		l.NextCursor = *w.NextCursor
	}
	for _, j := range w.Jobs {
		s := JobSummary{ID: j.ID, Status: Status(j.Status), NumPages: j.NumPages, TotalPages: j.TotalPages, Duration: j.Duration}
		if j.Type != nil {
			s.Type = *j.Type
		}
		if j.RawConfig != nil {
			s.RawConfig = *j.RawConfig
		}
		if j.CreatedAt != nil {
			s.CreatedAt = parseTime(*j.CreatedAt)
		}
		l.Jobs = append(l.Jobs, s)
	}
	return l, nil
}

// ResultURL returns the URL of a URL result ({"type":"url","url":...}, reference section
// 3.1): Reducto's answer to a result too large for one response, a presigned link that
// expires. It looks where Reducto puts one: the result itself, a ParseResponse's inner result,
// and a pipeline's parse step. ok is false for every other result.
func (j *Job) ResultURL() (u string, ok bool) {
	if j == nil || len(j.Result) == 0 {
		return "", false
	}
	type urlResult struct {
		Type string `json:"type"`
		URL  string `json:"url"`
	}
	var outer struct {
		urlResult
		Result json.RawMessage `json:"result"`
	}
	if json.Unmarshal(j.Result, &outer) != nil {
		return "", false
	}
	if outer.Type == "url" && outer.URL != "" {
		return outer.URL, true
	}
	var inner struct {
		urlResult
		Parse *struct {
			Result *urlResult `json:"result"`
		} `json:"parse"`
	}
	if len(outer.Result) == 0 || json.Unmarshal(outer.Result, &inner) != nil {
		return "", false
	}
	if inner.Type == "url" && inner.URL != "" {
		return inner.URL, true
	}
	if p := inner.Parse; p != nil && p.Result != nil && p.Result.Type == "url" && p.Result.URL != "" {
		return p.Result.URL, true
	}
	return "", false
}
