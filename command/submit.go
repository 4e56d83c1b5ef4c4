package command

import (
	"context"
	"encoding/json"
	"fmt"
	"unicode/utf8"

	"github.com/reducto-bridge/reducto-bridge/reducto"
	"github.com/reducto-bridge/reducto-bridge/track"
	"github.com/reducto-bridge/reducto-bridge/webhook"
)

// SubmitRequest is the body of a P.submit request. Unknown keys are ignored.
type SubmitRequest struct {
	// Endpoint is parse, extract, split, edit or pipeline.
	Endpoint reducto.Endpoint `json:"endpoint"`
	// Body is Reducto's async request for that endpoint, a JSON object, passed on as is
	// except for the webhook and metadata the bridge adds.
	Body json.RawMessage `json:"body"`
	// Metadata, any JSON, is echoed in the job's events, less a top-level "webhook_token"
	// (and sent to Reducto as it is).
	Metadata json.RawMessage `json:"metadata,omitempty"`
}

// SubmitReply is the body of a successful P.submit reply.
type SubmitReply struct {
	JobID string `json:"job_id"`
}

// submit runs one P.submit command.
func (s *Service) submit(ctx context.Context, data []byte) result {
	req, res, valid := decodeSubmit(data)
	if !valid {
		return res
	}
	body, ours, res, valid := s.reductoBody(req)
	if !valid {
		return res
	}
	id, err := s.jobs.Submit(ctx, req.Endpoint, body)
	if err != nil {
		return submitFailure(err)
	}

	tctx, cancel := s.trackContext(ctx)
	defer cancel()
	// Reducto gets the metadata as given (a webhook_token there authenticates the caller's
	// own direct webhook); the track message and the job's events never carry the token.
	md := webhook.StripToken(req.Metadata)
	if _, err := s.track(tctx, id, track.Request{Metadata: md, Webhook: ours}); err != nil {
		// The job exists at Reducto: the caller must get its id to track it another way.
		return trackFailure(fmt.Sprintf("submitted job %s but tracking failed", id), id, err)
	}
	return success(id, SubmitReply{JobID: id})
}

// decodeSubmit reads and checks a submit request; on failure it returns the 400 reply.
func decodeSubmit(data []byte) (SubmitRequest, result, bool) {
	var req SubmitRequest
	if !utf8.Valid(data) {
		// Re-encoding the body would turn the bad bytes of keys into U+FFFD and keep those of
		// values, and Reducto and the job's events would get JSON that is not UTF-8.
		return req, fail(400, notUTF8), false
	}
	fields, isObject := object(data)
	if !isObject {
		return req, badRequest(data), false
	}
	if isNull(fields["endpoint"]) {
		return req, fail(400, "bad request: missing endpoint"), false
	}
	if err := json.Unmarshal(fields["endpoint"], &req.Endpoint); err != nil {
		return req, fail(400, "bad request: endpoint is not a string"), false
	}
	if !req.Endpoint.Valid() {
		return req, fail(400, "bad request: unknown endpoint, want parse, extract, split, edit or pipeline"), false
	}
	if isNull(fields["body"]) {
		return req, fail(400, "bad request: missing body"), false
	}
	if _, isObject := object(fields["body"]); !isObject {
		return req, fail(400, "bad request: body is not a json object"), false
	}
	req.Body = fields["body"]
	if !isNull(fields["metadata"]) {
		req.Metadata = fields["metadata"]
	}
	return req, result{}, true
}

// reductoBody adds the bridge's webhook and the metadata to the caller's body. Keys the caller
// set win: a webhook or metadata of theirs is never replaced. When nothing is added the body
// goes out byte-for-byte; otherwise the caller's values are kept byte-for-byte (compacted) and
// only the key order changes.
//
// v3 bodies (parse, extract, split, pipeline) carry both in "async"; edit still has the legacy
// top-level "webhook", which holds the metadata too. ours reports that the bridge added its
// own webhook, so Reducto will announce the job's end to this bridge.
func (s *Service) reductoBody(req SubmitRequest) (_ json.RawMessage, ours bool, _ result, _ bool) {
	fields, _ := object(req.Body) // checked by decodeSubmit
	if s.refuseWebhooks {
		if field := callerWebhook(fields); field != "" {
			return nil, false, fail(403, "forbidden: "+field+" is set; this bridge does not accept a caller's webhook (BRIDGE_SUBMIT_WEBHOOKS=false)"), false
		}
	}
	key := "async"
	if req.Endpoint == reducto.EndpointEdit {
		key = "webhook"
	}
	var inner map[string]json.RawMessage
	if raw := fields[key]; !isNull(raw) {
		var isObject bool
		if inner, isObject = object(raw); !isObject {
			return nil, false, fail(400, "bad request: body."+key+" is not a json object"), false
		}
	}

	changed := false
	if req.Endpoint == reducto.EndpointEdit {
		// The legacy webhook object is also where metadata goes: add ours when the caller
		// chose no webhook, and the metadata to whichever webhook there is.
		if inner == nil && s.webhook != nil {
			inner, changed, ours = s.webhook.fields(), true, true
		}
		if inner != nil && req.Metadata != nil && isNull(inner["metadata"]) {
			inner["metadata"], changed = req.Metadata, true
		}
	} else {
		if inner == nil {
			inner = map[string]json.RawMessage{}
		}
		if req.Metadata != nil && isNull(inner["metadata"]) {
			inner["metadata"], changed = req.Metadata, true
		}
		if s.webhook != nil && isNull(inner["webhook"]) {
			wh, err := encode(s.webhook.fields())
			if err != nil {
				return nil, false, result{code: 500, desc: "internal error", err: err}, false
			}
			inner["webhook"], changed, ours = wh, true, true
		}
	}
	if !changed {
		return req.Body, ours, result{}, true
	}
	raw, err := encode(inner)
	if err == nil {
		fields[key] = raw
		raw, err = encode(fields)
	}
	if err != nil {
		return nil, false, result{code: 500, desc: "internal error", err: err}, false
	}
	return raw, ours, result{}, true
}

// callerWebhook names the webhook field the caller set in a Reducto body, or is empty: v3's
// async.webhook and the legacy top-level webhook (edit's, and that of the older v2 bodies
// Reducto may still accept), whatever the endpoint, so that no shape slips through. A null
// one is no webhook.
func callerWebhook(fields map[string]json.RawMessage) string {
	if !isNull(fields["webhook"]) {
		return "body.webhook"
	}
	if async, ok := object(fields["async"]); ok && !isNull(async["webhook"]) {
		return "body.async.webhook"
	}
	return ""
}
