package main

import (
	"fmt"
	"log/slog"
	"net"
	"path/filepath"
	"strconv"
	"time"

	"github.com/nats-io/nats-server/v2/server"
	"github.com/nats-io/nats.go"

	"github.com/reducto-bridge/reducto-bridge/config"
)

// startEmbedded starts the in-process nats-server used when NATS_URL is empty: JetStream on
// BRIDGE_DATA_DIR, listening on BRIDGE_EMBEDDED_NATS_ADDR so the nats CLI and local services
// can connect. NoSigs: our own signal handling must run the drain.
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
// connection that never gives up reconnecting.
func connectOptions(cfg *config.Config, log *slog.Logger, closed chan<- struct{}) ([]nats.Option, error) {
	opts := []nats.Option{
		nats.Name("reducto-bridge"),
		nats.MaxReconnects(-1),
		nats.RetryOnFailedConnect(true),
		nats.ReconnectWait(time.Second),
		nats.ConnectHandler(func(nc *nats.Conn) {
			log.Info("nats connected", "server", nc.ConnectedUrlRedacted())
		}),
		nats.DisconnectErrHandler(func(_ *nats.Conn, err error) {
			if err != nil {
				log.Warn("nats disconnected", "error", err)
			}
		}),
		nats.ReconnectHandler(func(nc *nats.Conn) {
			log.Info("nats reconnected", "server", nc.ConnectedUrlRedacted())
		}),
		nats.ErrorHandler(func(_ *nats.Conn, sub *nats.Subscription, err error) {
			subj := ""
			if sub != nil {
				subj = sub.Subject
			}
			log.Warn("nats async error", "subject", subj, "error", err)
		}),
		nats.ClosedHandler(func(*nats.Conn) { close(closed) }),
	}
	if cfg.NATSCreds != "" {
		opts = append(opts, nats.UserCredentials(cfg.NATSCreds))
	}
	if cfg.NATSNKey != "" {
		o, err := nats.NkeyOptionFromSeed(cfg.NATSNKey)
		if err != nil {
			return nil, fmt.Errorf("NATS_NKEY: %w", err)
		}
		opts = append(opts, o)
	}
	if cfg.NATSUser != "" {
		opts = append(opts, nats.UserInfo(cfg.NATSUser, cfg.NATSPassword.Reveal()))
	}
	if cfg.NATSToken.IsSet() {
		opts = append(opts, nats.Token(cfg.NATSToken.Reveal()))
	}
	if cfg.NATSCA != "" {
		opts = append(opts, nats.RootCAs(cfg.NATSCA))
	}
	if cfg.NATSCert != "" {
		opts = append(opts, nats.ClientCert(cfg.NATSCert, cfg.NATSKey))
	}
	return opts, nil
}
