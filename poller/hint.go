package poller

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/reducto-bridge/reducto-bridge/subject"
	"github.com/reducto-bridge/reducto-bridge/tracing"
	"github.com/reducto-bridge/reducto-bridge/track"
	"github.com/reducto-bridge/reducto-bridge/webhook"
)

// Hint acts on a webhook for a job: it polls the job now instead of at its next scheduled
// time. A job already reported costs nothing (webhook replays publish nothing new). A finished
// job is reported with one GET through the same decision and report step as a poll (the
// back-pressure gate, metrics, the crash failpoint, the estimator), and its parked track
// message is deleted, so the poll schedule does not spend another request on it. A job that
// is not finished, or cannot be polled or reported now, stays on (or is put on) the poll
// schedule, which confirms a permanent answer the usual way.
//
// metadata is the webhook's (Reducto echoes what was submitted), without its direct-webhook
// token (webhook.StripToken). It is used only for a job first seen through the webhook: when
// the job has a track message, the track message's metadata is the job's, none included, and
// the track message is never replaced, so a webhook cannot change a tracked job's metadata.
//
// Hint returns an error only when the job is neither reported nor tracked afterwards.
func (p *Poller) Hint(ctx context.Context, id string, metadata json.RawMessage) error {
	if err := subject.ValidJobID(id); err != nil {
		return err
	}
	_, err := p.hint(ctx, id, webhook.StripToken(metadata), "webhook", false)
	return err
}

// HintTracked is [Poller.Hint] for a job the list sweep (package sweep) saw terminal: the same
// one GET /job, decision, event and deletion of the parked track message, but only for a job
// that has a track message. A job without one costs no request and is never tracked: the
// account's list holds jobs nobody asked the bridge about. The list is only a hint: the event
// comes from the GET, so a job the GET finds unfinished stays on its schedule.
//
// It reports whether the job has an event now (reported here, or before); an error means the
// track message or the event could not be read or stored, and the job stays on its schedule.
func (p *Poller) HintTracked(ctx context.Context, id string) (reported bool, err error) {
	if err := subject.ValidJobID(id); err != nil {
		return false, err
	}
	return p.hint(ctx, id, nil, "list", true)
}

// hint is Hint and HintTracked; onlyTracked leaves a job without a track message alone.
func (p *Poller) hint(ctx context.Context, id string, metadata json.RawMessage, via string, onlyTracked bool) (bool, error) {
	hintedAt := p.now()
	log := p.log.With("job_id", id, "via", via)
	if !p.claim(id) {
		// A poll (or another hint) of the job is in flight here: it reports the job.
		log.Debug("hint for a job being polled now; left to that poll")
		return false, nil
	}
	defer p.unclaim(id)
	var tr *jetstream.RawStreamMsg
	if onlyTracked {
		// The track message first: most listed jobs are not tracked, and for those the
		// sweep must cost nothing more.
		var err error
		if tr, err = p.queue.Last(ctx, id); err != nil || tr == nil {
			return false, err
		}
	}
	if ev, err := p.events.Lookup(ctx, id); err == nil && ev != nil {
		log.Debug("hint for a job already reported", "kind", ev.Kind)
		// A track message left behind (a crash between the event and its removal) would
		// cost one more GET at its next delivery.
		if tr == nil {
			tr, _ = p.queue.Last(ctx, id)
		}
		if tr != nil {
			p.dropTrack(ctx, log, tr.Sequence)
		}
		return true, nil
	}
	if !onlyTracked {
		var err error
		if tr, err = p.queue.Last(ctx, id); err != nil {
			log.Warn("read track message failed", "error", err)
		}
	}
	// attempt 0: not a delivery of the track message; the schedule is not consulted.
	t := &trackedJob{delivery: delivery{id: id, trackedAt: p.now(), metadata: metadata, webhook: !onlyTracked, polls: 1}, log: log, via: via, hintedAt: hintedAt}
	if tr != nil {
		// The track message's metadata, or none: never the webhook's; and its trace context.
		t.trackedAt = tr.Time
		p.readBody(t, tr.Data)
		ctx = tracing.Extract(ctx, tr.Header)
	}
	if p.gate.remaining(p.now()) > 0 {
		// Events cannot be stored now: a GET would be wasted. The schedule reports the job
		// once publishing works again.
		log.Debug("hint while polls are paused; left to the schedule")
		return false, p.keepTracked(ctx, tr, id, metadata, errPaused)
	}
	a := p.capture(ctx, t, p.get(ctx, id), nil)
	v := decide(t.delivery, a, p.now(), p.pol)
	if v.action != report {
		if onlyTracked && a.err == nil {
			log.Debug("listed terminal, but GET /job says otherwise; left to the schedule", "status", a.job.Status)
		}
		return false, p.keepTracked(ctx, tr, id, metadata, a.err)
	}
	settle := func(ctx context.Context) {
		if tr != nil {
			p.dropTrack(ctx, log, tr.Sequence)
		}
	}
	if err := p.report(ctx, t, v, settle); err != nil {
		return false, p.keepTracked(ctx, tr, id, metadata, err)
	}
	return true, nil
}

// errPaused: the back-pressure gate is closed.
var errPaused = errors.New("polling paused: events cannot be published")

// dropTrack deletes a reported job's track message. Best effort: a message that survives is
// acked at its next delivery, after one GET that finds the event already published.
func (p *Poller) dropTrack(ctx context.Context, log *slog.Logger, seq uint64) {
	if err := p.queue.Delete(ctx, seq); err != nil {
		log.Debug("delete track message failed", "error", err)
	}
}

// keepTracked makes sure a job that could not be reported now stays on the poll schedule.
func (p *Poller) keepTracked(ctx context.Context, tr *jetstream.RawStreamMsg, id string, metadata json.RawMessage, cause error) error {
	if tr != nil {
		return nil
	}
	if _, err := p.queue.Ensure(ctx, id, track.Request{Metadata: metadata}); err != nil {
		return fmt.Errorf("job %s neither reported nor tracked: %w", id, errors.Join(cause, err))
	}
	return nil
}
