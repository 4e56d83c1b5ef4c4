package bridge

import (
	"encoding/json"
	"fmt"
	"log/slog"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats.go/micro"

	"github.com/reducto-bridge/reducto-bridge/command"
	"github.com/reducto-bridge/reducto-bridge/internal/natstest"
	"github.com/reducto-bridge/reducto-bridge/reducto/reductosim"
	"github.com/reducto-bridge/reducto-bridge/subject"
)

// TestStatusGivesTheLastPoll: two replicas share a job parked with NakWithDelay; P.status,
// whichever replica answers it, gives what the job's last poll saw, the delivery count and
// the next poll (the replicas ask each other); once the job is reported it gives the event
// and no last poll.
func TestStatusGivesTheLastPoll(t *testing.T) {
	h := newHarness(t, natstest.Options{}, reductosim.Options{})
	var bs []*Bridge
	for range 2 {
		cfg := h.config()
		cfg.ListSweep = false
		cfg.LogLevel = slog.LevelInfo
		bs = append(bs, h.start(cfg))
	}
	for _, b := range bs {
		natstest.WaitFor(t, func() bool { return strings.Contains(metricsText(t, b), "reducto_bridge_replicas 2\n") })
	}
	id := h.sim.Create(reductosim.JobSpec{Duration: time.Hour, NumPages: 1}) // the clock is fake: Pending until advanced
	h.track(id, `{}`)
	status := func() command.StatusReply {
		t.Helper()
		msg, err := h.nc.Request(subject.Status("reducto"), fmt.Appendf(nil, `{"job_id":%q}`, id), 10*time.Second)
		if err != nil || msg.Header.Get(micro.ErrorCodeHeader) != "" {
			t.Fatalf("status: %v %v", err, msg)
		}
		var r command.StatusReply
		if err := json.Unmarshal(msg.Data, &r); err != nil {
			t.Fatalf("status reply %q: %v", msg.Data, err)
		}
		return r
	}
	// Admission, then two polls at least.
	natstest.WaitFor(t, func() bool { r := status(); return r.LastPoll != nil && r.Deliveries >= 3 })
	for i := range 10 {
		r := status()
		lp := r.LastPoll
		if lp == nil || r.Moved || lp.Status != "Pending" || lp.Failure != "" || lp.Deliveries < 3 || r.Deliveries < 3 ||
			r.NextPoll == nil || !r.NextPoll.After(lp.PolledAt) || r.TrackedAt == nil || !lp.Since.Equal(*r.TrackedAt) {
			t.Fatalf("status %d: %+v (last poll %+v); want the last poll of this track message: Pending, 3+ deliveries, a next poll after it", i, r, lp)
		}
	}
	h.clock.Advance(2 * time.Hour)
	h.collect(id)
	natstest.WaitFor(t, func() bool { return status().Event != nil })
	if r := status(); r.LastPoll != nil || r.Event.Kind != "completed" {
		t.Errorf("reported job: %+v (last poll %+v), want its completed event and no last poll", r, r.LastPoll)
	}
}
