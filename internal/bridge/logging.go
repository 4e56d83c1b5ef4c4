package bridge

import (
	"context"
	"fmt"
	"io"
	"log/slog"

	"github.com/reducto-bridge/reducto-bridge/config"
)

// NewLogger builds the process logger from BRIDGE_LOG_LEVEL and BRIDGE_LOG_FORMAT (text or
// json), writing to w.
func NewLogger(cfg *config.Config, w io.Writer) *slog.Logger {
	opts := &slog.HandlerOptions{Level: cfg.LogLevel}
	if cfg.LogFormat == "json" {
		return slog.New(slog.NewJSONHandler(w, opts))
	}
	return slog.New(slog.NewTextHandler(w, opts))
}

// serverLogger routes the embedded nats-server's printf-style logs into slog.
type serverLogger struct{ log *slog.Logger }

func (l serverLogger) Noticef(format string, v ...any) { l.put(slog.LevelDebug, format, v) }
func (l serverLogger) Warnf(format string, v ...any)   { l.put(slog.LevelWarn, format, v) }
func (l serverLogger) Fatalf(format string, v ...any)  { l.put(slog.LevelError, format, v) }
func (l serverLogger) Errorf(format string, v ...any)  { l.put(slog.LevelError, format, v) }
func (l serverLogger) Debugf(format string, v ...any)  { l.put(slog.LevelDebug, format, v) }
func (l serverLogger) Tracef(string, ...any)           {}

func (l serverLogger) put(level slog.Level, format string, v []any) {
	l.log.Log(context.Background(), level, "nats-server", "message", fmt.Sprintf(format, v...))
}
