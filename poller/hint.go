package poller

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/reducto-bridge/reducto-bridge/metrics"
	"github.com/reducto-bridge/reducto-bridge/reducto"
	"github.com/reducto-bridge/reducto-bridge/subject"
)

// Hint acts on a webhook for a job: it polls the job now instead of at its next scheduled
// time. A job already reported costs nothing (webhook replays publish nothing new). A finished
// job is reported with one GET, and its parked track message is deleted, so the poll schedule
// does not spend another request on it. A job that is not finished, or cannot be polled now,
// stays on (or is put on) the poll schedule. metadata is the webhook's (Reducto echoes what was
// submitted); the track message's metadata, when there is one, wins.
//
// Hint returns an error only when the job is neither reported nor tracked afterwards.
func (p *Poller) Hint(ctx context.Context, id string, metadata json.RawMessage) error {
	if err := subject.ValidJobID(id); err != nil {
		return err
	}
	log := p.log.With("job_id", id)
	if ev, err := p.events.Lookup(ctx, id); err == nil && ev != nil {
		log.Debug("webhook for a job already reported", "kind", ev.Kind)
		return nil
	}
	tr, err := p.trackMessage(ctx, id)
	if err != nil {
		log.Warn("read track message failed", "error", err)
	}
	t := &track{id: id, trackedAt: p.now(), metadata: metadata, log: log}
	if tr != nil {
		t.trackedAt = tr.Time
		p.readBody(t, tr.Data)
	}
	job, err := p.jobs.GetJob(ctx, id)
	if err != nil || !job.Status.Terminal() {
		// The schedule finds it later; make sure there is one.
		if err != nil {
			p.m.Poll(pollOutcome(err))
		} else {
			p.m.Poll(metrics.PollPending)
		}
		return p.keepTracked(ctx, tr, id, metadata, err)
	}
	p.m.Poll(metrics.PollTerminal)
	p.eta.forget(id)
	ev := eventFromJob(job, t, p.now(), 1)
	out, perr := p.events.Publish(ctx, ev)
	if perr != nil {
		return p.keepTracked(ctx, tr, id, metadata, perr)
	}
	p.m.Event(string(ev.Kind), out.Duplicate)
	log.Info("job finished (webhook)", "kind", ev.Kind, "status", ev.Status)
	if tr != nil {
		// Best effort: a message that survives is acked at its next delivery, which finds
		// the event without a GET.
		if err := p.deleteTrack(ctx, tr.Sequence); err != nil {
			log.Debug("delete track message failed", "error", err)
		}
	}
	return nil
}

// keepTracked makes sure a job that could not be reported now stays on the poll schedule.
func (p *Poller) keepTracked(ctx context.Context, tr *jetstream.RawStreamMsg, id string, metadata json.RawMessage, cause error) error {
	if tr != nil {
		return nil
	}
	if _, err := EnsureTracked(ctx, p.js, p.o.Prefix, id, TrackRequest{Metadata: metadata}); err != nil {
		return fmt.Errorf("job %s neither reported nor tracked: %w", id, errors.Join(cause, err))
	}
	return nil
}

// trackMessage returns the job's track message, or nil when it has none.
func (p *Poller) trackMessage(ctx context.Context, id string) (*jetstream.RawStreamMsg, error) {
	s, err := p.trackStream(ctx)
	if err != nil {
		return nil, err
	}
	msg, err := s.GetLastMsgForSubject(ctx, subject.Track(p.o.Prefix, id))
	if errors.Is(err, jetstream.ErrMsgNotFound) {
		return nil, nil
	}
	return msg, err
}

func (p *Poller) deleteTrack(ctx context.Context, seq uint64) error {
	s, err := p.trackStream(ctx)
	if err != nil {
		return err
	}
	return s.DeleteMsg(ctx, seq)
}

func (p *Poller) trackStream(ctx context.Context) (jetstream.Stream, error) {
	p.mu.Lock()
	s := p.stream
	p.mu.Unlock()
	if s != nil {
		return s, nil
	}
	s, err := p.js.Stream(ctx, subject.TrackStream)
	if err != nil {
		return nil, fmt.Errorf("track stream: %w", err)
	}
	p.mu.Lock()
	p.stream = s
	p.mu.Unlock()
	return s, nil
}

// pollOutcome is the metrics label of a failed poll.
func pollOutcome(err error) string {
	switch {
	case errors.Is(err, reducto.ErrUnauthorized):
		return metrics.PollUnauthorized
	case errors.Is(err, reducto.ErrRateLimited):
		return metrics.PollRateLimited
	case reducto.IsTransient(err):
		return metrics.PollTransient
	case errors.Is(err, reducto.ErrNotFound), errors.Is(err, reducto.ErrGone):
		return metrics.PollGone
	}
	return metrics.PollPermanent
}
