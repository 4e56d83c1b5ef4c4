package event

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"strings"
	"time"
)

// Kind is how a job ended, as a terminal event reports it; it is also the subject token
// P.job.<kind>.<id> and the suffix of ce-type.
type Kind string

// The four terminal kinds (docs/contract.md section 2).
const (
	Completed Kind = "completed"
	Failed    Kind = "failed"
	Cancelled Kind = "cancelled"
	Expired   Kind = "expired"
)

// Valid reports whether k is one of the four terminal kinds. [Decode] accepts other kinds (a
// consumer keeps working if the contract gains one); the bridge publishes only valid ones.
func (k Kind) Valid() bool {
	switch k {
	case Completed, Failed, Cancelled, Expired:
		return true
	}
	return false
}

// ErrMalformedEvent is returned by [Decode] when a message body is not an event.
var ErrMalformedEvent = errors.New("malformed event")

// timeLayout is RFC 3339 with millisecond precision; times are always written in UTC ("Z").
const timeLayout = "2006-01-02T15:04:05.000Z07:00"

// Event is the JSON body of a terminal event (docs/contract.md section 2). Unknown values are left
// zero and are then absent from the JSON: the body never carries null padding.
type Event struct {
	JobID  string     `json:"job_id"`
	Kind   Kind       `json:"kind"`
	Status string     `json:"status,omitempty"` // Reducto's status, an open string
	Type   string     `json:"type,omitempty"`   // Reducto's job type (Parse, Extract...)
	Reason string     `json:"reason,omitempty"`
	Error  *ErrorInfo `json:"error,omitempty"`
	// Result is Reducto's result verbatim. The bridge moves it to the object store (and sets
	// ResultRef instead) when the event would not fit in one NATS message. A URL result
	// stays, and ResultRef names its captured content (BRIDGE_CAPTURE_URL_RESULTS).
	Result    json.RawMessage `json:"result,omitempty"`
	ResultRef *ResultRef      `json:"result_ref,omitempty"`
	// CaptureError says why a URL result ({"type":"url",...}) was not captured into the
	// object store (BRIDGE_CAPTURE_URL_RESULTS): too large, a URL that is not https, or
	// downloads that kept failing until BRIDGE_JOB_TTL. Result is then Reducto's alone, its
	// link valid only until it expires. Empty when captured (ResultRef set) or not attempted.
	CaptureError string `json:"capture_error,omitempty"`
	// Metadata is the track message's metadata verbatim (for a job first seen through a
	// webhook, the webhook's), less a top-level "webhook_token" member.
	Metadata json.RawMessage `json:"metadata,omitempty"`
	Progress *float64        `json:"progress,omitempty"`
	Duration *float64        `json:"duration,omitempty"`
	NumPages *int            `json:"num_pages,omitempty"`
	// TrackedAt is when the job was first tracked; absent from the JSON when zero.
	TrackedAt time.Time `json:"tracked_at"`
	// ObservedAt is when the bridge saw the terminal state; it is also ce-time. The bridge's
	// publisher sets it to the current time when zero.
	ObservedAt time.Time `json:"observed_at"`
	Polls      int       `json:"polls,omitempty"` // GET /job calls the bridge made for this job
}

// ErrorInfo is the error of a failed (or expired) job: Reducto's error object when Reducto
// gave one, or one the bridge wrote (NOT_FOUND, JOB_DELETED, HTTP_<code>, the last poll error
// of an expired job).
//
// Raw, when it holds a JSON object, is Reducto's error object exactly as Reducto sent it
// (every field, including job_id and fields added later): it is what the event's "error"
// carries, and Code, Name and Message are a typed view of it. Without Raw, the event carries
// {"code","name","message"} from the typed fields. Decoding keeps the object in Raw and reads
// the typed fields leniently (a code written 400.0 or "400" is 400), so that an error object
// of an unexpected shape never makes an event unreadable.
type ErrorInfo struct {
	Code    int
	Name    string
	Message string
	Raw     json.RawMessage
}

// errorWire is the bridge's own error object.
type errorWire struct {
	Code    int    `json:"code"`
	Name    string `json:"name"`
	Message string `json:"message,omitempty"`
}

// MarshalJSON writes Raw verbatim when it is a JSON object, the typed fields otherwise.
func (e ErrorInfo) MarshalJSON() ([]byte, error) {
	if raw := bytes.TrimSpace(e.Raw); len(raw) > 0 && raw[0] == '{' && json.Valid(raw) {
		return raw, nil
	}
	return json.Marshal(errorWire{Code: e.Code, Name: e.Name, Message: e.Message})
}

// UnmarshalJSON keeps an error object in Raw and reads its typed fields leniently; a value
// that is not an object is kept as the message.
func (e *ErrorInfo) UnmarshalJSON(data []byte) error {
	raw := bytes.TrimSpace(data)
	*e = ErrorInfo{}
	if len(raw) == 0 || raw[0] != '{' {
		var s string
		if json.Unmarshal(raw, &s) == nil {
			e.Message = s
		} else if !bytes.Equal(raw, []byte("null")) {
			e.Message = string(raw)
		}
		return nil
	}
	var w map[string]json.RawMessage
	if err := json.Unmarshal(raw, &w); err != nil {
		return err
	}
	e.Raw = append(json.RawMessage(nil), raw...)
	e.Code = lenientInt(w["code"])
	e.Name = lenientString(w["name"])
	e.Message = lenientString(w["message"])
	return nil
}

// lenientInt reads a JSON number or numeric string that holds an integer; anything else is 0.
func lenientInt(raw json.RawMessage) int {
	var n json.Number
	if json.Unmarshal(raw, &n) != nil {
		var s string
		if json.Unmarshal(raw, &s) != nil {
			return 0
		}
		n = json.Number(strings.TrimSpace(s))
	}
	f, err := n.Float64()
	if err != nil || f != math.Trunc(f) || math.Abs(f) > math.MaxInt32 {
		return 0
	}
	return int(f)
}

// lenientString reads a JSON string; anything else is "".
func lenientString(raw json.RawMessage) string {
	var s string
	if json.Unmarshal(raw, &s) != nil {
		return ""
	}
	return s
}

// ResultRef says where a result was stored: a result too large for the event (claim check,
// the event then has no Result), or the content a URL result's link pointed to, captured
// (the event then keeps Reducto's url object in Result). Fetch the object Name from the
// JetStream object store Bucket; its size and digest are those the object store reports.
type ResultRef struct {
	Bucket string `json:"bucket"` // object store bucket, REDUCTO_RESULTS
	Name   string `json:"name"`   // object name, the job id
	Size   uint64 `json:"size"`   // bytes
	Digest string `json:"digest"` // as the object store reports it: "SHA-256=<base64url>"
}

// wireEvent fixes the JSON field order of the contract and writes the times as strings so
// that a zero time can be left out (encoding/json's omitempty never omits a struct).
type wireEvent struct {
	JobID      string          `json:"job_id"`
	Kind       Kind            `json:"kind"`
	Status     string          `json:"status,omitempty"`
	Type       string          `json:"type,omitempty"`
	Reason     string          `json:"reason,omitempty"`
	Error      *ErrorInfo      `json:"error,omitempty"`
	Result     json.RawMessage `json:"result,omitempty"`
	ResultRef  *ResultRef      `json:"result_ref,omitempty"`
	CaptureErr string          `json:"capture_error,omitempty"`
	Metadata   json.RawMessage `json:"metadata,omitempty"`
	Progress   *float64        `json:"progress,omitempty"`
	Duration   *float64        `json:"duration,omitempty"`
	NumPages   *int            `json:"num_pages,omitempty"`
	TrackedAt  string          `json:"tracked_at,omitempty"`
	ObservedAt string          `json:"observed_at,omitempty"`
	Polls      int             `json:"polls,omitempty"`
}

// MarshalJSON writes the contract's body: fields in contract order, times in UTC with
// milliseconds, zero times and JSON null results or metadata left out.
func (e Event) MarshalJSON() ([]byte, error) {
	return json.Marshal(wireEvent{
		JobID:      e.JobID,
		Kind:       e.Kind,
		Status:     e.Status,
		Type:       e.Type,
		Reason:     e.Reason,
		Error:      e.Error,
		Result:     nonNull(e.Result),
		ResultRef:  e.ResultRef,
		CaptureErr: e.CaptureError,
		Metadata:   nonNull(e.Metadata),
		Progress:   e.Progress,
		Duration:   e.Duration,
		NumPages:   e.NumPages,
		TrackedAt:  formatTime(e.TrackedAt),
		ObservedAt: formatTime(e.ObservedAt),
		Polls:      e.Polls,
	})
}

// UnmarshalJSON reads the contract's body; absent times stay zero.
func (e *Event) UnmarshalJSON(data []byte) error {
	var w wireEvent
	if err := json.Unmarshal(data, &w); err != nil {
		return err
	}
	tracked, err := parseTime(w.TrackedAt)
	if err != nil {
		return fmt.Errorf("tracked_at: %w", err)
	}
	observed, err := parseTime(w.ObservedAt)
	if err != nil {
		return fmt.Errorf("observed_at: %w", err)
	}
	*e = Event{
		JobID:        w.JobID,
		Kind:         w.Kind,
		Status:       w.Status,
		Type:         w.Type,
		Reason:       w.Reason,
		Error:        w.Error,
		Result:       w.Result,
		ResultRef:    w.ResultRef,
		CaptureError: w.CaptureErr,
		Metadata:     w.Metadata,
		Progress:     w.Progress,
		Duration:     w.Duration,
		NumPages:     w.NumPages,
		TrackedAt:    tracked,
		ObservedAt:   observed,
		Polls:        w.Polls,
	}
	return nil
}

// Decode parses an event message body. It fails with [ErrMalformedEvent] when the body is not
// JSON or lacks job_id or kind. Kinds it does not know are accepted, so that consumers built
// on this package keep working if the contract ever gains a kind.
func Decode(data []byte) (*Event, error) {
	var ev Event
	if err := json.Unmarshal(data, &ev); err != nil {
		// The error of encoding/json names an offset and a character, never the body.
		return nil, fmt.Errorf("%w: %w", ErrMalformedEvent, err)
	}
	if ev.JobID == "" {
		return nil, fmt.Errorf("%w: no job_id", ErrMalformedEvent)
	}
	if ev.Kind == "" {
		return nil, fmt.Errorf("%w: no kind", ErrMalformedEvent)
	}
	return &ev, nil
}

func formatTime(t time.Time) string {
	if t.IsZero() {
		return ""
	}
	return t.UTC().Format(timeLayout)
}

func parseTime(s string) (time.Time, error) {
	if s == "" {
		return time.Time{}, nil
	}
	t, err := time.Parse(time.RFC3339Nano, s)
	if err != nil {
		return time.Time{}, err
	}
	return t.UTC(), nil
}

// nonNull maps a JSON null to "absent", so that a null from upstream is not padded into the body.
func nonNull(raw json.RawMessage) json.RawMessage {
	if bytes.Equal(bytes.TrimSpace(raw), []byte("null")) {
		return nil
	}
	return raw
}
