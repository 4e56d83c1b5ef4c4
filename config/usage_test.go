package config

import (
	"bytes"
	"strings"
	"testing"
)

// contractVars is every variable of the README's configuration table (docs/contract.md section 5),
// with its default as Usage shows it ("-" for none).
var contractVars = map[string]string{
	"REDUCTO_API_KEY":              "-",
	"REDUCTO_BASE_URL":             "https://platform.reducto.ai",
	"NATS_URL":                     "-",
	"NATS_CREDS":                   "-",
	"NATS_NKEY":                    "-",
	"NATS_USER":                    "-",
	"NATS_PASSWORD":                "-",
	"NATS_TOKEN":                   "-",
	"NATS_CA":                      "-",
	"NATS_CERT":                    "-",
	"NATS_KEY":                     "-",
	"BRIDGE_SUBJECT_PREFIX":        "reducto",
	"BRIDGE_EMBEDDED_NATS_ADDR":    "127.0.0.1:4222",
	"BRIDGE_EMBEDDED_NATS_TOKEN":   "-",
	"BRIDGE_DATA_DIR":              "./data",
	"BRIDGE_POLL_INITIAL_INTERVAL": "2s",
	"BRIDGE_POLL_MAX_INTERVAL":     "30s",
	"BRIDGE_POLL_MULTIPLIER":       "1.5",
	"BRIDGE_POLL_JITTER":           "0.2",
	"BRIDGE_JOB_TTL":               "12h",
	"BRIDGE_RATE_LIMIT":            "100",
	"BRIDGE_RATE_LIMIT_ALL":        "500",
	"BRIDGE_CONCURRENCY":           "32",
	"BRIDGE_HTTP_ADDR":             ":8080",
	"BRIDGE_WEBHOOK_ADDR":          "-",
	"BRIDGE_EVENT_SOURCE":          "reducto-bridge",
	"BRIDGE_LOG_LEVEL":             "info",
	"BRIDGE_LOG_FORMAT":            "text",
	"BRIDGE_PUBLIC_URL":            "-",
	"BRIDGE_WEBHOOK_SECRET":        "-",
	"BRIDGE_WEBHOOK_TOKEN":         "-",
	// Extensions.
	"BRIDGE_HTTP_TIMEOUT":           "30s",
	"BRIDGE_RETRY_AFTER_MAX":        "60s",
	"BRIDGE_DRAIN_TIMEOUT":          "30s",
	"BRIDGE_STREAM_REPLICAS":        "1",
	"BRIDGE_EVENTS_MAX_AGE":         "720h",
	"BRIDGE_DUPLICATE_WINDOW":       "1h",
	"BRIDGE_EVENTS_MAX_BYTES":       "0",
	"BRIDGE_TRACK_MAX_JOBS":         "1000000",
	"BRIDGE_TRACK_MAX_BYTES":        "1073741824",
	"BRIDGE_ACK_WAIT":               "1m",
	"BRIDGE_WEBHOOK_POLL_INTERVAL":  "5m",
	"BRIDGE_LIST_SWEEP":             "true",
	"BRIDGE_LIST_INTERVAL":          "1.8s",
	"BRIDGE_LIST_MAX_RATE":          "50",
	"BRIDGE_LIST_SAFETY_INTERVAL":   "2m",
	"BRIDGE_LIST_DEEP_AGE":          "135s",
	"BRIDGE_LIST_TRACK_SLACK":       "30s",
	"BRIDGE_TRACK_ALL":              "false",
	"BRIDGE_PPROF":                  "false",
	"BRIDGE_ALLOW_INSECURE_REDUCTO": "false",
	"BRIDGE_REDUCTO_MAX_BODY":       "268435456",
	"BRIDGE_CAPTURE_URL_RESULTS":    "true",
	"BRIDGE_CAPTURE_MAX_BYTES":      "268435456",
	"BRIDGE_CANCEL_TRACKED_ONLY":    "false",
	"BRIDGE_SUBMIT_WEBHOOKS":        "true",
	"BRIDGE_RETRACK_KEEPS_SCHEDULE": "false",
}

func TestUsage(t *testing.T) {
	// Secrets in the environment must not reach the table (not parallel: t.Setenv).
	const secret = "usage-secret-5e9d"
	for _, name := range []string{"REDUCTO_API_KEY", "NATS_PASSWORD", "NATS_TOKEN", "BRIDGE_EMBEDDED_NATS_TOKEN", "BRIDGE_WEBHOOK_SECRET", "BRIDGE_WEBHOOK_TOKEN"} {
		t.Setenv(name, secret)
	}
	var buf bytes.Buffer
	if err := Usage(&buf); err != nil {
		t.Fatalf("Usage() = %v", err)
	}
	out := buf.String()
	if strings.Contains(out, secret) {
		t.Errorf("Usage() output shows a secret value:\n%s", out)
	}
	lines := strings.Split(strings.TrimSuffix(out, "\n"), "\n")
	if got := strings.Fields(lines[0]); strings.Join(got, " ") != "NAME DEFAULT MEANING" {
		t.Errorf("header = %q, want NAME DEFAULT MEANING", lines[0])
	}
	defaultCol := strings.Index(lines[0], "DEFAULT")
	meaningCol := strings.Index(lines[0], "MEANING")
	seen := map[string]bool{}
	for _, line := range lines[1:] {
		name, _, _ := strings.Cut(line, " ")
		want, ok := contractVars[name]
		if !ok {
			t.Errorf("Usage() lists %s, which is not in the contract list", name)
			continue
		}
		seen[name] = true
		if len(line) <= meaningCol {
			t.Errorf("line %q is shorter than the MEANING column", line)
			continue
		}
		if got := strings.TrimSpace(line[defaultCol:meaningCol]); got != want {
			t.Errorf("%s: DEFAULT column = %q, want %q (columns aligned)", name, got, want)
		}
		if line[meaningCol-1] != ' ' || line[meaningCol] == ' ' {
			t.Errorf("%s: MEANING does not start at column %d: %q", name, meaningCol, line)
		}
	}
	for name := range contractVars {
		if !seen[name] {
			t.Errorf("Usage() does not list %s", name)
		}
	}
}
