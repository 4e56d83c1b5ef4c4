package poller_test

import (
	"encoding/json"
	"testing"
	"time"

	"github.com/reducto-bridge/reducto-bridge/internal/natstest"
	"github.com/reducto-bridge/reducto-bridge/internal/reductotest"
	"github.com/reducto-bridge/reducto-bridge/poller"
	"github.com/reducto-bridge/reducto-bridge/subject"
)

// TestTokenNeverInEvents: the direct-webhook token ("webhook_token" in metadata) is removed
// from an event's metadata, whether the metadata came from a track message a producer
// published or from a webhook.
func TestTokenNeverInEvents(t *testing.T) {
	e := newEnv(t, 30*time.Second)
	p, err := poller.New(e.queue, e.jobs, e.pub, e.opts)
	if err != nil {
		t.Fatal(err)
	}
	e.start(t, e.jobs, e.pub)

	t.Run("track message", func(t *testing.T) {
		e.jobs.Script("s1", reductotest.Status("Completed"))
		e.track(t, "s1", `{"metadata":{"tenant":"a","webhook_token":"tok"}}`)
		if m := e.next(t); m.ev.JobID != "s1" || string(m.ev.Metadata) != `{"tenant":"a"}` {
			t.Errorf("event %s metadata %s, want s1 {\"tenant\":\"a\"}", m.ev.JobID, m.ev.Metadata)
		}
	})
	t.Run("webhook for a job first seen through it", func(t *testing.T) {
		e.jobs.Script("s2", reductotest.Status("Completed"))
		if err := p.Hint(t.Context(), "s2", json.RawMessage(`{"tenant":"a","webhook_token":"tok"}`)); err != nil {
			t.Fatal(err)
		}
		if m := e.next(t); m.ev.JobID != "s2" || string(m.ev.Metadata) != `{"tenant":"a"}` {
			t.Errorf("event %s metadata %s, want s2 {\"tenant\":\"a\"}", m.ev.JobID, m.ev.Metadata)
		}
	})
}

// TestWebhookNeverOverridesTrack: a webhook's metadata is used only for a job first seen
// through the webhook. A tracked job keeps its track message's metadata, none included, and
// its track message is left as it is, so a holder of the direct-webhook token cannot replace
// a real job's metadata.
func TestWebhookNeverOverridesTrack(t *testing.T) {
	e := newEnv(t, 30*time.Second)
	// Parked jobs wait an hour: only a hint finishes them within the test.
	e.opts.InitialInterval = time.Hour
	e.opts.MaxInterval = time.Hour
	p, err := poller.New(e.queue, e.jobs, e.pub, e.opts)
	if err != nil {
		t.Fatal(err)
	}
	e.start(t, e.jobs, e.pub)
	ctx := t.Context()
	stored := func(id string) string {
		t.Helper()
		s, err := e.js.Stream(ctx, subject.TrackStream)
		if err != nil {
			t.Fatal(err)
		}
		m, err := s.GetLastMsgForSubject(ctx, subject.Track(prefix, id))
		if err != nil {
			t.Fatalf("track message of %s: %v", id, err)
		}
		return string(m.Data)
	}

	t.Run("track message without metadata", func(t *testing.T) {
		e.jobs.Script("o1", reductotest.Status("Pending"))
		e.track(t, "o1", `{"webhook":true}`)
		natstest.WaitFor(t, func() bool { return trackCount(t, e, "o1") == 1 })
		e.jobs.Script("o1", reductotest.Status("Completed"))
		if err := p.Hint(ctx, "o1", json.RawMessage(`{"tenant":"forged"}`)); err != nil {
			t.Fatal(err)
		}
		if m := e.next(t); m.ev.JobID != "o1" || m.ev.Metadata != nil {
			t.Errorf("event %s metadata %s, want o1 without metadata", m.ev.JobID, m.ev.Metadata)
		}
	})
	t.Run("unfinished job: the track message is left unchanged", func(t *testing.T) {
		const body = `{"metadata":{"tenant":"real"}}`
		e.jobs.Script("o2", reductotest.Status("Pending"))
		e.track(t, "o2", body)
		natstest.WaitFor(t, func() bool { return trackCount(t, e, "o2") == 1 })
		if err := p.Hint(ctx, "o2", json.RawMessage(`{"tenant":"forged"}`)); err != nil {
			t.Fatal(err)
		}
		if got := stored("o2"); got != body {
			t.Errorf("track message after the webhook = %s, want %s", got, body)
		}
		e.jobs.Script("o2", reductotest.Status("Completed"))
		if err := p.Hint(ctx, "o2", json.RawMessage(`{"tenant":"forged"}`)); err != nil {
			t.Fatal(err)
		}
		if m := e.next(t); m.ev.JobID != "o2" || string(m.ev.Metadata) != `{"tenant":"real"}` {
			t.Errorf("event %s metadata %s, want o2 with the track's metadata", m.ev.JobID, m.ev.Metadata)
		}
	})
}
