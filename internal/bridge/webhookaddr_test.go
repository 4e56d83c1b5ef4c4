package bridge

import (
	"bufio"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/reducto-bridge/reducto-bridge/config"
	"github.com/reducto-bridge/reducto-bridge/internal/natstest"
	"github.com/reducto-bridge/reducto-bridge/reducto/reductosim"
	"github.com/reducto-bridge/reducto-bridge/webhook"
)

// startTuned is harness.start with the bridge's unexported settings adjusted first.
func (h *harness) startTuned(cfg *config.Config, tune func(*Bridge)) *Bridge {
	h.t.Helper()
	if err := cfg.Validate(); err != nil {
		h.t.Fatal(err)
	}
	log := slog.New(slog.NewTextHandler(h.logs, &slog.HandlerOptions{Level: cfg.LogLevel}))
	b, err := start(h.t.Context(), cfg, log, tune)
	if err != nil {
		h.t.Fatalf("start: %v", err)
	}
	var once sync.Once
	h.t.Cleanup(func() { once.Do(func() { h.stop(b) }) })
	return b
}

// rawRequest sends request (up to and without the blank line) on a new connection to addr
// and reads the answer within 10 s, far less than any body read timeout involved.
func rawRequest(t *testing.T, addr, request string) *http.Response {
	t.Helper()
	conn, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { conn.Close() })
	fmt.Fprint(conn, request+"\r\n")
	conn.SetReadDeadline(time.Now().Add(10 * time.Second))
	resp, err := http.ReadResponse(bufio.NewReader(conn), nil)
	if err != nil {
		t.Fatalf("no answer to %q: %v", strings.SplitN(request, "\r\n", 2)[0], err)
	}
	resp.Body.Close()
	return resp
}

func statusOf(t *testing.T, method, url string) int {
	t.Helper()
	req, _ := http.NewRequest(method, url, nil)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	return resp.StatusCode
}

// TestWebhookListenerApart: with BRIDGE_WEBHOOK_ADDR the webhook endpoint is on the public
// listener only, and the operator endpoints on BRIDGE_HTTP_ADDR only; the public listener
// refuses what cannot be authentic before reading a body, and caps its header size.
func TestWebhookListenerApart(t *testing.T) {
	h := newHarness(t, natstest.Options{}, reductosim.Options{})
	cfg := h.config()
	cfg.WebhookAddr = "127.0.0.1:0"
	cfg.WebhookToken = "hook-token"
	cfg.Pprof = true
	b := h.start(cfg)
	pub, op := "http://"+b.WebhookAddr().String(), "http://"+b.HTTPAddr().String()

	for _, c := range []struct {
		method, url string
		want        int
	}{
		{"GET", op + "/healthz", 200},
		{"GET", op + "/debug/pprof/", 200},
		{"POST", op + webhook.Path + "?token=hook-token", 404},
		{"GET", pub + "/healthz", 404},
		{"GET", pub + "/metrics", 404},
		{"GET", pub + "/debug/pprof/", 404},
		{"GET", pub + webhook.Path, 405},
		{"POST", pub + webhook.Path, 401},
	} {
		if got := statusOf(t, c.method, c.url); got != c.want {
			t.Errorf("%s %s = %d, want %d", c.method, c.url, got, c.want)
		}
	}

	// A valid direct webhook for an unknown job is accepted (and tracks it).
	resp, err := http.Post(pub+webhook.Path+"?token=hook-token", "application/json",
		strings.NewReader(`{"status":"Completed","job_id":"job-apart"}`))
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != 200 {
		t.Errorf("valid webhook = %d, want 200", resp.StatusCode)
	}

	// Announced bodies that never come: answered from the headers alone, connection closed.
	addr := b.WebhookAddr().String()
	for _, req := range []string{
		"POST " + webhook.Path + " HTTP/1.1\r\nHost: x\r\nContent-Length: 1000000\r\n",
		"POST " + webhook.Path + " HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n",
		"POST " + webhook.Path + "?token=guess HTTP/1.1\r\nHost: x\r\nContent-Length: 1000\r\n",
		"POST /elsewhere HTTP/1.1\r\nHost: x\r\nContent-Length: 1000\r\n",
	} {
		resp := rawRequest(t, addr, req)
		if resp.StatusCode != 401 && resp.StatusCode != 404 || !resp.Close {
			t.Errorf("%q: status %d close %v, want 401 or 404 and the connection closed", req, resp.StatusCode, resp.Close)
		}
	}
	// Headers over the public listener's limit are refused.
	big := "POST " + webhook.Path + "?token=hook-token HTTP/1.1\r\nHost: x\r\nX-Pad: " + strings.Repeat("a", 32<<10) + "\r\n"
	if resp := rawRequest(t, addr, big); resp.StatusCode != http.StatusRequestHeaderFieldsTooLarge {
		t.Errorf("32 KiB of headers: status %d, want 431", resp.StatusCode)
	}
}

// TestWebhookConnectionCap: connections beyond the public listener's cap are closed at once,
// the cap holds, and the operator listener still answers; a freed slot is usable again.
func TestWebhookConnectionCap(t *testing.T) {
	const max, extra = 4, 20
	h := newHarness(t, natstest.Options{}, reductosim.Options{})
	cfg := h.config()
	cfg.WebhookAddr = "127.0.0.1:0"
	cfg.WebhookToken = "hook-token"
	b := h.startTuned(cfg, func(b *Bridge) { b.webhookMaxConns = max })
	addr := b.WebhookAddr().String()

	dial := func() net.Conn {
		c, err := net.Dial("tcp", addr)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { c.Close() })
		return c
	}
	// Stalled connections: nothing sent, so each holds its slot (up to ReadHeaderTimeout).
	var held []net.Conn
	for range max {
		held = append(held, dial())
	}
	natstest.WaitFor(t, func() bool { return b.webhookLn.open() == max })
	for i := range extra {
		c := dial()
		c.SetReadDeadline(time.Now().Add(10 * time.Second))
		if n, err := c.Read(make([]byte, 1)); err != io.EOF {
			t.Fatalf("connection %d beyond the cap: read %d, %v; want EOF (closed at once)", i, n, err)
		}
	}
	if got := b.webhookLn.refused.Load(); got != extra {
		t.Errorf("refused = %d, want %d", got, extra)
	}
	if got := b.webhookLn.open(); got != max {
		t.Errorf("open = %d, want %d (the cap)", got, max)
	}
	if got := statusOf(t, "GET", "http://"+b.HTTPAddr().String()+"/healthz"); got != 200 {
		t.Errorf("operator /healthz = %d while the public listener is full", got)
	}
	// A slot freed by a peer leaving is taken by the next connection, which is served.
	held[0].Close()
	natstest.WaitFor(t, func() bool { return b.webhookLn.open() == max-1 })
	if resp := rawRequest(t, addr, "POST "+webhook.Path+" HTTP/1.1\r\nHost: x\r\nContent-Length: 1000000\r\n"); resp.StatusCode != 401 {
		t.Errorf("after a slot was freed: status %d, want 401", resp.StatusCode)
	}
}
