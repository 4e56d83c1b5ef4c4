// Package bridgeproc runs the bridge as a child process ('bridge run'), for the benchmark
// (whose bridge must have a memory of its own) and the e2e tests (which kill and restart it).
//
// A [Process] is one bridge, restartable: every [Process.Start] launches the command again on
// a fresh HTTP port (unless one is fixed), with this process's environment minus every
// BRIDGE_*, REDUCTO_* and NATS_* variable, plus the caller's [Options.Env], and appends its
// output to one log file. Readiness is
// polled on /readyz, since a child process sends no other signal. [Build] builds the binary.
package bridgeproc

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"maps"
	"net"
	"net/http"
	"os"
	"os/exec"
	"slices"
	"strings"
	"sync"
	"syscall"
	"time"
)

// Options configure a [Process].
type Options struct {
	// Name names the process in errors and in the log file's start lines.
	Name string
	// Argv is the command; nil means this executable with "run" (the bridge binary itself).
	Argv []string
	// Env is the child's configuration (BRIDGE_*, REDUCTO_*, NATS_*, GORACE, ...). The child
	// inherits none of those prefixes, nor a variable named here, from this process, so a
	// stray BRIDGE_* in the shell cannot skew a run. BRIDGE_HTTP_ADDR is set by Start.
	Env map[string]string
	// Extra entries ("K=V") are added to the environment after Env (a test binary's helper
	// switch).
	Extra []string
	// HTTPAddr fixes BRIDGE_HTTP_ADDR; empty means a fresh 127.0.0.1 port at every start.
	HTTPAddr string
	// LogPath receives the child's stdout and stderr, appended across starts, each start
	// preceded by a line "=== start <n> of <name> at <time>, http <addr>".
	LogPath string
	// Truncate empties the log file at the first start (a fresh log per run in a reused
	// directory).
	Truncate bool
}

// skipPrefixes are the variables a child never inherits: the bridge's own configuration.
var skipPrefixes = []string{"BRIDGE_", "NATS_", "REDUCTO_"}

// Process is a bridge child process, restartable. Its methods are safe for concurrent use.
type Process struct {
	o  Options
	hc *http.Client // to the child's HTTP server; ctx bounds each request

	mu     sync.Mutex
	cmd    *exec.Cmd
	addr   string
	done   chan struct{} // closed when the current process has exited
	err    error         // cmd.Wait's result, set before done is closed
	starts int
}

// New prepares a process; nothing runs until [Process.Start].
func New(o Options) *Process {
	o.Env = maps.Clone(o.Env)
	return &Process{o: o, hc: &http.Client{Transport: &http.Transport{}}}
}

// LogPath is the log file of every start.
func (p *Process) LogPath() string { return p.o.LogPath }

// Start launches the command on a fresh HTTP port (or Options.HTTPAddr); it does not wait for
// readiness. It fails while the previous process still runs.
func (p *Process) Start() error {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.cmd != nil {
		select {
		case <-p.done:
		default:
			return fmt.Errorf("bridge %s: start while running", p.o.Name)
		}
	}
	argv := p.o.Argv
	if len(argv) == 0 {
		exe, err := os.Executable()
		if err != nil {
			return fmt.Errorf("bridge %s: find own executable: %w", p.o.Name, err)
		}
		argv = []string{exe, "run"}
	}
	addr := p.o.HTTPAddr
	if addr == "" {
		var err error
		if addr, err = FreeAddr(); err != nil {
			return fmt.Errorf("bridge %s: %w", p.o.Name, err)
		}
	}
	flags := os.O_CREATE | os.O_WRONLY | os.O_APPEND
	if p.o.Truncate && p.starts == 0 {
		flags |= os.O_TRUNC
	}
	f, err := os.OpenFile(p.o.LogPath, flags, 0o644)
	if err != nil {
		return fmt.Errorf("bridge %s: log file: %w", p.o.Name, err)
	}
	defer f.Close() // the child has its own descriptor
	p.starts++
	p.addr = addr
	fmt.Fprintf(f, "=== start %d of %s at %s, http %s\n", p.starts, p.o.Name, time.Now().Format(time.RFC3339Nano), addr)
	cmd := exec.Command(argv[0], argv[1:]...)
	cmd.Env = p.environ(addr)
	cmd.Stdout, cmd.Stderr = f, f
	if err := cmd.Start(); err != nil {
		return fmt.Errorf("bridge %s: start: %w", p.o.Name, err)
	}
	done := make(chan struct{})
	go func() {
		err := cmd.Wait()
		p.mu.Lock()
		p.err = err
		p.mu.Unlock()
		close(done)
	}()
	p.cmd, p.done, p.err = cmd, done, nil
	return nil
}

// environ is this process's environment without the bridge's variables and those of Env,
// then Env (sorted), BRIDGE_HTTP_ADDR and Extra.
func (p *Process) environ(addr string) []string {
	var env []string
	for _, kv := range os.Environ() {
		k, _, _ := strings.Cut(kv, "=")
		if _, set := p.o.Env[k]; set || slices.ContainsFunc(skipPrefixes, func(pre string) bool { return strings.HasPrefix(k, pre) }) {
			continue
		}
		env = append(env, kv)
	}
	for _, k := range slices.Sorted(maps.Keys(p.o.Env)) {
		if k != "BRIDGE_HTTP_ADDR" {
			env = append(env, k+"="+p.o.Env[k])
		}
	}
	env = append(env, "BRIDGE_HTTP_ADDR="+addr)
	return append(env, p.o.Extra...)
}

// Addr is the current (or last) process's BRIDGE_HTTP_ADDR.
func (p *Process) Addr() string {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.addr
}

// Starts is how many times the process has been started.
func (p *Process) Starts() int {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.starts
}

// Pid is the current (or last) process's id, 0 before the first start.
func (p *Process) Pid() int {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.cmd == nil {
		return 0
	}
	return p.cmd.Process.Pid
}

// Exited is closed when the current process has exited (nil before the first start).
func (p *Process) Exited() <-chan struct{} {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.done
}

// Running reports whether the current process has started and not exited.
func (p *Process) Running() bool {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.cmd == nil {
		return false
	}
	select {
	case <-p.done:
		return false
	default:
		return true
	}
}

// ExitCode is the current process's exit status: -1 while it runs, before the first start, or
// when a signal killed it.
func (p *Process) ExitCode() int {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.cmd == nil {
		return -1
	}
	select {
	case <-p.done:
		return p.cmd.ProcessState.ExitCode()
	default:
		return -1
	}
}

// Err is the current process's exit as exec.Cmd.Wait reported it: nil while it runs or after a
// clean exit, an *exec.ExitError after a failure or a signal.
func (p *Process) Err() error {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.err
}

// Get fetches a path from the process's HTTP server and returns the status and body (status 0
// with the error when it did not answer).
func (p *Process) Get(ctx context.Context, path string) (int, []byte, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, "http://"+p.Addr()+path, nil)
	if err != nil {
		return 0, nil, err
	}
	resp, err := p.hc.Do(req)
	if err != nil {
		return 0, nil, err
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	return resp.StatusCode, body, err
}

// AwaitReadyz polls /readyz every interval (there is no other signal) until it answers status,
// and returns the body. It fails when the process exits first or ctx ends; each request is
// bounded by 3 s.
func (p *Process) AwaitReadyz(ctx context.Context, status int, interval time.Duration) (string, error) {
	t := time.NewTicker(interval)
	defer t.Stop()
	exited := p.Exited()
	for {
		select {
		case <-exited:
			return "", fmt.Errorf("bridge %s exited with status %d while waiting for /readyz %d (see %s): %v",
				p.o.Name, p.ExitCode(), status, p.o.LogPath, p.Err())
		default:
		}
		rctx, cancel := context.WithTimeout(ctx, 3*time.Second)
		code, body, err := p.Get(rctx, "/readyz")
		cancel()
		if err == nil && code == status {
			return strings.TrimSpace(string(body)), nil
		}
		last := strings.TrimSpace(string(body))
		if err != nil {
			last = err.Error()
		}
		select {
		case <-ctx.Done():
			return "", fmt.Errorf("bridge %s: /readyz did not answer %d (last %d %q): %w", p.o.Name, status, code, last, context.Cause(ctx))
		case <-exited:
		case <-t.C:
		}
	}
}

// Kill sends SIGKILL and waits until the process is gone (a no-op when it is not running).
func (p *Process) Kill() {
	p.mu.Lock()
	cmd, done := p.cmd, p.done
	p.mu.Unlock()
	if cmd == nil {
		return
	}
	_ = cmd.Process.Kill()
	<-done
}

// ErrKilled reports a process that did not exit within Term's timeout and was killed.
var ErrKilled = errors.New("did not exit in time after SIGTERM; killed")

// Term sends SIGTERM and waits up to timeout for the process to exit (a graceful drain), then
// kills it and returns [ErrKilled]. It returns nil once the process has exited, whatever its
// status: see [Process.ExitCode] and [Process.Err]. A no-op before the first start.
func (p *Process) Term(timeout time.Duration) error {
	p.mu.Lock()
	cmd, done := p.cmd, p.done
	p.mu.Unlock()
	if cmd == nil {
		return nil
	}
	if err := cmd.Process.Signal(syscall.SIGTERM); err != nil && !errors.Is(err, os.ErrProcessDone) {
		return fmt.Errorf("signal bridge %s: %w", p.o.Name, err)
	}
	t := time.NewTimer(timeout)
	defer t.Stop()
	select {
	case <-done:
		return nil
	case <-t.C:
		p.Kill()
		return fmt.Errorf("bridge %s: %w", p.o.Name, ErrKilled)
	}
}

// CloseIdleConnections closes the idle connections to the process's HTTP server.
func (p *Process) CloseIdleConnections() { p.hc.CloseIdleConnections() }

// Tail returns the last n lines of the log file, each cut to 400 bytes.
func (p *Process) Tail(n int) string {
	data, err := os.ReadFile(p.o.LogPath)
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

// CountLog counts the log lines whose JSON "msg" is msg (BRIDGE_LOG_FORMAT=json), over every
// start of the process.
func (p *Process) CountLog(msg string) int {
	f, err := os.Open(p.o.LogPath)
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

// FreeAddr asks the kernel for a free port on 127.0.0.1 (the child binds it a moment later).
func FreeAddr() (string, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return "", fmt.Errorf("find a free port: %w", err)
	}
	defer ln.Close()
	return ln.Addr().String(), nil
}

// Build builds the bridge (./cmd/bridge of the module in src) into out, with -race when race
// is set; -buildvcs=false, so a checkout without a usable git still builds. The go command's
// output goes to stderr.
func Build(out, src string, race bool, stderr io.Writer) error {
	args := []string{"build", "-buildvcs=false", "-o", out}
	if race {
		args = append(args, "-race")
	}
	args = append(args, "./cmd/bridge")
	cmd := exec.Command("go", args...)
	cmd.Dir = src
	cmd.Stdout, cmd.Stderr = stderr, stderr
	if err := cmd.Run(); err != nil {
		return fmt.Errorf("go %v in %s: %w", args, src, err)
	}
	return nil
}
