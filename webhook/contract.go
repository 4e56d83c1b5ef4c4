package webhook

import (
	"bytes"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/url"
	"strings"
)

// The webhook contract, in one place: where the endpoint is, where a direct webhook carries
// its token, what a Svix secret looks like, and the URL the bridge asks Reducto to call.
const (
	// Path is where the bridge's HTTP server mounts the handler.
	Path = "/webhooks/reducto"
	// TokenParam and TokenMetadataKey are where a direct webhook carries the shared token:
	// the URL's query, or the job's metadata.
	TokenParam       = "token"
	TokenMetadataKey = "webhook_token"
	// SecretPrefix starts every Svix endpoint signing secret.
	SecretPrefix = "whsec_"
)

// Why a Svix secret is unusable; both match [ErrBadSecret].
var (
	ErrBadSecret      = errors.New("webhook: secret must be whsec_ followed by base64")
	ErrSecretPrefix   = fmt.Errorf("%w: it does not start with %s", ErrBadSecret, SecretPrefix)
	ErrSecretEncoding = fmt.Errorf("%w: the part after %s is not non-empty standard base64", ErrBadSecret, SecretPrefix)
)

// ParseSecret returns the HMAC key of a Svix secret ("whsec_" + standard base64). Its errors
// never contain the secret.
func ParseSecret(secret string) ([]byte, error) {
	raw, ok := strings.CutPrefix(secret, SecretPrefix)
	if !ok {
		return nil, ErrSecretPrefix
	}
	key, err := base64.StdEncoding.DecodeString(raw)
	if err != nil || len(key) == 0 {
		return nil, ErrSecretEncoding
	}
	return key, nil
}

// ErrBadPublicURL reports a public URL that is not an absolute http(s) URL.
var ErrBadPublicURL = errors.New("webhook: public URL must be an absolute http(s) URL")

// URL is the address a direct-mode webhook is sent to: publicURL + [Path], with the token
// (when not empty) as the [TokenParam] query parameter.
func URL(publicURL, token string) (string, error) {
	u, err := url.Parse(publicURL)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return "", ErrBadPublicURL
	}
	u = u.JoinPath(Path)
	if token != "" {
		q := u.Query()
		q.Set(TokenParam, token)
		u.RawQuery = q.Encode()
	}
	return u.String(), nil
}

// StripToken returns metadata without its top-level [TokenMetadataKey] members, so the shared
// token of direct webhooks never reaches an event or a stored track message. Everything else
// is kept byte for byte (key order, values and escapes included): only the members that hold
// the key are cut out, with their separating comma and the spaces around it. Metadata that is not a JSON object, or
// has no such member, is returned as it is; an object that held nothing but the token becomes
// nil (no metadata). Keys match exactly, after JSON unescaping, as the webhook handler reads
// them.
func StripToken(metadata json.RawMessage) json.RawMessage {
	trimmed := bytes.TrimSpace(metadata)
	if len(trimmed) == 0 || trimmed[0] != '{' || !bytes.Contains(metadata, []byte("token")) && !bytes.Contains(metadata, []byte(`\u`)) {
		return metadata
	}
	// Each member's span [start, end): start is where the decoder stood before its key (right
	// after '{' or after the previous value, so before the comma that precedes it), end is
	// right after its value.
	type span struct {
		start, end int64
		token      bool
	}
	dec := json.NewDecoder(bytes.NewReader(metadata))
	if tok, err := dec.Token(); err != nil || tok != json.Delim('{') {
		return metadata
	}
	var members []span
	found := false
	for dec.More() {
		start := dec.InputOffset()
		key, err := dec.Token()
		if err != nil {
			return metadata
		}
		var value json.RawMessage
		if err := dec.Decode(&value); err != nil {
			return metadata
		}
		isToken := key == TokenMetadataKey
		found = found || isToken
		members = append(members, span{start: start, end: dec.InputOffset(), token: isToken})
	}
	if tok, err := dec.Token(); err != nil || tok != json.Delim('}') {
		return metadata
	}
	if _, err := dec.Token(); err != io.EOF {
		return metadata // trailing data: not one JSON value
	}
	if !found {
		return metadata
	}
	// Keep the bytes before the first member, then every kept member (the first kept one
	// without the comma its span starts with; every span but the first starts with one), then
	// the rest after the last member.
	out := make([]byte, 0, len(metadata))
	out = append(out, metadata[:members[0].start]...)
	kept := 0
	for _, m := range members {
		if m.token {
			continue
		}
		part := metadata[m.start:m.end]
		if kept == 0 {
			if i := bytes.IndexByte(part, ','); i >= 0 && len(bytes.TrimSpace(part[:i])) == 0 {
				part = part[i+1:]
			}
		}
		out = append(out, part...)
		kept++
	}
	if kept == 0 {
		return nil
	}
	out = append(out, metadata[members[len(members)-1].end:]...)
	return out
}
