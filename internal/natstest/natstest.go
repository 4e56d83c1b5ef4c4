// Package natstest starts embedded JetStream servers for tests: one per test, storage in the
// test's temp dir, listening on 127.0.0.1 with a random port, shut down in t.Cleanup. WaitFor
// awaits server-side state that sends no signal; FreeAddr finds a port for a listener that is
// started later.
package natstest

import (
	"net"
	"testing"
	"time"

	"github.com/nats-io/nats-server/v2/server"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
)

// Options adjusts the server started by [RunServer].
type Options struct {
	// MaxPayload overrides the server's max_payload (default 1 MiB).
	MaxPayload int32
	// StoreDir reuses a JetStream store directory (to restart a server on the same state);
	// empty means a fresh t.TempDir().
	StoreDir string
	// Port fixes the listen port (to restart on the same address); 0 means random.
	Port int
	// Configure, when set, adjusts the server options last, for what the fields above do not
	// cover: users, tokens, nkeys, TLS, operator mode. Host, port, JetStream and the store
	// directory are already set when it is called.
	Configure func(*server.Options)
}

// RunServer starts a JetStream-enabled nats-server on 127.0.0.1 and stops it when the test ends.
func RunServer(t testing.TB, opts ...Options) *server.Server {
	t.Helper()
	var o Options
	if len(opts) > 0 {
		o = opts[0]
	}
	sopts := ServerOptions(t, o)
	s, err := server.NewServer(sopts)
	if err != nil {
		t.Fatalf("new nats server: %v", err)
	}
	s.Start()
	if !s.ReadyForConnections(10 * time.Second) {
		s.Shutdown()
		t.Fatal("nats server not ready within 10s")
	}
	t.Cleanup(func() {
		s.Shutdown()
		s.WaitForShutdown()
	})
	return s
}

// ServerOptions are the options [RunServer] starts a server with (JetStream, 127.0.0.1, no
// logs, no signal handlers, storage in t.TempDir() unless o.StoreDir), for a test that runs
// the server's lifecycle itself: shut down and started again, or started concurrently with
// the other nodes of a cluster.
func ServerOptions(t testing.TB, o Options) *server.Options {
	t.Helper()
	sopts := &server.Options{
		Host:       "127.0.0.1",
		Port:       -1,
		JetStream:  true,
		StoreDir:   o.StoreDir,
		NoLog:      true,
		NoSigs:     true,
		MaxPayload: o.MaxPayload,
	}
	if sopts.StoreDir == "" {
		sopts.StoreDir = t.TempDir()
	}
	if o.Port != 0 {
		sopts.Port = o.Port
	}
	if o.Configure != nil {
		o.Configure(sopts)
	}
	return sopts
}

// Connect opens a client connection to s and closes it when the test ends.
func Connect(t testing.TB, s *server.Server, opts ...nats.Option) *nats.Conn {
	t.Helper()
	nc, err := nats.Connect(s.ClientURL(), opts...)
	if err != nil {
		t.Fatalf("connect to nats: %v", err)
	}
	t.Cleanup(nc.Close)
	return nc
}

// JetStream connects to s and returns a JetStream context on that connection.
func JetStream(t testing.TB, s *server.Server) (*nats.Conn, jetstream.JetStream) {
	t.Helper()
	nc := Connect(t, s)
	js, err := jetstream.New(nc)
	if err != nil {
		t.Fatalf("jetstream: %v", err)
	}
	return nc, js
}

// WaitFor polls cond until it holds, failing the test after 20 s. It is for state that has no
// signal to await (the contents of a stream on the server); everything else waits on channels.
func WaitFor(t testing.TB, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(20 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatal("condition not met within 20s")
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// FreeAddr returns a 127.0.0.1 address nobody listens on, for a listener whose address must be
// known before it starts (a bridge's public URL, a server restarted on the same port). The
// port was free a moment ago; nothing stops another process from taking it in between.
func FreeAddr(t testing.TB) string {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatalf("find a free port: %v", err)
	}
	defer l.Close()
	return l.Addr().String()
}
