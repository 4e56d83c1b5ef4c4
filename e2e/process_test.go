package e2e

import (
	"bufio"
	"bytes"
	"fmt"
	"io"
	"maps"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
)

// crashExitCode is the exit status of the binary's injected crash (cmd/bridge/failpoint.go).
const crashExitCode = 86

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
	}
}

// bridgeProc is one bridge subprocess, restartable; its output goes to a log file in the
// test's temp dir, whose tail is printed when the test fails.
type bridgeProc struct {
	t       testing.TB
	name    string
	env     map[string]string
	logPath string

	mu     sync.Mutex
	cmd    *exec.Cmd
	addr   string
	done   chan struct{} // closed when the current process has exited
	starts int
}

func newBridge(t testing.TB, name string, env map[string]string) *bridgeProc {
	t.Helper()
	b := &bridgeProc{t: t, name: name, env: maps.Clone(env), logPath: filepath.Join(t.TempDir(), name+".log")}
	t.Cleanup(func() {
		b.kill()
		if dir := os.Getenv("E2E_KEEP_LOGS"); dir != "" {
			b.keepLog(dir)
		}
		if t.Failed() {
			t.Logf("bridge %s: last lines of %s:\n%s", name, b.logPath, b.tail(40))
		}
	})
	return b
}

// environ is the process environment: the test's, without any variable the bridge reads,
// plus b.env.
func (b *bridgeProc) environ() []string {
	var env []string
	for _, kv := range os.Environ() {
		k, _, _ := strings.Cut(kv, "=")
		if strings.HasPrefix(k, "BRIDGE_") || strings.HasPrefix(k, "NATS_") || strings.HasPrefix(k, "REDUCTO_") || k == "GORACE" {
			continue
		}
		env = append(env, kv)
	}
	env = append(env, "GORACE=halt_on_error=1 exitcode="+strconv.Itoa(raceExitCode))
	for _, k := range slices.Sorted(maps.Keys(b.env)) {
		env = append(env, k+"="+b.env[k])
	}
	return env
}

// start starts the process on a fresh HTTP port; it does not wait for readiness.
func (b *bridgeProc) start() {
	b.t.Helper()
	if err := b.launch(); err != nil {
		b.t.Fatal(err)
	}
}

// launch is start for any goroutine: it reports failure instead of ending the test.
func (b *bridgeProc) launch() error {
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.cmd != nil {
		select {
		case <-b.done:
		default:
			return fmt.Errorf("bridge %s: start while running", b.name)
		}
	}
	b.starts++
	port, err := reservePort()
	if err != nil {
		return fmt.Errorf("bridge %s: %w", b.name, err)
	}
	b.addr = "127.0.0.1:" + strconv.Itoa(port)
	b.env["BRIDGE_HTTP_ADDR"] = b.addr
	f, err := os.OpenFile(b.logPath, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
	if err != nil {
		return fmt.Errorf("bridge %s: log file: %w", b.name, err)
	}
	defer f.Close() // the child has its own descriptor
	fmt.Fprintf(f, "=== e2e: start %d of %s at %s, http %s\n", b.starts, b.name, time.Now().Format(time.RFC3339Nano), b.addr)
	cmd := exec.Command(bridgeBin)
	cmd.Env = b.environ()
	cmd.Stdout, cmd.Stderr = f, f
	if err := cmd.Start(); err != nil {
		return fmt.Errorf("bridge %s: start: %w", b.name, err)
	}
	done := make(chan struct{})
	go func() {
		_ = cmd.Wait()
		close(done)
	}()
	b.cmd, b.done = cmd, done
	return nil
}

// startReady starts the process and waits until /readyz answers 200.
func (b *bridgeProc) startReady() {
	b.t.Helper()
	b.start()
	b.waitReady(60 * time.Second)
}

// exited is closed when the current process has exited.
func (b *bridgeProc) exited() <-chan struct{} {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.done
}

// exitCode is the current process's exit status (-1 when killed by a signal or running).
func (b *bridgeProc) exitCode() int {
	b.mu.Lock()
	defer b.mu.Unlock()
	select {
	case <-b.done:
		return b.cmd.ProcessState.ExitCode()
	default:
		return -1
	}
}

func (b *bridgeProc) running() bool {
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.cmd == nil {
		return false
	}
	select {
	case <-b.done:
		return false
	default:
		return true
	}
}

// readyz returns the status and body of GET /readyz (status 0 when it did not answer).
func (b *bridgeProc) readyz() (int, string) {
	return b.get("/readyz")
}

func (b *bridgeProc) get(path string) (int, string) {
	b.mu.Lock()
	addr := b.addr
	b.mu.Unlock()
	c := http.Client{Timeout: 3 * time.Second}
	resp, err := c.Get("http://" + addr + path)
	if err != nil {
		return 0, err.Error()
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(io.LimitReader(resp.Body, 4096))
	return resp.StatusCode, strings.TrimSpace(string(body))
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
	deadline := time.Now().Add(timeout)
	for {
		select {
		case <-b.exited():
			return "", fmt.Errorf("bridge %s exited with status %d while waiting for /readyz %d; log tail:\n%s", b.name, b.exitCode(), status, b.tail(30))
		default:
		}
		code, body := b.readyz()
		if code == status {
			return body, nil
		}
		if time.Now().After(deadline) {
			return "", fmt.Errorf("bridge %s: /readyz did not answer %d within %s; last %d %q", b.name, status, timeout, code, body)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// kill sends SIGKILL and waits for the process to be gone (no-op when it is not running).
func (b *bridgeProc) kill() {
	b.mu.Lock()
	cmd, done := b.cmd, b.done
	b.mu.Unlock()
	if cmd == nil {
		return
	}
	_ = cmd.Process.Kill()
	<-done
}

// term sends SIGTERM and waits for a graceful exit; it returns the exit status.
func (b *bridgeProc) term(timeout time.Duration) int {
	b.t.Helper()
	b.mu.Lock()
	cmd, done := b.cmd, b.done
	b.mu.Unlock()
	if cmd == nil {
		return -1
	}
	_ = cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-done:
	case <-time.After(timeout):
		b.t.Errorf("bridge %s did not exit within %s of SIGTERM; killing it", b.name, timeout)
		b.kill()
	}
	return b.exitCode()
}

// tail returns the last n lines of the log file, each cut to 400 bytes.
func (b *bridgeProc) tail(n int) string {
	data, err := os.ReadFile(b.logPath)
	if err != nil {
		return err.Error()
	}
	lines := strings.Split(strings.TrimRight(string(data), "\n"), "\n")
	lines = lines[max(0, len(lines)-n):]
	for i, l := range lines {
		if len(l) > 400 {
			lines[i] = l[:400] + "..."
		}
	}
	return strings.Join(lines, "\n")
}

// countLog counts the log lines whose JSON "msg" is msg, over every run of the process.
func (b *bridgeProc) countLog(msg string) int {
	f, err := os.Open(b.logPath)
	if err != nil {
		return 0
	}
	defer f.Close()
	needle := []byte(`"msg":"` + msg + `"`)
	n := 0
	sc := bufio.NewScanner(f)
	sc.Buffer(make([]byte, 0, 64<<10), 4<<20)
	for sc.Scan() {
		if bytes.Contains(sc.Bytes(), needle) {
			n++
		}
	}
	return n
}

// keepLog copies the log file to dir (E2E_KEEP_LOGS), named after the test and the process.
func (b *bridgeProc) keepLog(dir string) {
	data, err := os.ReadFile(b.logPath)
	if err != nil {
		return
	}
	name := strings.NewReplacer("/", "_", " ", "_").Replace(b.t.Name()) + "-" + b.name + ".log"
	if err := os.MkdirAll(dir, 0o755); err == nil {
		_ = os.WriteFile(filepath.Join(dir, name), data, 0o644)
	}
}
