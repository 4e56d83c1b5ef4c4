package publisher_test

import (
	"testing"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/reducto-bridge/reducto-bridge/event"
	"github.com/reducto-bridge/reducto-bridge/internal/natstest"
	"github.com/reducto-bridge/reducto-bridge/publisher"
	"github.com/reducto-bridge/reducto-bridge/subject"
)

// TestForgedEventsDoNotCount: a message another client put on a job's event subject (a
// forged completed event without this bridge's ce-source, a non-JSON body on a real kind's
// subject) is neither reported by Lookup nor able to suppress the real event; a message on
// a subject that is not one of the four kinds is not stored at all.
func TestForgedEventsDoNotCount(t *testing.T) {
	e := newEnv(t, natstest.Options{}, publisher.Options{Source: "the-bridge"})
	ctx := t.Context()
	forge := func(subj string, h nats.Header, body string) {
		t.Helper()
		if _, err := e.js.PublishMsg(ctx, &nats.Msg{Subject: subj, Header: h, Data: []byte(body)}); err != nil {
			t.Fatalf("forge %s: %v", subj, err)
		}
	}
	forged := `{"job_id":"j1","kind":"completed","status":"Completed","result":{"fake":true}}`
	forge(subject.Event(prefix, "completed", "j1"), nats.Header{"ce-source": {"someone-else"}}, forged)
	forge(subject.Event(prefix, "failed", "j2"), nats.Header{"ce-source": {"the-bridge"}}, "not json")
	if _, err := e.js.Publish(ctx, prefix+".job.bogus.j3", []byte("x")); err == nil {
		t.Error("a message on reducto.job.bogus.<id> was stored: the events stream must take the four kinds only")
	}

	for _, tt := range []struct {
		id   string
		kind event.Kind
	}{{"j1", event.Failed}, {"j2", event.Completed}, {"j3", event.Completed}} {
		if ev, err := e.pub.Lookup(ctx, tt.id); err != nil || ev != nil {
			t.Errorf("Lookup(%s) = %+v, %v before the real event; want none", tt.id, ev, err)
		}
		res, err := e.pub.Publish(ctx, &event.Event{JobID: tt.id, Kind: tt.kind, ObservedAt: observed})
		if err != nil || res.Duplicate {
			t.Fatalf("publish the real event of %s: %+v, %v", tt.id, res, err)
		}
		ev, err := e.pub.Lookup(ctx, tt.id)
		if err != nil || ev == nil || ev.Kind != tt.kind {
			t.Errorf("Lookup(%s) = %+v, %v after the real event; want %s", tt.id, ev, err, tt.kind)
		}
		// Still at most one event of this bridge per job.
		res, err = e.pub.Publish(ctx, &event.Event{JobID: tt.id, Kind: event.Expired, ObservedAt: observed})
		if err != nil || !res.Duplicate || res.Existing != tt.kind {
			t.Errorf("second publish for %s: %+v, %v; want a duplicate of %s", tt.id, res, err, tt.kind)
		}
	}
	st, err := e.js.Stream(ctx, subject.EventsStream)
	if err != nil {
		t.Fatal(err)
	}
	info, err := st.Info(ctx, jetstream.WithSubjectFilter(subject.EventsAll(prefix)))
	if err != nil {
		t.Fatal(err)
	}
	// j1 and j2: the forgery and the real event; j3: the real event only.
	if got := info.State.Msgs; got != 5 {
		t.Errorf("stream holds %d messages, want 5", got)
	}
}
