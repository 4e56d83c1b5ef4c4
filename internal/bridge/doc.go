// Package bridge is the running service: it follows Reducto jobs tracked on NATS and publishes
// one terminal event per job to JetStream (the interface is in docs/contract.md). cmd/bridge
// only wires it: 'bridge run' is [Run], the demo and the tests call [Start] themselves.
//
// # Start
//
// [Start] acquires everything, then serves, and returns the [Bridge] it built; it brings up,
// in this order:
//
//  1. the HTTP server on BRIDGE_HTTP_ADDR ([Bridge.HTTPAddr]): /healthz answers at once and
//     /readyz says 503 with the reason until the end of start-up; /metrics, the webhook
//     endpoint (503 until step 6) and, with BRIDGE_PPROF, /debug/pprof/;
//  2. with NATS_URL empty, the embedded nats-server (JetStream in BRIDGE_DATA_DIR, listening
//     on BRIDGE_EMBEDDED_NATS_ADDR and requiring BRIDGE_EMBEDDED_NATS_TOKEN when it is set;
//     [Bridge.NATSURL]);
//  3. the NATS connection, with the NATS_* credentials and TLS (or the embedded server's
//     token), retrying forever: every failed attempt is logged (the first at warn, then at
//     debug with a reminder a minute) and shown by /readyz, never with user information;
//  4. the streams: REDUCTO_EVENTS and the REDUCTO_RESULTS object store (publisher), then
//     REDUCTO_TRACK and its durable consumer (poller), created or updated, retried with
//     backoff until ctx ends: NATS may not be reachable yet;
//  5. the rate budget (BRIDGE_RATE_LIMIT, BRIDGE_RATE_LIMIT_ALL), shared with the key's other
//     replicas through the replica announcements; the Reducto client; and the poller, which
//     starts consuming track messages;
//  6. the webhook handler, so /webhooks/reducto reaches the poller;
//  7. the command micro service (P.cancel, P.submit), and the jobs_outstanding gauge.
//
// ctx bounds start-up only. When a step fails, Start stops what it had started and returns
// the error; when ctx ends first it gives up with an error.
//
// # Shutdown
//
// [Bridge.Shutdown] drains in reverse: /readyz turns 503 ("draining"); the poller stops taking
// messages and waits for in-flight polls and publishes; the command service stops; Reducto's
// idle connections close; the replica says goodbye (the others take its share at once); the
// NATS connection drains (its pending publishes and acks are
// flushed) and closes; the embedded server stops; last the HTTP server, so /healthz answers
// until the end. Everything is bounded by Shutdown's context.
//
// # Ready
//
// [Bridge.Ready] is /readyz: nil when the bridge can serve, else why not: draining; NATS not
// connected (which servers, and the last error); still starting (and the last stream set-up
// error); a stream that does not answer; fetching from the shared consumer failing ("polling
// stopped: consumer reducto-bridge: <error>, since <time>", while the poller recreates a
// deleted consumer); Reducto rejecting the API key (401/403).
//
// The process-level pieces are here too, since they belong to start-up: [NewLogger]
// (BRIDGE_LOG_LEVEL, BRIDGE_LOG_FORMAT), the warning about unknown BRIDGE_*/REDUCTO_*
// variables (in [Run]), and the crash failpoint of the e2e tests ([CrashAfterPublishEnv]).
package bridge
