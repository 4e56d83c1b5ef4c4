package config

import (
	"errors"
	"fmt"
	"net/url"
	"slices"
	"strconv"
	"strings"
)

// NATSSchemes are the URL schemes nats.go connects with: nats (TCP, TLS if the server asks
// or NATS_CA/NATS_CERT is set), tls (TCP with TLS required), ws and wss (websocket).
var NATSSchemes = []string{"nats", "tls", "ws", "wss"}

// RedactURL returns the URL s without its user information: no user name, password or token
// (nats://token@host puts the token where a user name goes, which [url.URL.Redacted] would
// keep). It works on text, so even a URL that does not parse is shown without it: everything
// from the scheme to the last '@' goes. Use it for any URL from the environment that appears
// in a log line, an error or /readyz.
func RedactURL(s string) string {
	scheme, rest, ok := strings.Cut(s, "://")
	if !ok {
		scheme, rest = "", s
	}
	if i := strings.LastIndex(rest, "@"); i >= 0 {
		rest = rest[i+1:]
	}
	if !ok {
		return rest
	}
	return scheme + "://" + rest
}

// RedactURLs applies [RedactURL] to every entry of a comma-separated list such as NATS_URL,
// and returns them joined with ", " (empty entries dropped).
func RedactURLs(list string) string {
	var out []string
	for u := range strings.SplitSeq(list, ",") {
		if u = strings.TrimSpace(u); u != "" {
			out = append(out, RedactURL(u))
		}
	}
	return strings.Join(out, ", ")
}

// natsURLErrors checks every entry of NATS_URL as nats.go will read it: a URL with a scheme
// of [NATSSchemes], a host and, if given, a port in 1-65535. A bare host or host:port is what
// nats.go accepts too, as nats:// (tls:// with NATS_CA or NATS_CERT). Websocket and
// non-websocket URLs cannot be mixed. The messages show entries only through [RedactURL].
func natsURLErrors(list string) []error {
	var errs []error
	var ws, plain bool
	for entry := range strings.SplitSeq(list, ",") {
		entry = strings.TrimSpace(entry)
		if entry == "" {
			errs = append(errs, errors.New("has an empty entry in its comma-separated list"))
			continue
		}
		scheme, err := checkNATSURL(entry)
		if err != nil {
			errs = append(errs, err)
			continue
		}
		if scheme == "ws" || scheme == "wss" {
			ws = true
		} else {
			plain = true
		}
	}
	if ws && plain {
		errs = append(errs, errors.New("mixes websocket (ws, wss) and non-websocket URLs, which nats.go refuses"))
	}
	return errs
}

// checkNATSURL checks one NATS_URL entry and returns its scheme.
func checkNATSURL(entry string) (string, error) {
	shown := RedactURL(entry)
	full := entry
	if !strings.Contains(entry, "://") {
		full = "nats://" + entry // what nats.go does with a bare host:port
	}
	u, err := url.Parse(full)
	if err != nil {
		if strings.Contains(entry, "@") {
			// The parser's message may quote a piece of the user information (an unescaped
			// '/' or '?' in a password moves it into the host), so it is not repeated.
			return "", fmt.Errorf("%q is not a valid URL (percent-encode any / ? # @ or : in its user name or password)", shown)
		}
		var uerr *url.Error
		if errors.As(err, &uerr) {
			err = uerr.Err
		}
		return "", fmt.Errorf("%q is not a valid URL: %w", shown, err)
	}
	if !slices.Contains(NATSSchemes, u.Scheme) {
		return "", fmt.Errorf("%q has scheme %q (want %s)", shown, u.Scheme, schemeList())
	}
	if u.Hostname() == "" {
		return "", fmt.Errorf("%q has no host", shown)
	}
	if p := u.Port(); p != "" {
		if n, err := strconv.ParseUint(p, 10, 16); err != nil || n == 0 {
			return "", fmt.Errorf("%q has an invalid port %q (want 1-65535)", shown, p)
		}
	}
	return u.Scheme, nil
}

// schemeList is "nats, tls, ws or wss".
func schemeList() string {
	n := len(NATSSchemes)
	return strings.Join(NATSSchemes[:n-1], ", ") + " or " + NATSSchemes[n-1]
}
