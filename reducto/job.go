package reducto

import (
	"bytes"
	"encoding/json"
	"fmt"
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

// JobError is Reducto's ErrorDetail on a failed job.
type JobError struct {
	Code    int    `json:"code,omitempty"`
	Name    string `json:"name,omitempty"`
	Message string `json:"message,omitempty"`
}

// Job is what GET /job/{id} returns, with the fields the bridge needs typed and the result
// kept byte-for-byte.
type Job struct {
	// ID is the job id that was asked for (GET /job does not echo it).
	ID         string
	Status     Status
	Progress   *float64 // as reported (the docs print it as a percentage); nil when null
	Reason     string
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

// jobWire is GET /job's body. Nullable fields are pointers or RawMessage so that null and
// absent both decode to "unknown".
type jobWire struct {
	Status     *string         `json:"status"`
	Progress   *float64        `json:"progress"`
	Reason     *string         `json:"reason"`
	Error      json.RawMessage `json:"error"`
	Type       *string         `json:"type"`
	Duration   *float64        `json:"duration"`
	NumPages   *int            `json:"num_pages"`
	TotalPages *int            `json:"total_pages"`
	CreatedAt  *string         `json:"created_at"`
	Result     json.RawMessage `json:"result"`
}

// decodeJob parses a GET /job body. A body that is not a JSON object with a string status is
// malformed.
func decodeJob(id string, body []byte) (*Job, error) {
	var w jobWire
	if err := json.Unmarshal(body, &w); err != nil {
		return nil, fmt.Errorf("%w: job body: %v", ErrMalformedResponse, err)
	}
	if w.Status == nil || *w.Status == "" {
		return nil, fmt.Errorf("%w: job body has no status", ErrMalformedResponse)
	}
	j := &Job{
		ID:         id,
		Status:     Status(*w.Status),
		Progress:   w.Progress,
		Duration:   w.Duration,
		NumPages:   w.NumPages,
		TotalPages: w.TotalPages,
		Result:     nonNull(w.Result),
	}
	if w.Reason != nil {
		j.Reason = *w.Reason
	}
	if w.Type != nil {
		j.Type = *w.Type
	}
	if w.CreatedAt != nil {
		j.CreatedAt = parseTime(*w.CreatedAt)
	}
	if e := nonNull(w.Error); e != nil {
		// An error object we cannot read is kept as a message rather than failing the poll:
		// the status already says what happened.
		var je JobError
		if err := json.Unmarshal(e, &je); err != nil {
			je = JobError{Message: string(e)}
		}
		j.Error = &je
	}
	return j, nil
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
