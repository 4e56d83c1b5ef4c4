package bridge

import (
	"net/http"
	"strings"
	"testing"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/reducto-bridge/reducto-bridge/internal/natstest"
	"github.com/reducto-bridge/reducto-bridge/reducto/reductosim"
	"github.com/reducto-bridge/reducto-bridge/subject"
	"github.com/reducto-bridge/reducto-bridge/track"
)

// TestReadyzWhileConsumerGone: with the shared consumer deleted by hand and another consumer
// holding its subjects (so the poller cannot recreate it), /readyz answers 503 naming the
// consumer, the error and since when, and the log has one warning; once the other consumer
// is removed the poller recreates its own and /readyz is 200 again.
func TestReadyzWhileConsumerGone(t *testing.T) {
	h := newHarness(t, natstest.Options{}, reductosim.Options{})
	b := h.start(h.config())
	addr := b.httpAddr.String()
	if code, body := readyz(addr); code != http.StatusOK {
		t.Fatalf("/readyz = %d %q, want 200", code, body)
	}
	ctx := t.Context()
	// A work-queue stream takes one consumer per subject: the intruder keeps the poller from
	// recreating its own. Should the poller recreate it between the two calls, try again.
	natstest.WaitFor(t, func() bool {
		if err := h.js.DeleteConsumer(ctx, subject.TrackStream, track.ConsumerName); err != nil {
			t.Logf("delete consumer: %v", err)
		}
		_, err := h.js.CreateConsumer(ctx, subject.TrackStream, jetstream.ConsumerConfig{
			Durable: "intruder", FilterSubject: subject.TrackAll("reducto"), AckPolicy: jetstream.AckExplicitPolicy,
		})
		return err == nil
	})
	var code int
	var body string
	natstest.WaitFor(t, func() bool {
		code, body = readyz(addr)
		return code != http.StatusOK
	})
	const want = "not ready: polling stopped: consumer reducto-bridge: "
	if code != http.StatusServiceUnavailable || !strings.HasPrefix(body, want) || !strings.Contains(body, ", since ") {
		t.Errorf("/readyz = %d %q, want 503 %q... since ...", code, body, want)
	}
	t.Logf("/readyz during the outage: %d %s", code, body)
	natstest.WaitFor(t, func() bool {
		return strings.Contains(h.logs.String(), `msg="cannot fetch jobs: consumer gone; recreating it"`)
	})

	if err := h.js.DeleteConsumer(ctx, subject.TrackStream, "intruder"); err != nil {
		t.Fatal(err)
	}
	natstest.WaitFor(t, func() bool {
		code, body = readyz(addr)
		return code == http.StatusOK
	})
	if _, err := h.js.Consumer(ctx, subject.TrackStream, track.ConsumerName); err != nil {
		t.Errorf("consumer %s after recovery: %v", track.ConsumerName, err)
	}
	logs := h.logs.String()
	if n := strings.Count(logs, `level=WARN msg="cannot fetch jobs`); n != 1 {
		t.Errorf("%d fetch warnings, want 1", n)
	}
	if n := strings.Count(logs, `msg="fetching jobs again"`); n != 1 {
		t.Errorf("%d recovery lines, want 1", n)
	}
}
