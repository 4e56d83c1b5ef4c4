package command

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"net/http"
	"strconv"

	"github.com/reducto-bridge/reducto-bridge/reducto"
	"github.com/reducto-bridge/reducto-bridge/track"
)

// Reducto's failures become reply codes here. Which 4xx answers mean what depends on the call
// (a 404 on a job is "unknown job", on a submission "rejected"), so each caller handles its
// 4xx first and hands the rest to reductoFailure.

// jobFailure maps a failed GetJob or CancelJob.
func jobFailure(err error, cancelling bool) result {
	var apiErr *reducto.APIError
	if errors.As(err, &apiErr) {
		switch apiErr.StatusCode {
		case http.StatusNotFound:
			return result{code: 404, desc: "unknown job", err: err}
		case http.StatusGone:
			return result{code: 409, desc: "job deleted", err: err}
		case http.StatusConflict:
			// On GET /job a 409 means the deletion is in progress; on POST /cancel Reducto
			// does not document it, so its own words are passed on.
			if cancelling {
				return result{code: 409, desc: "reducto refused the cancel" + apiMessage(apiErr), err: err}
			}
			return result{code: 409, desc: "job deleted", err: err}
		}
	}
	return reductoFailure(err)
}

// submitFailure maps a failed Submit: a 4xx about the request itself is the caller's (422).
func submitFailure(err error) result {
	var apiErr *reducto.APIError
	if errors.As(err, &apiErr) && apiErr.StatusCode >= 400 && apiErr.StatusCode < 500 {
		switch apiErr.StatusCode {
		case http.StatusUnauthorized, http.StatusForbidden, http.StatusRequestTimeout, http.StatusTooManyRequests:
		default:
			return result{code: 422, desc: "reducto rejected the request" + apiStatusMessage(apiErr), err: err}
		}
	}
	return reductoFailure(err)
}

// reductoFailure maps what is not specific to one call: 429 is 429; the bridge's key refused
// is 502; Reducto's 5xx, malformed answers and other unexpected answers are 502; no answer at
// all (network, timeout) is 503.
func reductoFailure(err error) result {
	var apiErr *reducto.APIError
	switch {
	case errors.Is(err, reducto.ErrRateLimited):
		desc := "reducto rate limit"
		if d, ok := reducto.RetryAfter(err); ok {
			desc += fmt.Sprintf(", retry after %s", d)
		}
		return result{code: 429, desc: desc, err: err}
	case errors.Is(err, reducto.ErrUnauthorized):
		return result{code: 502, desc: "reducto rejected the bridge's API key", err: err}
	case errors.Is(err, reducto.ErrMalformedResponse):
		return result{code: 502, desc: "reducto sent a malformed response", err: err}
	case errors.As(err, &apiErr) && apiErr.StatusCode == http.StatusRequestTimeout:
		return result{code: 503, desc: "reducto unreachable: request timeout", err: err}
	case errors.As(err, &apiErr):
		return result{code: 502, desc: "reducto error" + apiStatusMessage(apiErr), err: err}
	case reducto.IsTransient(err) || errors.Is(err, context.Canceled):
		return result{code: 503, desc: "reducto unreachable: " + cause(err), err: err}
	default:
		// A TLS misconfiguration, say: permanent, and not the caller's fault.
		return result{code: 502, desc: "reducto call failed: " + cause(err), err: err}
	}
}

// trackFailure is the 503 for a job Reducto accepted a command for but the bridge could not
// track: desc, and why when the track stream is full (BRIDGE_TRACK_MAX_JOBS or
// BRIDGE_TRACK_MAX_BYTES reached), so the caller knows that retrying soon will not help
// until jobs end or the limit is raised.
func trackFailure(desc, jobID string, err error) result {
	if errors.Is(err, track.ErrFull) {
		desc += ": " + track.ErrFull.Error() + " (too many outstanding jobs)"
	}
	return result{code: 503, desc: desc, jobID: jobID, err: err}
}

// apiMessage is ": <Reducto's message>", or empty.
func apiMessage(e *reducto.APIError) string {
	if e.Message == "" {
		return ""
	}
	return ": " + e.Message
}

// apiStatusMessage is " (<status>): <Reducto's message>".
func apiStatusMessage(e *reducto.APIError) string {
	return " (" + strconv.Itoa(e.StatusCode) + ")" + apiMessage(e)
}

// cause is a short reason for a failure without an answer: "timeout", or the innermost error
// ("connection refused"), without the URL and operation around it.
func cause(err error) string {
	var netErr net.Error
	if errors.Is(err, context.DeadlineExceeded) || (errors.As(err, &netErr) && netErr.Timeout()) {
		return "timeout"
	}
	for {
		next := errors.Unwrap(err)
		if next == nil {
			return err.Error()
		}
		err = next
	}
}

// isNull reports an absent or JSON null value.
func isNull(raw json.RawMessage) bool {
	return len(raw) == 0 || bytes.Equal(bytes.TrimSpace(raw), []byte("null"))
}

// object decodes a JSON object into its members, values kept byte-for-byte. It fails on
// anything else, null included.
func object(raw json.RawMessage) (map[string]json.RawMessage, bool) {
	if isNull(raw) {
		return nil, false
	}
	var m map[string]json.RawMessage
	if err := json.Unmarshal(raw, &m); err != nil {
		return nil, false
	}
	return m, true
}

// encode writes v as compact JSON without escaping <, > and & (the HTML escaping of
// json.Marshal would change the caller's strings).
func encode(v any) (json.RawMessage, error) {
	var b bytes.Buffer
	enc := json.NewEncoder(&b)
	enc.SetEscapeHTML(false)
	if err := enc.Encode(v); err != nil {
		return nil, err
	}
	return bytes.TrimSuffix(b.Bytes(), []byte("\n")), nil
}

// notUTF8 describes a request that is not UTF-8, which JSON must be (RFC 8259 section 8.1).
const notUTF8 = "bad request: not valid UTF-8"

// badRequest describes a request that could not be decoded as a JSON object.
func badRequest(data []byte) result {
	if !json.Valid(data) {
		return fail(400, "bad request: not valid json")
	}
	return fail(400, "bad request: not a json object")
}
