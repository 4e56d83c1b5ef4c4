package reducto

import (
	"bytes"
	"context"
	"crypto/x509"
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"net/http"
	"regexp"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"
)

// Sentinel errors, matched with errors.Is against errors returned by [Client] methods. An
// [*APIError] matches the sentinel of its HTTP status. Whether a failure is worth repeating is
// [IsTransient]'s answer, not the sentinel's.
var (
	// ErrNotFound: Reducto answered 404 (unknown job id). Permanent, unless the body was not
	// JSON (see [ErrMalformedResponse]).
	ErrNotFound = errors.New("reducto: not found")
	// ErrGone: the job was deleted: 410, or 409 while its deletion is in progress. Permanent,
	// unless the body was not JSON.
	ErrGone = errors.New("reducto: job deleted")
	// ErrUnauthorized: 401 or 403, the API key is missing, wrong or not allowed, whatever the
	// body holds (Reducto's docs say a missing key gets an HTML page: that 401 or 403 is
	// unauthorized only, never also [ErrMalformedResponse]). Not transient: the key does not
	// heal by waiting, and it says nothing about the job.
	ErrUnauthorized = errors.New("reducto: unauthorized")
	// ErrRateLimited: 429, of any of the three kinds (see [APIError.RateLimitCode]). Transient.
	ErrRateLimited = errors.New("reducto: rate limited")
	// ErrMalformedResponse: a response Reducto could not have meant: a 200 whose body is not
	// the expected object (truncated JSON, an HTML page, a job without a string status), or an
	// error status other than 401 and 403 whose body is not JSON (an HTML page from a proxy or
	// load balancer in front of Reducto). Transient.
	ErrMalformedResponse = errors.New("reducto: malformed response")
	// ErrRedirect: Reducto (or something in front of it) answered 3xx. The client never
	// follows a redirect, which would send the API key to another address, possibly over
	// plain http; the base URL is wrong. Not transient: it does not heal by waiting.
	ErrRedirect = errors.New("reducto: redirect not followed")
)

// Rate-limit codes from Reducto's 429 bodies (docs.reducto.ai/reference/rate-limits).
const (
	// RateLimitAll is "[CODE 1000] rate limit exceeded, retry with exponential backoff": the
	// all-endpoints limit (1,000 req/s per key).
	RateLimitAll = 1000
	// RateLimitPolling is "[CODE 2000] ... please use webhooks instead of polling": the
	// GET /job limit (200 req/s per key).
	RateLimitPolling = 2000
)

// APIError is an HTTP error answer from Reducto. It never contains the API key.
type APIError struct {
	// Op is what the client was doing ("get job", "cancel job", "list jobs", "submit parse").
	Op string
	// StatusCode is the HTTP status.
	StatusCode int
	// Message is Reducto's message, read from any documented body shape: FastAPI's "detail"
	// (a string or a list of {loc, msg}), {"error": {"message"}}, or a flat {"message"}. It is
	// cut to 512 bytes (on a rune boundary, then "...").
	Message string
	// Name is Reducto's error type or name when the body carries one (e.g. "JOB_DELETED").
	Name string
	// RateLimitCode is 1000 or 2000 for documented 429s, 0 for a code-less (infra-shed) 429.
	RateLimitCode int
	// RetryAfter is the server's Retry-After (or retry-after-ms), capped; 0 when absent.
	RetryAfter time.Duration
}

func (e *APIError) Error() string {
	var b strings.Builder
	b.WriteString("reducto: ")
	if e.Op != "" {
		b.WriteString(e.Op)
		b.WriteString(": ")
	}
	b.WriteString(strconv.Itoa(e.StatusCode))
	if t := http.StatusText(e.StatusCode); t != "" {
		b.WriteString(" ")
		b.WriteString(t)
	}
	if e.Message != "" {
		b.WriteString(": ")
		b.WriteString(e.Message)
	}
	return b.String()
}

// Is makes errors.Is(err, ErrNotFound) and friends work on an *APIError.
func (e *APIError) Is(target error) bool {
	switch target {
	case ErrNotFound:
		return e.StatusCode == http.StatusNotFound
	case ErrGone:
		return e.StatusCode == http.StatusGone || e.StatusCode == http.StatusConflict
	case ErrUnauthorized:
		return unauthorized(e.StatusCode)
	case ErrRateLimited:
		return e.StatusCode == http.StatusTooManyRequests
	case ErrMalformedResponse:
		return e.Name == malformedName && !unauthorized(e.StatusCode)
	case ErrRedirect:
		return e.StatusCode >= 300 && e.StatusCode <= 399
	}
	return false
}

// malformedName marks an APIError built from an error status other than 401 and 403 whose
// body was not JSON (an HTML page from a proxy, say).
const malformedName = "malformed"

// redirectName marks an APIError built from a 3xx answer, whose body is never read.
const redirectName = "redirect"

func unauthorized(status int) bool {
	return status == http.StatusUnauthorized || status == http.StatusForbidden
}

// IsTransient reports whether a failed call may succeed if repeated later. For an
// [*APIError], by status:
//
//   - 401, 403: never transient ([ErrUnauthorized]), whatever the body (JSON, HTML or empty).
//   - every 3xx: never transient ([ErrRedirect]): the client does not follow redirects, and a
//     base URL that answers one is misconfigured.
//   - 408, 429 (all three kinds): transient.
//   - every 5xx (500 to 599), 500 included: transient. Reducto documents its 500s as "not
//     retriable", but that is about processing a document; a 500 on a status read says
//     nothing about the job, and Reducto's own SDKs retry every 5xx.
//   - any other 4xx (400, 404, 409, 410, 422, 442, ...) with a JSON or empty body: permanent.
//   - any other status whose body is not JSON ([ErrMalformedResponse]): transient. An HTML 404
//     or 400 comes from a proxy or load balancer in front of Reducto, not from Reducto, so it
//     says nothing about the job either.
//
// Without an HTTP answer: network errors (refused, reset, truncated body), per-request
// timeouts and malformed 2xx bodies ([ErrMalformedResponse]) are transient; TLS certificate
// errors and invalid arguments (refused before sending) are not; a cancelled context is not
// transient: the caller gave up.
//
// [Client.CancelJob] retries what this reports (a cancel is idempotent); [Client.Submit]
// does not use it (see there).
func IsTransient(err error) bool {
	if err == nil || errors.Is(err, context.Canceled) {
		return false
	}
	var apiErr *APIError
	if errors.As(err, &apiErr) {
		switch s := apiErr.StatusCode; {
		case unauthorized(s):
			return false
		case s == http.StatusRequestTimeout, s == http.StatusTooManyRequests:
			return true
		case s >= 500 && s <= 599:
			return true
		}
		return apiErr.Name == malformedName
	}
	var certErr *x509.UnknownAuthorityError
	var hostErr x509.HostnameError
	var invalidErr x509.CertificateInvalidError
	if errors.As(err, &certErr) || errors.As(err, &hostErr) || errors.As(err, &invalidErr) {
		return false // a TLS misconfiguration does not heal by waiting
	}
	if errors.Is(err, errInvalidArgument) {
		return false
	}
	// Anything else came from the transport or the body: connection refused or reset, a
	// per-request timeout, a truncated body, a limiter wait that cannot finish in time.
	return true
}

// RetryAfter returns the server-requested delay carried by err, if any.
func RetryAfter(err error) (time.Duration, bool) {
	var apiErr *APIError
	if errors.As(err, &apiErr) && apiErr.RetryAfter > 0 {
		return apiErr.RetryAfter, true
	}
	return 0, false
}

// errInvalidArgument marks calls refused before any request was sent.
var errInvalidArgument = errors.New("reducto: invalid argument")

// parseRetryAfter reads retry-after-ms (milliseconds) or Retry-After (seconds or an HTTP
// date), caps it at max and never returns a negative delay.
func parseRetryAfter(h http.Header, now time.Time, max time.Duration) time.Duration {
	var d time.Duration
	if v := strings.TrimSpace(h.Get("Retry-After-Ms")); v != "" {
		if ms, err := strconv.ParseFloat(v, 64); err == nil && ms > 0 {
			d = saturatingDuration(ms, time.Millisecond)
		}
	}
	if v := strings.TrimSpace(h.Get("Retry-After")); d == 0 && v != "" {
		if s, err := strconv.ParseFloat(v, 64); err == nil {
			if s > 0 {
				d = saturatingDuration(s, time.Second)
			}
		} else if t, err := http.ParseTime(v); err == nil {
			d = t.Sub(now)
		}
	}
	if d < 0 {
		d = 0
	}
	if max > 0 && d > max {
		d = max
	}
	return d
}

// maxMessage caps [APIError.Message] (bytes, before the "..." that marks a cut): an error page
// can be megabytes, and the message travels into logs, events and command replies.
const maxMessage = 512

// saturatingDuration is n units (n > 0, possibly +Inf) as a Duration. Converting a float
// beyond the int64 range is implementation-defined in Go (on amd64 it gives the most negative
// Duration), which turned a server's "wait 1e10 seconds" into "retry at once"; a value too
// large saturates instead, and the cap applies to it.
func saturatingDuration(n float64, unit time.Duration) time.Duration {
	f := n * float64(unit)
	if f >= math.MaxInt64 {
		return math.MaxInt64
	}
	return time.Duration(f)
}

var rateLimitCodeRE = regexp.MustCompile(`\[CODE (\d+)\]`)

// errorBody covers every documented error shape; unknown shapes leave it empty.
type errorBody struct {
	Detail  json.RawMessage `json:"detail"`
	Message string          `json:"message"`
	Error   *struct {
		Message string          `json:"message"`
		Type    string          `json:"type"`
		Name    string          `json:"name"`
		Code    json.RawMessage `json:"code"`
	} `json:"error"`
}

type validationItem struct {
	Loc []any  `json:"loc"`
	Msg string `json:"msg"`
}

// newAPIError builds the error of a non-2xx answer from its status, headers and body. scrub
// (nil: none) is applied to every text taken from the answer, after JSON decoding (a key the
// server wrote with \u escapes only appears then) and before the message is cut (a key
// straddling the cut would leave a prefix behind).
func newAPIError(op string, status int, h http.Header, body []byte, now time.Time, retryAfterMax time.Duration, scrub func(string) string) *APIError {
	e := &APIError{Op: op, StatusCode: status, RetryAfter: parseRetryAfter(h, now, retryAfterMax)}
	var eb errorBody
	trimmed := bytes.TrimSpace(body)
	if len(trimmed) == 0 {
		// Nothing to read; the status says it all.
	} else if err := json.Unmarshal(trimmed, &eb); err != nil {
		// A 401 or 403 with an HTML page is what Reducto's docs say a missing key gets: the
		// status is the answer, and the error is unauthorized only. Any other status with a
		// body that is not JSON did not come from Reducto's API (a proxy's error page).
		if !unauthorized(status) {
			e.Name = malformedName
		}
		e.Message = fmt.Sprintf("non-JSON error body (%s, %d bytes)", contentType(h), len(body))
	} else {
		switch {
		case eb.Error != nil && eb.Error.Message != "":
			e.Message = eb.Error.Message
			e.Name = eb.Error.Type
			if eb.Error.Name != "" {
				e.Name = eb.Error.Name
			}
		case len(eb.Detail) > 0:
			e.Message = detailMessage(eb.Detail)
		case eb.Message != "":
			e.Message = eb.Message
		}
	}
	if scrub != nil {
		e.Message, e.Name = scrub(e.Message), scrub(e.Name)
	}
	if status == http.StatusTooManyRequests {
		if m := rateLimitCodeRE.FindStringSubmatch(e.Message); m != nil {
			e.RateLimitCode, _ = strconv.Atoi(m[1])
		}
	}
	if len(e.Message) > maxMessage {
		// Cut on a rune boundary, so that a valid message stays valid UTF-8.
		cut := maxMessage
		for cut > 0 && !utf8.RuneStart(e.Message[cut]) {
			cut--
		}
		e.Message = e.Message[:cut] + "..."
	}
	return e
}

// detailMessage renders FastAPI's detail: a string, or a list of validation items.
func detailMessage(raw json.RawMessage) string {
	var s string
	if json.Unmarshal(raw, &s) == nil {
		return s
	}
	var items []validationItem
	if json.Unmarshal(raw, &items) == nil {
		parts := make([]string, 0, len(items))
		for _, it := range items {
			loc := make([]string, 0, len(it.Loc))
			for _, l := range it.Loc {
				loc = append(loc, fmt.Sprint(l))
			}
			if len(loc) > 0 {
				parts = append(parts, strings.Join(loc, ".")+": "+it.Msg)
			} else {
				parts = append(parts, it.Msg)
			}
		}
		return strings.Join(parts, "; ")
	}
	// Any other shape is shown as JSON, re-encoded so that \u escapes are resolved and the
	// scrub sees the text as it reads.
	var v any
	dec := json.NewDecoder(bytes.NewReader(raw))
	dec.UseNumber()
	if dec.Decode(&v) == nil {
		var b bytes.Buffer
		enc := json.NewEncoder(&b)
		enc.SetEscapeHTML(false)
		if enc.Encode(v) == nil {
			return strings.TrimSuffix(b.String(), "\n")
		}
	}
	return string(raw)
}

func contentType(h http.Header) string {
	if ct := h.Get("Content-Type"); ct != "" {
		return ct
	}
	return "no content type"
}
