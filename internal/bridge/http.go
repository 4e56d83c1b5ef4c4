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

// startHTTP serves /healthz, /readyz and /metrics on BRIDGE_HTTP_ADDR.
func (b *Bridge) startHTTP() error {
	ln, err := net.Listen("tcp", b.cfg.HTTPAddr)
	if err != nil {
		return fmt.Errorf("listen on BRIDGE_HTTP_ADDR %s: %w", b.cfg.HTTPAddr, err)
	}
	b.httpAddr = ln.Addr()
	// No ReadTimeout: it would cancel long requests such as a 30 s CPU profile. Webhook bodies
	// have their own read deadline; idle keep-alive connections are closed after 2 minutes.
	b.httpSrv = &http.Server{Handler: b.routes(), ReadHeaderTimeout: 10 * time.Second, IdleTimeout: 2 * time.Minute}
	b.httpDone = make(chan struct{})
	go func() {
		defer close(b.httpDone)
		if err := b.httpSrv.Serve(ln); err != nil && !errors.Is(err, http.ErrServerClosed) {
			b.log.Error("http server stopped", "error", err)
		}
	}()
	return nil
}

func (b *Bridge) routes() http.Handler {
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
	mux.HandleFunc("POST "+webhook.Path, func(w http.ResponseWriter, r *http.Request) {
		h := b.webhook.Load()
		if h == nil {
			http.Error(w, "starting", http.StatusServiceUnavailable)
			return
		}
		h.ServeHTTP(w, r)
	})
	return mux
}
