package poller

import (
	"context"
	"errors"
	"log/slog"
	"math"
	"math/rand/v2"
	"time"

	"github.com/nats-io/nats.go/jetstream"
	"github.com/reducto-bridge/reducto-bridge/tracing"
	"github.com/reducto-bridge/reducto-bridge/track"
)

// trackedJob is one delivery of a track message: the facts decide reads, and the job's logger.
type trackedJob struct {
	delivery
	log *slog.Logger
	via string // a hint's source (webhook, list); empty for a delivery
	// hintedAt is when the hint arrived (a webhook's arrival, for webhook_to_event_seconds);
	// zero for a delivery.
	hintedAt time.Time
	// requeued: the track message is one the bridge moved to the queue's tail (see
	// [Poller.park]); its signed header gave the job's position.
	requeued bool
	// stored is when the delivered track message was stored; zero for a hint.
	stored time.Time
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
	id, err := p.queue.JobID(msg.Subject())
	if err != nil {
		// No event can be published for an id that is not a subject token: say so and drop it.
		p.log.Warn("invalid track subject; dropped", "subject", truncate(msg.Subject(), 300), "error", err)
		p.m.Track("invalid_subject")
		p.term(msg, "invalid job id")
		return
	}
	// The trace context of this (the newest) track message, for the job's Reducto requests
	// and its event.
	ctx = tracing.Extract(ctx, msg.Headers())
	// A message the bridge moved says where the job stands; a producer's starts at delivery 1.
	pos := p.queue.Position(msg.Subject(), msg.Headers(), md.Timestamp, md.NumDelivered)
	t := &trackedJob{
		delivery: delivery{id: id, trackedAt: pos.TrackedAt, attempt: pos.Attempt, step: pos.Step},
		requeued: pos.Requeued,
		stored:   md.Timestamp,
		log:      p.log.With("job_id", id, "attempt", pos.Attempt),
	}
	if wait := p.early(t, pos.Due); wait > 0 {
		// The queue was shorter than the poll's delay: the job waits out the rest here.
		p.nak(msg, wait)
		return
	}
	p.readBody(t, msg.Data())
	if p.o.Coverage != nil {
		if t.swept = p.o.Coverage.Covers(id, t.trackedAt); t.swept {
			t.sweptEvery = p.sweptEvery(md.NumPending + 1)
		}
	}
	// The consumer's pending count (this message's, at delivery) is a floor of the
	// outstanding jobs that is never stale: a burst of tracks binds the budget before the
	// once-a-second count has seen it.
	t.fairEvery = p.fairEvery(md.NumPending + 1)
	admitted := t.attempt <= 1
	if admitted {
		if !p.admit(ctx, msg, t) {
			return
		}
		// The budget binds and the first poll is due: the job has waited its turn in the
		// stream already, so it is polled now rather than sent to the tail a second time.
		t.attempt = 2
	}
	if !p.claim(id) {
		// A hint (webhook, list) is fetching this job right now and reports it if it is
		// finished; two reports at once could both reach core NATS subscribers. Look again
		// soon: the redelivery finds the event, or polls.
		p.nak(msg, p.o.InitialInterval)
		return
	}
	defer p.unclaim(id)
	if p.o.Origins != nil {
		if !t.requeued && !admitted {
			// A requeued message carries the origin and the step, and admission has read
			// them; a message from before requeues has them in the bucket.
			p.keepOrigin(ctx, t, p.o.Origins.First)
		}
		msg = forgetOnAck{Msg: msg, forget: func(ctx context.Context) { p.forgetOrigin(ctx, t) }}
	}
	p.poll(ctx, msg, t)
}

// Origins keeps the first track time of each outstanding job (BRIDGE_RETRACK_KEEPS_SCHEDULE);
// *track.Origins satisfies it. Claim and First return the recorded first track time,
// recording at when there is none; Claim is the cheaper one for a job likely new (admission),
// First for one likely recorded (a poll).
type Origins interface {
	Claim(ctx context.Context, id string, at time.Time) (time.Time, error)
	First(ctx context.Context, id string, at time.Time) (time.Time, error)
	Forget(ctx context.Context, id string) error
}

// keepOrigin makes a re-tracked job keep its TTL and schedule: the delivery's TTL origin
// becomes the job's first track time, and its schedule step how many polls the schedule had
// made by the time this track message was stored. Both depend only on the first track time
// and the message's own timestamp, so every delivery of the message gets the same ones.
// When the bucket cannot be read the job is handled as today, as if tracked by this message.
func (p *Poller) keepOrigin(ctx context.Context, t *trackedJob, lookup func(context.Context, string, time.Time) (time.Time, error)) {
	stored := t.trackedAt
	first, err := lookup(ctx, t.id, stored)
	if err != nil {
		t.log.Warn("cannot read the job's first track time; its schedule restarts", "error", err)
		return
	}
	if first.After(stored) {
		first = stored // a clock skew between servers: never a TTL beyond the message's own
	}
	t.trackedAt = first
	t.step = p.pol.sched.steps(stored.Sub(first))
}

// forgetOrigin removes a reported job's first track time, best effort: the bucket's TTL
// removes what is left.
func (p *Poller) forgetOrigin(ctx context.Context, t *trackedJob) {
	if err := p.o.Origins.Forget(ctx, t.id); err != nil {
		t.log.Debug("cannot forget the job's first track time", "error", err)
	}
}

// forgetOnAck is a track message whose ack (the job is reported) also forgets the job's first
// track time.
type forgetOnAck struct {
	jetstream.Msg
	forget func(context.Context)
}

func (m forgetOnAck) DoubleAck(ctx context.Context) error {
	err := m.Msg.DoubleAck(ctx)
	m.forget(ctx)
	return err
}

// readBody reads the track body into t. A body that is not JSON, or too large, still tracks
// the job: its events carry no metadata, and the first delivery logs a warning naming the job.
func (p *Poller) readBody(t *trackedJob, body []byte) {
	req, err := track.ParseBody(body, p.o.MaxMetadata)
	t.metadata, t.webhook = req.Metadata, req.Webhook
	if err == nil || t.attempt != 1 {
		return
	}
	var tooLarge *track.MetadataTooLargeError
	switch {
	case errors.As(err, &tooLarge):
		t.log.Warn("track metadata too large; tracking without metadata", "bytes", tooLarge.Size, "max", tooLarge.Max)
	case errors.Is(err, track.ErrMetadataNotUTF8):
		t.log.Warn("track metadata is not valid UTF-8; tracking without metadata")
	default:
		t.log.Warn("track body is not a JSON object; tracking without metadata", "error", err)
	}
	p.m.Track("bad_body")
}

// admit handles the first delivery: a job already reported (tracked again after its event) is
// acked without spending a Reducto request; otherwise its first poll is scheduled
// InitialInterval after tracking. It reports true when that poll is to be made now: the
// budget binds (so the message has waited its turn in the stream) and the poll is due.
func (p *Poller) admit(ctx context.Context, msg jetstream.Msg, t *trackedJob) bool {
	ev, err := p.events.Lookup(ctx, t.id)
	if err != nil {
		t.log.Warn("event lookup failed; polling anyway", "error", err)
	}
	if ev != nil {
		t.log.Debug("job already reported", "kind", ev.Kind)
		p.m.Track("already_reported")
		p.ack(ctx, msg, t)
		if p.o.Origins != nil {
			p.forgetOrigin(ctx, t) // a leftover, if any
		}
		return false
	}
	p.m.Track("new")
	if p.o.Origins != nil {
		p.keepOrigin(ctx, t, p.o.Origins.Claim)
	}
	// The next poll of the schedule, counted from the (first) tracking: poll 1 for a new job.
	due := p.pol.sched.elapsed(t.step) + p.pol.sched.interval(t.step+1, rand.Float64())
	if wi := p.o.WebhookPollInterval; t.webhook && t.step == 0 {
		due = max(due, wi)
	} else if t.webhook {
		// A re-track: the safety-net polls come every WebhookPollInterval from the first one.
		due = max(due, wi*(p.now().Sub(t.trackedAt)/wi+1))
	}
	if t.swept {
		// Never past the TTL: the expired event is the schedule's.
		due = max(due, min(max(p.o.SweptPollInterval, t.sweptEvery), p.o.JobTTL))
	}
	d := due - p.now().Sub(t.trackedAt)
	if t.fairEvery > 0 && d <= 0 {
		return true
	}
	p.park(ctx, msg, t, d)
	return false
}

// claim marks a job as being polled or hinted in this process; it reports false when it
// already is. A poll and a hint of one job never run at once here, so that one process never
// publishes a job's event twice concurrently (the stream keeps one, but core NATS subscribers
// would see both).
func (p *Poller) claim(id string) bool {
	_, busy := p.busy.LoadOrStore(id, struct{}{})
	return !busy
}

func (p *Poller) unclaim(id string) { p.busy.Delete(id) }

func truncate(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return s[:n] + "..."
}

// sweptShare is the share of the GET /job budget the safety-net polls of covered jobs may
// take together: the rest is for the list's hints (a job the list shows finished) and for
// jobs the sweep does not cover.
const sweptShare = 0.5

// fairShare is the share of the GET /job budget that the polls of all outstanding jobs may
// take together when the budget binds: the rest is for new jobs' admission, hints and
// confirmations, so that due re-polls (which JetStream delivers before new messages) never
// queue up.
const fairShare = 0.9

// sweptEvery is the interval at which the covered jobs' safety-net polls, all of them
// together, take sweptShare of the GET /job rate: outstanding / (sweptShare x rate), or 0 when
// the outstanding count or the rate is not known. Without it, 100,000 covered jobs polled
// every BRIDGE_LIST_SAFETY_INTERVAL would want 833 GETs/s, keep the budget busy, and make the
// list's hints wait behind them.
func (p *Poller) sweptEvery(atLeast uint64) time.Duration { return p.every(sweptShare, atLeast) }

// fairEvery is the interval at which every outstanding job, polled that often, takes
// fairShare of the GET /job rate, when that is longer than MaxInterval: the floor of every
// poll's delay (see delivery.fairEvery); 0 otherwise. Only then can the budget not keep up
// with every job even at the schedule's longest interval; below it the backoff itself brings
// the polls within the budget. Without it, the jobs that got a poll kept every slot with
// their re-polls and the others were never polled (100,000 jobs at 100/s: 96,890 never
// polled in 12 minutes).
func (p *Poller) fairEvery(atLeast uint64) time.Duration {
	if f := p.every(fairShare, atLeast); f > p.o.MaxInterval {
		return f
	}
	return 0
}

// every is outstanding (at least atLeast) / (share x the key's GET /job rate), or 0 when either
// is unknown. The outstanding count is the key's (the track stream's), so the rate is the
// key's too: each of R replicas holds about 1/R of the jobs and polls them within its 1/R of
// the rate.
func (p *Poller) every(share float64, atLeast uint64) time.Duration {
	if p.o.Outstanding == nil || p.o.PollRate == nil {
		return 0
	}
	n, r := float64(max(p.o.Outstanding(), atLeast)), p.o.PollRate()
	if !(n > 0) || !(r > 0) || math.IsInf(r, 0) {
		return 0
	}
	return time.Duration(n / (share * r) * float64(time.Second))
}

// early is how long a requeued job, delivered before its next poll is due, still has to wait
// (0: poll now). It is never past the TTL, so that no header can hide a job: the expired
// event is the schedule's.
func (p *Poller) early(t *trackedJob, due time.Time) time.Duration {
	if !t.requeued || due.IsZero() {
		return 0
	}
	now := p.now()
	wait := min(due.Sub(now), p.o.JobTTL-now.Sub(t.trackedAt))
	if wait <= track.EarlyMargin {
		return 0
	}
	return wait
}

// requeueSpan bounds the delays [Poller.park] turns into a move to the queue's tail, in
// fairEvery: a move has no delay of its own, the job comes back after the jobs ahead of it,
// about one fairEvery while the budget binds. Longer delays (a webhook's or a covered job's
// safety net) keep a NakWithDelay: fewer than 0.45 x rate x delay jobs can have one that long.
const requeueSpan = 2

// park puts an unfinished job back on the schedule, due after d (at once when d <= 0). While
// the GET /job budget binds (fairEvery > 0) and d is about a fair cycle, it moves the track
// message to the tail of the queue instead of parking it with NakWithDelay: a message waiting
// in the stream costs nats-server nothing per poll, where a NAK'd one is consumer state that
// nats-server rewrites and walks on every NAK (docs/operations.md, "How jobs wait"). The
// stream delivers in order, so the jobs are polled round robin, new ones included. A move
// that fails parks the job with the delay, as before.
func (p *Poller) park(ctx context.Context, msg jetstream.Msg, t *trackedJob, d time.Duration) {
	if t.fairEvery <= 0 || d > requeueSpan*t.fairEvery {
		p.m.Park("delay")
		p.nak(msg, d)
		return
	}
	// The stream hands the job back after the jobs ahead of it: about d while the budget
	// binds, since nearly every job is then in the queue. Only a queue much shorter than
	// that (most jobs parked for longer, by webhook or list-sweep intervals) hands it back
	// early, and then it waits (NakWithDelay) until half its delay has passed: never sooner,
	// and never so late that a job arriving on time from a long queue would wait (which would
	// park every job of the queue with a NAK again).
	//
	// At admission (attempt 1) there is no wait: the message comes back after the jobs
	// tracked with it, and a burst of fresh jobs admitted faster than their delay would
	// otherwise all wait parked with a NAK.
	due := p.now().Add(d / 2)
	if t.attempt <= 1 {
		due = time.Time{}
	}
	moved, err := p.queue.Requeue(ctx, msg, track.Position{Attempt: t.attempt, Step: t.step, TrackedAt: t.trackedAt, Due: due})
	if err != nil {
		t.log.Debug("cannot move the job to the queue's tail; parking it", "error", err)
		p.m.Park("requeue_failed")
		p.nak(msg, d)
		return
	}
	if moved {
		p.m.Park("requeue")
	} else {
		// A newer track message holds the job (a re-track, or another replica's move):
		// the delivered one is gone from the stream, and the newer one is the job's.
		t.log.Debug("a newer track message holds the job")
		p.m.Park("superseded")
	}
	if err := msg.Ack(); err != nil {
		// The stream no longer holds the message: a redelivery finds nothing.
		t.log.Debug("ack of a moved track message failed", "error", err)
	}
}
