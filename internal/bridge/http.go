package bridge

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"net/http/pprof"
	"time"

	"github.com/prometheus/client_golang/prometheus/promhttp"

	"github.com/reducto-bridge/reducto-bridge/webhook"
)

// The public webhook listener's (BRIDGE_WEBHOOK_ADDR) limits. A webhook is a few hundred
// bytes with a handful of headers, answered in milliseconds, so all of them are small: what
// an unauthenticated peer can hold is at most webhookMaxConns connections, each with at most
// webhookMaxHeaderBytes of headers for webhookReadHeaderTimeout, or idle for
// webhookIdleTimeout; a body is read only once its headers could be authentic, within the
// handler's own deadline (webhook.DefaultReadTimeout).
const (
	webhookMaxConns          = 128
	webhookMaxHeaderBytes    = 8 << 10
	webhookReadHeaderTimeout = 5 * time.Second
	webhookIdleTimeout       = 30 * time.Second
	// webhookWriteTimeout runs from the end of the headers: the body's read deadline plus
	// the handler's own bound on its work, with room to spare.
	webhookWriteTimeout = 30 * time.Second
)

// startHTTP serves /healthz, /readyz and /metrics (and pprof) on BRIDGE_HTTP_ADDR, and the
// webhook endpoint on BRIDGE_WEBHOOK_ADDR, or on BRIDGE_HTTP_ADDR when that is empty. The
// webhook endpoint answers 503 until the handler exists.
func (b *Bridge) startHTTP() error {
	ln, err := net.Listen("tcp", b.cfg.HTTPAddr)
	if err != nil {
		return fmt.Errorf("listen on BRIDGE_HTTP_ADDR %s: %w", b.cfg.HTTPAddr, err)
	}
	b.httpAddr = ln.Addr()
	// No ReadTimeout: it would cancel long requests such as a 30 s CPU profile. Webhook bodies
	// have their own read deadline; idle keep-alive connections are closed after 2 minutes.
	b.httpSrv = &http.Server{Handler: b.routes(b.cfg.WebhookAddr == ""), ReadHeaderTimeout: 10 * time.Second, IdleTimeout: 2 * time.Minute}
	b.httpDone = serve(b, b.httpSrv, ln, "http server stopped")
	if b.cfg.WebhookAddr == "" {
		return nil
	}
	wln, err := net.Listen("tcp", b.cfg.WebhookAddr)
	if err != nil {
		return fmt.Errorf("listen on BRIDGE_WEBHOOK_ADDR %s: %w", b.cfg.WebhookAddr, err)
	}
	b.webhookAddr = wln.Addr()
	max := webhookMaxConns
	if b.webhookMaxConns > 0 {
		max = b.webhookMaxConns
	}
	b.webhookLn = newCapListener(wln, max)
	b.webhookSrv = &http.Server{
		Handler:           b.publicRoutes(),
		MaxHeaderBytes:    webhookMaxHeaderBytes,
		ReadHeaderTimeout: webhookReadHeaderTimeout,
		WriteTimeout:      webhookWriteTimeout,
		IdleTimeout:       webhookIdleTimeout,
	}
	b.webhookDone = serve(b, b.webhookSrv, b.webhookLn, "webhook server stopped")
	return nil
}

func serve(b *Bridge, srv *http.Server, ln net.Listener, msg string) chan struct{} {
	done := make(chan struct{})
	go func() {
		defer close(done)
		if err := srv.Serve(ln); err != nil && !errors.Is(err, http.ErrServerClosed) {
			b.log.Error(msg, "error", err)
		}
	}()
	return done
}

// routes are the operator endpoints, with the webhook endpoint when it has no listener of its
// own.
func (b *Bridge) routes(withWebhook bool) http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("GET /healthz", func(w http.ResponseWriter, r *http.Request) {
		fmt.Fprintln(w, "ok")
	})
	mux.HandleFunc("GET /readyz", func(w http.ResponseWriter, r *http.Request) {
		ctx, cancel := context.WithTimeout(r.Context(), 2*time.Second)
		defer cancel()
		if err := b.Ready(ctx); err != nil {
			http.Error(w, "not ready: "+err.Error(), http.StatusServiceUnavailable)
			return
		}
		fmt.Fprintln(w, "ready")
	})
	mux.Handle("GET /metrics", promhttp.HandlerFor(b.m.Registry, promhttp.HandlerOpts{}))
	if b.cfg.Pprof {
		mux.HandleFunc("/debug/pprof/", pprof.Index)
		mux.HandleFunc("/debug/pprof/profile", pprof.Profile)
		mux.HandleFunc("/debug/pprof/trace", pprof.Trace)
	}
	if withWebhook {
		mux.HandleFunc("POST "+webhook.Path, b.serveWebhook)
	}
	return mux
}

// publicRoutes is the public listener's only endpoint. Any other path is 404 and the handler
// answers any other method 405, both without reading a body and closing the connection.
func (b *Bridge) publicRoutes() http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path != webhook.Path {
			w.Header().Set("Connection", "close")
			http.NotFound(w, r)
			return
		}
		b.serveWebhook(w, r)
	})
}

func (b *Bridge) serveWebhook(w http.ResponseWriter, r *http.Request) {
	h := b.webhook.Load()
	if h == nil {
		w.Header().Set("Connection", "close")
		http.Error(w, "starting", http.StatusServiceUnavailable)
		return
	}
	h.ServeHTTP(w, r)
}
