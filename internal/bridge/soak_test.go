package bridge

import (
	"bufio"
	"fmt"
	"net"
	"net/http"
	"os"
	"slices"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/reducto-bridge/reducto-bridge/internal/natstest"
	"github.com/reducto-bridge/reducto-bridge/reducto/reductosim"
	"github.com/reducto-bridge/reducto-bridge/webhook"
)

// TestWebhookSoak is a measurement, not a check: WEBHOOK_SOAK=public (webhooks on
// BRIDGE_WEBHOOK_ADDR) or WEBHOOK_SOAK=shared (BRIDGE_WEBHOOK_ADDR empty: webhooks on the
// operator listener, as before it existed) opens 1,000 stalled connections (SOAK_HEADER_BYTES
// of headers, default 1 MiB, never finished) and 5,000 idle keep-alive ones (one answered
// request each: GET /healthz on the shared listener, a valid webhook on the public one, whose
// other answers close the connection) and logs this process's VmRSS and the latency of
// GET /healthz on the operator port. Client and bridge share the process, so the RSS includes
// the client side (small: no buffers kept). Run with -v.
func TestWebhookSoak(t *testing.T) {
	mode := os.Getenv("WEBHOOK_SOAK")
	if mode != "public" && mode != "shared" {
		t.Skip("a measurement: set WEBHOOK_SOAK=public or WEBHOOK_SOAK=shared")
	}
	const stalled, idle = 1000, 5000
	headerBytes := 1 << 20
	if v := os.Getenv("SOAK_HEADER_BYTES"); v != "" {
		headerBytes, _ = strconv.Atoi(v)
	}
	var lim syscall.Rlimit
	if err := syscall.Getrlimit(syscall.RLIMIT_NOFILE, &lim); err != nil {
		t.Fatal(err)
	}
	if need := uint64(2*(stalled+idle) + 1000); lim.Cur < need {
		lim.Cur = min(need, lim.Max)
		if err := syscall.Setrlimit(syscall.RLIMIT_NOFILE, &lim); err != nil {
			t.Fatal(err)
		}
	}
	t.Logf("mode %s, fd limit %d, stalled header bytes %d", mode, lim.Cur, headerBytes)

	h := newHarness(t, natstest.Options{}, reductosim.Options{Clock: reductosim.RealClock()})
	cfg := h.config()
	cfg.LogLevel = 8 // errors only: 6,000 log lines would be measured too
	cfg.WebhookToken = "hook-token"
	if mode == "public" {
		cfg.WebhookAddr = "127.0.0.1:0"
	}
	b := h.start(cfg)
	op := b.HTTPAddr().String()
	target := op
	if mode == "public" {
		target = b.WebhookAddr().String()
	}

	healthz := func() (p50, max time.Duration, failed int) {
		var ds []time.Duration
		c := &http.Client{Timeout: 5 * time.Second, Transport: &http.Transport{DisableKeepAlives: true}}
		for range 20 {
			start := time.Now()
			resp, err := c.Get("http://" + op + "/healthz")
			if err != nil {
				failed++
				continue
			}
			resp.Body.Close()
			ds = append(ds, time.Since(start))
		}
		slices.Sort(ds)
		if len(ds) == 0 {
			return 0, 0, failed
		}
		return ds[len(ds)/2], ds[len(ds)-1], failed
	}
	report := func(when string) {
		p50, max, failed := healthz()
		open := -1
		if b.webhookLn != nil {
			open = b.webhookLn.open()
		}
		t.Logf("%-28s VmRSS %s  /healthz p50 %v max %v failed %d/20  public conns held %d", when, vmRSS(t), p50, max, failed, open)
	}
	report("before")

	var mu sync.Mutex
	var conns []net.Conn
	keep := func(c net.Conn) { mu.Lock(); conns = append(conns, c); mu.Unlock() }
	defer func() {
		for _, c := range conns {
			c.Close()
		}
	}()
	pad := "X-Pad: " + strings.Repeat("a", headerBytes) // no CRLF: the headers never end
	var wg sync.WaitGroup
	sem := make(chan struct{}, 200)
	for range stalled {
		wg.Add(1)
		sem <- struct{}{}
		go func() {
			defer wg.Done()
			defer func() { <-sem }()
			c, err := net.Dial("tcp", target)
			if err != nil {
				return
			}
			keep(c)
			c.SetWriteDeadline(time.Now().Add(3 * time.Second))
			fmt.Fprintf(c, "POST %s HTTP/1.1\r\nHost: x\r\n%s", webhook.Path, pad)
		}()
	}
	wg.Wait()
	report("1,000 stalled")

	req := "GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n"
	if mode == "public" {
		body := `{"status":"Completed","job_id":"soak-job"}`
		req = fmt.Sprintf("POST %s?token=hook-token HTTP/1.1\r\nHost: x\r\nContent-Length: %d\r\n\r\n%s", webhook.Path, len(body), body)
	}
	var answered sync.WaitGroup
	var nAnswered, nRefused int
	for range idle {
		answered.Add(1)
		sem <- struct{}{}
		go func() {
			defer answered.Done()
			defer func() { <-sem }()
			c, err := net.Dial("tcp", target)
			if err != nil {
				mu.Lock()
				nRefused++
				mu.Unlock()
				return
			}
			keep(c)
			c.SetDeadline(time.Now().Add(10 * time.Second))
			fmt.Fprint(c, req)
			resp, err := http.ReadResponse(bufio.NewReader(c), nil)
			mu.Lock()
			defer mu.Unlock()
			if err != nil {
				nRefused++
				return
			}
			resp.Body.Close()
			nAnswered++
		}()
	}
	answered.Wait()
	t.Logf("idle connections: %d answered and kept alive, %d closed or refused", nAnswered, nRefused)
	report("+ 5,000 idle keep-alive")
}

// vmRSS is this process's resident set size from /proc/self/status.
func vmRSS(t *testing.T) string {
	b, err := os.ReadFile("/proc/self/status")
	if err != nil {
		t.Fatal(err)
	}
	for line := range strings.Lines(string(b)) {
		if v, ok := strings.CutPrefix(line, "VmRSS:"); ok {
			return strings.TrimSpace(v)
		}
	}
	return "?"
}
