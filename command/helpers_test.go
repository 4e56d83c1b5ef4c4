package command

import (
	"context"
	"fmt"
	"net"
	"net/url"
	"os"
	"strconv"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/nats-io/nats-server/v2/server"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/micro"

	"github.com/reducto-bridge/reducto-bridge/event"
	"github.com/reducto-bridge/reducto-bridge/internal/natstest"
	"github.com/reducto-bridge/reducto-bridge/internal/reductotest"
	"github.com/reducto-bridge/reducto-bridge/publisher"
	"github.com/reducto-bridge/reducto-bridge/reducto"
	"github.com/reducto-bridge/reducto-bridge/track"
)

const (
	prefix    = "test"
	jobID     = "204a39e4-dd10-4c83-a978-0cee4af8cde2"
	reqWait   = 10 * time.Second
	signalMax = 10 * time.Second
)

var (
	_ Jobs   = (*reducto.Client)(nil)
	_ Jobs   = (*reductotest.Jobs)(nil) // the tests' fake: a Pending job, a cancel, "job-1"
	_ Events = (*publisher.Publisher)(nil)
)

// fakeEvents answers Lookup with ev and err.
type fakeEvents struct {
	ev  *event.Event
	err error
}

func (f *fakeEvents) Lookup(context.Context, string) (*event.Event, error) { return f.ev, f.err }

// trackCall is one call of a fakeTracker.
type trackCall struct {
	id       string
	metadata string
	webhook  bool
}

// fakeTracker records calls and fails with err when set.
type fakeTracker struct {
	err    error
	mu     sync.Mutex
	calls  []trackCall
	called chan trackCall // receives every call when set
}

func (f *fakeTracker) track(_ context.Context, id string, req track.Request) (bool, error) {
	c := trackCall{id, string(req.Metadata), req.Webhook}
	f.mu.Lock()
	f.calls = append(f.calls, c)
	f.mu.Unlock()
	if f.called != nil {
		f.called <- c
	}
	return f.err == nil, f.err
}

func (f *fakeTracker) recorded() []trackCall {
	f.mu.Lock()
	defer f.mu.Unlock()
	return append([]trackCall(nil), f.calls...)
}

// env is a running service and a client connection to send it requests.
type env struct {
	nc  *nats.Conn // the client's connection
	svc *Service
}

// start runs a server and the service (on its own connection), stopped when the test ends.
func start(t *testing.T, jobs Jobs, events Events, track Tracker, o Options) env {
	t.Helper()
	s := natstest.RunServer(t)
	return startOn(t, natstest.Connect(t, s), natstest.Connect(t, s), jobs, events, track, o)
}

func startOn(t *testing.T, svcConn, client *nats.Conn, jobs Jobs, events Events, track Tracker, o Options) env {
	t.Helper()
	if o.Prefix == "" {
		o.Prefix = prefix
	}
	svc, err := Start(svcConn, jobs, events, track, o)
	if err != nil {
		t.Fatalf("Start: %v", err)
	}
	t.Cleanup(func() {
		if err := svc.Stop(); err != nil {
			t.Errorf("Stop: %v", err)
		}
	})
	return env{nc: client, svc: svc}
}

// request sends data to subj and returns the reply.
func request(t *testing.T, nc *nats.Conn, subj string, data []byte) *nats.Msg {
	t.Helper()
	msg, err := nc.Request(subj, data, reqWait)
	if err != nil {
		t.Fatalf("request %s: %v", subj, err)
	}
	return msg
}

// replyCode is a reply's micro error code, or 200 when it is no error.
func replyCode(t *testing.T, msg *nats.Msg) (int, string) {
	t.Helper()
	codeHdr := msg.Header.Get(micro.ErrorCodeHeader)
	desc := msg.Header.Get(micro.ErrorHeader)
	if codeHdr == "" {
		if desc != "" {
			t.Fatalf("reply has %s %q but no %s", micro.ErrorHeader, desc, micro.ErrorCodeHeader)
		}
		return 200, ""
	}
	code, err := strconv.Atoi(codeHdr)
	if err != nil {
		t.Fatalf("%s = %q, not a number", micro.ErrorCodeHeader, codeHdr)
	}
	if desc == "" {
		t.Fatalf("error reply %d without a description", code)
	}
	if len(msg.Data) != 0 {
		t.Errorf("error reply body = %q, want empty", msg.Data)
	}
	return code, desc
}

func apiErr(status int, msg string) error {
	return &reducto.APIError{Op: "test", StatusCode: status, Message: msg}
}

// refused is the error the client returns when Reducto cannot be reached.
func refused() error {
	return fmt.Errorf("get job: %w", &url.Error{Op: "Get", URL: "http://127.0.0.1:1/job/x", Err: &net.OpError{
		Op: "dial", Net: "tcp", Err: os.NewSyscallError("connect", syscall.ECONNREFUSED)}})
}

// recv waits for a value on c.
func recv[T any](t *testing.T, c <-chan T, what string) T {
	t.Helper()
	select {
	case v := <-c:
		return v
	case <-time.After(signalMax):
		t.Fatalf("timed out waiting for %s", what)
		var zero T
		return zero
	}
}

// natstestServer starts a server shared by a table's subtests.
func natstestServer(t *testing.T) *server.Server {
	t.Helper()
	return natstest.RunServer(t)
}

// startOnServer starts the service on s with fresh connections, for one subtest.
func startOnServer(t *testing.T, s *server.Server, jobs Jobs, events Events, track Tracker, o Options) env {
	t.Helper()
	return startOn(t, natstest.Connect(t, s), natstest.Connect(t, s), jobs, events, track, o)
}

func connect(t *testing.T, s *server.Server) *nats.Conn {
	t.Helper()
	return natstest.Connect(t, s)
}
