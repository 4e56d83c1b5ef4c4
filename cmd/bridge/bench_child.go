package main

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"runtime"
	"runtime/metrics"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"
)

// childBridge is a bridge run as a child process ('bridge run'), so that its memory is its
// own: the bench's NATS server and simulator live in the parent.
type childBridge struct {
	cmd     *exec.Cmd
	addr    string // BRIDGE_HTTP_ADDR
	logPath string
	hc      *http.Client  // to the child's HTTP server; its idle connections close with stop
	done    chan struct{} // closed when the process has exited
	waitErr error

	stopSampling chan struct{}
	sampled      chan struct{}
	mu           sync.Mutex
	hwmKB, rssKB int64 // VmHWM (peak) and the last VmRSS
}

// benchChildEnv names the environment prefixes the bench sets itself; the child does not
// inherit them from the caller, so a stray BRIDGE_* in the shell cannot skew a run.
var benchChildEnv = []string{"REDUCTO_", "NATS_", "BRIDGE_"}

// startChild starts argv with the given BRIDGE_*/REDUCTO_*/NATS_* environment (plus extra;
// env must hold BRIDGE_HTTP_ADDR), logging to logPath, and samples its memory until it exits.
func startChild(argv []string, env map[string]string, extra []string, logPath string) (*childBridge, error) {
	if len(argv) == 0 {
		exe, err := os.Executable()
		if err != nil {
			return nil, fmt.Errorf("find own executable: %w", err)
		}
		argv = []string{exe, "run"}
	}
	c := &childBridge{
		addr:         env["BRIDGE_HTTP_ADDR"],
		logPath:      logPath,
		hc:           &http.Client{Transport: &http.Transport{}, Timeout: time.Minute},
		done:         make(chan struct{}),
		stopSampling: make(chan struct{}),
		sampled:      make(chan struct{}),
	}
	var environ []string
	for _, kv := range os.Environ() {
		if !hasAnyPrefix(kv, benchChildEnv) {
			environ = append(environ, kv)
		}
	}
	for k, v := range env {
		environ = append(environ, k+"="+v)
	}
	environ = append(environ, extra...)

	f, err := os.Create(logPath)
	if err != nil {
		return nil, fmt.Errorf("bridge log: %w", err)
	}
	defer f.Close() // the child has its own descriptor
	c.cmd = exec.Command(argv[0], argv[1:]...)
	c.cmd.Env = environ
	c.cmd.Stdout, c.cmd.Stderr = f, f
	if err := c.cmd.Start(); err != nil {
		return nil, fmt.Errorf("start bridge: %w", err)
	}
	go func() {
		c.waitErr = c.cmd.Wait()
		close(c.done)
	}()
	go c.sample()
	return c, nil
}

func hasAnyPrefix(kv string, prefixes []string) bool {
	for _, p := range prefixes {
		if strings.HasPrefix(kv, p) {
			return true
		}
	}
	return false
}

// benchFreeAddr asks the kernel for a free port on 127.0.0.1 (the child binds it a moment later).
func benchFreeAddr() (string, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return "", fmt.Errorf("find a free port: %w", err)
	}
	defer ln.Close()
	return ln.Addr().String(), nil
}

// waitReady polls /readyz until it answers 200 (there is no other signal), the child exits,
// or ctx ends.
func (c *childBridge) waitReady(ctx context.Context) error {
	tick := time.NewTicker(50 * time.Millisecond)
	defer tick.Stop()
	for {
		rctx, cancel := context.WithTimeout(ctx, 2*time.Second)
		_, err := c.get(rctx, "/readyz")
		cancel()
		if err == nil {
			return nil
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("bridge not ready (see %s): %w", c.logPath, context.Cause(ctx))
		case <-c.done:
			return fmt.Errorf("bridge exited before it was ready (see %s): %v", c.logPath, c.waitErr)
		case <-tick.C:
		}
	}
}

// get fetches a path from the child's HTTP server; a status other than 200 is an error.
func (c *childBridge) get(ctx context.Context, path string) ([]byte, error) {
	url := "http://" + c.addr + path
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		return nil, err
	}
	resp, err := c.hc.Do(req)
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		return nil, err
	}
	if resp.StatusCode != http.StatusOK {
		return nil, fmt.Errorf("GET %s: %s", url, resp.Status)
	}
	return body, nil
}

// sample reads the child's memory every 100 ms until told to stop or the child exits.
// VmHWM is the kernel's own peak of the resident set, so sampling cannot miss a spike.
func (c *childBridge) sample() {
	defer close(c.sampled)
	t := time.NewTicker(100 * time.Millisecond)
	defer t.Stop()
	for {
		c.readStatus()
		select {
		case <-c.stopSampling:
			c.readStatus()
			return
		case <-c.done:
			return
		case <-t.C:
		}
	}
}

func (c *childBridge) readStatus() {
	hwm, rss, ok := procMemory(c.cmd.Process.Pid)
	if !ok {
		return
	}
	c.mu.Lock()
	c.hwmKB = max(c.hwmKB, hwm)
	c.rssKB = rss
	c.mu.Unlock()
}

// memory returns the peak and the last resident set size in bytes (0 when unknown, as off
// Linux).
func (c *childBridge) memory() (peak, last int64) {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.hwmKB << 10, c.rssKB << 10
}

// procMemory reads VmHWM and VmRSS (kB) from /proc/<pid>/status.
func procMemory(pid int) (hwm, rss int64, ok bool) {
	b, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/status")
	if err != nil {
		return 0, 0, false
	}
	sc := bufio.NewScanner(bytes.NewReader(b))
	for sc.Scan() {
		name, value, found := strings.Cut(sc.Text(), ":")
		if !found {
			continue
		}
		fields := strings.Fields(value)
		if len(fields) == 0 {
			continue
		}
		n, err := strconv.ParseInt(fields[0], 10, 64)
		if err != nil {
			continue
		}
		switch name {
		case "VmHWM":
			hwm = n
		case "VmRSS":
			rss = n
		}
	}
	return hwm, rss, hwm > 0
}

// stop takes a last memory sample, then SIGTERMs the child and waits for its drain (killing
// it after timeout).
func (c *childBridge) stop(timeout time.Duration) error {
	select {
	case <-c.stopSampling:
	default:
		close(c.stopSampling)
	}
	<-c.sampled
	defer c.hc.CloseIdleConnections()
	select {
	case <-c.done:
		return fmt.Errorf("bridge had exited: %v (see %s)", c.waitErr, c.logPath)
	default:
	}
	if err := c.cmd.Process.Signal(syscall.SIGTERM); err != nil && !errors.Is(err, os.ErrProcessDone) {
		return fmt.Errorf("signal bridge: %w", err)
	}
	t := time.NewTimer(timeout)
	defer t.Stop()
	select {
	case <-c.done:
	case <-t.C:
		_ = c.cmd.Process.Kill()
		<-c.done
		return fmt.Errorf("bridge did not stop within %s; killed (see %s)", timeout, c.logPath)
	}
	var exit *exec.ExitError
	if errors.As(c.waitErr, &exit) {
		return fmt.Errorf("bridge exited with %v (see %s)", c.waitErr, c.logPath)
	}
	return c.waitErr
}

// heapSampler measures the in-process docs loop's memory: the peak of Go heap objects plus
// goroutine stacks, above the level before the loop started. It shares the process with the
// simulator, whose per-request garbage is counted too, so it is an upper bound.
type heapSampler struct {
	base  uint64
	peak  uint64
	stop  chan struct{}
	done  chan struct{}
	names []metrics.Sample
}

func startHeapSampler() *heapSampler {
	h := &heapSampler{stop: make(chan struct{}), done: make(chan struct{}), names: []metrics.Sample{
		{Name: "/memory/classes/heap/objects:bytes"},
		{Name: "/memory/classes/heap/stacks:bytes"},
	}}
	runtime.GC()
	h.base = h.read()
	h.peak = h.base
	go func() {
		defer close(h.done)
		t := time.NewTicker(20 * time.Millisecond)
		defer t.Stop()
		for {
			select {
			case <-h.stop:
				return
			case <-t.C:
				h.peak = max(h.peak, h.read())
			}
		}
	}()
	return h
}

func (h *heapSampler) read() uint64 {
	metrics.Read(h.names)
	var sum uint64
	for _, s := range h.names {
		if s.Value.Kind() == metrics.KindUint64 {
			sum += s.Value.Uint64()
		}
	}
	return sum
}

// finish stops sampling and returns the peak above the base, in bytes.
func (h *heapSampler) finish() int64 {
	close(h.stop)
	<-h.done
	return int64(h.peak - h.base)
}
