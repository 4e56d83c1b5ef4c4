package e2e

import (
	"context"
	"fmt"
	"maps"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/reducto-bridge/reducto-bridge/internal/bridge"
	"github.com/reducto-bridge/reducto-bridge/internal/bridgeproc"
)

// crashExitCode is the exit status of the binary's injected crash (internal/bridge/failpoint.go).
const crashExitCode = bridge.CrashExitCode

// raceExitCode is the exit status a -race bridge (E2E_RACE=1) dies with on a data race.
const raceExitCode = 66

// Timing of every bridge in the suite: fast polls, and an AckWait just above the HTTP
// timeout, so that a dead replica's jobs come back quickly.
const (
	pollInitial = 50 * time.Millisecond
	pollMax     = 300 * time.Millisecond
	pollJitter  = 0.2
	ackWait     = 2 * time.Second
	httpTimeout = time.Second
)

// bridgeEnv is the environment of a bridge talking to natsURL and reductoURL; scenarios
// override single variables.
func bridgeEnv(natsURL, reductoURL string) map[string]string {
	return map[string]string{
		"NATS_URL":                     natsURL,
		"REDUCTO_BASE_URL":             reductoURL,
		"REDUCTO_API_KEY":              apiKey,
		"BRIDGE_POLL_INITIAL_INTERVAL": pollInitial.String(),
		"BRIDGE_POLL_MAX_INTERVAL":     pollMax.String(),
		"BRIDGE_POLL_MULTIPLIER":       "1.5",
		"BRIDGE_POLL_JITTER":           strconv.FormatFloat(pollJitter, 'f', -1, 64),
		"BRIDGE_ACK_WAIT":              ackWait.String(),
		"BRIDGE_HTTP_TIMEOUT":          httpTimeout.String(),
		"BRIDGE_RATE_LIMIT":            "200",
		"BRIDGE_RETRY_AFTER_MAX":       "2s",
		"BRIDGE_DRAIN_TIMEOUT":         "5s",
		"BRIDGE_LOG_FORMAT":            "json",
		"BRIDGE_LOG_LEVEL":             "info",
		// The suite's scenarios are about per-job polling (their timings assume it); the
		// list sweep (on by default) has its own tests in package sweep.
		"BRIDGE_LIST_SWEEP": "false",
	}
}

// bridgeProc is one bridge subprocess (internal/bridgeproc), restartable; its output goes to
// a log file in the test's temp dir, whose tail is printed when the test fails.
type bridgeProc struct {
	t    testing.TB
	name string
	*bridgeproc.Process
}

func newBridge(t testing.TB, name string, env map[string]string) *bridgeProc {
	t.Helper()
	env = maps.Clone(env)
	env["GORACE"] = "halt_on_error=1 exitcode=" + strconv.Itoa(raceExitCode)
	if budget := os.Getenv("E2E_BUDGET"); budget != "" {
		// A budget that binds: the bridges then move jobs to the stream's tail.
		env["BRIDGE_RATE_LIMIT"] = budget
	}
	b := &bridgeProc{t: t, name: name, Process: bridgeproc.New(bridgeproc.Options{
		Name:    name,
		Argv:    []string{bridgeBin},
		Env:     env,
		LogPath: filepath.Join(t.TempDir(), name+".log"),
	})}
	t.Cleanup(func() {
		b.kill()
		if dir := os.Getenv("E2E_KEEP_LOGS"); dir != "" {
			b.keepLog(dir)
		}
		if t.Failed() {
			t.Logf("bridge %s: last lines of %s:\n%s", name, b.LogPath(), b.tail(40))
		}
	})
	return b
}

// start starts the process on a fresh HTTP port; it does not wait for readiness.
func (b *bridgeProc) start() {
	b.t.Helper()
	if err := b.launch(); err != nil {
		b.t.Fatal(err)
	}
}

// launch is start for any goroutine: it reports failure instead of ending the test.
func (b *bridgeProc) launch() error { return b.Start() }

// startReady starts the process and waits until /readyz answers 200.
func (b *bridgeProc) startReady() {
	b.t.Helper()
	b.start()
	b.waitReady(60 * time.Second)
}

// exited is closed when the current process has exited.
func (b *bridgeProc) exited() <-chan struct{} { return b.Exited() }

// exitCode is the current process's exit status (-1 when killed by a signal or running).
func (b *bridgeProc) exitCode() int { return b.ExitCode() }

func (b *bridgeProc) running() bool { return b.Running() }

// readyz returns the status and body of GET /readyz (status 0 when it did not answer).
func (b *bridgeProc) readyz() (int, string) {
	return b.get("/readyz")
}

func (b *bridgeProc) get(path string) (int, string) {
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Second)
	defer cancel()
	code, body, err := b.Get(ctx, path)
	if err != nil {
		return 0, err.Error()
	}
	return code, strings.TrimSpace(string(body[:min(len(body), 4096)]))
}

// waitReady polls /readyz (there is no other signal) until it answers 200; it fails the test
// when the process exits or the deadline passes.
func (b *bridgeProc) waitReady(timeout time.Duration) {
	b.t.Helper()
	b.waitReadyz(http.StatusOK, timeout)
}

// waitReadyz polls /readyz until it answers status, and returns the body.
func (b *bridgeProc) waitReadyz(status int, timeout time.Duration) string {
	b.t.Helper()
	body, err := b.awaitReadyz(status, timeout)
	if err != nil {
		b.t.Fatal(err)
	}
	return body
}

// awaitReadyz is waitReadyz for any goroutine: it reports failure instead of ending the test.
func (b *bridgeProc) awaitReadyz(status int, timeout time.Duration) (string, error) {
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	body, err := b.AwaitReadyz(ctx, status, 20*time.Millisecond)
	if err != nil && !b.Running() {
		return "", fmt.Errorf("%w; log tail:\n%s", err, b.tail(30))
	}
	return body, err
}

// kill sends SIGKILL and waits for the process to be gone (no-op when it is not running).
func (b *bridgeProc) kill() { b.Kill() }

// term sends SIGTERM and waits for a graceful exit; it returns the exit status.
func (b *bridgeProc) term(timeout time.Duration) int {
	b.t.Helper()
	if err := b.Term(timeout); err != nil {
		b.t.Errorf("bridge %s did not exit within %s of SIGTERM (%v); killed it", b.name, timeout, err)
	}
	return b.exitCode()
}

// tail returns the last n lines of the log file, each cut to 400 bytes.
func (b *bridgeProc) tail(n int) string { return b.Tail(n) }

// countLog counts the log lines whose JSON "msg" is msg, over every run of the process.
func (b *bridgeProc) countLog(msg string) int { return b.CountLog(msg) }

// keepLog copies the log file to dir (E2E_KEEP_LOGS), named after the test and the process.
func (b *bridgeProc) keepLog(dir string) {
	data, err := os.ReadFile(b.LogPath())
	if err != nil {
		return
	}
	name := strings.NewReplacer("/", "_", " ", "_").Replace(b.t.Name()) + "-" + b.name + ".log"
	if err := os.MkdirAll(dir, 0o755); err == nil {
		_ = os.WriteFile(filepath.Join(dir, name), data, 0o644)
	}
}
