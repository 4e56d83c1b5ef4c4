package command

import (
	"context"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/reducto-bridge/reducto-bridge/event"
	"github.com/reducto-bridge/reducto-bridge/lastpoll"
	"github.com/reducto-bridge/reducto-bridge/subject"
	"github.com/reducto-bridge/reducto-bridge/track"
)

// StatusSources are what P.status reads: the job's track message and its stored event. Both
// are required for the service to serve P.status.
type StatusSources struct {
	// Track returns the job's track message, nil when it has none; (*track.Queue).Last.
	Track func(ctx context.Context, id string) (*jetstream.RawStreamMsg, error)
	// Event returns the job's stored terminal event and its stream sequence, nil when there
	// is none; (*publisher.Publisher).Find.
	Event func(ctx context.Context, id string) (*event.Event, uint64, error)
	// Position reads a track message's signed position, for a job the bridge moved to the
	// stream's tail; (*track.Queue).Position. Nil: positions are not read.
	Position func(subj string, h nats.Header, stored time.Time, delivered uint64) track.Position
	// LastPoll returns the newest record of the job's last poll that a replica of the key
	// has; (*lastpoll.Peers).Ask. Nil: no last poll is returned.
	LastPoll func(ctx context.Context, id string) (lastpoll.Poll, bool)
}

// StatusRequest is the body of a P.status request. Unknown keys are ignored.
type StatusRequest struct {
	JobID string `json:"job_id"`
}

// StatusReply is the body of a successful P.status reply: what the streams say about the job.
// A job the bridge knows nothing of is a normal reply with Tracked false and no Event.
//
// The streams do not hold what the job's last poll saw: the replicas ask each other for it
// (LastPoll). For a job the bridge moved to the stream's tail (while the budget binds) the
// track message itself gives the deliveries and the next poll; for a job parked with
// NakWithDelay they come from the last poll, when it was of the current track message.
type StatusReply struct {
	JobID string `json:"job_id"`
	// Tracked: the job has a track message in REDUCTO_TRACK (it is outstanding, or its event
	// has just been published and the message is being acked).
	Tracked bool `json:"tracked"`
	// TrackedAt is when the job's current track message was stored (a re-track replaces it);
	// for a moved job, when the track it carries along was.
	TrackedAt *time.Time `json:"tracked_at,omitempty"`
	// Moved: the track message is a copy the bridge moved to the stream's tail; then
	// Deliveries is how many deliveries the job had before it (1: admitted, not yet polled)
	// and NextPoll when its next poll is due (absent: when the stream delivers it). For a job
	// parked with NakWithDelay, Deliveries is the delivery count at its last poll (admission
	// included) and NextPoll when that poll scheduled the next.
	Moved      bool       `json:"moved,omitempty"`
	Deliveries uint64     `json:"deliveries,omitempty"`
	NextPoll   *time.Time `json:"next_poll,omitempty"`
	// TrackSequence is the track message's sequence in REDUCTO_TRACK.
	TrackSequence uint64 `json:"track_sequence,omitempty"`
	// Webhook is the track body's webhook flag: polls are only a safety net.
	Webhook bool `json:"webhook,omitempty"`
	// LastPoll is what the job's last poll saw (status and progress, or why it got none),
	// when a live replica remembers it (each remembers up to lastpoll.DefaultMax jobs) and
	// the job has no event.
	LastPoll *lastpoll.Poll `json:"last_poll,omitempty"`
	// Event is the job's terminal event, when it has been reported.
	Event *StatusEvent `json:"event,omitempty"`
}

// StatusEvent is the part of a reported job's event P.status returns.
type StatusEvent struct {
	Kind       event.Kind `json:"kind"`
	Sequence   uint64     `json:"sequence"` // in REDUCTO_EVENTS
	Subject    string     `json:"subject"`
	Status     string     `json:"status,omitempty"`
	ObservedAt time.Time  `json:"observed_at"`
	Polls      int        `json:"polls,omitempty"`
}

// status runs one P.status command: two stream reads and a question to the replicas, no
// Reducto request.
func (s *Service) status(ctx context.Context, data []byte) result {
	id, res, valid := decodeCancel(data)
	if !valid {
		return res
	}
	reply := StatusReply{JobID: id}
	msg, err := s.statusSrc.Track(ctx, id)
	if err != nil {
		return result{code: 503, desc: "cannot read the track stream, retry", jobID: id, err: err}
	}
	if msg != nil {
		at := msg.Time.UTC()
		body, _ := track.ParseBody(msg.Data, track.DefaultMaxMetadata) // the flag is read whatever the metadata
		reply.Tracked, reply.TrackedAt, reply.TrackSequence, reply.Webhook = true, &at, msg.Sequence, body.Webhook
		if s.statusSrc.Position != nil {
			if pos := s.statusSrc.Position(msg.Subject, msg.Header, msg.Time, 0); pos.Requeued {
				origin := pos.TrackedAt.UTC()
				reply.TrackedAt, reply.Moved, reply.Deliveries = &origin, true, pos.Attempt
				if !pos.Due.IsZero() {
					due := pos.Due.UTC()
					reply.NextPoll = &due
				}
			}
		}
	}
	ev, seq, err := s.statusSrc.Event(ctx, id)
	if err != nil {
		return result{code: 503, desc: "cannot read the events stream, retry", jobID: id, err: err}
	}
	if ev != nil {
		reply.Event = &StatusEvent{
			Kind: ev.Kind, Sequence: seq, Subject: subject.Event(s.prefix, string(ev.Kind), id),
			Status: ev.Status, ObservedAt: ev.ObservedAt, Polls: ev.Polls,
		}
	} else if s.statusSrc.LastPoll != nil {
		// Once reported, the event says how the job ended; another replica may still
		// remember an earlier poll.
		if last, ok := s.statusSrc.LastPoll(ctx, id); ok {
			reply.LastPoll = &last
			if msg != nil && !reply.Moved && last.Since.Equal(msg.Time) {
				next := last.NextPoll
				reply.Deliveries, reply.NextPoll = last.Deliveries, &next
			}
		}
	}
	return success(id, reply)
}
