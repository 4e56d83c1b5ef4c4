package redact

import (
	"bytes"
	"errors"
	"fmt"
	"log/slog"
	"net/url"
	"strings"
	"testing"
)

type stringer string

func (s stringer) String() string { return string(s) }

func TestHandlerRedactsEveryTextValue(t *testing.T) {
	const secret = "tok-s3cr3t/+"
	for _, format := range []string{"text", "json"} {
		t.Run(format, func(t *testing.T) {
			var buf bytes.Buffer
			var h slog.Handler = slog.NewTextHandler(&buf, &slog.HandlerOptions{Level: slog.LevelDebug})
			if format == "json" {
				h = slog.NewJSONHandler(&buf, &slog.HandlerOptions{Level: slog.LevelDebug})
			}
			log := slog.New(New(secret).Handler(h))
			quoted := fmt.Errorf("reducto: 400: webhook url https://b.example/hook?token=%s refused", url.QueryEscape(secret))
			log.With("base", "x"+secret).WithGroup("g").With("pre", stringer(secret)).Info("message "+secret,
				"s", secret,
				"err", quoted,
				"wrapped", fmt.Errorf("poll: %w", errors.New(secret)),
				"stringer", stringer("<"+secret+">"),
				"bytes", []byte(`{"t":"`+secret+`"}`),
				slog.Group("inner", "s", secret, slog.Group("deeper", "e", errors.New(secret))),
				"n", 42,
			)
			out := buf.String()
			if strings.Contains(out, secret) || strings.Contains(out, url.QueryEscape(secret)) {
				t.Fatalf("secret in the log line:\n%s", out)
			}
			if n := strings.Count(out, Placeholder); n != 10 {
				t.Errorf("%d placeholders, want 10 (message, base, pre, s, err, wrapped, stringer, bytes, inner.s, inner.deeper.e):\n%s", n, out)
			}
			if !strings.Contains(out, "42") || !strings.Contains(out, "webhook url") {
				t.Errorf("the rest of the line was lost:\n%s", out)
			}
		})
	}
}

func TestNilRedactorHandlerIsTheHandler(t *testing.T) {
	h := slog.NewTextHandler(&bytes.Buffer{}, nil)
	if got := (*Redactor)(nil).Handler(h); got != h {
		t.Fatalf("nil Redactor wrapped the handler: %T", got)
	}
	if got := New("", "").Handler(h); got != h {
		t.Fatalf("Redactor of no secrets wrapped the handler: %T", got)
	}
}
