package command

import (
	"context"
	"encoding/json"
	"log/slog"
	"unicode/utf8"

	"github.com/reducto-bridge/reducto-bridge/subject"
	"github.com/reducto-bridge/reducto-bridge/track"
)

// CancelRequest is the body of a P.cancel request. Unknown keys are ignored.
type CancelRequest struct {
	JobID string `json:"job_id"`
}

// CancelReply is the body of a successful P.cancel reply; Cancel is always "requested":
// Reducto cancels asynchronously, and the job's terminal event tells how it ended.
type CancelReply struct {
	JobID  string `json:"job_id"`
	Cancel string `json:"cancel"`
}

// cancel runs one P.cancel command.
func (s *Service) cancel(ctx context.Context, data []byte) result {
	id, res, valid := decodeCancel(data)
	if !valid {
		return res
	}
	res = s.cancelJob(ctx, id)
	res.jobID = id
	return res
}

// decodeCancel reads and checks a cancel request; on failure it returns the 400 reply.
func decodeCancel(data []byte) (string, result, bool) {
	if !utf8.Valid(data) {
		// encoding/json would turn the bad bytes into U+FFFD and cancel a job of another id.
		return "", fail(400, notUTF8), false
	}
	var req map[string]json.RawMessage
	if err := json.Unmarshal(data, &req); err != nil || req == nil {
		return "", badRequest(data), false
	}
	raw := req["job_id"]
	if isNull(raw) {
		return "", fail(400, "bad request: missing job_id"), false
	}
	var id string
	if err := json.Unmarshal(raw, &id); err != nil {
		return "", fail(400, "bad request: job_id is not a string"), false
	}
	if err := subject.ValidJobID(id); err != nil {
		// The error names the rule broken (length, a character), never the id itself.
		return "", fail(400, "bad request: "+err.Error()), false
	}
	return id, result{}, true
}

func (s *Service) cancelJob(ctx context.Context, id string) result {
	var lookupErr error
	if s.events != nil {
		ev, err := s.events.Lookup(ctx, id)
		if err != nil {
			// The event stream is only a shortcut; Reducto still knows the job's state.
			s.log.LogAttrs(ctx, slog.LevelWarn, "event lookup failed", slog.String("job_id", id), slog.String("error", err.Error()))
			lookupErr = err
		} else if ev != nil {
			desc := "job already " + string(ev.Kind)
			if ev.Status != "" {
				desc += " (status " + ev.Status + ")"
			}
			return fail(409, desc)
		}
	}
	if s.cancelTrackedOnly {
		if res, ok := s.checkTracked(ctx, id, lookupErr); !ok {
			return res
		}
	}

	// What POST /cancel does with a finished or unknown job is undocumented, so ask first.
	job, err := s.jobs.GetJob(ctx, id)
	if err != nil {
		return jobFailure(err, false)
	}
	if job == nil {
		return fail(502, "reducto sent a malformed response")
	}
	if job.Status.Terminal() {
		return fail(409, "job already "+string(job.Status))
	}
	if err := s.jobs.CancelJob(ctx, id); err != nil {
		return jobFailure(err, true)
	}

	tctx, cancel := s.trackContext(ctx)
	defer cancel()
	if _, err := s.track(tctx, id, track.Request{}); err != nil {
		return trackFailure("cancel requested but tracking failed", "", err)
	}
	return success(id, CancelReply{JobID: id, Cancel: "requested"})
}

// checkTracked enforces BRIDGE_CANCEL_TRACKED_ONLY: a job this bridge has no event for (the
// caller checked) must have a track message. It fails closed: when the track queue, or the
// events stream (lookupErr), cannot be read, the cancel is refused with a 503, not sent.
func (s *Service) checkTracked(ctx context.Context, id string, lookupErr error) (result, bool) {
	tracked, err := s.tracked(ctx, id)
	switch {
	case err != nil:
		return result{code: 503, desc: "cannot check that this bridge tracks the job, retry", err: err}, false
	case tracked:
		return result{}, true
	case lookupErr != nil:
		return result{code: 503, desc: "cannot check that this bridge tracks the job, retry", err: lookupErr}, false
	}
	return fail(403, "forbidden: this bridge does not track the job (BRIDGE_CANCEL_TRACKED_ONLY)"), false
}

// trackContext is the budget for tracking a job Reducto has just accepted a command for: a
// fresh timeout, kept apart from the command's (which Reducto may have used up), so that a slow
// Reducto does not leave the job untracked.
func (s *Service) trackContext(ctx context.Context) (context.Context, context.CancelFunc) {
	return context.WithTimeout(context.WithoutCancel(ctx), s.timeout)
}
