package track_test

import (
	"testing"
	"time"

	"github.com/reducto-bridge/reducto-bridge/internal/natstest"
	"github.com/reducto-bridge/reducto-bridge/track"
)

func TestOrigins(t *testing.T) {
	ctx := t.Context()
	_, js := natstest.JetStream(t, natstest.RunServer(t))
	o, err := track.SetupOrigins(ctx, js, track.OriginsOptions{JobTTL: time.Hour})
	if err != nil {
		t.Fatal(err)
	}
	kv, err := js.KeyValue(ctx, track.OriginsBucket)
	if err != nil {
		t.Fatal(err)
	}
	st, err := kv.Status(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if st.TTL() != time.Hour+track.OriginsMargin || st.History() != 1 {
		t.Errorf("bucket TTL %v history %d, want %v and 1", st.TTL(), st.History(), time.Hour+track.OriginsMargin)
	}

	t0 := time.Date(2026, 12, 1, 10, 0, 0, 123456789, time.UTC)
	later := t0.Add(time.Minute)
	// Reducto's ids, and ids with characters a KV key may not hold (any subject token is a job id).
	for _, id := range []string{"204a39e4-dd10-4c83-a978-0cee4af8cde2", "a+b", "é~x", "b64"} {
		if got, err := o.Claim(ctx, id, t0); err != nil || !got.Equal(t0) {
			t.Errorf("%s: first Claim = %v, %v; want %v", id, got, err, t0)
		}
		if got, err := o.Claim(ctx, id, later); err != nil || !got.Equal(t0) {
			t.Errorf("%s: second Claim = %v, %v; want the first %v", id, got, err, t0)
		}
		if got, err := o.First(ctx, id, later); err != nil || !got.Equal(t0) {
			t.Errorf("%s: First = %v, %v; want %v", id, got, err, t0)
		}
		if err := o.Forget(ctx, id); err != nil {
			t.Errorf("%s: Forget: %v", id, err)
		}
		// Forgotten: the next track is a first one again.
		if got, err := o.First(ctx, id, later); err != nil || !got.Equal(later) {
			t.Errorf("%s: First after Forget = %v, %v; want %v", id, got, err, later)
		}
	}
	// Two ids never share a key.
	if _, err := o.Claim(ctx, "x1", t0); err != nil {
		t.Fatal(err)
	}
	if got, _ := o.Claim(ctx, "x2", later); !got.Equal(later) {
		t.Errorf("x2 got x1's time %v", got)
	}
	// A value that is not a time is an error, never a made-up origin.
	if _, err := kv.Put(ctx, "garbled", []byte("yesterday")); err != nil {
		t.Fatal(err)
	}
	if _, err := o.First(ctx, "garbled", later); err == nil {
		t.Error("First of a garbled value: no error")
	}
	if _, err := track.SetupOrigins(ctx, js, track.OriginsOptions{}); err == nil {
		t.Error("SetupOrigins without a TTL: no error")
	}
}
