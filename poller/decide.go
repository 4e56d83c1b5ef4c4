package poller

import (
	"context"
	"encoding/json"
	"errors"
	"net/http"
	"strconv"
	"time"

	"github.com/reducto-bridge/reducto-bridge/capture"
	"github.com/reducto-bridge/reducto-bridge/event"
	"github.com/reducto-bridge/reducto-bridge/reducto"
)

// delivery is what the bridge knows about a job when an answer to GET /job arrives: the facts
// [decide] reads. It is built from the track message (and, within one delivery, from the
// answer being confirmed); nothing in it comes from process memory.
type delivery struct {
	id        string
	metadata  json.RawMessage // echoed in the event
	trackedAt time.Time       // when the track message was stored, or the first track was (see step)
	attempt   uint64          // the track message's delivery count: 1 was admission
	polls     int             // GET /job calls made for this job, this one included
	webhook   bool            // Reducto will announce the job's end by webhook: poll sparsely
	swept     bool            // a healthy list sweep covers the job: poll sparsely
	// sweptEvery, when longer than the policy's sweptInterval, spaces the safety-net polls
	// of a covered job instead: more covered jobs than half the GET /job budget can poll
	// that often (see Poller.sweptEvery).
	sweptEvery time.Duration
	// fairEvery is the least time between two polls of any job while the GET /job budget
	// cannot poll every job at the schedule's longest interval: outstanding / (fairShare x
	// the key's rate), so that the polls due never come faster than the budget serves them
	// and a job tracked behind others is reached within about one such cycle (see
	// Poller.fairEvery). Zero otherwise.
	fairEvery time.Duration
	// evidence is a permanent answer (404, 409, 410, another 4xx) given earlier in this same
	// delivery: the answer being decided confirms it or not. Confirmation never spans two
	// deliveries, so it cannot depend on which replica, or which process, saw the first one.
	evidence error
	// draw is a uniform random number in [0, 1) for the schedule's jitter (a fact, so that
	// decide stays a function of its arguments).
	draw float64
	// step is how far along the schedule the job was when this track message replaced an
	// earlier one, with BRIDGE_RETRACK_KEEPS_SCHEDULE (then trackedAt is the first track's
	// time): the message's delivery n is the job's schedule step n + step. 0 otherwise.
	step uint64
}

// answer is the outcome of one GET /job: a job, or an error; for a completed job with a URL
// result, when capture is on, also the outcome of downloading it (one of captured, captureErr).
type answer struct {
	job *reducto.Job
	err error
	// captured is where the URL result's content was stored; captureErr why it was not.
	captured   *event.ResultRef
	captureErr error
}

// policy is the configuration decide applies.
type policy struct {
	sched schedule
	// confirmAfter is the wait before the GET that confirms a permanent answer
	// (BRIDGE_POLL_INITIAL_INTERVAL).
	confirmAfter time.Duration
	// ttl is BRIDGE_JOB_TTL: a job still unfinished at this age is reported expired.
	ttl time.Duration
	// webhookInterval spaces the safety-net polls of jobs announced by webhook.
	webhookInterval time.Duration
	// sweptInterval spaces the safety-net polls of jobs a list sweep covers
	// (BRIDGE_LIST_SAFETY_INTERVAL).
	sweptInterval time.Duration
	// authRetry spaces the polls of jobs while Reducto rejects the API key.
	authRetry time.Duration
}

// action is what a verdict asks for.
type action uint8

const (
	// pollAgain: NakWithDelay(after); the job stays on the schedule.
	pollAgain action = iota + 1
	// confirm: hold the delivery, wait after, ask Reducto again and decide on both answers.
	confirm
	// report: publish the event, then settle the track message.
	report
)

func (a action) String() string {
	switch a {
	case pollAgain:
		return "poll again"
	case confirm:
		return "confirm"
	case report:
		return "report"
	}
	return "action(" + strconv.Itoa(int(a)) + ")"
}

// class is what an answer says, for metrics and logs.
type class uint8

const (
	classTerminal     class = iota + 1 // 200, terminal status
	classPending                       // 200, any other status
	classTransient                     // network, timeout, 408, 429, 5xx, unreadable 200
	classRateLimited                   // 429 (a transient answer, counted apart)
	classUnauthorized                  // 401/403: the bridge's key, not the job
	classGone                          // 404, 409, 410
	classPermanent                     // another 4xx
	classInterrupted                   // the poll was cut short by shutdown
	classBroken                        // not an answer from Reducto (TLS set-up, bad argument, a 3xx)
)

// verdict is decide's answer: the one value the apply step acts on.
type verdict struct {
	action action
	after  time.Duration // pollAgain and confirm: the delay
	// predict: the delay is the schedule's, and may be refined by the job's predicted end
	// (progress, durations of similar jobs); a prediction only moves the next poll.
	predict bool
	event   *event.Event // report
	class   class
	job     *reducto.Job // the answer's job, when there was one
	err     error        // the answer's error, when there was one
}

// decide turns one answer to GET /job into a verdict. It is the bridge's whole policy for
// what an answer means, and a pure function: no I/O, no clock, no process state. The rules,
// in the README's table:
//
//   - 200 with a terminal status: report its kind with Reducto's values verbatim. A completed
//     job's URL result, when captured, adds result_ref; a capture that failed for good (too
//     large, not https) adds capture_error; one that failed otherwise (network, 5xx, an
//     expired link) polls again with backoff, for a fresh link, until the TTL, and then
//     reports completed with capture_error. Never an event of another kind because of it.
//   - 200 with any other status, known or not: poll again (backoff, or the job's predicted
//     end, or the webhook or list-sweep safety-net interval); expired once the job is older
//     than the TTL.
//   - network error, timeout, 408, 429 of any kind, any 5xx (500 included), a 200 that is not
//     a job: poll again with backoff, Retry-After honoured. Never a terminal event, except
//     expired at the TTL, which then carries the last error.
//   - 401/403: never an event of any kind; poll again at authRetry (the key is wrong, not the
//     job).
//   - 404 (NOT_FOUND), 409 or 410 (JOB_DELETED), any other 4xx (HTTP_<code>): failed, but only
//     when a second answer in the same delivery, confirmAfter later, is permanent too.
//     Anything else in between (Pending, a 500) cancels the confirmation.
//   - anything else that is not an answer from Reducto (a TLS misconfiguration, a 3xx redirect,
//     which the client never follows, the poll cut short by shutdown): poll again, never an
//     event but expired at the TTL (not even that when cut short by shutdown).
func decide(d delivery, a answer, now time.Time, pol policy) verdict {
	next := pol.sched.interval(d.attempt+d.step, d.draw)
	expired := now.Sub(d.trackedAt) >= pol.ttl
	if a.err == nil && a.job == nil {
		a.err = errNoAnswer
	}
	if a.err == nil {
		j := a.job
		if j.Status.Terminal() {
			ev := jobEvent(d, j, now)
			switch err := a.captureErr; {
			case a.captured != nil:
				ev.ResultRef = a.captured // next to Reducto's url object, which stays
			case err == nil:
			case errors.Is(err, context.Canceled):
				return verdict{action: pollAgain, class: classInterrupted, job: j, err: err}
			case capture.Permanent(err):
				ev.CaptureError = err.Error()
			case expired:
				ev.CaptureError = "not captured by BRIDGE_JOB_TTL: " + err.Error()
			default:
				// A download that failed, or a link that expired: the next GET /job hands
				// out a fresh link. The job is completed, but its event waits for the result.
				return verdict{action: pollAgain, after: fair(next, d, now, pol), class: classTransient, job: j, err: err}
			}
			return verdict{action: report, class: classTerminal, job: j, event: ev}
		}
		if expired {
			return verdict{action: report, class: classPending, job: j, event: expiredEvent(d, j, nil, now)}
		}
		if d.webhook || d.swept {
			// The webhook, or the list sweep, is the signal; polls are only the safety net
			// for a lost webhook or a list that misses the job.
			after := next
			if d.webhook {
				after = max(after, pol.webhookInterval)
			}
			if d.swept {
				// Stretched, but never past the TTL: the expired event is the schedule's.
				after = min(max(after, pol.sweptInterval, d.sweptEvery), max(next, pol.ttl-now.Sub(d.trackedAt)))
			}
			return verdict{action: pollAgain, after: fair(after, d, now, pol), class: classPending, job: j}
		}
		// A prediction may refine the schedule's delay, not the budget's floor.
		after := fair(next, d, now, pol)
		return verdict{action: pollAgain, after: after, predict: after == next, class: classPending, job: j}
	}

	c := classify(a.err)
	v := verdict{class: c, err: a.err}
	switch c {
	case classInterrupted:
		v.action = pollAgain // at once: another replica takes it
	case classUnauthorized:
		v.action, v.after = pollAgain, pol.authRetry
	case classGone, classPermanent:
		if d.evidence == nil {
			v.action, v.after = confirm, pol.confirmAfter
			break
		}
		v.action, v.event = report, failedEvent(d, a.err, now)
	default: // transient, rate limited, broken
		if expired {
			v.action, v.event = report, expiredEvent(d, nil, a.err, now)
			break
		}
		v.action, v.after = pollAgain, fair(next, d, now, pol)
		if ra, ok := reducto.RetryAfter(a.err); ok && ra > v.after {
			v.after = ra
		}
	}
	return v
}

// fair raises a poll-again delay to d.fairEvery, but never past the TTL (the expired event
// is the schedule's, and comes at most one poll after it).
func fair(after time.Duration, d delivery, now time.Time, pol policy) time.Duration {
	if d.fairEvery <= after {
		return after
	}
	return max(after, min(d.fairEvery, pol.ttl-now.Sub(d.trackedAt)))
}

// errNoAnswer stands for an answer with neither a job nor an error (a JobGetter bug).
var errNoAnswer = errors.New("get job returned neither a job nor an error")

// classify says what an error answer to GET /job means for the job. Only an HTTP answer from
// Reducto with a 4xx status other than 401, 403, 408 and 429 is about the job itself; every
// other failure is about the path to Reducto, or Reducto's health, and says nothing of the job.
func classify(err error) class {
	var apiErr *reducto.APIError
	switch {
	case errors.Is(err, context.Canceled):
		return classInterrupted
	case errors.Is(err, reducto.ErrUnauthorized):
		return classUnauthorized
	case errors.Is(err, reducto.ErrRateLimited):
		return classRateLimited
	case reducto.IsTransient(err):
		return classTransient
	case errors.As(err, &apiErr) && apiErr.StatusCode >= 400 && apiErr.StatusCode < 500:
		if errors.Is(err, reducto.ErrNotFound) || errors.Is(err, reducto.ErrGone) {
			return classGone
		}
		return classPermanent
	case errors.As(err, &apiErr) && apiErr.StatusCode >= 500:
		return classTransient // whatever the client's classification says: a 5xx is never about the job
	}
	return classBroken
}

// jobEvent is the event of a terminal job, with Reducto's values passed through.
func jobEvent(d delivery, j *reducto.Job, now time.Time) *event.Event {
	ev := baseEvent(d, j, now)
	ev.Kind = eventKind(j.Outcome())
	ev.Result = j.Result
	return ev
}

// eventKind is the event kind of a terminal job's outcome. reducto.Outcome spells the kinds
// the same way (reducto knows nothing of the wire contract, so it cannot use event.Kind);
// TestEventKind pins the correspondence. decide asks only for terminal jobs' kinds.
func eventKind(o reducto.Outcome) event.Kind {
	switch o {
	case reducto.OutcomeCompleted:
		return event.Completed
	case reducto.OutcomeFailed:
		return event.Failed
	case reducto.OutcomeCancelled:
		return event.Cancelled
	}
	return event.Kind(o)
}

// expiredEvent reports a job still unfinished at the TTL: j is its last known state, or err
// the error of the last poll (then the event's error).
func expiredEvent(d delivery, j *reducto.Job, err error, now time.Time) *event.Event {
	ev := baseEvent(d, j, now)
	ev.Kind = event.Expired
	if err != nil {
		ev.Error = errorInfo(err, "", 0)
	}
	return ev
}

// failedEvent reports a job whose GET /job answered a confirmed permanent error.
func failedEvent(d delivery, err error, now time.Time) *event.Event {
	ev := baseEvent(d, nil, now)
	ev.Kind = event.Failed
	name := ""
	switch {
	case errors.Is(err, reducto.ErrNotFound):
		name = "NOT_FOUND"
	case errors.Is(err, reducto.ErrGone):
		name = "JOB_DELETED"
	}
	ev.Error = errorInfo(err, name, http.StatusBadRequest)
	return ev
}

// errorInfo is the bridge's error object for a failed poll: the HTTP status as code (or
// defaultCode without one), name (or Reducto's error name, or HTTP_<code>, or fallback),
// and Reducto's message (or the error text, which never holds the key).
func errorInfo(err error, name string, defaultCode int) *event.ErrorInfo {
	info := &event.ErrorInfo{Name: name, Message: err.Error(), Code: defaultCode}
	var apiErr *reducto.APIError
	if errors.As(err, &apiErr) {
		info.Code = apiErr.StatusCode
		if apiErr.Message != "" {
			info.Message = apiErr.Message
		}
		switch {
		case info.Name != "":
		case apiErr.Name != "" && !errors.Is(err, reducto.ErrMalformedResponse) && !errors.Is(err, reducto.ErrRedirect):
			info.Name = apiErr.Name
		default:
			info.Name = "HTTP_" + strconv.Itoa(apiErr.StatusCode)
		}
	}
	if info.Name == "" {
		info.Name = "POLL_FAILED"
	}
	return info
}

func baseEvent(d delivery, j *reducto.Job, now time.Time) *event.Event {
	ev := &event.Event{
		JobID:      d.id,
		Metadata:   d.metadata,
		TrackedAt:  d.trackedAt,
		ObservedAt: now,
		Polls:      d.polls,
	}
	if j != nil {
		ev.Status = string(j.Status)
		ev.Type = j.Type
		ev.Reason = j.Reason
		ev.Progress = j.Progress
		ev.Duration = j.Duration
		ev.NumPages = j.NumPages
		if j.Error != nil {
			ev.Error = &event.ErrorInfo{Code: j.Error.Code, Name: j.Error.Name, Message: j.Error.Message, Raw: j.Error.Raw}
		}
	}
	return ev
}
