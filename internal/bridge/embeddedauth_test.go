package bridge

import (
	"errors"
	"io"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats.go"

	"github.com/reducto-bridge/reducto-bridge/config"
	"github.com/reducto-bridge/reducto-bridge/internal/natstest"
	"github.com/reducto-bridge/reducto-bridge/reducto/reductosim"
	"github.com/reducto-bridge/reducto-bridge/subject"
)

// TestEmbeddedServerToken: with BRIDGE_EMBEDDED_NATS_TOKEN set, the embedded server refuses
// a client without the token or with a wrong one (an authorization error), and serves one
// with it; the bridge itself, whose in-process connection presents the token, is ready and
// turns a track message into its event. The token never reaches the log. Issue 11, finding 3.
func TestEmbeddedServerToken(t *testing.T) {
	const token = "embedded-tok-3f9a"
	h := newHarness(t, natstest.Options{}, reductosim.Options{})
	cfg := h.config()
	cfg.NATSURL = ""
	cfg.EmbeddedNATSAddr = "127.0.0.1:0"
	cfg.EmbeddedNATSToken = config.Secret(token)
	cfg.DataDir = t.TempDir()
	b := h.start(cfg)
	url := b.ns.ClientURL()

	for _, tc := range []struct {
		name string
		opts []nats.Option
	}{
		{"no token", nil},
		{"wrong token", []nats.Option{nats.Token("guess")}},
		{"user and password", []nats.Option{nats.UserInfo("bridge", token)}},
	} {
		nc, err := nats.Connect(url, tc.opts...)
		if err == nil {
			nc.Close()
			t.Errorf("%s: nats.Connect succeeded, want an authorization error", tc.name)
			continue
		}
		if !errors.Is(err, nats.ErrAuthorization) {
			t.Errorf("%s: nats.Connect error = %v, want nats.ErrAuthorization", tc.name, err)
		}
	}

	nc, err := nats.Connect(url, nats.Token(token))
	if err != nil {
		t.Fatalf("nats.Connect with the token: %v", err)
	}
	defer nc.Close()

	if code, body := readyz(b.HTTPAddr().String()); code != http.StatusOK {
		t.Errorf("/readyz = %d %q, want 200", code, body)
	}

	events := make(chan *nats.Msg, 4)
	sub, err := nc.ChanSubscribe("reducto.job.>", events)
	if err != nil {
		t.Fatal(err)
	}
	defer sub.Unsubscribe()
	id := h.sim.Create(reductosim.JobSpec{})
	if err := nc.Publish(subject.Track("reducto", id), nil); err != nil {
		t.Fatal(err)
	}
	select {
	case m := <-events:
		if m.Subject != subject.Event("reducto", "completed", id) {
			t.Errorf("event on %s, want %s", m.Subject, subject.Event("reducto", "completed", id))
		}
	case <-time.After(20 * time.Second):
		t.Fatal("no event through the authenticated embedded server")
	}
	if logs := h.logs.String(); strings.Contains(logs, token) {
		t.Errorf("logs show the token:\n%s", logs)
	}
}

// TestEmbeddedServerOffLoopbackWithToken: an embedded server on every interface starts when
// it has a token, and still refuses a client without it.
func TestEmbeddedServerOffLoopbackWithToken(t *testing.T) {
	const token = "embedded-tok-77b1"
	h := newHarness(t, natstest.Options{}, reductosim.Options{})
	cfg := h.config()
	cfg.NATSURL = ""
	cfg.EmbeddedNATSAddr = "0.0.0.0:0"
	cfg.EmbeddedNATSToken = config.Secret(token)
	cfg.DataDir = t.TempDir()
	b := h.start(cfg)
	url := b.ns.ClientURL()
	if _, err := nats.Connect(url); !errors.Is(err, nats.ErrAuthorization) {
		t.Errorf("nats.Connect without the token = %v, want nats.ErrAuthorization", err)
	}
	nc, err := nats.Connect(url, nats.Token(token))
	if err != nil {
		t.Fatalf("nats.Connect with the token: %v", err)
	}
	nc.Close()
	if code, body := readyz(b.HTTPAddr().String()); code != http.StatusOK {
		t.Errorf("/readyz = %d %q, want 200", code, body)
	}
}

// TestRunRefusesOpenEmbeddedServer goes through 'bridge run' with the image's old default,
// BRIDGE_EMBEDDED_NATS_ADDR=0.0.0.0:4222 and no token: refused before anything listens.
func TestRunRefusesOpenEmbeddedServer(t *testing.T) {
	for _, name := range config.Vars() {
		t.Setenv(name, "")
	}
	t.Setenv("REDUCTO_API_KEY", testKey)
	t.Setenv("BRIDGE_DATA_DIR", t.TempDir())
	t.Setenv("BRIDGE_HTTP_ADDR", natstest.FreeAddr(t))
	t.Setenv("BRIDGE_EMBEDDED_NATS_ADDR", "0.0.0.0:4222")
	err := Run(t.Context(), io.Discard)
	if err == nil {
		t.Fatal("run accepted an unauthenticated embedded server on 0.0.0.0")
	}
	for _, want := range []string{"BRIDGE_EMBEDDED_NATS_ADDR: \"0.0.0.0:4222\" is not loopback", "BRIDGE_EMBEDDED_NATS_TOKEN"} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("error lacks %q:\n%v", want, err)
		}
	}
}
