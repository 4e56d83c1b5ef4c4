package bridge

import (
	"io"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/reducto-bridge/reducto-bridge/internal/natstest"
	"github.com/reducto-bridge/reducto-bridge/reducto/reductosim"
	"github.com/reducto-bridge/reducto-bridge/subject"
)

// TestTrackMaxJobs: with BRIDGE_TRACK_MAX_JOBS=5 the track stream takes five jobs and refuses
// a producer's sixth (discard new), drops none of the five, the bridge counts five
// outstanding, and reports each of them once it ends. BRIDGE_TRACK_MAX_BYTES=0 and
// BRIDGE_EVENTS_MAX_BYTES reach the streams too.
func TestTrackMaxJobs(t *testing.T) {
	h := newHarness(t, natstest.Options{}, reductosim.Options{})
	cfg := h.config()
	cfg.TrackMaxJobs = 5
	cfg.TrackMaxBytes = 0 // unlimited
	cfg.EventsMaxBytes = 64 << 20
	b := h.start(cfg)
	ctx := t.Context()

	var ids []string
	for range 5 {
		id := h.sim.Create(reductosim.JobSpec{Duration: time.Hour})
		ids = append(ids, id)
		h.track(id, "")
	}
	sixth := h.sim.Create(reductosim.JobSpec{Duration: time.Hour})
	if _, err := h.js.Publish(ctx, subject.Track("reducto", sixth), nil); err == nil || !strings.Contains(err.Error(), "maximum messages exceeded") {
		t.Errorf("sixth track: error %v, want the stream's refusal (maximum messages exceeded)", err)
	}
	st, err := h.js.Stream(ctx, subject.TrackStream)
	if err != nil {
		t.Fatal(err)
	}
	info, err := st.Info(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if info.Config.MaxMsgs != 5 || info.Config.MaxBytes != -1 || info.State.Msgs != 5 {
		t.Errorf("track stream: MaxMsgs %d, MaxBytes %d, %d messages; want 5, -1 (unlimited) and 5", info.Config.MaxMsgs, info.Config.MaxBytes, info.State.Msgs)
	}
	ev, err := h.js.Stream(ctx, subject.EventsStream)
	if err != nil {
		t.Fatal(err)
	}
	if got := ev.CachedInfo().Config.MaxBytes; got != 64<<20 {
		t.Errorf("events stream MaxBytes %d, want BRIDGE_EVENTS_MAX_BYTES 64 MiB", got)
	}
	natstest.WaitFor(t, func() bool {
		resp, err := http.Get("http://" + b.HTTPAddr().String() + "/metrics")
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		body, _ := io.ReadAll(resp.Body)
		return strings.Contains(string(body), "\nreducto_bridge_jobs_outstanding 5\n")
	})

	h.clock.Advance(2 * time.Hour)
	got := h.collect(ids...)
	if len(got) != 5 {
		t.Errorf("%d events, want 5", len(got))
	}
	if n := h.eventCount(sixth); n != 0 {
		t.Errorf("the refused job has %d events", n)
	}
	// Room again: the sixth can be tracked now.
	h.track(sixth, "")
	h.collect(sixth)
}
