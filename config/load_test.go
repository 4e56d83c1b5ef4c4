package config

import (
	"errors"
	"go/ast"
	"go/parser"
	"go/token"
	"log/slog"
	"os"
	"reflect"
	"slices"
	"strings"
	"testing"
	"time"
)

// These tests use t.Setenv and so cannot be parallel.

// envNames returns the variable name of every Config field, in field order.
func envNames(t *testing.T) []string {
	t.Helper()
	var names []string
	for f := range reflect.TypeFor[Config]().Fields() {
		name := f.Tag.Get("envconfig")
		if name == "" {
			t.Fatalf("field %s has no envconfig tag", f.Name)
		}
		names = append(names, name)
	}
	return names
}

// unsetEnv unsets every variable of Config for the rest of the test (t.Setenv restores them).
func unsetEnv(t *testing.T) {
	t.Helper()
	for _, name := range envNames(t) {
		t.Setenv(name, "")
		if err := os.Unsetenv(name); err != nil {
			t.Fatal(err)
		}
	}
}

// contractDefaults is the README's configuration table (docs/contract.md section 5), written out.
var contractDefaults = Config{
	BaseURL:             "https://platform.reducto.ai",
	SubjectPrefix:       "reducto",
	EmbeddedNATSAddr:    "127.0.0.1:4222",
	DataDir:             "./data",
	PollInitialInterval: 2 * time.Second,
	PollMaxInterval:     30 * time.Second,
	PollMultiplier:      1.5,
	PollJitter:          0.2,
	JobTTL:              12 * time.Hour,
	RateLimit:           100,
	RateLimitAll:        500,
	Concurrency:         32,
	HTTPAddr:            ":8080",
	EventSource:         "reducto-bridge",
	LogLevel:            slog.LevelInfo,
	LogFormat:           "text",
	HTTPTimeout:         30 * time.Second,
	RetryAfterMax:       60 * time.Second,
	DrainTimeout:        30 * time.Second,
	StreamReplicas:      1,
	EventsMaxAge:        720 * time.Hour,
	DuplicateWindow:     time.Hour,
	TrackMaxJobs:        1_000_000,
	TrackMaxBytes:       1 << 30,
	AckWait:             time.Minute,
	WebhookPollInterval: 5 * time.Minute,
	ListSweep:           true,
	ListInterval:        1800 * time.Millisecond,
	ListMaxRate:         50,
	ListSafetyInterval:  2 * time.Minute,
	ListDeepAge:         135 * time.Second,
	ListTrackSlack:      30 * time.Second,
	ReductoMaxBody:      256 << 20,
	CaptureURLResults:   true,
	CaptureMaxBytes:     256 << 20,
	SubmitWebhooks:      true,
}

func TestLoadDefaults(t *testing.T) {
	// envconfig alone treats a set-but-empty variable as the value "" (a parse error for a
	// duration, an empty prefix for a string); Load makes it mean the default, like unset.
	tests := []struct {
		name  string
		value *string // nil: unset
	}{
		{"unset", nil},
		{"set empty", new(string)},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			unsetEnv(t)
			if tt.value != nil {
				for _, name := range envNames(t) {
					t.Setenv(name, *tt.value)
				}
			}
			c, err := Load()
			if err != nil {
				t.Fatalf("Load() error = %v, want nil", err)
			}
			if !reflect.DeepEqual(*c, contractDefaults) {
				t.Errorf("Load() = %+v,\nwant %+v", *c, contractDefaults)
			}
		})
	}
}

func TestDefaultsIgnoresEnvironment(t *testing.T) {
	t.Setenv("BRIDGE_POLL_INITIAL_INTERVAL", "abc")
	t.Setenv("BRIDGE_SUBJECT_PREFIX", "other")
	if got := *Defaults(); !reflect.DeepEqual(got, contractDefaults) {
		t.Errorf("Defaults() = %+v,\nwant %+v", got, contractDefaults)
	}
}

func TestLoadValues(t *testing.T) {
	unsetEnv(t)
	env := map[string]string{
		"REDUCTO_API_KEY":               "rk_123",
		"REDUCTO_BASE_URL":              "http://127.0.0.1:8081",
		"NATS_URL":                      "nats://a:4222,nats://b:4222",
		"NATS_USER":                     "bridge",
		"NATS_PASSWORD":                 "pw",
		"BRIDGE_SUBJECT_PREFIX":         "acme.reducto",
		"BRIDGE_POLL_INITIAL_INTERVAL":  "500ms",
		"BRIDGE_POLL_MAX_INTERVAL":      "1m",
		"BRIDGE_POLL_MULTIPLIER":        "2",
		"BRIDGE_POLL_JITTER":            "0",
		"BRIDGE_RATE_LIMIT":             "12.5",
		"BRIDGE_CONCURRENCY":            "4",
		"BRIDGE_LOG_LEVEL":              "DEBUG",
		"BRIDGE_LOG_FORMAT":             "json",
		"BRIDGE_STREAM_REPLICAS":        "3",
		"BRIDGE_ACK_WAIT":               "2m",
		"BRIDGE_ALLOW_INSECURE_REDUCTO": "true",
		"BRIDGE_REDUCTO_MAX_BODY":       "1048576",
		"BRIDGE_CANCEL_TRACKED_ONLY":    "true",
		"BRIDGE_SUBMIT_WEBHOOKS":        "false",
		"BRIDGE_RETRACK_KEEPS_SCHEDULE": "true",
	}
	for k, v := range env {
		t.Setenv(k, v)
	}
	c, err := Load()
	if err != nil {
		t.Fatalf("Load() error = %v, want nil", err)
	}
	want := contractDefaults
	want.APIKey = "rk_123"
	want.BaseURL = "http://127.0.0.1:8081"
	want.NATSURL = "nats://a:4222,nats://b:4222"
	want.NATSUser = "bridge"
	want.NATSPassword = "pw"
	want.SubjectPrefix = "acme.reducto"
	want.PollInitialInterval = 500 * time.Millisecond
	want.PollMaxInterval = time.Minute
	want.PollMultiplier = 2
	want.PollJitter = 0
	want.RateLimit = 12.5
	want.Concurrency = 4
	want.LogLevel = slog.LevelDebug
	want.LogFormat = "json"
	want.StreamReplicas = 3
	want.AckWait = 2 * time.Minute
	want.AllowInsecureReducto = true
	want.ReductoMaxBody = 1 << 20
	want.CancelTrackedOnly = true
	want.SubmitWebhooks = false
	want.RetrackKeepsSchedule = true
	if !reflect.DeepEqual(*c, want) {
		t.Errorf("Load() = %+v,\nwant %+v", *c, want)
	}
	if got := c.APIKey.Reveal(); got != "rk_123" {
		t.Errorf("APIKey.Reveal() = %q, want %q", got, "rk_123")
	}
}

func TestLoadReportsEveryProblem(t *testing.T) {
	unsetEnv(t)
	bad := map[string]string{
		"BRIDGE_POLL_INITIAL_INTERVAL": "abc",   // bad duration
		"BRIDGE_RATE_LIMIT":            "-5",    // negative rate
		"BRIDGE_LOG_LEVEL":             "loud",  // unknown log level
		"BRIDGE_SUBJECT_PREFIX":        "a.>.b", // invalid prefix
		"BRIDGE_POLL_JITTER":           "lots",  // bad float
		"BRIDGE_CONCURRENCY":           "many",  // bad int
		"BRIDGE_EVENTS_MAX_AGE":        "1 day", // bad duration that others are checked against
	}
	for k, v := range bad {
		t.Setenv(k, v)
	}
	c, err := Load()
	if err == nil {
		t.Fatalf("Load() = %+v, nil; want an error", c)
	}
	if c != nil {
		t.Errorf("Load() config = %+v, want nil with an error", c)
	}
	got := errVars(err)
	slices.Sort(got)
	var want []string
	for k := range bad {
		want = append(want, k)
	}
	slices.Sort(want)
	// Exactly the bad variables: an unparsable one falls back to its default, so the checks
	// between variables (BRIDGE_DUPLICATE_WINDOW <= BRIDGE_EVENTS_MAX_AGE) add no noise.
	if !slices.Equal(got, want) {
		t.Errorf("Load() error names %v, want %v; error:\n%v", got, want, err)
	}
	msg := err.Error()
	for _, line := range []string{
		`BRIDGE_POLL_INITIAL_INTERVAL: invalid duration "abc"`,
		`BRIDGE_LOG_LEVEL: unknown log level "loud"`,
		`BRIDGE_POLL_JITTER: invalid number "lots"`,
		`BRIDGE_CONCURRENCY: invalid integer "many"`,
		`BRIDGE_RATE_LIMIT: must be a finite number > 0`,
		`BRIDGE_SUBJECT_PREFIX: invalid subject prefix`,
	} {
		if !strings.Contains(msg, line) {
			t.Errorf("Load() error = %q, want it to contain %q", msg, line)
		}
	}
	if n := strings.Count(msg, "\n") + 1; n != len(bad) {
		t.Errorf("Load() error has %d lines, want one per bad variable (%d):\n%s", n, len(bad), msg)
	}
}

func TestLoadErrorsNeverShowSecrets(t *testing.T) {
	unsetEnv(t)
	const secret = "s3cr3t-value-0042"
	t.Setenv("BRIDGE_WEBHOOK_SECRET", secret) // lacks whsec_
	t.Setenv("NATS_PASSWORD", secret)         // without NATS_USER
	t.Setenv("REDUCTO_BASE_URL", "https://u:"+secret+"@example.com:x")
	_, err := Load()
	if err == nil {
		t.Fatal("Load() error = nil, want errors for BRIDGE_WEBHOOK_SECRET and NATS_PASSWORD")
	}
	want := []string{"REDUCTO_BASE_URL", "NATS_PASSWORD", "BRIDGE_WEBHOOK_SECRET"}
	if got := errVars(err); !slices.Equal(got, want) {
		t.Errorf("Load() error names %v, want %v", got, want)
	}
	if strings.Contains(err.Error(), secret) {
		t.Errorf("Load() error = %q, shows the secret", err)
	}
	t.Setenv("BRIDGE_WEBHOOK_SECRET", "whsec_"+secret+"!")
	t.Setenv("NATS_PASSWORD", "")
	t.Setenv("REDUCTO_BASE_URL", "ftp://u:"+secret+"@example.com")
	_, err = Load()
	want = []string{"REDUCTO_BASE_URL", "BRIDGE_WEBHOOK_SECRET"}
	if got := errVars(err); !slices.Equal(got, want) {
		t.Errorf("Load() error names %v, want %v", got, want)
	}
	if strings.Contains(err.Error(), secret) {
		t.Errorf("Load() error = %q, shows the secret", err)
	}
}

func TestLoadVarErrorAs(t *testing.T) {
	unsetEnv(t)
	t.Setenv("BRIDGE_JOB_TTL", "forever")
	_, err := Load()
	var ve *VarError
	if !errors.As(err, &ve) || ve.Var != "BRIDGE_JOB_TTL" {
		t.Errorf("errors.As(Load() error) = %v, want a VarError for BRIDGE_JOB_TTL", err)
	}
}

// TestFieldDocs checks that every Config field has a doc comment stating its default, a
// desc tag for Usage, and a name of the contract's two families.
func TestFieldDocs(t *testing.T) {
	fset := token.NewFileSet()
	file, err := parser.ParseFile(fset, "config.go", nil, parser.ParseComments)
	if err != nil {
		t.Fatal(err)
	}
	var fields *ast.FieldList
	ast.Inspect(file, func(n ast.Node) bool {
		if ts, ok := n.(*ast.TypeSpec); ok && ts.Name.Name == "Config" {
			fields = ts.Type.(*ast.StructType).Fields
		}
		return fields == nil
	})
	if fields == nil {
		t.Fatal("type Config not found in config.go")
	}
	for _, f := range fields.List {
		name := f.Names[0].Name
		doc := f.Doc.Text()
		if !strings.HasPrefix(doc, name+" ") {
			t.Errorf("field %s: doc comment %q does not start with its name", name, doc)
		}
		if !strings.Contains(doc, "Default") && !strings.Contains(doc, "No default") {
			t.Errorf("field %s: doc comment %q does not state its default", name, doc)
		}
	}
	for f := range reflect.TypeFor[Config]().Fields() {
		if f.Tag.Get("desc") == "" {
			t.Errorf("field %s has no desc tag", f.Name)
		}
		env := f.Tag.Get("envconfig")
		if !strings.HasPrefix(env, "BRIDGE_") && !strings.HasPrefix(env, "NATS_") && !strings.HasPrefix(env, "REDUCTO_") {
			t.Errorf("field %s: variable %q is neither BRIDGE_, NATS_ nor REDUCTO_", f.Name, env)
		}
	}
}
