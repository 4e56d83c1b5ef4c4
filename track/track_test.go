package track_test

import (
	"encoding/json"
	"errors"
	"testing"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/reducto-bridge/reducto-bridge/internal/natstest"
	"github.com/reducto-bridge/reducto-bridge/subject"
	"github.com/reducto-bridge/reducto-bridge/track"
)

const prefix = "reducto"

func setup(t *testing.T) (jetstream.JetStream, *track.Queue) {
	t.Helper()
	s := natstest.RunServer(t)
	_, js := natstest.JetStream(t, s)
	q, err := track.Setup(t.Context(), js, track.Options{Prefix: prefix, AckWait: 30 * time.Second})
	if err != nil {
		t.Fatal(err)
	}
	return js, q
}

func TestSetup(t *testing.T) {
	_, q := setup(t)
	info, err := q.Consumer().Info(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	if info.Name != track.ConsumerName || info.Config.AckWait != 30*time.Second || info.Config.MaxAckPending != -1 || info.Config.MaxDeliver != -1 {
		t.Errorf("consumer %s: AckWait %v, MaxAckPending %d, MaxDeliver %d", info.Name, info.Config.AckWait, info.Config.MaxAckPending, info.Config.MaxDeliver)
	}
}

// TestSetupKeepsHandEditedLimits: limits an operator set on REDUCTO_TRACK by hand survive the
// bridge's next start.
func TestSetupKeepsHandEditedLimits(t *testing.T) {
	ctx := t.Context()
	_, js := natstest.JetStream(t, natstest.RunServer(t))
	if _, err := track.Setup(ctx, js, track.Options{}); err != nil {
		t.Fatal(err)
	}
	st, err := js.Stream(ctx, subject.TrackStream)
	if err != nil {
		t.Fatal(err)
	}
	edited := st.CachedInfo().Config
	edited.MaxMsgs, edited.MaxBytes = 50_000, 32<<20
	if _, err := js.UpdateStream(ctx, edited); err != nil {
		t.Fatal(err)
	}
	if _, err := track.Setup(ctx, js, track.Options{}); err != nil {
		t.Fatal(err)
	}
	info, err := st.Info(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if c := info.Config; c.MaxMsgs != 50_000 || c.MaxBytes != 32<<20 || c.MaxMsgsPerSubject != 1 {
		t.Errorf("after a restart: MaxMsgs %d MaxBytes %d MaxMsgsPerSubject %d, want 50000, 32 MiB, 1", c.MaxMsgs, c.MaxBytes, c.MaxMsgsPerSubject)
	}
}

func TestEnsure(t *testing.T) {
	js, q := setup(t)
	ok, err := q.Ensure(t.Context(), "e1", track.Request{Metadata: json.RawMessage(`{"a":1}`)})
	if err != nil || !ok {
		t.Fatalf("first Ensure = %v, %v, want true", ok, err)
	}
	ok, err = q.Ensure(t.Context(), "e1", track.Request{})
	if err != nil || ok {
		t.Fatalf("second Ensure = %v, %v, want false (already tracked)", ok, err)
	}
	msg, err := js.Stream(t.Context(), subject.TrackStream)
	if err != nil {
		t.Fatal(err)
	}
	raw, err := msg.GetLastMsgForSubject(t.Context(), subject.Track(prefix, "e1"))
	if err != nil || string(raw.Data) != `{"metadata":{"a":1}}` {
		t.Errorf("stored track = %s, %v; the original metadata must survive", raw.Data, err)
	}
	// The direct-webhook token is not stored, even when a caller hands it over.
	if ok, err := q.Ensure(t.Context(), "e2", track.Request{Metadata: json.RawMessage(`{"tenant":"a","webhook_token":"tok"}`)}); err != nil || !ok {
		t.Fatalf("Ensure e2 = %v, %v", ok, err)
	}
	raw, err = msg.GetLastMsgForSubject(t.Context(), subject.Track(prefix, "e2"))
	if err != nil || string(raw.Data) != `{"metadata":{"tenant":"a"}}` {
		t.Errorf("stored track = %s, %v; want the metadata without webhook_token", raw.Data, err)
	}
	if _, err := q.Ensure(t.Context(), "a.b", track.Request{}); err == nil {
		t.Error("invalid id accepted")
	}
}

func TestLastDelete(t *testing.T) {
	_, q := setup(t)
	ctx := t.Context()
	if m, err := q.Last(ctx, "d1"); m != nil || err != nil {
		t.Fatalf("Last of an untracked job = %v, %v, want nil, nil", m, err)
	}
	if _, err := q.Ensure(ctx, "d1", track.Request{Webhook: true}); err != nil {
		t.Fatal(err)
	}
	m, err := q.Last(ctx, "d1")
	if err != nil || m == nil || string(m.Data) != `{"webhook":true}` {
		t.Fatalf("Last = %v, %v, want the track message", m, err)
	}
	if err := q.Delete(ctx, m.Sequence); err != nil {
		t.Fatalf("Delete: %v", err)
	}
	if m, err := q.Last(ctx, "d1"); m != nil || err != nil {
		t.Errorf("Last after Delete = %v, %v, want nil, nil", m, err)
	}
}

func TestJobID(t *testing.T) {
	_, q := setup(t)
	if id, err := q.JobID("reducto.track.j1"); id != "j1" || err != nil {
		t.Errorf("JobID = %q, %v, want j1", id, err)
	}
	if _, err := q.JobID("reducto.job.completed.j1"); !errors.Is(err, track.ErrNotTrackSubject) {
		t.Errorf("JobID of an event subject: %v, want ErrNotTrackSubject", err)
	}
}

func TestParseBody(t *testing.T) {
	tests := []struct {
		body, metadata string
		webhook        bool
		err            error
	}{
		{"", "", false, nil},
		{`{"metadata":{"k":1},"webhook":true}`, `{"k":1}`, true, nil},
		{`{"metadata":null}`, "", false, nil},
		{`[1,2]`, "", false, track.ErrBodyNotObject},
		{"{\"metadata\":\"\xff\",\"webhook\":true}", "", true, track.ErrMetadataNotUTF8},
		// The direct-webhook token never reaches an event.
		{`{"metadata":{"tenant":"a","webhook_token":"tok"}}`, `{"tenant":"a"}`, false, nil},
		{`{"metadata":{"webhook_token":"tok"},"webhook":true}`, "", true, nil},
		{`{"metadata":{"z":2,"webhook_token":"tok","a":{"webhook_token":"nested"}}}`, `{"z":2,"a":{"webhook_token":"nested"}}`, false, nil},
	}
	for _, tt := range tests {
		req, err := track.ParseBody([]byte(tt.body), track.DefaultMaxMetadata)
		if string(req.Metadata) != tt.metadata || req.Webhook != tt.webhook || !errors.Is(err, tt.err) {
			t.Errorf("ParseBody(%q) = %s, %v, %v; want %s, %v, %v", tt.body, req.Metadata, req.Webhook, err, tt.metadata, tt.webhook, tt.err)
		}
	}
	var tooLarge *track.MetadataTooLargeError
	if _, err := track.ParseBody([]byte(`{"metadata":"0123456789"}`), 8); !errors.As(err, &tooLarge) || tooLarge.Size != 12 || tooLarge.Max != 8 {
		t.Errorf("ParseBody of large metadata: %v, want MetadataTooLargeError{12, 8}", err)
	}
}

// TestRecreate: after the consumer is deleted by hand, Recreate makes it again with the same
// configuration, the track messages the stream still holds are delivered by the new one, and a
// second Recreate (another replica's) leaves it as it is.
func TestRecreate(t *testing.T) {
	js, q := setup(t)
	if _, err := q.Ensure(t.Context(), "r1", track.Request{}); err != nil {
		t.Fatal(err)
	}
	if err := js.DeleteConsumer(t.Context(), subject.TrackStream, track.ConsumerName); err != nil {
		t.Fatal(err)
	}
	if _, err := q.Consumer().Info(t.Context()); !errors.Is(err, jetstream.ErrConsumerNotFound) {
		t.Fatalf("Info after the deletion = %v, want ErrConsumerNotFound", err)
	}
	for range 2 {
		if err := q.Recreate(t.Context()); err != nil {
			t.Fatalf("Recreate: %v", err)
		}
	}
	info, err := q.Consumer().Info(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	if info.Name != track.ConsumerName || info.Config.AckWait != 30*time.Second || info.Config.MaxAckPending != -1 || info.Config.MaxDeliver != -1 {
		t.Errorf("recreated consumer %s: AckWait %v, MaxAckPending %d, MaxDeliver %d", info.Name, info.Config.AckWait, info.Config.MaxAckPending, info.Config.MaxDeliver)
	}
	batch, err := q.Consumer().Fetch(1, jetstream.FetchMaxWait(5*time.Second))
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	for m := range batch.Messages() {
		got = append(got, m.Subject())
	}
	if len(got) != 1 || got[0] != subject.Track(prefix, "r1") {
		t.Errorf("recreated consumer delivered %v (%v), want the job tracked before the deletion", got, batch.Error())
	}
}

// TestSetupLimits: the stream's MaxMsgs and MaxBytes come from the options (defaults 1000000
// and 1 GiB, negative for unlimited); a MaxMsgs tightened by hand survives a restart with the
// defaults, and an option smaller than the hand value replaces it.
func TestSetupLimits(t *testing.T) {
	ctx := t.Context()
	_, js := natstest.JetStream(t, natstest.RunServer(t))
	config := func() jetstream.StreamConfig {
		t.Helper()
		st, err := js.Stream(ctx, subject.TrackStream)
		if err != nil {
			t.Fatal(err)
		}
		return st.CachedInfo().Config
	}
	setup := func(o track.Options) {
		t.Helper()
		if _, err := track.Setup(ctx, js, o); err != nil {
			t.Fatal(err)
		}
	}
	setup(track.Options{})
	if c := config(); c.MaxMsgs != track.DefaultMaxJobs || c.MaxBytes != track.DefaultMaxBytes || c.Discard != jetstream.DiscardNew {
		t.Errorf("defaults: MaxMsgs %d MaxBytes %d Discard %v, want %d, %d, new", c.MaxMsgs, c.MaxBytes, c.Discard, track.DefaultMaxJobs, track.DefaultMaxBytes)
	}
	edited := config()
	edited.MaxMsgs = 500 // nats stream edit REDUCTO_TRACK --max-msgs 500
	if _, err := js.UpdateStream(ctx, edited); err != nil {
		t.Fatal(err)
	}
	setup(track.Options{})
	if c := config(); c.MaxMsgs != 500 {
		t.Errorf("hand-tightened MaxMsgs after a restart with the defaults: %d, want 500", c.MaxMsgs)
	}
	setup(track.Options{MaxJobs: 100, MaxBytes: 1 << 20})
	if c := config(); c.MaxMsgs != 100 || c.MaxBytes != 1<<20 {
		t.Errorf("with MaxJobs 100, MaxBytes 1 MiB (hand MaxMsgs 500): MaxMsgs %d MaxBytes %d", c.MaxMsgs, c.MaxBytes)
	}
	setup(track.Options{MaxJobs: -1, MaxBytes: -1})
	if c := config(); c.MaxMsgs != 100 || c.MaxBytes != 1<<20 {
		t.Errorf("unlimited options keep the stream's limits: MaxMsgs %d MaxBytes %d, want 100, 1 MiB", c.MaxMsgs, c.MaxBytes)
	}
}

// TestEnsureFull: with MaxJobs 5, a sixth job is refused (ErrFull for Ensure, a PubAck error
// for a producer's publish), the five outstanding jobs stay, and re-tracking one of them
// (which replaces its message) still works.
func TestEnsureFull(t *testing.T) {
	ctx := t.Context()
	_, js := natstest.JetStream(t, natstest.RunServer(t))
	q, err := track.Setup(ctx, js, track.Options{Prefix: prefix, MaxJobs: 5})
	if err != nil {
		t.Fatal(err)
	}
	for i := range 5 {
		if _, err := js.Publish(ctx, subject.Track(prefix, "j"+string(rune('0'+i))), []byte(`{}`)); err != nil {
			t.Fatalf("track %d of 5: %v", i+1, err)
		}
	}
	if _, err := js.Publish(ctx, subject.Track(prefix, "j5"), []byte(`{}`)); err == nil {
		t.Error("a producer's sixth track was accepted")
	}
	ok, err := q.Ensure(ctx, "j6", track.Request{})
	if ok || !errors.Is(err, track.ErrFull) {
		t.Errorf("Ensure on a full stream = %v, %v, want ErrFull", ok, err)
	}
	if ok, err := q.Ensure(ctx, "j0", track.Request{}); ok || err != nil {
		t.Errorf("Ensure of a tracked job on a full stream = %v, %v, want false, nil", ok, err)
	}
	st, err := js.Stream(ctx, subject.TrackStream)
	if err != nil {
		t.Fatal(err)
	}
	info, err := st.Info(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if info.State.Msgs != 5 {
		t.Errorf("outstanding jobs: %d, want 5", info.State.Msgs)
	}
	for i := range 5 {
		if m, err := q.Last(ctx, "j"+string(rune('0'+i))); err != nil || m == nil {
			t.Errorf("job j%d: %v, %v; want its track message", i, m, err)
		}
	}
}

// TestLowerLimitDropsNothing: restarting with MaxJobs below the number of outstanding jobs
// keeps every one of them (discard new: only new tracks are refused).
func TestLowerLimitDropsNothing(t *testing.T) {
	ctx := t.Context()
	_, js := natstest.JetStream(t, natstest.RunServer(t))
	if _, err := track.Setup(ctx, js, track.Options{Prefix: prefix}); err != nil {
		t.Fatal(err)
	}
	for i := range 10 {
		if _, err := js.Publish(ctx, subject.Track(prefix, "j"+string(rune('a'+i))), []byte(`{}`)); err != nil {
			t.Fatal(err)
		}
	}
	q, err := track.Setup(ctx, js, track.Options{Prefix: prefix, MaxJobs: 5})
	if err != nil {
		t.Fatal(err)
	}
	st, err := js.Stream(ctx, subject.TrackStream)
	if err != nil {
		t.Fatal(err)
	}
	info, err := st.Info(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if info.Config.MaxMsgs != 5 || info.State.Msgs != 10 {
		t.Errorf("after lowering MaxJobs to 5: MaxMsgs %d, %d jobs; want 5 and all 10", info.Config.MaxMsgs, info.State.Msgs)
	}
	if _, err := q.Ensure(ctx, "new", track.Request{}); !errors.Is(err, track.ErrFull) {
		t.Errorf("Ensure over the limit: %v, want ErrFull", err)
	}
}
