// Package redact removes configured secret values (the webhook token and secret, the Reducto
// key, NATS credentials) from text that leaves the bridge: a command's error description, a
// log line, $SRV.STATS. Text from outside, such as a Reducto error message that echoes the
// request, may quote a secret the bridge sent, in any of the encodings it was sent in.
package redact

import (
	"bytes"
	"encoding/json"
	"net/url"
	"slices"
	"strings"
)

// Placeholder replaces every secret, as config.Secret prints a set secret.
const Placeholder = "[redacted]"

// Redactor replaces secrets in text. The nil *Redactor, and one with no secrets, leave text as
// it is. It is safe for concurrent use.
type Redactor struct{ r *strings.Replacer }

// New returns a Redactor of the non-empty secrets. Each is also found in the forms it takes
// in a URL query or path and inside a JSON string.
func New(secrets ...string) *Redactor {
	var forms []string
	for _, s := range secrets {
		if s == "" {
			continue
		}
		forms = append(forms, s, url.QueryEscape(s), url.PathEscape(s), jsonEscape(s, true), jsonEscape(s, false))
	}
	if len(forms) == 0 {
		return nil
	}
	// Longest first: at each position the first matching form, in this order, is replaced.
	slices.SortFunc(forms, func(a, b string) int { return len(b) - len(a) })
	forms = slices.Compact(forms)
	pairs := make([]string, 0, 2*len(forms))
	for _, f := range forms {
		pairs = append(pairs, f, Placeholder)
	}
	return &Redactor{r: strings.NewReplacer(pairs...)}
}

// String returns s with every secret replaced by [Placeholder].
func (r *Redactor) String(s string) string {
	if r == nil {
		return s
	}
	return r.r.Replace(s)
}

// jsonEscape is s as it appears between the quotes of a JSON string, with or without the
// HTML escaping of encoding/json.
func jsonEscape(s string, html bool) string {
	var b bytes.Buffer
	enc := json.NewEncoder(&b)
	enc.SetEscapeHTML(html)
	_ = enc.Encode(s) // a string always encodes
	out := strings.TrimSuffix(b.String(), "\n")
	return out[1 : len(out)-1]
}
