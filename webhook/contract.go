package webhook

import (
	"encoding/base64"
	"errors"
	"fmt"
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
