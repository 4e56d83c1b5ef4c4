package bridge

import (
	"errors"
	"fmt"
	"log/slog"
	"net"
	"path/filepath"
	"strconv"
	"sync"
	"time"

	"github.com/nats-io/nats-server/v2/server"
	"github.com/nats-io/nats.go"

	"github.com/reducto-bridge/reducto-bridge/config"
)

// startEmbedded starts the in-process nats-server used when NATS_URL is empty: JetStream on
// BRIDGE_DATA_DIR, listening on BRIDGE_EMBEDDED_NATS_ADDR so the nats CLI and local services
// can connect. With BRIDGE_EMBEDDED_NATS_TOKEN set, every client must present the token
// (config refuses a non-loopback address without it). NoSigs: our own signal handling must
// run the drain.
func startEmbedded(cfg *config.Config, log *slog.Logger) (*server.Server, error) {
	host, portStr, err := net.SplitHostPort(cfg.EmbeddedNATSAddr)
	if err != nil {
		return nil, fmt.Errorf("BRIDGE_EMBEDDED_NATS_ADDR: %w", err)
	}
	port, err := strconv.Atoi(portStr)
	if err != nil {
		return nil, fmt.Errorf("BRIDGE_EMBEDDED_NATS_ADDR: port %q: %w", portStr, err)
	}
	if port == 0 {
		port = server.RANDOM_PORT // nats-server reads 0 as 4222
	}
	dir, err := filepath.Abs(cfg.DataDir)
	if err != nil {
		return nil, fmt.Errorf("BRIDGE_DATA_DIR: %w", err)
	}
	s, err := server.NewServer(&server.Options{
		ServerName: "reducto-bridge-embedded",
		Host:       host,
		Port:       port,
		JetStream:  true,
		StoreDir:   dir,
		NoSigs:     true,
		// Empty: no authentication (loopback only, see config.Validate).
		Authorization: cfg.EmbeddedNATSToken.Reveal(),
	})
	if err != nil {
		return nil, fmt.Errorf("embedded nats server: %w", err)
	}
	s.SetLoggerV2(serverLogger{log.With("component", "nats-server")}, false, false, false)
	s.Start()
	if !s.ReadyForConnections(10 * time.Second) {
		s.Shutdown()
		return nil, fmt.Errorf("embedded nats server on %s not ready within 10s", cfg.EmbeddedNATSAddr)
	}
	return s, nil
}

// connectOptions are the NATS client options from the environment: auth, TLS, and a
// connection that never gives up reconnecting. Its handlers and dialer report every failed
// attempt to h, for /readyz and the log.
func connectOptions(cfg *config.Config, h *natsHealth, closed chan<- struct{}) ([]nats.Option, error) {
	log := h.log
	opts := []nats.Option{
		nats.Name("reducto-bridge"),
		nats.MaxReconnects(-1),
		nats.RetryOnFailedConnect(true),
		nats.ReconnectWait(time.Second),
		// nats.go folds a refused first connection into "no servers available": dialing
		// ourselves keeps each attempt's own error (with its address) for /readyz and the log.
		nats.SetCustomDialer(&watchedDialer{d: net.Dialer{Timeout: nats.DefaultTimeout}, failed: h.dialFailed}),
		nats.ConnectHandler(func(nc *nats.Conn) { h.connected(nc, false) }),
		nats.DisconnectErrHandler(func(_ *nats.Conn, err error) { h.disconnected(err) }),
		nats.ReconnectHandler(func(nc *nats.Conn) { h.connected(nc, true) }),
		nats.ReconnectErrHandler(func(_ *nats.Conn, err error) { h.attemptFailed(err) }),
		nats.ErrorHandler(func(nc *nats.Conn, sub *nats.Subscription, err error) {
			if sub == nil && !nc.IsConnected() {
				// A refused login or the like while (re)connecting: why NATS is unreachable.
				h.attemptFailed(err)
				return
			}
			subj := ""
			if sub != nil {
				subj = sub.Subject
			}
			log.Warn("nats async error", "subject", subj, "error", err)
		}),
		nats.ClosedHandler(func(*nats.Conn) { close(closed) }),
	}
	auth, err := cfg.NATSAuthOptions()
	if err != nil {
		return nil, err
	}
	opts = append(opts, auth...)
	return opts, nil
}

// watchedDialer is nats.go's default dialer (TCP, nats.DefaultTimeout) that reports each
// failed dial. nats.go calls it with its connection lock held: failed must not call back
// into the connection.
type watchedDialer struct {
	d      net.Dialer
	failed func(error)
}

func (w *watchedDialer) Dial(network, address string) (net.Conn, error) {
	c, err := w.d.Dial(network, address)
	if err != nil {
		w.failed(err)
	}
	return c, err
}

// natsReminder is how often a continuing NATS outage is logged again at warn level; the
// attempts in between are logged at debug.
const natsReminder = time.Minute

// natsHealth follows the NATS connection for /readyz and the log: the servers (without user
// information), whether the connection has ever been up, and the last failure. The first
// failure of an outage is logged at once at warn, with the URL and the error; the retries
// at debug, with a warn reminder every [natsReminder].
type natsHealth struct {
	log  *slog.Logger
	urls string // set before the connection is made, read-only after

	mu       sync.Mutex
	nc       *nats.Conn // nil until nats.Connect has returned
	ever     bool       // connected at least once
	lastErr  error      // the last failure, cleared on (re)connection
	lastDial error      // the last failure reported by the dialer
	down     time.Time  // start of the current outage; zero while connected
	reminded time.Time  // last warn line of the current outage
}

func newNATSHealth(log *slog.Logger) *natsHealth { return &natsHealth{log: log} }

func (h *natsHealth) setConn(nc *nats.Conn) {
	h.mu.Lock()
	h.nc = nc
	h.mu.Unlock()
}

// dialFailed records a failed dial: the server did not answer.
func (h *natsHealth) dialFailed(err error) {
	h.mu.Lock()
	defer h.mu.Unlock()
	h.lastDial = err
	h.failedLocked(err)
}

// attemptFailed records the error nats.go reports for a failed (re)connection attempt,
// unless it is the dial error already recorded, or nats.go's "no servers available" that
// sums up refused dials.
func (h *natsHealth) attemptFailed(err error) {
	h.mu.Lock()
	defer h.mu.Unlock()
	if err == nil || errors.Is(err, h.lastDial) || (errors.Is(err, nats.ErrNoServers) && h.lastErr != nil) {
		return
	}
	h.failedLocked(err)
}

func (h *natsHealth) failedLocked(err error) {
	h.lastErr = err
	now := time.Now()
	switch {
	case h.down.IsZero():
		h.down, h.reminded = now, now
		msg := "nats unreachable; retrying"
		if h.ever {
			msg = "nats reconnect failed; retrying"
		}
		h.log.Warn(msg, "url", h.urls, "error", err)
	case now.Sub(h.reminded) >= natsReminder:
		h.reminded = now
		h.log.Warn("nats still unreachable; retrying", "url", h.urls, "error", err, "for", now.Sub(h.down).Round(time.Second))
	default:
		h.log.Debug("nats connection attempt failed; retrying", "url", h.urls, "error", err)
	}
}

// disconnected records the loss of an established connection (err is nil when the bridge
// closes it itself).
func (h *natsHealth) disconnected(err error) {
	if err == nil {
		return
	}
	h.mu.Lock()
	defer h.mu.Unlock()
	h.lastErr = err
	if h.down.IsZero() {
		h.down = time.Now()
		h.reminded = h.down
	}
	h.log.Warn("nats disconnected; reconnecting", "url", h.urls, "error", err)
}

// connected records a (re)connection and logs it, with the outage's length if there was one.
func (h *natsHealth) connected(nc *nats.Conn, again bool) {
	server := config.RedactURL(nc.ConnectedUrl())
	h.mu.Lock()
	args := []any{"server", server}
	if !h.down.IsZero() {
		args = append(args, "after", time.Since(h.down).Round(time.Millisecond))
	}
	h.ever, h.lastErr, h.lastDial, h.down = true, nil, nil, time.Time{}
	h.mu.Unlock()
	msg := "nats connected"
	if again {
		msg = "nats reconnected"
	}
	h.log.Info(msg, args...)
}

// notReady is nil while the connection is up, and otherwise says which servers the bridge is
// trying and why it has not reached them, e.g. "nats: connecting to nats://10.0.0.5:4222:
// dial tcp 10.0.0.5:4222: connect: connection refused". It never shows user information.
func (h *natsHealth) notReady() error {
	h.mu.Lock()
	nc, ever, err := h.nc, h.ever, h.lastErr
	h.mu.Unlock()
	if nc != nil && nc.IsConnected() {
		return nil
	}
	if err == nil && nc != nil {
		err = nc.LastError()
	}
	var msg string
	switch {
	case nc != nil && nc.IsClosed():
		msg = "nats: connection to " + h.urls + " closed"
	case ever:
		msg = "nats: reconnecting to " + h.urls
	default:
		msg = "nats: connecting to " + h.urls
	}
	if err == nil {
		return errors.New(msg)
	}
	return fmt.Errorf("%s: %w", msg, err)
}
