package poller

import (
	"context"
	"errors"
	"math/rand/v2"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/reducto-bridge/reducto-bridge/capture"
	"github.com/reducto-bridge/reducto-bridge/event"
	"github.com/reducto-bridge/reducto-bridge/lastpoll"
	"github.com/reducto-bridge/reducto-bridge/metrics"
	"github.com/reducto-bridge/reducto-bridge/reducto"
)

// poll asks Reducto for the job, decides what the answer means and applies the verdict.
func (p *Poller) poll(ctx context.Context, msg jetstream.Msg, t *trackedJob) {
	t.polls = int(t.attempt) - 2 // delivery 1 was admission; the loop counts this GET
	t.draw = rand.Float64()
	for {
		t.polls++
		a := p.capture(ctx, t, p.get(ctx, t.id), msg)
		v := decide(t.delivery, a, p.now(), p.pol)
		if v.action != confirm {
			p.apply(ctx, msg, t, v)
			return
		}
		// Hold the job (InProgress keeps AckWait from handing it to another replica), wait,
		// and ask again: the next answer confirms this one or not. Both answers belong to
		// this one delivery, so no replica and no restart can mix another job history in.
		t.log.Info("permanent answer; confirming", "after", v.after, "error", v.err)
		if !p.hold(ctx, msg, v.after) {
			p.nak(msg, 0) // shutting down: another replica starts afresh
			return
		}
		t.evidence = v.err
	}
}

// apply carries out a verdict on a polled track message.
func (p *Poller) apply(ctx context.Context, msg jetstream.Msg, t *trackedJob, v verdict) {
	switch v.action {
	case report:
		if err := p.report(ctx, t, v, func(ctx context.Context) { p.ack(ctx, msg, t) }); err != nil {
			// Not stored (or not known to be): poll again once the back-pressure pause is
			// over; the event is published then, and deduplicated if this attempt did land
			// after all. Nothing is kept in memory meanwhile.
			p.nak(msg, p.gate.remaining(p.now())+p.o.InitialInterval)
		}
	case pollAgain:
		after := v.after
		if v.predict && v.job != nil {
			after = p.eta.next(t.id, v.job, t.trackedAt, p.now(), after)
		}
		p.logPollAgain(t, v, after)
		if v.class == classInterrupted {
			p.nak(msg, 0) // shutting down: another replica takes the job at once
			return
		}
		p.recordPoll(t, v, after)
		p.park(ctx, msg, t, after)
	default:
		t.log.Error("unexpected verdict; polling again", "action", v.action)
		p.nak(msg, p.o.InitialInterval)
	}
}

// recordPoll tells o.Polls what this poll saw and when the next one is due.
func (p *Poller) recordPoll(t *trackedJob, v verdict, after time.Duration) {
	if p.o.Polls == nil {
		return
	}
	now := p.now()
	rec := lastpoll.Poll{PolledAt: now.UTC(), Deliveries: t.attempt, Since: t.stored.UTC(), NextPoll: now.Add(after).UTC()}
	if v.job != nil {
		rec.Status = string(v.job.Status)
		if pr := v.job.Progress; pr != nil {
			progress := *pr // not a pointer into the job, which the book would keep alive
			rec.Progress = &progress
		}
	}
	if v.class != classPending && v.class != classTerminal {
		rec.Failure = pollOutcome(v.class)
	}
	p.o.Polls.Record(t.id, rec)
}

func (p *Poller) logPollAgain(t *trackedJob, v verdict, after time.Duration) {
	switch v.class {
	case classPending:
		t.log.Debug("job not finished", "status", v.job.Status, "next_poll", after)
	case classInterrupted:
		t.log.Debug("poll interrupted; handing the job back")
	case classUnauthorized:
		t.log.Error("reducto rejected the API key; check REDUCTO_API_KEY (jobs stay tracked, none is failed)", "error", v.err)
	case classRateLimited:
		t.log.Warn("reducto rate limit", "error", v.err, "next_poll", after)
	case classBroken:
		t.log.Error("cannot poll reducto; will retry", "error", v.err, "next_poll", after)
	default:
		t.log.Info("poll failed; will retry", "error", v.err, "next_poll", after)
	}
}

// hold keeps a delivery for d, telling JetStream the job is in progress before, during (at a
// third of AckWait, so that a wait longer than AckWait does not hand the job to another
// replica) and after the wait; it reports false when ctx ends first. Waiting sends no request,
// so the delivery's worker slot goes back for the wait as soon as one of the bounded waiting
// places is free, and is taken again (before any fetch waiting for slots) when d is over: a
// backlog of confirmations does not stop other jobs from being polled. Without a free
// waiting place the job waits holding its slot, as it did before.
func (p *Poller) hold(ctx context.Context, msg jetstream.Msg, d time.Duration) bool {
	p.inProgress(msg)
	every := time.Second
	if info := p.queue.Consumer().CachedInfo(); info != nil && info.Config.AckWait > 0 {
		every = info.Config.AckWait / 3
	}
	timer := time.NewTimer(d)
	defer timer.Stop()
	tick := time.NewTicker(max(every, time.Millisecond))
	defer tick.Stop()
	w := workerOf(ctx)
	var place, slot chan<- struct{} // the channel being waited on, nil when none
	if w != nil && w.held {
		place = w.waits
	}
	waiting := false // holds a waiting place, not a slot
	leave := func() {
		if waiting {
			<-w.waits
			p.confirming.Add(-1)
			waiting = false
		}
	}
	defer leave()
	due := timer.C
	for {
		select {
		case <-ctx.Done():
			return false
		case <-tick.C:
			p.inProgress(msg)
		case place <- struct{}{}:
			place, waiting = nil, true
			p.confirming.Add(1)
			w.release()
		case <-due:
			due = nil
			if !waiting {
				p.inProgress(msg)
				return true
			}
			slot = w.slots
		case slot <- struct{}{}:
			w.held = true
			p.inProgress(msg)
			return true
		}
	}
}

func (p *Poller) inProgress(msg jetstream.Msg) {
	if err := msg.InProgress(); err != nil {
		// At worst the job is redelivered after AckWait and confirmed afresh there.
		p.log.Debug("in-progress ack failed", "subject", msg.Subject(), "error", err)
	}
}

// get is one GET /job, counted by outcome; it also keeps the unauthorized flag: set by a
// 401/403, cleared by any answer that got through.
func (p *Poller) get(ctx context.Context, id string) answer {
	job, err := p.jobs.GetJob(ctx, id)
	a := answer{job: job, err: err}
	switch c := answerClass(a); c {
	case classTerminal:
		p.m.Poll(metrics.PollTerminal)
	case classPending:
		p.m.Poll(metrics.PollPending)
	case classInterrupted:
		return a // not an answer: counts nothing
	default:
		p.m.Poll(pollOutcome(c))
	}
	var apiErr *reducto.APIError
	switch {
	case errors.Is(err, reducto.ErrUnauthorized):
		p.setAuthFailing(true)
	case err == nil, errors.As(err, &apiErr) && apiErr.StatusCode < 500 && apiErr.StatusCode != 429:
		// Reducto itself answered and accepted the key (a proxy's 5xx or a 429 proves
		// nothing about it).
		p.setAuthFailing(false)
	}
	return a
}

// setAuthFailing records whether Reducto rejects the API key, for /readyz and the gauge; it
// logs the change once each way.
func (p *Poller) setAuthFailing(failing bool) {
	if !failing {
		if p.authFailingSince.Swap(0) != 0 {
			p.m.AuthFailing(false)
			p.log.Info("reducto accepts the API key again")
		}
		return
	}
	if p.authFailingSince.CompareAndSwap(0, p.now().UnixNano()) {
		p.m.AuthFailing(true)
	}
}

// PublishFailing reports whether the last event publish failed (the events stream is full or
// unavailable), since when and why. Polling is paused meanwhile; nothing is lost.
func (p *Poller) PublishFailing() (since time.Time, err error, failing bool) {
	return p.gate.failing()
}

// AuthFailing reports whether Reducto's latest answers reject the API key, and since when.
// While it does, jobs stay tracked and are polled every BRIDGE_POLL_MAX_INTERVAL; none is
// failed for it.
func (p *Poller) AuthFailing() (since time.Time, failing bool) {
	n := p.authFailingSince.Load()
	if n == 0 {
		return time.Time{}, false
	}
	return time.Unix(0, n), true
}

// answerClass is the class of an answer, without deciding anything.
func answerClass(a answer) class {
	switch {
	case a.err == nil && a.job != nil && a.job.Status.Terminal():
		return classTerminal
	case a.err == nil && a.job != nil:
		return classPending
	case a.err == nil:
		return classBroken
	}
	return classify(a.err)
}

// report is the one way an event leaves the poller, for polls and webhooks alike: publish,
// then (after the crash failpoint) settle the track message. A publish that fails closes the
// back-pressure gate and is returned; settle is not called then.
func (p *Poller) report(ctx context.Context, t *trackedJob, v verdict, settle func(context.Context)) error {
	ev := v.event
	out, err := p.events.Publish(ctx, ev)
	if err != nil {
		p.m.Poll(metrics.PollPublishError)
		if pause := p.gate.failed(p.now(), err); pause > 0 {
			p.m.Paused(true)
			t.log.Error("publishing events fails; pausing polls", "kind", ev.Kind, "pause", pause, "error", err)
		} else {
			t.log.Error("publish event failed; will retry", "kind", ev.Kind, "error", err)
		}
		return err
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
		msg := "job finished"
		if t.attempt == 0 {
			msg = "job finished (" + t.via + ")"
		}
		t.log.Info(msg, "kind", ev.Kind, "status", ev.Status, "polls", ev.Polls)
	}
	if !out.Duplicate {
		p.observeReported(t, v, ev)
	}
	if v.class == classTerminal && v.job != nil {
		p.eta.finished(t.id, v.job, ev.ObservedAt.Sub(t.trackedAt))
	}
	p.eta.forget(t.id)
	if p.o.Coverage != nil {
		p.o.Coverage.Done(t.id)
	}
	if p.o.Polls != nil {
		p.o.Polls.Forget(t.id)
	}
	settle(ctx)
	return nil
}

// ack confirms the message; a lost ack only costs a redelivery, which finds the event.
func (p *Poller) ack(ctx context.Context, msg jetstream.Msg, t *trackedJob) {
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

// pollOutcome is the metrics label of a failed poll's class.
func pollOutcome(c class) string {
	switch c {
	case classUnauthorized:
		return metrics.PollUnauthorized
	case classRateLimited:
		return metrics.PollRateLimited
	case classGone:
		return metrics.PollGone
	case classPermanent:
		return metrics.PollPermanent
	}
	return metrics.PollTransient
}

// observeReported records the service level of a published event: its time from the track
// message, its lag behind the job's end at Reducto (created_at plus duration, when GET /job
// gave both), the job's polls, and for a webhook's hint the time since the webhook arrived.
func (p *Poller) observeReported(t *trackedJob, v verdict, ev *event.Event) {
	now := p.now()
	var lag time.Duration
	lagKnown := false
	if j := v.job; v.class == classTerminal && j != nil && !j.CreatedAt.IsZero() && j.Duration != nil && *j.Duration >= 0 {
		end := j.CreatedAt.Add(time.Duration(*j.Duration * float64(time.Second)))
		lag, lagKnown = now.Sub(end), true
	}
	p.m.Reported(string(ev.Kind), now.Sub(t.trackedAt), lag, lagKnown, ev.Polls)
	if t.via == "webhook" && !t.hintedAt.IsZero() {
		p.m.WebhookToEvent(now.Sub(t.hintedAt))
	}
}

// capture downloads a completed job's URL result when capture is on (Options.Capture), and
// records the outcome in the answer for decide. While it downloads, msg (nil for a hint) is
// kept in progress, so that a long download does not hand the job to another replica. A job
// already reported is not downloaded again: its event names the stored object already.
func (p *Poller) capture(ctx context.Context, t *trackedJob, a answer, msg jetstream.Msg) answer {
	if p.o.Capture == nil || a.err != nil || a.job == nil || a.job.Outcome() != reducto.OutcomeCompleted {
		return a
	}
	u, ok := a.job.ResultURL()
	if !ok {
		return a
	}
	if ev, err := p.events.Lookup(ctx, t.id); err == nil && ev != nil {
		return a // the publish finds that event and reports it
	}
	if msg != nil {
		stop := p.keepInProgress(msg)
		defer stop()
	}
	a.captured, a.captureErr = p.o.Capture.Capture(ctx, t.id, u)
	if a.captureErr != nil && ctx.Err() != nil {
		a.captureErr = context.Canceled // cut short by shutdown, not a failed download
	}
	switch {
	case errors.Is(a.captureErr, context.Canceled):
		// Shutdown: not an outcome.
	case a.captureErr != nil:
		t.log.Warn("url result not captured", "error", a.captureErr)
		if capture.Permanent(a.captureErr) {
			p.m.Capture(metrics.CaptureRefused, 0)
		} else {
			p.m.Capture(metrics.CaptureFailed, 0)
		}
	default:
		t.log.Debug("url result captured", "size", a.captured.Size)
		p.m.Capture(metrics.CaptureCaptured, int64(a.captured.Size))
	}
	return a
}

// keepInProgress tells JetStream every third of AckWait that msg is still being worked on,
// until stop is called.
func (p *Poller) keepInProgress(msg jetstream.Msg) (stop func()) {
	every := time.Second
	if info := p.queue.Consumer().CachedInfo(); info != nil && info.Config.AckWait > 0 {
		every = info.Config.AckWait / 3
	}
	done := make(chan struct{})
	finished := make(chan struct{})
	go func() {
		defer close(finished)
		tick := time.NewTicker(max(every, time.Millisecond))
		defer tick.Stop()
		for {
			select {
			case <-done:
				return
			case <-tick.C:
				p.inProgress(msg)
			}
		}
	}()
	return func() { close(done); <-finished }
}
