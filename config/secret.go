package config

import (
	"fmt"
	"log/slog"
	"strconv"
)

// redacted is what every printing path shows instead of a set secret.
const redacted = "[redacted]"

// Secret is a configuration value that must never be printed: an API key, a password, a
// token or a signing secret. Every way of printing it (fmt verbs including %#v, slog, JSON,
// text marshalling) shows "[redacted]" when it is set and an empty string when it is not, so
// that logging a whole [Config] is safe and an operator can still see which secrets are set.
// Use [Secret.Reveal] where the value itself is needed (an Authorization header).
type Secret string

// Reveal returns the secret's value. Call it only where the value is sent, never to log it.
func (s Secret) Reveal() string { return string(s) }

// IsSet reports whether the secret has a non-empty value.
func (s Secret) IsSet() bool { return s != "" }

// String returns "[redacted]" when the secret is set and "" when it is not.
func (s Secret) String() string {
	if s == "" {
		return ""
	}
	return redacted
}

// GoString returns the quoted redacted form, so %#v of a [Config] stays valid Go syntax:
// "[redacted]" when set, "" when not.
func (s Secret) GoString() string { return strconv.Quote(s.String()) }

// Format implements [fmt.Formatter] so that no verb (%v, %+v, %#v, %s, %q, %x, %d...) and
// no width or flag can reach the value: the verb is applied to the redacted string instead.
func (s Secret) Format(f fmt.State, verb rune) {
	fmt.Fprintf(f, fmt.FormatString(f, verb), s.String())
}

// LogValue implements [slog.LogValuer]: the redacted form.
func (s Secret) LogValue() slog.Value { return slog.StringValue(s.String()) }

// MarshalText implements [encoding.TextMarshaler]: the redacted form.
func (s Secret) MarshalText() ([]byte, error) { return []byte(s.String()), nil }

// MarshalJSON implements [encoding/json.Marshaler]: the redacted form as a JSON string.
func (s Secret) MarshalJSON() ([]byte, error) { return []byte(strconv.Quote(s.String())), nil }

// SecretValues returns the values of every secret of c that is set (the Reducto API key, the
// webhook secret and token, the NATS password and token, the embedded server's token), for a
// redactor of the text that leaves the bridge.
func (c *Config) SecretValues() []string {
	var out []string
	for _, s := range []Secret{c.APIKey, c.WebhookSecret, c.WebhookToken, c.NATSPassword, c.NATSToken, c.EmbeddedNATSToken} {
		if s.IsSet() {
			out = append(out, s.Reveal())
		}
	}
	return out
}
