package poller

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"unicode/utf8"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/reducto-bridge/reducto-bridge/subject"
)

// track is one delivery of a track message: the facts decide reads, and the job's logger.
type track struct {
	delivery
	log *slog.Logger
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
		delivery: delivery{id: id, trackedAt: md.Timestamp, attempt: md.NumDelivered},
		log:      p.log.With("job_id", id, "attempt", md.NumDelivered),
	}
	p.readBody(t, msg.Data())
	if t.attempt <= 1 {
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
	if err == nil || t.attempt != 1 {
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
	first := p.pol.sched.interval(1, rand.Float64())
	if t.webhook {
		first = max(first, p.o.WebhookPollInterval)
	}
	p.nak(msg, first-p.now().Sub(t.trackedAt))
}

func truncate(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return s[:n] + "..."
}
