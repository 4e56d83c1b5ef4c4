package bridge

import (
	"context"
	"errors"
	"io"
	"log/slog"
	"net"
	"net/http"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/reducto-bridge/reducto-bridge/config"
	"github.com/reducto-bridge/reducto-bridge/internal/logtest"
	"github.com/reducto-bridge/reducto-bridge/internal/natstest"
	"github.com/reducto-bridge/reducto-bridge/reducto/reductosim"
)

// closedPort returns a 127.0.0.1 port that was just listened on and closed: connecting to
// it is refused.
func closedPort(t *testing.T) int {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	port := l.Addr().(*net.TCPAddr).Port
	l.Close()
	return port
}

// readyz returns the status and body of GET /readyz on addr (status 0 if it did not answer).
func readyz(addr string) (int, string) {
	c := http.Client{Timeout: 5 * time.Second}
	resp, err := c.Get("http://" + addr + "/readyz")
	if err != nil {
		return 0, err.Error()
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(body)
}

// unreachableConfig is a bridge configuration whose NATS_URL is url, on a free HTTP address.
func unreachableConfig(t *testing.T, url string) *config.Config {
	cfg := config.Defaults()
	cfg.APIKey = config.Secret(testKey)
	cfg.BaseURL = "http://127.0.0.1:1" // never called: the bridge does not get that far
	cfg.NATSURL = url
	cfg.HTTPAddr = natstest.FreeAddr(t)
	cfg.LogLevel = slog.LevelDebug
	if err := cfg.Validate(); err != nil {
		t.Fatal(err)
	}
	return cfg
}

// TestReadyzNamesUnreachableNATS: while NATS_URL points at a closed port, /readyz answers 503
// with the URL (without its user information) and the connection error, the log says the
// same once, at once (before the first 10 s stream set-up attempt has timed out), and the
// bridge becomes ready when the server appears.
func TestReadyzNamesUnreachableNATS(t *testing.T) {
	tests := []struct {
		name    string
		creds   string // user information in NATS_URL, never shown
		secrets []string
		recover bool // start a server on the port and wait for readiness
	}{
		{"user and password", "usr-4e1a:pw-9c3b@", []string{"usr-4e1a", "pw-9c3b"}, true},
		{"token", "tok-7f2d@", []string{"tok-7f2d"}, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			port := closedPort(t)
			hostPort := "127.0.0.1:" + strconv.Itoa(port)
			cfg := unreachableConfig(t, "nats://"+tt.creds+hostPort)
			logs := &logtest.Buffer{}
			t.Cleanup(func() {
				if t.Failed() {
					t.Logf("bridge logs:\n%s", logs.String())
				}
			})
			ctx, cancel := context.WithCancel(t.Context())
			defer cancel()
			type result struct {
				b   *Bridge
				err error
			}
			done := make(chan result, 1)
			go func() {
				b, err := Start(ctx, cfg, slog.New(slog.NewTextHandler(logs, &slog.HandlerOptions{Level: slog.LevelDebug})))
				done <- result{b, err}
			}()

			want := "not ready: nats: connecting to nats://" + hostPort + ": dial tcp " + hostPort + ": connect: connection refused\n"
			var code int
			var body string
			natstest.WaitFor(t, func() bool {
				code, body = readyz(cfg.HTTPAddr)
				return code == http.StatusServiceUnavailable && strings.Contains(body, "connection refused")
			})
			if body != want {
				t.Errorf("/readyz = %d %q, want 503 %q", code, body, want)
			}
			warn := `level=WARN msg="nats unreachable; retrying" component=nats url=nats://` + hostPort + ` error="dial tcp ` + hostPort + `: connect: connection refused"`
			if !strings.Contains(logs.String(), warn) {
				t.Errorf("logs lack %q", warn)
			}
			if strings.Contains(logs.String(), "stream set-up failed") {
				t.Errorf("the first failure was not logged before the first stream set-up attempt timed out")
			}
			// Later attempts are logged at debug: the warning stays single.
			natstest.WaitFor(t, func() bool {
				return strings.Contains(logs.String(), "nats connection attempt failed; retrying")
			})
			if n := strings.Count(logs.String(), "level=WARN"); n != 1 {
				t.Errorf("%d warnings logged, want 1 for the outage", n)
			}

			if tt.recover {
				natstest.RunServer(t, natstest.Options{Port: port})
				natstest.WaitFor(t, func() bool {
					code, body = readyz(cfg.HTTPAddr)
					return code == http.StatusOK
				})
				r := <-done
				if r.err != nil {
					t.Fatalf("start: %v", r.err)
				}
				if !strings.Contains(logs.String(), `msg="nats connected" component=nats server=nats://`+hostPort+" after=") {
					t.Errorf("logs lack the connection after the outage")
				}
				sctx, scancel := context.WithTimeout(context.Background(), 10*time.Second)
				defer scancel()
				if err := r.b.Shutdown(sctx); err != nil {
					t.Errorf("shutdown: %v", err)
				}
			} else {
				cancel()
				if r := <-done; !errors.Is(r.err, context.Canceled) {
					t.Errorf("start after cancel = %v, want context.Canceled", r.err)
				}
			}
			for _, s := range tt.secrets {
				if strings.Contains(logs.String(), s) || strings.Contains(body, s) {
					t.Errorf("NATS_URL's user information %q appears in the logs or /readyz", s)
				}
			}
		})
	}
}

// TestReadyzNamesLostNATS: after an outage that starts once the bridge is up, /readyz says
// it is reconnecting, to which URL, and why; the log has one warning for it.
func TestReadyzNamesLostNATS(t *testing.T) {
	h := newHarness(t, natstest.Options{}, reductosim.Options{})
	s := natstest.RunServer(t)
	cfg := h.config()
	cfg.NATSURL = s.ClientURL()
	b := h.start(cfg)
	addr := b.httpAddr.String()
	if code, body := readyz(addr); code != http.StatusOK {
		t.Fatalf("/readyz = %d %q, want 200", code, body)
	}
	s.Shutdown()
	s.WaitForShutdown()
	hostPort := strings.TrimPrefix(s.ClientURL(), "nats://")
	var code int
	var body string
	natstest.WaitFor(t, func() bool {
		code, body = readyz(addr)
		return strings.Contains(body, "connection refused")
	})
	want := "not ready: nats: reconnecting to nats://" + hostPort + ": dial tcp " + hostPort + ": connect: connection refused\n"
	if code != http.StatusServiceUnavailable || body != want {
		t.Errorf("/readyz = %d %q, want 503 %q", code, body, want)
	}
	if n := strings.Count(h.logs.String(), `msg="nats disconnected; reconnecting"`); n != 1 {
		t.Errorf("%d disconnection warnings, want 1", n)
	}
	if strings.Contains(h.logs.String(), "nats reconnect failed") {
		t.Errorf("the reconnection attempts were logged at warn after the disconnection warning")
	}
}

// startupEnv sets the environment of a bridge that cannot reach NATS, and returns its HTTP
// address.
func startupEnv(t *testing.T) (httpAddr string, setenv func(k, v string)) {
	addr := natstest.FreeAddr(t)
	env := map[string]string{
		"REDUCTO_API_KEY":  testKey,
		"REDUCTO_BASE_URL": "http://127.0.0.1:1",
		"NATS_URL":         "nats://127.0.0.1:" + strconv.Itoa(closedPort(t)),
		"BRIDGE_HTTP_ADDR": addr,
	}
	for k, v := range env {
		t.Setenv(k, v)
	}
	return addr, func(k, v string) { t.Setenv(k, v) }
}

// TestRunCancelledDuringStartup: the end of run's context (SIGTERM or SIGINT in main) while
// NATS is still out of reach ends 'bridge run' without an error (exit 0), with a log line. It
// also checks the unknown-variable warning: names only, never values.
func TestRunCancelledDuringStartup(t *testing.T) {
	addr, setenv := startupEnv(t)
	setenv("BRIDGE_RATE_LIMT", "value-5a1c")  // a typo
	setenv("REDUCTO_SOMETHING", "value-6b2d") // nothing close
	setenv(CrashAfterPublishEnv, "")          // read with os.Getenv: known
	setenv("NATS_CONTEXT", "value-7c3e")      // NATS_ is not checked
	ctx, cancel := context.WithCancelCause(t.Context())
	var stderr logtest.Buffer
	errc := make(chan error, 1)
	go func() { errc <- Run(ctx, &stderr) }()
	natstest.WaitFor(t, func() bool {
		code, body := readyz(addr)
		return code == http.StatusServiceUnavailable && strings.Contains(body, "connection refused")
	})
	cancel(errors.New("terminated signal received"))
	if err := <-errc; err != nil {
		t.Errorf("run = %v, want nil (exit 0) after a signal during start-up", err)
	}
	logs := stderr.String()
	for _, want := range []string{
		`level=WARN msg="unknown environment variable; ignored" variable=BRIDGE_RATE_LIMT did_you_mean=BRIDGE_RATE_LIMIT`,
		`level=WARN msg="unknown environment variable; ignored" variable=REDUCTO_SOMETHING` + "\n",
		`level=INFO msg="start-up interrupted; exiting" cause="terminated signal received"`,
	} {
		if !strings.Contains(logs, want) {
			t.Errorf("logs lack %q:\n%s", want, logs)
		}
	}
	for _, bad := range []string{"value-", CrashAfterPublishEnv, "NATS_CONTEXT"} {
		if strings.Contains(logs, bad) {
			t.Errorf("logs contain %q:\n%s", bad, logs)
		}
	}
}

// TestRunRefusesSilentBreakage goes through 'bridge run': the configuration error names every
// variable, and a likely typo.
func TestRunRefusesSilentBreakage(t *testing.T) {
	for _, name := range config.Vars() {
		t.Setenv(name, "")
	}
	t.Setenv("REDUCTO_API_KEY", testKey)
	t.Setenv("BRIDGE_PUBLIC_URL", "https://bridge.example.com")
	t.Setenv("NATS_TOKEN", "tok-8d4f") // with the embedded server
	t.Setenv("BRIDGE_WEBHOOK_TOKN", "value-9e5a")
	err := Run(t.Context(), io.Discard)
	if err == nil {
		t.Fatal("run accepted the configuration")
	}
	for _, want := range []string{
		"NATS_TOKEN: is set, but NATS_URL is empty",
		"BRIDGE_PUBLIC_URL: is set, but neither BRIDGE_WEBHOOK_TOKEN nor BRIDGE_WEBHOOK_SECRET is",
		"unknown environment variables, ignored: BRIDGE_WEBHOOK_TOKN (did you mean BRIDGE_WEBHOOK_TOKEN?)",
	} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("error lacks %q:\n%v", want, err)
		}
	}
	for _, secret := range []string{"tok-8d4f", "value-9e5a"} {
		if strings.Contains(err.Error(), secret) {
			t.Errorf("error shows %q:\n%v", secret, err)
		}
	}
}
