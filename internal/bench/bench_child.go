package bench

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"net/http"
	"os"
	"os/exec"
	"runtime"
	"runtime/metrics"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/reducto-bridge/reducto-bridge/internal/bridgeproc"
)

// childBridge is a bridge run as a child process ('bridge run', internal/bridgeproc), so that
// its memory is its own: the bench's NATS server and simulator live in the parent.
type childBridge struct {
	*bridgeproc.Process

	stopSampling chan struct{}
	sampled      chan struct{}
	mu           sync.Mutex
	hwmKB, rssKB int64 // VmHWM (peak) and the last VmRSS
}

// startChild starts argv (nil: this executable with "run") on addr with the given
// BRIDGE_*/REDUCTO_*/NATS_* environment (plus extra), logging to logPath, and samples its
// memory until it exits.
func startChild(argv []string, addr string, env map[string]string, extra []string, logPath string) (*childBridge, error) {
	c := &childBridge{
		Process: bridgeproc.New(bridgeproc.Options{
			Name: "bench", Argv: argv, Env: env, Extra: extra, HTTPAddr: addr, LogPath: logPath, Truncate: true,
		}),
		stopSampling: make(chan struct{}),
		sampled:      make(chan struct{}),
	}
	if err := c.Start(); err != nil {
		return nil, err
	}
	go c.sample()
	return c, nil
}

// waitReady polls /readyz until it answers 200 (there is no other signal), the child exits,
// or ctx ends.
func (c *childBridge) waitReady(ctx context.Context) error {
	_, err := c.AwaitReadyz(ctx, http.StatusOK, 50*time.Millisecond)
	return err
}

// get fetches a path from the child's HTTP server, within a minute; a status other than 200
// is an error.
func (c *childBridge) get(ctx context.Context, path string) ([]byte, error) {
	ctx, cancel := context.WithTimeout(ctx, time.Minute)
	defer cancel()
	code, body, err := c.Get(ctx, path)
	if err != nil {
		return nil, err
	}
	if code != http.StatusOK {
		return nil, fmt.Errorf("GET http://%s%s: %d %s", c.Addr(), path, code, http.StatusText(code))
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
		case <-c.Exited():
			return
		case <-t.C:
		}
	}
}

func (c *childBridge) readStatus() {
	hwm, rss, ok := procMemory(c.Pid())
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
	defer c.CloseIdleConnections()
	if !c.Running() {
		return fmt.Errorf("bridge had exited: %v (see %s)", c.Err(), c.LogPath())
	}
	if err := c.Term(timeout); errors.Is(err, bridgeproc.ErrKilled) {
		return fmt.Errorf("bridge did not stop within %s; killed (see %s)", timeout, c.LogPath())
	} else if err != nil {
		return err
	}
	var exit *exec.ExitError
	if errors.As(c.Err(), &exit) {
		return fmt.Errorf("bridge exited with %v (see %s)", c.Err(), c.LogPath())
	}
	return c.Err()
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
