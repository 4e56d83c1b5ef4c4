// Package e2e is the bridge's fault-injection suite. Its tests build the real bridge binary,
// run it as subprocesses against the Reducto simulator (served over HTTP by the test) and
// NATS servers the tests start in process, break things (kill -9, NATS restarts, a stream
// leader's node lost, replicas killed, Reducto answering badly) and audit that every tracked
// job got exactly one terminal event of the expected kind. See README.md for the scenarios and
// the long form.
package e2e
