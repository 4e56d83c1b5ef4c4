package track

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"unicode/utf8"

	"github.com/reducto-bridge/reducto-bridge/webhook"
)

// DefaultMaxMetadata is the largest metadata a track body may carry (docs/contract.md
// section 1: at most 64 KiB); [ParseBody] drops larger metadata.
const DefaultMaxMetadata = 64 << 10

// Request is the optional body of a track message: empty, or this JSON object. Other keys are
// ignored.
type Request struct {
	// Metadata is echoed in the job's events, without the direct-webhook token (a top-level
	// "webhook_token" member, see webhook.StripToken): neither encoded nor parsed.
	Metadata json.RawMessage `json:"metadata,omitempty"`
	// Webhook says that Reducto will announce the job's end by webhook to this bridge, so the
	// poll schedule is only a safety net and may be sparse (an extension of the contract).
	Webhook bool `json:"webhook,omitempty"`
}

// encode is the track body of r: empty when r says nothing. The metadata's webhook token is
// never stored.
func (r Request) encode() ([]byte, error) {
	r.Metadata = webhook.StripToken(r.Metadata)
	if len(r.Metadata) == 0 && !r.Webhook {
		return nil, nil
	}
	body, err := json.Marshal(r)
	if err != nil {
		return nil, fmt.Errorf("encode track body: %w", err)
	}
	return body, nil
}

// Why a non-empty track body yields no metadata, matched with errors.Is (or, for the size,
// errors.As with [*MetadataTooLargeError]).
var (
	ErrBodyNotObject   = errors.New("track body is not a JSON object")
	ErrMetadataNotUTF8 = errors.New("track metadata is not valid UTF-8")
)

// MetadataTooLargeError: the metadata exceeds the maximum given to [ParseBody].
type MetadataTooLargeError struct{ Size, Max int }

func (e *MetadataTooLargeError) Error() string {
	return fmt.Sprintf("track metadata of %d bytes, at most %d", e.Size, e.Max)
}

// ParseBody reads a track body: the metadata to echo in the job's events (nil when there is
// none) and the webhook flag, or the reason a non-empty body yields no metadata (the flag is
// still read then). Metadata comes out as valid JSON and valid UTF-8 or not at all:
// encoding/json copies a raw value's bytes as they are, and an event with invalid UTF-8 in it
// is not JSON to a strict consumer. Metadata longer than maxMetadata bytes is dropped. A
// top-level "webhook_token" member is removed (webhook.StripToken), whoever published the body:
// the direct-webhook token never reaches an event; metadata that held only the token is none.
func ParseBody(body []byte, maxMetadata int) (Request, error) {
	body = bytes.TrimSpace(body)
	if len(body) == 0 {
		return Request{}, nil
	}
	var req Request
	if err := json.Unmarshal(body, &req); err != nil {
		return Request{}, fmt.Errorf("%w: %w", ErrBodyNotObject, err)
	}
	switch {
	case len(req.Metadata) > maxMetadata:
		return Request{Webhook: req.Webhook}, &MetadataTooLargeError{Size: len(req.Metadata), Max: maxMetadata}
	case !utf8.Valid(req.Metadata):
		return Request{Webhook: req.Webhook}, ErrMetadataNotUTF8
	case bytes.Equal(req.Metadata, []byte("null")):
		req.Metadata = nil
	}
	req.Metadata = webhook.StripToken(req.Metadata)
	return req, nil
}
