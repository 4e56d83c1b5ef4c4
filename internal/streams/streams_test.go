package streams_test

import (
	"testing"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/reducto-bridge/reducto-bridge/internal/natstest"
	"github.com/reducto-bridge/reducto-bridge/internal/streams"
)

// TestKeepOperatorSettings: per limit, what a restart leaves on a stream given the bridge's
// setting (want) and the stream's (have); 0 and -1 mean unlimited.
func TestKeepOperatorSettings(t *testing.T) {
	tests := []struct {
		name             string
		want, have, keep int64
	}{
		{"both unlimited", 0, -1, 0},
		{"bridge unlimited, operator set", 0, 10, 10},
		{"bridge unlimited (-1), operator set", -1, 10, 10},
		{"bridge set, stream unlimited (operator lifted it)", 100, -1, 100},
		{"bridge set, stream zero", 100, 0, 100},
		{"operator tightened", 100, 10, 10},
		{"operator loosened", 100, 1000, 100},
		{"equal", 100, 100, 100},
		{"bridge tightened (smaller variable)", 5, 10, 5},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			want := jetstream.StreamConfig{Name: "S", MaxMsgs: tt.want, MaxBytes: tt.want, MaxMsgsPerSubject: tt.want,
				MaxMsgSize: int32(tt.want), MaxConsumers: int(tt.want)}
			have := jetstream.StreamConfig{Name: "S", MaxMsgs: tt.have, MaxBytes: tt.have, MaxMsgsPerSubject: tt.have,
				MaxMsgSize: int32(tt.have), MaxConsumers: int(tt.have)}
			got := streams.KeepOperatorSettings(want, have)
			for _, f := range []struct {
				field string
				v     int64
			}{
				{"MaxMsgs", got.MaxMsgs}, {"MaxBytes", got.MaxBytes}, {"MaxMsgsPerSubject", got.MaxMsgsPerSubject},
				{"MaxMsgSize", int64(got.MaxMsgSize)}, {"MaxConsumers", int64(got.MaxConsumers)},
			} {
				if f.v != tt.keep && !(tt.keep <= 0 && f.v <= 0) {
					t.Errorf("%s: bridge %d, stream %d: got %d, want %d", f.field, tt.want, tt.have, f.v, tt.keep)
				}
			}
		})
	}
	t.Run("max age and deny flags", func(t *testing.T) {
		have := jetstream.StreamConfig{MaxAge: time.Hour, DenyDelete: true}
		if got := streams.KeepOperatorSettings(jetstream.StreamConfig{MaxAge: 2 * time.Hour}, have); got.MaxAge != 2*time.Hour || !got.DenyDelete || got.DenyPurge {
			t.Errorf("bridge max age: got MaxAge %v DenyDelete %v DenyPurge %v, want 2h true false", got.MaxAge, got.DenyDelete, got.DenyPurge)
		}
		if got := streams.KeepOperatorSettings(jetstream.StreamConfig{}, have); got.MaxAge != time.Hour {
			t.Errorf("no bridge max age: got %v, want the operator's 1h", got.MaxAge)
		}
	})
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

// TestEnsureTighterLimitWins: on a real stream, a MaxMsgs tightened by hand survives an
// Ensure with the bridge's (larger) limit; a bridge limit smaller than the hand value replaces
// it; a hand value looser than the bridge's is put back.
func TestEnsureTighterLimitWins(t *testing.T) {
	ctx := t.Context()
	_, js := natstest.JetStream(t, natstest.RunServer(t))
	cfg := jetstream.StreamConfig{Name: "S", Subjects: []string{"s.>"}, MaxMsgs: 1000}
	if _, err := streams.Ensure(ctx, js, cfg); err != nil {
		t.Fatal(err)
	}
	maxMsgs := func() int64 {
		t.Helper()
		st, err := js.Stream(ctx, "S")
		if err != nil {
			t.Fatal(err)
		}
		return st.CachedInfo().Config.MaxMsgs
	}
	edit := func(n int64) {
		t.Helper()
		st, err := js.Stream(ctx, "S")
		if err != nil {
			t.Fatal(err)
		}
		c := st.CachedInfo().Config
		c.MaxMsgs = n
		if _, err := js.UpdateStream(ctx, c); err != nil {
			t.Fatal(err)
		}
	}
	edit(50) // nats stream edit --max-msgs 50
	if _, err := streams.Ensure(ctx, js, cfg); err != nil {
		t.Fatal(err)
	}
	if got := maxMsgs(); got != 50 {
		t.Errorf("hand-tightened MaxMsgs after a restart with 1000: %d, want 50", got)
	}
	small := cfg
	small.MaxMsgs = 20
	if _, err := streams.Ensure(ctx, js, small); err != nil {
		t.Fatal(err)
	}
	if got := maxMsgs(); got != 20 {
		t.Errorf("MaxMsgs after a restart with 20 (hand value 50): %d, want 20", got)
	}
	edit(-1) // loosened by hand: the bridge's limit comes back
	if _, err := streams.Ensure(ctx, js, cfg); err != nil {
		t.Fatal(err)
	}
	if got := maxMsgs(); got != 1000 {
		t.Errorf("MaxMsgs after a hand-lifted limit and a restart with 1000: %d, want 1000", got)
	}
}
