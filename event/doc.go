// Package event is the wire contract of the bridge's terminal job events: what the bridge
// publishes and what consumers import. It uses the standard library only, so a consumer
// depends on nothing else to read events. The authoritative list is docs/contract.md
// section 2; this comment is its summary.
//
// # Subjects and stream
//
// The bridge publishes exactly one terminal event per tracked Reducto job, on the subject
// P.job.<kind>.<job_id>, where P is the subject prefix (BRIDGE_SUBJECT_PREFIX, default
// "reducto") and <kind> is one of the four [Kind] values: completed, failed, cancelled,
// expired. Events are stored in the JetStream stream REDUCTO_EVENTS (subjects P.job.>, limits
// retention, kept BRIDGE_EVENTS_MAX_AGE), so a durable consumer on P.job.> (or on
// P.job.completed.>, or on P.job.*.<job_id> for one job) sees every event, including those
// published while it was away.
//
// # Headers
//
// Every event carries Nats-Msg-Id "<job_id>:<kind>" ([MsgID]) and the CloudEvents attributes in
// binary mode (NATS protocol binding): ce-specversion 1.0, ce-id (= Nats-Msg-Id), ce-type
// "ai.reducto.job.<kind>", ce-source (BRIDGE_EVENT_SOURCE), ce-subject (the job id), ce-time
// (when the bridge saw the end, = observed_at), ce-datacontenttype application/json,
// ce-dataschema ([DataSchema], the $id of docs/event.schema.json), and Content-Type
// application/json for clients that know no CloudEvents. Values are percent-encoded as the
// binding requires. [Headers] builds them; the Header* constants name
// them.
//
// # Body
//
// The body is a JSON object, [Event]: job_id and kind always; status, type, reason, progress,
// duration and num_pages as Reducto last reported them; error ([ErrorInfo]: Reducto's error
// object verbatim, or {code, name, message} for an error the bridge observed, such as
// NOT_FOUND or HTTP_<code>); result (Reducto's result verbatim); metadata (from the track
// message, or for a job first seen through a webhook from the webhook, less a top-level
// "webhook_token"); tracked_at and observed_at (RFC 3339,
// UTC, milliseconds); polls (GET /job calls made for the job). A field is absent when unknown,
// never null. Read a message body with [Decode].
//
// # Large results: result_ref
//
// When the event would exceed the NATS server's max payload, the result is stored in the
// JetStream object store REDUCTO_RESULTS under the job id, and the event carries result_ref
// ([ResultRef]: bucket, name, size, digest) instead of result. Fetch it with the object store
// API (jetstream.ObjectStore.GetBytes(ctx, ref.Name) on bucket ref.Bucket); see the examples.
// Results are kept one hour longer than events.
//
// # Exactly one
//
// The stream never holds two events for one job, across retries, bridge crashes, restarts,
// replicas and replays: each publish carries the message id and the expectation that
// P.job.*.<job_id> holds no message yet, which the server checks atomically. The first report
// of a job wins; a later kind is never added. A core NATS subscriber (not a stream consumer)
// can, rarely, see a publish twice during a stream leader election: deduplicate on ce-id.
package event
