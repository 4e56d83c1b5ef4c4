package command

import (
	"bytes"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/reducto-bridge/reducto-bridge/event"
	"github.com/reducto-bridge/reducto-bridge/internal/natstest"
	"github.com/reducto-bridge/reducto-bridge/publisher"
	"github.com/reducto-bridge/reducto-bridge/reducto"
	"github.com/reducto-bridge/reducto-bridge/reducto/reductosim"
	"github.com/reducto-bridge/reducto-bridge/subject"
	"github.com/reducto-bridge/reducto-bridge/track"
)

// TestWithRealParts wires the service as the bridge does: the real Reducto client against the
// simulator, tracking through track.Queue.Ensure and lookups through the publisher.
func TestWithRealParts(t *testing.T) {
	ctx := t.Context()
	const key = "test-key"
	sim, err := reductosim.New(reductosim.Options{
		APIKey: key,
		Seed:   1,
		Spec:   func(string, []byte) reductosim.JobSpec { return reductosim.JobSpec{Duration: time.Hour} },
	})
	if err != nil {
		t.Fatalf("reductosim.New: %v", err)
	}
	hs := httptest.NewServer(sim)
	t.Cleanup(hs.Close)
	t.Cleanup(sim.Close)
	hooks := httptest.NewServer(http.HandlerFunc(func(http.ResponseWriter, *http.Request) {}))
	t.Cleanup(hooks.Close)
	client, err := reducto.New(hs.URL, key, reducto.WithRetries(0))
	if err != nil {
		t.Fatalf("reducto.New: %v", err)
	}

	s := natstest.RunServer(t)
	nc, js := natstest.JetStream(t, s)
	queue, err := track.Setup(ctx, js, track.Options{Prefix: prefix})
	if err != nil {
		t.Fatalf("track.Setup: %v", err)
	}
	pub, err := publisher.Setup(ctx, js, publisher.Options{Prefix: prefix})
	if err != nil {
		t.Fatalf("publisher.Setup: %v", err)
	}
	e := startOn(t, nc, natstest.Connect(t, s), client, pub, queue.Ensure,
		Options{PublicURL: hooks.URL, WebhookToken: "tok", Timeout: 5 * time.Second})

	// Submit: Reducto gets the webhook and the metadata, the job is tracked with the metadata.
	msg := request(t, e.nc, prefix+".submit", []byte(`{"endpoint":"parse","body":{"input":"https://x/a.pdf"},"metadata":{"order":7}}`))
	if code, desc := replyCode(t, msg); code != 200 {
		t.Fatalf("submit = %d %q, want 200", code, desc)
	}
	var sub SubmitReply
	if err := json.Unmarshal(msg.Data, &sub); err != nil || sub.JobID == "" {
		t.Fatalf("submit reply %q: %v", msg.Data, err)
	}
	snap, found := sim.Job(sub.JobID)
	if !found {
		t.Fatalf("simulator has no job %s", sub.JobID)
	}
	if want := hooks.URL + "/webhooks/reducto?token=tok"; snap.WebhookMode != "direct" || snap.WebhookURL != want {
		t.Errorf("job webhook = %s %s, want direct %s", snap.WebhookMode, snap.WebhookURL, want)
	}
	if !jsonEqual(snap.Metadata, []byte(`{"order":7}`)) {
		t.Errorf("job metadata = %s, want {\"order\":7}", snap.Metadata)
	}
	st, err := js.Stream(ctx, subject.TrackStream)
	if err != nil {
		t.Fatalf("track stream: %v", err)
	}
	tm, err := st.GetLastMsgForSubject(ctx, subject.Track(prefix, sub.JobID))
	if err != nil {
		t.Fatalf("track message of %s: %v", sub.JobID, err)
	}
	if want := `{"metadata":{"order":7},"webhook":true}`; string(tm.Data) != want {
		t.Errorf("track message = %s, want %s", tm.Data, want)
	}

	// Cancel: accepted once, then the job is terminal.
	cancel := func(id string) (int, string) {
		return replyCode(t, request(t, e.nc, prefix+".cancel", []byte(`{"job_id":"`+id+`"}`)))
	}
	if code, desc := cancel(sub.JobID); code != 200 {
		t.Fatalf("cancel = %d %q, want 200", code, desc)
	}
	if snap, _ := sim.Job(sub.JobID); !snap.Cancelled {
		t.Errorf("simulator job not cancelled")
	}
	if code, desc := cancel(sub.JobID); code != 409 || !strings.Contains(desc, "job already") {
		t.Errorf("second cancel = %d %q, want 409 job already ...", code, desc)
	}
	// The track message (and its metadata) was kept, not replaced by the cancel's.
	if tm2, err := st.GetLastMsgForSubject(ctx, subject.Track(prefix, sub.JobID)); err != nil || tm2.Sequence != tm.Sequence {
		t.Errorf("track message after cancel: seq %v, error %v; want seq %d unchanged", seqOf(tm2), err, tm.Sequence)
	}

	if code, desc := cancel("00000000-0000-4000-8000-000000000000"); code != 404 {
		t.Errorf("cancel of an unknown job = %d %q, want 404", code, desc)
	}

	// A job whose event is already published.
	done := sim.Create(reductosim.JobSpec{Duration: time.Hour})
	if _, err := pub.Publish(ctx, &event.Event{JobID: done, Kind: event.Completed, Status: "Completed"}); err != nil {
		t.Fatalf("publish: %v", err)
	}
	if code, desc := cancel(done); code != 409 || desc != "job already completed (status Completed)" {
		t.Errorf("cancel after event = %d %q, want 409 job already completed (status Completed)", code, desc)
	}

	// Reducto's own validation error comes back as 422.
	code, desc := replyCode(t, request(t, e.nc, prefix+".submit", []byte(`{"endpoint":"parse","body":{"nothing":1}}`)))
	if code != 422 || !strings.Contains(desc, "reducto rejected the request (422)") {
		t.Errorf("submit without input = %d %q, want 422", code, desc)
	}
}

func seqOf(m *jetstream.RawStreamMsg) any {
	if m == nil {
		return nil
	}
	return m.Sequence
}

func jsonEqual(a, b []byte) bool {
	var ca, cb bytes.Buffer
	return json.Compact(&ca, a) == nil && json.Compact(&cb, b) == nil && ca.String() == cb.String()
}
