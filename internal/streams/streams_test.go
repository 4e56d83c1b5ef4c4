package streams_test

import (
	"testing"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/reducto-bridge/reducto-bridge/internal/natstest"
	"github.com/reducto-bridge/reducto-bridge/internal/streams"
)

func TestKeepOperatorSettings(t *testing.T) {
	have := jetstream.StreamConfig{MaxMsgs: 10, MaxBytes: 20, MaxAge: time.Hour, MaxMsgSize: 30, MaxConsumers: 4, MaxMsgsPerSubject: 5, DenyDelete: true}
	got := streams.KeepOperatorSettings(jetstream.StreamConfig{Name: "S", MaxAge: 2 * time.Hour, MaxMsgsPerSubject: 1}, have)
	want := jetstream.StreamConfig{Name: "S", MaxMsgs: 10, MaxBytes: 20, MaxAge: 2 * time.Hour, MaxMsgSize: 30, MaxConsumers: 4, MaxMsgsPerSubject: 1, DenyDelete: true}
	if got.MaxMsgs != want.MaxMsgs || got.MaxBytes != want.MaxBytes || got.MaxAge != want.MaxAge || got.MaxMsgSize != want.MaxMsgSize ||
		got.MaxConsumers != want.MaxConsumers || got.MaxMsgsPerSubject != want.MaxMsgsPerSubject || got.DenyDelete != want.DenyDelete || got.DenyPurge {
		t.Errorf("got %+v\nwant %+v", got, want)
	}
}

// TestEnsureKeepsHandEditedLimits: limits set by hand (as with `nats stream edit`) survive the
// next Ensure, a restart; the settings the bridge owns are put back.
func TestEnsureKeepsHandEditedLimits(t *testing.T) {
	ctx := t.Context()
	_, js := natstest.JetStream(t, natstest.RunServer(t))
	cfg := jetstream.StreamConfig{Name: "S", Subjects: []string{"s.>"}, MaxMsgsPerSubject: 1, Duplicates: time.Minute}
	if _, err := streams.Ensure(ctx, js, cfg); err != nil {
		t.Fatal(err)
	}
	edited := cfg
	edited.MaxMsgs, edited.MaxBytes, edited.MaxAge = 1000, 1<<20, 48*time.Hour
	edited.MaxMsgsPerSubject = 3 // the bridge's: put back
	if _, err := js.UpdateStream(ctx, edited); err != nil {
		t.Fatal(err)
	}
	st, err := streams.Ensure(ctx, js, cfg)
	if err != nil {
		t.Fatal(err)
	}
	info, err := st.Info(ctx)
	if err != nil {
		t.Fatal(err)
	}
	c := info.Config
	if c.MaxMsgs != 1000 || c.MaxBytes != 1<<20 || c.MaxAge != 48*time.Hour {
		t.Errorf("hand-edited limits reset: MaxMsgs %d MaxBytes %d MaxAge %v", c.MaxMsgs, c.MaxBytes, c.MaxAge)
	}
	if c.MaxMsgsPerSubject != 1 {
		t.Errorf("MaxMsgsPerSubject %d, want the bridge's 1", c.MaxMsgsPerSubject)
	}
}
