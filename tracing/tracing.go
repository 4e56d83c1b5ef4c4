// Package tracing carries W3C trace context (traceparent, tracestate, baggage) through the
// bridge and, when the standard OTEL_EXPORTER_OTLP_ENDPOINT or
// OTEL_EXPORTER_OTLP_TRACES_ENDPOINT variable is set, exports OpenTelemetry spans over OTLP.
//
// Carrying the context needs no exporter: [Extract] reads it from a track message or a
// command request into a context.Context, and [Inject] and [InjectHTTP] write it onto an
// event's NATS headers and onto the Reducto requests made with that context. Without an
// exporter, spans are not recorded and the carried context is the incoming one.
package tracing

import (
	"context"
	"net/http"
	"strings"

	"go.opentelemetry.io/otel/propagation"
)

// Header names of the carried context: W3C Trace Context and W3C Baggage. NATS headers are
// written with these (lower-case) names and read whatever their case.
const (
	HeaderTraceparent = "traceparent"
	HeaderTracestate  = "tracestate"
	HeaderBaggage     = "baggage"
)

// propagator reads and writes the three headers. It is the package's own, never the otel
// global, so that carrying does not depend on what another library installed. Its parsers
// bound what is carried: a tracestate of at most 32 members, a baggage of at most 8192 bytes.
var propagator = propagation.NewCompositeTextMapPropagator(propagation.TraceContext{}, propagation.Baggage{})

// Extract returns ctx with the trace context and baggage found in h (NATS or HTTP headers,
// names in any case). A missing or malformed traceparent leaves ctx without a trace context.
func Extract(ctx context.Context, h map[string][]string) context.Context {
	if len(h) == 0 {
		return ctx
	}
	return propagator.Extract(ctx, natsCarrier(h))
}

// Inject writes ctx's trace context and baggage into h, a NATS header map (lower-case names);
// it writes nothing when ctx has none.
func Inject(ctx context.Context, h map[string][]string) {
	propagator.Inject(ctx, natsCarrier(h))
}

// InjectHTTP writes ctx's trace context and baggage into HTTP request headers.
func InjectHTTP(ctx context.Context, h http.Header) {
	propagator.Inject(ctx, propagation.HeaderCarrier(h))
}

// natsCarrier is a NATS header map as a propagation carrier. NATS header names are case
// sensitive; W3C's are not, so Get finds "Traceparent" too.
type natsCarrier map[string][]string

func (c natsCarrier) Get(key string) string {
	if v := c[key]; len(v) > 0 {
		return v[0]
	}
	for k, v := range c {
		if len(v) > 0 && strings.EqualFold(k, key) {
			return v[0]
		}
	}
	return ""
}

func (c natsCarrier) Set(key, value string) {
	for k := range c {
		if k != key && strings.EqualFold(k, key) {
			delete(c, k)
		}
	}
	c[key] = []string{value}
}

func (c natsCarrier) Keys() []string {
	keys := make([]string, 0, len(c))
	for k := range c {
		keys = append(keys, k)
	}
	return keys
}
