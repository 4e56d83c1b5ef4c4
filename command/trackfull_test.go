package command

import (
	"strings"
	"testing"

	"github.com/reducto-bridge/reducto-bridge/internal/natstest"
	"github.com/reducto-bridge/reducto-bridge/internal/reductotest"
	"github.com/reducto-bridge/reducto-bridge/subject"
	"github.com/reducto-bridge/reducto-bridge/track"
)

// TestTrackStreamFull: with the real track queue capped at one job and full, a cancel and a
// submit that Reducto accepted are answered 503 saying the track stream is full (the submit's
// naming the job id), and the outstanding job keeps its track message.
func TestTrackStreamFull(t *testing.T) {
	ctx := t.Context()
	s := natstest.RunServer(t)
	nc, js := natstest.JetStream(t, s)
	queue, err := track.Setup(ctx, js, track.Options{Prefix: prefix, MaxJobs: 1})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := js.Publish(ctx, subject.Track(prefix, "outstanding"), []byte(`{}`)); err != nil {
		t.Fatal(err)
	}
	jobs := &reductotest.Jobs{}
	e := startOn(t, nc, natstest.Connect(t, s), jobs, nil, queue.Ensure, Options{})

	code, desc := replyCode(t, request(t, e.nc, prefix+".cancel", []byte(`{"job_id":"other"}`)))
	if code != 503 || !strings.Contains(desc, "tracking failed: track stream REDUCTO_TRACK is full") {
		t.Errorf("cancel on a full track stream = %d %q, want 503 saying the stream is full", code, desc)
	}
	code, desc = replyCode(t, request(t, e.nc, prefix+".submit", []byte(`{"endpoint":"parse","body":{"input":"x"}}`)))
	if code != 503 || !strings.Contains(desc, "submitted job job-1 but tracking failed: track stream REDUCTO_TRACK is full") {
		t.Errorf("submit on a full track stream = %d %q, want 503 naming job-1 and the full stream", code, desc)
	}
	if m, err := queue.Last(ctx, "outstanding"); err != nil || m == nil {
		t.Errorf("outstanding job's track message: %v, %v", m, err)
	}
}
