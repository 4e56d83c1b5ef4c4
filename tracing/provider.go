package tracing

import (
	"context"
	"errors"
	"fmt"

	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/exporters/otlp/otlptrace/otlptracehttp"
	"go.opentelemetry.io/otel/sdk/resource"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/trace"
	"go.opentelemetry.io/otel/trace/noop"
)

// Variables read by [Setup]: the OpenTelemetry SDK's standard ones. The exporter reads the
// other OTEL_EXPORTER_OTLP_* variables (headers, timeout, protocol options) itself.
const (
	EnvEndpoint       = "OTEL_EXPORTER_OTLP_ENDPOINT"
	EnvTracesEndpoint = "OTEL_EXPORTER_OTLP_TRACES_ENDPOINT"
	EnvServiceName    = "OTEL_SERVICE_NAME"
)

// DefaultServiceName is the service.name of the spans without OTEL_SERVICE_NAME.
const DefaultServiceName = "reducto-bridge"

// ScopeName is the instrumentation scope of the bridge's spans.
const ScopeName = "github.com/reducto-bridge/reducto-bridge"

// Tracer makes the bridge's spans. A Tracer without an exporter (see [Setup]) records
// nothing; its spans only carry the incoming trace context on. Safe for concurrent use.
type Tracer struct {
	tp       trace.TracerProvider
	tr       trace.Tracer
	shutdown func(context.Context) error
}

// Setup returns the Tracer the environment asks for: with an OTLP/HTTP exporter when
// OTEL_EXPORTER_OTLP_ENDPOINT or OTEL_EXPORTER_OTLP_TRACES_ENDPOINT is set (getenv is
// os.Getenv in production), or one that starts nothing (no provider, no exporter, no
// goroutine) when neither is. It never installs a global provider.
func Setup(ctx context.Context, getenv func(string) string) (*Tracer, error) {
	if getenv(EnvEndpoint) == "" && getenv(EnvTracesEndpoint) == "" {
		return New(nil), nil
	}
	exp, err := otlptracehttp.New(ctx)
	if err != nil {
		// The SDK's errors name the variable; they quote no header values.
		return nil, fmt.Errorf("tracing: OTLP exporter: %w", err)
	}
	tp := sdktrace.NewTracerProvider(sdktrace.WithBatcher(exp), sdktrace.WithResource(serviceResource(getenv)))
	t := New(tp)
	t.shutdown = tp.Shutdown
	return t, nil
}

// serviceResource names the service: OTEL_SERVICE_NAME, or [DefaultServiceName].
func serviceResource(getenv func(string) string) *resource.Resource {
	name := getenv(EnvServiceName)
	if name == "" {
		name = DefaultServiceName
	}
	return resource.NewSchemaless(attribute.String("service.name", name))
}

// New returns a Tracer making spans with tp; a nil tp records none. Tests pass an SDK
// provider with an in-memory exporter.
func New(tp trace.TracerProvider) *Tracer {
	t := &Tracer{tp: tp}
	if tp == nil {
		t.tp = noop.NewTracerProvider()
	}
	t.tr = t.tp.Tracer(ScopeName)
	return t
}

// Enabled reports whether spans are recorded and exported.
func (t *Tracer) Enabled() bool {
	_, isNoop := t.tp.(noop.TracerProvider)
	return !isNoop
}

// Provider is the tracer provider; a no-op one when tracing is off.
func (t *Tracer) Provider() trace.TracerProvider { return t.tp }

// Start starts a span of the given kind, a child of ctx's span or remote trace context. When
// tracing is off the span records nothing, and the returned context carries ctx's trace
// context unchanged. Attributes must never hold a secret.
func (t *Tracer) Start(ctx context.Context, name string, kind trace.SpanKind, attrs ...attribute.KeyValue) (context.Context, trace.Span) {
	if !t.Enabled() {
		// A no-op span with ctx's span context, so that injection writes the incoming one.
		return ctx, trace.SpanFromContext(ctx)
	}
	return t.tr.Start(ctx, name, trace.WithSpanKind(kind), trace.WithAttributes(attrs...))
}

// Shutdown flushes and stops the exporter, if any.
func (t *Tracer) Shutdown(ctx context.Context) error {
	if t.shutdown == nil {
		return nil
	}
	if err := t.shutdown(ctx); err != nil && !errors.Is(err, context.Canceled) {
		return fmt.Errorf("tracing: shutdown: %w", err)
	}
	return nil
}
