package config

import (
	"errors"
	"fmt"
	"math"
	"net"
	"net/url"
	"strconv"
	"strings"
	"time"

	"github.com/reducto-bridge/reducto-bridge/subject"
	"github.com/reducto-bridge/reducto-bridge/webhook"
)

// Limits checked by [Config.Validate].
const (
	// MaxStreamReplicas is the largest replica count JetStream allows.
	MaxStreamReplicas = 5
	// MinDuplicateWindow is the smallest deduplication window JetStream accepts.
	MinDuplicateWindow = 100 * time.Millisecond
)

// Validate checks the meaning of every value (ranges, URLs, addresses, the subject prefix and
// the rules between variables) and returns every problem joined with [errors.Join], each a
// [VarError] naming its variable, or nil. It does not require REDUCTO_API_KEY; see
// [Config.RequireAPIKey].
func (c *Config) Validate() error { return errors.Join(c.check()...) }

// RequireAPIKey returns a [VarError] wrapping [ErrRequired] when REDUCTO_API_KEY is empty.
// The bridge proper needs the key; the demo, which talks to the simulator, does not.
func (c *Config) RequireAPIKey() error {
	if !c.APIKey.IsSet() {
		return &VarError{Var: "REDUCTO_API_KEY", Err: ErrRequired}
	}
	return nil
}

// check returns every problem of c, in field order.
func (c *Config) check() []error {
	var errs []error
	bad := func(name, format string, args ...any) {
		errs = append(errs, &VarError{Var: name, Err: fmt.Errorf(format, args...)})
	}
	positive := func(name string, d time.Duration) bool {
		if d <= 0 {
			bad(name, "must be positive, got %s", d)
			return false
		}
		return true
	}

	if err := httpURL(c.BaseURL); err != nil {
		bad("REDUCTO_BASE_URL", "%w", err)
	} else if u, _ := url.Parse(c.BaseURL); u.Scheme == "http" && !loopbackHost(u.Hostname()) && !c.AllowInsecureReducto {
		bad("REDUCTO_BASE_URL", "http://%s is not loopback: the API key would cross the network in clear (use https://, or set BRIDGE_ALLOW_INSECURE_REDUCTO=true to allow it)", u.Host)
	}
	if strings.TrimSpace(c.NATSURL) != "" {
		for _, err := range natsURLErrors(c.NATSURL) {
			errs = append(errs, &VarError{Var: "NATS_URL", Err: err})
		}
	}
	if c.Embedded() {
		// The embedded server takes no credentials and no TLS: these would be ignored, and a
		// deployment meant for a secured server would quietly run on a local one instead.
		for _, name := range c.setNATSClientVars() {
			bad(name, "is set, but NATS_URL is empty: the bridge runs its embedded server, which ignores it (set NATS_URL, or unset %s)", name)
		}
	} else {
		if c.NATSPassword.IsSet() && c.NATSUser == "" {
			bad("NATS_PASSWORD", "is set but NATS_USER is empty")
		}
		if c.NATSUser != "" && !c.NATSPassword.IsSet() {
			bad("NATS_USER", "is set but NATS_PASSWORD is empty")
		}
		if (c.NATSCert == "") != (c.NATSKey == "") {
			if c.NATSCert == "" {
				bad("NATS_CERT", "must be set together with NATS_KEY")
			} else {
				bad("NATS_KEY", "must be set together with NATS_CERT")
			}
		}
	}
	if err := subject.ValidPrefix(c.SubjectPrefix); err != nil {
		bad("BRIDGE_SUBJECT_PREFIX", "%w", err)
	}
	if err := hostPort(c.EmbeddedNATSAddr); err != nil {
		bad("BRIDGE_EMBEDDED_NATS_ADDR", "%w", err)
	} else if host, _, _ := net.SplitHostPort(c.EmbeddedNATSAddr); c.Embedded() && !loopbackHost(host) && !c.EmbeddedNATSToken.IsSet() {
		// Whoever reaches the port could read every result, cancel jobs and submit jobs on
		// the team's Reducto key.
		bad("BRIDGE_EMBEDDED_NATS_ADDR", "%q is not loopback (127.0.0.0/8, ::1, localhost), and BRIDGE_EMBEDDED_NATS_TOKEN is empty: the embedded server would accept anyone who reaches the port (set BRIDGE_EMBEDDED_NATS_TOKEN, listen on 127.0.0.1, or set NATS_URL to a secured NATS server)", c.EmbeddedNATSAddr)
	}
	if c.EmbeddedNATSToken.IsSet() && !c.Embedded() {
		bad("BRIDGE_EMBEDDED_NATS_TOKEN", "is set, but NATS_URL is not empty: there is no embedded server to protect (unset it, or use NATS_TOKEN for the server at NATS_URL)")
	}
	if c.Embedded() && c.DataDir == "" {
		bad("BRIDGE_DATA_DIR", "must be set when the embedded server runs (NATS_URL empty)")
	}

	initialOK := positive("BRIDGE_POLL_INITIAL_INTERVAL", c.PollInitialInterval)
	if positive("BRIDGE_POLL_MAX_INTERVAL", c.PollMaxInterval) && initialOK && c.PollMaxInterval < c.PollInitialInterval {
		bad("BRIDGE_POLL_MAX_INTERVAL", "%s is less than BRIDGE_POLL_INITIAL_INTERVAL (%s)", c.PollMaxInterval, c.PollInitialInterval)
	}
	// The comparisons are written so that NaN fails them too.
	if !(c.PollMultiplier >= 1) || math.IsInf(c.PollMultiplier, 0) {
		bad("BRIDGE_POLL_MULTIPLIER", "must be a finite number >= 1, got %v", c.PollMultiplier)
	}
	if !(c.PollJitter >= 0 && c.PollJitter < 1) {
		bad("BRIDGE_POLL_JITTER", "must be >= 0 and < 1, got %v", c.PollJitter)
	}
	positive("BRIDGE_JOB_TTL", c.JobTTL)
	if !(c.RateLimit > 0) || math.IsInf(c.RateLimit, 0) {
		bad("BRIDGE_RATE_LIMIT", "must be a finite number > 0 (requests per second), got %v", c.RateLimit)
	}
	if !(c.RateLimitAll > 0) || math.IsInf(c.RateLimitAll, 0) {
		bad("BRIDGE_RATE_LIMIT_ALL", "must be a finite number > 0 (requests per second), got %v", c.RateLimitAll)
	}
	if c.Concurrency < 1 {
		bad("BRIDGE_CONCURRENCY", "must be at least 1, got %d", c.Concurrency)
	}
	if err := hostPort(c.HTTPAddr); err != nil {
		bad("BRIDGE_HTTP_ADDR", "%w", err)
	}
	if c.WebhookAddr != "" {
		if err := hostPort(c.WebhookAddr); err != nil {
			bad("BRIDGE_WEBHOOK_ADDR", "%w", err)
		} else if !c.WebhookToken.IsSet() && !c.WebhookSecret.IsSet() {
			// A public port that refuses everything it receives is only attack surface.
			bad("BRIDGE_WEBHOOK_ADDR", "is set, but neither BRIDGE_WEBHOOK_TOKEN nor BRIDGE_WEBHOOK_SECRET is, so every webhook would be refused; set one of them, or unset BRIDGE_WEBHOOK_ADDR")
		} else if c.WebhookAddr == c.HTTPAddr && !strings.HasSuffix(c.WebhookAddr, ":0") {
			bad("BRIDGE_WEBHOOK_ADDR", "is BRIDGE_HTTP_ADDR (%s); use another address, or leave it empty to serve webhooks on BRIDGE_HTTP_ADDR", c.HTTPAddr)
		}
	}
	if c.EventSource == "" {
		bad("BRIDGE_EVENT_SOURCE", "must not be empty (CloudEvents requires ce-source)")
	}
	if c.LogFormat != "text" && c.LogFormat != "json" {
		bad("BRIDGE_LOG_FORMAT", "unknown format %q (want text or json)", c.LogFormat)
	}
	if c.PublicURL != "" {
		if err := httpURL(c.PublicURL); err != nil {
			bad("BRIDGE_PUBLIC_URL", "%w", err)
		} else if !c.WebhookToken.IsSet() && !c.WebhookSecret.IsSet() {
			// The bridge would ask Reducto for webhooks it then refuses (it cannot verify
			// them), and every such job would wait for its safety-net poll.
			bad("BRIDGE_PUBLIC_URL", "is set, but neither BRIDGE_WEBHOOK_TOKEN nor BRIDGE_WEBHOOK_SECRET is, so every webhook would be refused and each job would wait for the safety-net poll (BRIDGE_WEBHOOK_POLL_INTERVAL); set one of them, or unset BRIDGE_PUBLIC_URL to poll only")
		}
	}
	if c.WebhookSecret.IsSet() {
		// The messages never include the value.
		switch _, err := webhook.ParseSecret(c.WebhookSecret.Reveal()); {
		case errors.Is(err, webhook.ErrSecretPrefix):
			bad("BRIDGE_WEBHOOK_SECRET", "must start with %s", webhook.SecretPrefix)
		case err != nil:
			bad("BRIDGE_WEBHOOK_SECRET", "the part after %s must be non-empty standard base64", webhook.SecretPrefix)
		}
	}

	httpOK := positive("BRIDGE_HTTP_TIMEOUT", c.HTTPTimeout)
	positive("BRIDGE_RETRY_AFTER_MAX", c.RetryAfterMax)
	positive("BRIDGE_DRAIN_TIMEOUT", c.DrainTimeout)
	switch {
	case c.StreamReplicas < 1 || c.StreamReplicas > MaxStreamReplicas:
		bad("BRIDGE_STREAM_REPLICAS", "must be between 1 and %d, got %d", MaxStreamReplicas, c.StreamReplicas)
	case c.StreamReplicas > 1 && c.Embedded():
		bad("BRIDGE_STREAM_REPLICAS", "%d needs a NATS cluster, but NATS_URL is empty (the embedded server is a single node)", c.StreamReplicas)
	}
	maxAgeOK := positive("BRIDGE_EVENTS_MAX_AGE", c.EventsMaxAge)
	switch {
	case c.DuplicateWindow < MinDuplicateWindow:
		bad("BRIDGE_DUPLICATE_WINDOW", "must be at least %s, got %s", MinDuplicateWindow, c.DuplicateWindow)
	case maxAgeOK && c.DuplicateWindow > c.EventsMaxAge:
		bad("BRIDGE_DUPLICATE_WINDOW", "%s exceeds BRIDGE_EVENTS_MAX_AGE (%s)", c.DuplicateWindow, c.EventsMaxAge)
	}
	for _, v := range []struct {
		name string
		n    int64
	}{
		{"BRIDGE_EVENTS_MAX_BYTES", c.EventsMaxBytes},
		{"BRIDGE_TRACK_MAX_JOBS", c.TrackMaxJobs},
		{"BRIDGE_TRACK_MAX_BYTES", c.TrackMaxBytes},
	} {
		if v.n < 0 {
			bad(v.name, "must be 0 (unlimited) or more, got %d", v.n)
		}
	}
	positive("BRIDGE_WEBHOOK_POLL_INTERVAL", c.WebhookPollInterval)
	positive("BRIDGE_LIST_INTERVAL", c.ListInterval)
	positive("BRIDGE_LIST_SAFETY_INTERVAL", c.ListSafetyInterval)
	positive("BRIDGE_LIST_DEEP_AGE", c.ListDeepAge)
	positive("BRIDGE_LIST_TRACK_SLACK", c.ListTrackSlack)
	if !(c.ListMaxRate > 0) || math.IsInf(c.ListMaxRate, 0) {
		bad("BRIDGE_LIST_MAX_RATE", "must be a finite number > 0 (pages per second), got %v", c.ListMaxRate)
	}
	if c.TrackAll && !c.ListSweep {
		bad("BRIDGE_TRACK_ALL", "needs BRIDGE_LIST_SWEEP=true: only the list sweep finds the account's jobs")
	}
	if positive("BRIDGE_ACK_WAIT", c.AckWait) && httpOK && c.AckWait <= c.HTTPTimeout {
		bad("BRIDGE_ACK_WAIT", "%s must exceed BRIDGE_HTTP_TIMEOUT (%s), or a slow poll gets redelivered to another replica", c.AckWait, c.HTTPTimeout)
	}
	if c.ReductoMaxBody < 1 {
		bad("BRIDGE_REDUCTO_MAX_BODY", "must be at least 1 (bytes), got %d", c.ReductoMaxBody)
	}
	if c.CaptureMaxBytes < 1 {
		bad("BRIDGE_CAPTURE_MAX_BYTES", "must be at least 1 (bytes), got %d", c.CaptureMaxBytes)
	}
	return errs
}

// setNATSClientVars returns the names of the set variables that configure the connection to an
// external NATS server (credentials and TLS), in field order.
func (c *Config) setNATSClientVars() []string {
	var names []string
	for _, v := range []struct {
		name string
		set  bool
	}{
		{"NATS_CREDS", c.NATSCreds != ""},
		{"NATS_NKEY", c.NATSNKey != ""},
		{"NATS_USER", c.NATSUser != ""},
		{"NATS_PASSWORD", c.NATSPassword.IsSet()},
		{"NATS_TOKEN", c.NATSToken.IsSet()},
		{"NATS_CA", c.NATSCA != ""},
		{"NATS_CERT", c.NATSCert != ""},
		{"NATS_KEY", c.NATSKey != ""},
	} {
		if v.set {
			names = append(names, v.name)
		}
	}
	return names
}

// httpURL checks that s is an absolute http or https URL with a host. Its errors do not echo
// s, which could carry a password.
func httpURL(s string) error {
	u, err := url.Parse(s)
	if err != nil {
		var uerr *url.Error
		if errors.As(err, &uerr) {
			err = uerr.Err
		}
		return fmt.Errorf("not a valid URL: %w", err)
	}
	if u.Scheme != "http" && u.Scheme != "https" || u.Host == "" {
		return fmt.Errorf("%q is not an absolute http(s) URL", u.Redacted())
	}
	return nil
}

// loopbackHost reports whether host (a URL's Hostname) is localhost or a loopback address
// (127.0.0.0/8, ::1). A name is not resolved: only localhost itself counts.
func loopbackHost(host string) bool {
	if strings.EqualFold(strings.TrimSuffix(host, "."), "localhost") {
		return true
	}
	ip := net.ParseIP(host)
	return ip != nil && ip.IsLoopback()
}

// hostPort checks that s is host:port with a numeric port (the host may be empty, meaning
// every interface).
func hostPort(s string) error {
	_, port, err := net.SplitHostPort(s)
	if err != nil {
		return fmt.Errorf("%q is not host:port", s)
	}
	if _, err := strconv.ParseUint(port, 10, 16); err != nil {
		return fmt.Errorf("%q has an invalid port %q (want 0-65535)", s, port)
	}
	return nil
}
