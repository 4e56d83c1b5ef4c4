package poller

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"strconv"
	"time"
	"unicode/utf8"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/reducto-bridge/reducto-bridge/metrics"
	"github.com/reducto-bridge/reducto-bridge/publisher"
	"github.com/reducto-bridge/reducto-bridge/reducto"
	"github.com/reducto-bridge/reducto-bridge/subject"
)

// track is what one delivery of a track message says about its job.
type track struct {
	id        string
	metadata  json.RawMessage
	trackedAt time.Time // when the track message was stored
	delivery  uint64    // 1 for the first delivery
	webhook   bool      // Reducto will announce the job's end by webhook: poll sparsely
	log       *slog.Logger
}

// handle processes one delivery of a track message. Delivery 1 admits the job (has it been
// reported already? when is its first poll due?); every later delivery is one poll.
func (p *Poller) handle(ctx context.Context, msg jetstream.Msg) {
	md, err := msg.Metadata()
	if err != nil {
		p.log.Error("track message without metadata", "subject", msg.Subject(), "error", err)
		p.term(msg, "not a JetStream message")
		return
	}
	id, err := trackJobID(p.o.Prefix, msg.Subject())
	if err != nil {
		// No event can be published for an id that is not a subject token: say so and drop it.
		p.log.Warn("invalid track subject; dropped", "subject", truncate(msg.Subject(), 300), "error", err)
		p.m.Track("invalid_subject")
		p.term(msg, "invalid job id")
		return
	}
	t := &track{
		id:        id,
		trackedAt: md.Timestamp,
		delivery:  md.NumDelivered,
		log:       p.log.With("job_id", id, "attempt", md.NumDelivered),
	}
	p.readBody(t, msg.Data())
	if t.delivery <= 1 {
		p.admit(ctx, msg, t)
		return
	}
	p.poll(ctx, msg, t)
}

// errNotTrackSubject: a message on the track stream whose subject is not P.track.<token>.
var errNotTrackSubject = errors.New("not a track subject")

// trackJobID returns the job id of a track message's subject, or why it is unusable: the
// subject is not P.track.<id>, or the id is not a valid subject token.
func trackJobID(prefix, subj string) (string, error) {
	id, ok := subject.TrackJobID(prefix, subj)
	if !ok {
		return "", errNotTrackSubject
	}
	if err := subject.ValidJobID(id); err != nil {
		return "", err
	}
	return id, nil
}

// Why a non-empty track body yields no metadata.
var (
	errTrackBodyNotObject = errors.New("track body is not a JSON object")
	errMetadataNotUTF8    = errors.New("track metadata is not valid UTF-8")
)

// metadataTooLargeError: the metadata exceeds Options.MaxMetadata.
type metadataTooLargeError struct{ size, max int }

func (e *metadataTooLargeError) Error() string {
	return fmt.Sprintf("track metadata of %d bytes, at most %d", e.size, e.max)
}

// parseTrackBody reads a track body: the metadata to echo in the job's events (nil when there
// is none) and the webhook flag, or the reason a non-empty body yields no metadata (the flag
// is still read then). Metadata comes out as valid JSON and valid UTF-8 or not at all:
// encoding/json copies a raw value's bytes as they are, and an event with invalid UTF-8 in it
// is not JSON to a strict consumer.
func parseTrackBody(body []byte, maxMetadata int) (TrackRequest, error) {
	body = bytes.TrimSpace(body)
	if len(body) == 0 {
		return TrackRequest{}, nil
	}
	var req TrackRequest
	if err := json.Unmarshal(body, &req); err != nil {
		return TrackRequest{}, fmt.Errorf("%w: %w", errTrackBodyNotObject, err)
	}
	switch {
	case len(req.Metadata) > maxMetadata:
		return TrackRequest{Webhook: req.Webhook}, &metadataTooLargeError{size: len(req.Metadata), max: maxMetadata}
	case !utf8.Valid(req.Metadata):
		return TrackRequest{Webhook: req.Webhook}, errMetadataNotUTF8
	case bytes.Equal(req.Metadata, []byte("null")):
		req.Metadata = nil
	}
	return req, nil
}

// readBody reads the track body into t. A body that is not JSON, or too large, still tracks
// the job: its events carry no metadata, and the first delivery logs a warning naming the job.
func (p *Poller) readBody(t *track, body []byte) {
	req, err := parseTrackBody(body, p.o.MaxMetadata)
	t.metadata, t.webhook = req.Metadata, req.Webhook
	if err == nil || t.delivery > 1 {
		return
	}
	var tooLarge *metadataTooLargeError
	switch {
	case errors.As(err, &tooLarge):
		t.log.Warn("track metadata too large; tracking without metadata", "bytes", tooLarge.size, "max", tooLarge.max)
	case errors.Is(err, errMetadataNotUTF8):
		t.log.Warn("track metadata is not valid UTF-8; tracking without metadata")
	default:
		t.log.Warn("track body is not a JSON object; tracking without metadata", "error", err)
	}
	p.m.Track("bad_body")
}

// admit handles the first delivery: a job already reported (tracked again after its event) is
// acked without spending a Reducto request; otherwise its first poll is scheduled
// InitialInterval after tracking.
func (p *Poller) admit(ctx context.Context, msg jetstream.Msg, t *track) {
	ev, err := p.events.Lookup(ctx, t.id)
	if err != nil {
		t.log.Warn("event lookup failed; polling anyway", "error", err)
	}
	if ev != nil {
		t.log.Debug("job already reported", "kind", ev.Kind)
		p.m.Track("already_reported")
		p.ack(ctx, msg, t)
		return
	}
	p.m.Track("new")
	first := p.sched.interval(1)
	if t.webhook {
		first = max(first, p.o.WebhookPollInterval)
	}
	p.nak(msg, first-p.now().Sub(t.trackedAt))
}

// poll asks Reducto for the job and acts on the answer.
func (p *Poller) poll(ctx context.Context, msg jetstream.Msg, t *track) {
	polls := int(t.delivery - 1) // delivery 1 was admission
	next := p.sched.interval(t.delivery)
	job, err := p.jobs.GetJob(ctx, t.id)
	now := p.now()
	expired := now.Sub(t.trackedAt) >= p.o.JobTTL

	switch {
	case err == nil && job.Status.Terminal():
		p.m.Poll(metrics.PollTerminal)
		p.clearSuspect(t.id)
		p.eta.finished(t.id, job, now.Sub(t.trackedAt))
		p.finish(ctx, msg, t, eventFromJob(job, t, now, polls))
		return
	case err == nil:
		p.m.Poll(metrics.PollPending)
		p.clearSuspect(t.id)
		if expired {
			p.finish(ctx, msg, t, expiredEvent(job, t, now, polls))
			return
		}
		if t.webhook {
			// The webhook is the signal; polls are only the safety net for a lost one.
			next = max(next, p.o.WebhookPollInterval)
		} else {
			next = p.eta.next(t.id, job, t.trackedAt, now, next)
		}
		t.log.Debug("job not finished", "status", job.Status, "next_poll", next)
		p.nak(msg, next)
		return
	case ctx.Err() != nil:
		// Shutting down mid-poll: hand the job back at once.
		p.nak(msg, 0)
		return
	}

	var apiErr *reducto.APIError
	errors.As(err, &apiErr)
	p.m.Poll(pollOutcome(err))
	if reducto.IsTransient(err) || errors.Is(err, reducto.ErrUnauthorized) {
		// Only two permanent answers in a row fail a job.
		p.clearSuspect(t.id)
	}
	switch {
	case errors.Is(err, reducto.ErrUnauthorized):
		// The bridge's key is wrong, not the job: never fail jobs for it, keep them parked.
		t.log.Error("reducto rejected the API key; check REDUCTO_API_KEY", "error", err)
		p.nak(msg, p.o.MaxInterval)
	case reducto.IsTransient(err):
		if errors.Is(err, reducto.ErrRateLimited) {
			t.log.Warn("reducto rate limit", "error", err)
		} else {
			t.log.Info("poll failed; will retry", "error", err)
		}
		if expired {
			p.finish(ctx, msg, t, expiredEvent(nil, t, now, polls))
			return
		}
		if ra, ok := reducto.RetryAfter(err); ok && ra > next {
			next = ra
		}
		p.nak(msg, next)
	default:
		// A permanent answer about this job. A single one could be a glitch (a 404 right after
		// submission, a proxy's 500), so fail the job only when the next poll says it again.
		if !p.confirm(t.id, now) {
			t.log.Info("poll failed permanently; confirming on the next poll", "error", err)
			p.nak(msg, p.o.InitialInterval)
			return
		}
		p.finish(ctx, msg, t, failedEvent(err, apiErr, t, now, polls))
	}
}

// finish publishes a terminal event and acks the track message once the stream holds the
// job's event (this one, or one published before).
func (p *Poller) finish(ctx context.Context, msg jetstream.Msg, t *track, ev *publisher.Event) {
	out, err := p.events.Publish(ctx, ev)
	if err != nil {
		// Not stored (or not known to be): poll again after the pause; the event is published
		// then, and deduplicated if this attempt did land after all. Nothing is kept in
		// memory meanwhile.
		p.m.Poll(metrics.PollPublishError)
		pause := p.gate.failed(p.now())
		if pause > 0 {
			p.m.Paused(true)
			t.log.Error("publishing events fails; pausing polls", "kind", ev.Kind, "pause", pause, "error", err)
		} else {
			t.log.Error("publish event failed; will retry", "kind", ev.Kind, "error", err)
		}
		p.nak(msg, p.gate.remaining(p.now())+p.o.InitialInterval)
		return
	}
	if p.gate.succeeded() {
		p.m.Paused(false)
		t.log.Info("publishing events works again; polls resumed")
	}
	if p.o.AfterPublish != nil {
		p.o.AfterPublish(t.id)
	}
	p.m.Event(string(ev.Kind), out.Duplicate)
	if out.Duplicate {
		t.log.Debug("event already published", "kind", out.Existing)
	} else {
		t.log.Info("job finished", "kind", ev.Kind, "status", ev.Status, "polls", ev.Polls)
	}
	p.clearSuspect(t.id)
	p.eta.forget(t.id)
	p.ack(ctx, msg, t)
}

// ack confirms the message; a lost ack only costs a redelivery, which finds the event.
func (p *Poller) ack(ctx context.Context, msg jetstream.Msg, t *track) {
	actx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	if err := msg.DoubleAck(actx); err != nil {
		t.log.Warn("ack failed; the job will be seen again and not reported twice", "error", err)
	}
}

func (p *Poller) term(msg jetstream.Msg, reason string) {
	if err := msg.TermWithReason(reason); err != nil {
		p.log.Debug("term failed", "subject", msg.Subject(), "error", err)
	}
}

// confirm records a permanent failure of a job and reports whether one was already recorded
// (by this process) at an earlier poll.
func (p *Poller) confirm(id string, now time.Time) bool {
	p.mu.Lock()
	defer p.mu.Unlock()
	if _, seen := p.suspect[id]; seen {
		delete(p.suspect, id)
		return true
	}
	// Entries of jobs that vanished (taken by another replica) must not pile up.
	if len(p.suspect) >= 100_000 {
		for k, at := range p.suspect {
			if now.Sub(at) > time.Hour {
				delete(p.suspect, k)
			}
		}
	}
	p.suspect[id] = now
	return false
}

func (p *Poller) clearSuspect(id string) {
	p.mu.Lock()
	delete(p.suspect, id)
	p.mu.Unlock()
}

// eventFromJob builds the event of a terminal job, passing Reducto's values through.
func eventFromJob(j *reducto.Job, t *track, now time.Time, polls int) *publisher.Event {
	ev := baseEvent(j, t, now, polls)
	ev.Kind = publisher.Kind(j.Outcome())
	ev.Result = j.Result
	return ev
}

// expiredEvent reports a job still unfinished after BRIDGE_JOB_TTL; j is its last known state
// (nil when the last poll failed).
func expiredEvent(j *reducto.Job, t *track, now time.Time, polls int) *publisher.Event {
	ev := baseEvent(j, t, now, polls)
	ev.Kind = publisher.Expired
	return ev
}

// failedEvent reports a job Reducto says is gone or that it refuses to report on.
func failedEvent(err error, apiErr *reducto.APIError, t *track, now time.Time, polls int) *publisher.Event {
	ev := baseEvent(nil, t, now, polls)
	ev.Kind = publisher.Failed
	info := &publisher.ErrorInfo{Message: err.Error()}
	if apiErr != nil && apiErr.Message != "" {
		info.Message = apiErr.Message
	}
	switch {
	case errors.Is(err, reducto.ErrNotFound):
		info.Name = "NOT_FOUND"
	case errors.Is(err, reducto.ErrGone):
		info.Name = "JOB_DELETED"
	case apiErr != nil && apiErr.Name != "":
		info.Name = apiErr.Name
	case apiErr != nil:
		info.Name = "HTTP_" + strconv.Itoa(apiErr.StatusCode)
	default:
		info.Name = "POLL_FAILED"
	}
	if apiErr != nil {
		info.Code = apiErr.StatusCode
	}
	if info.Code == 0 {
		info.Code = http.StatusBadRequest
	}
	ev.Error = info
	return ev
}

func baseEvent(j *reducto.Job, t *track, now time.Time, polls int) *publisher.Event {
	ev := &publisher.Event{
		JobID:      t.id,
		Metadata:   t.metadata,
		TrackedAt:  t.trackedAt,
		ObservedAt: now,
		Polls:      polls,
	}
	if j != nil {
		ev.Status = string(j.Status)
		ev.Type = j.Type
		ev.Reason = j.Reason
		ev.Progress = j.Progress
		ev.Duration = j.Duration
		ev.NumPages = j.NumPages
		if j.Error != nil {
			ev.Error = &publisher.ErrorInfo{Code: j.Error.Code, Name: j.Error.Name, Message: j.Error.Message}
		}
	}
	return ev
}

func truncate(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return s[:n] + "..."
}
