package tracing_test

import (
	"context"
	"net/http"
	"testing"

	"go.opentelemetry.io/otel"
	"go.opentelemetry.io/otel/trace"

	"github.com/reducto-bridge/reducto-bridge/event"
	"github.com/reducto-bridge/reducto-bridge/tracing"
)

const (
	traceID     = "4bf92f3577b34da6a3ce929d0e0e4736"
	spanID      = "00f067aa0ba902b7"
	traceparent = "00-" + traceID + "-" + spanID + "-01"
)

func TestCarriedFromNATSHeadersToNATSAndHTTP(t *testing.T) {
	in := map[string][]string{
		"Traceparent": {traceparent}, // any case: W3C names are case-insensitive
		"tracestate":  {"vendor=opaque"},
		"baggage":     {"tenant=acme"},
	}
	ctx := tracing.Extract(context.Background(), in)
	sc := trace.SpanContextFromContext(ctx)
	if !sc.IsRemote() || sc.TraceID().String() != traceID || sc.SpanID().String() != spanID {
		t.Fatalf("extracted span context %v, want remote %s/%s", sc, traceID, spanID)
	}
	out := map[string][]string{"ce-id": {"x"}}
	tracing.Inject(ctx, out)
	want := map[string]string{"traceparent": traceparent, "tracestate": "vendor=opaque", "baggage": "tenant=acme", "ce-id": "x"}
	if len(out) != len(want) {
		t.Errorf("injected headers %v, want %v", out, want)
	}
	for _, h := range event.TraceHeaders { // the names the contract documents
		if _, ok := out[h]; !ok {
			t.Errorf("event.TraceHeaders names %s, not injected", h)
		}
	}
	for k, v := range want {
		if got := out[k]; len(got) != 1 || got[0] != v {
			t.Errorf("NATS header %s = %q, want %q", k, got, v)
		}
	}
	h := http.Header{}
	tracing.InjectHTTP(ctx, h)
	if h.Get("traceparent") != traceparent || h.Get("tracestate") != "vendor=opaque" || h.Get("baggage") != "tenant=acme" {
		t.Errorf("HTTP headers %v", h)
	}
}

func TestNothingCarriedWithoutValidContext(t *testing.T) {
	for name, in := range map[string]map[string][]string{
		"none":      nil,
		"malformed": {"traceparent": {"00-not-a-trace-01"}},
		"zero id":   {"traceparent": {"00-00000000000000000000000000000000-" + spanID + "-01"}},
	} {
		ctx := tracing.Extract(context.Background(), in)
		out := map[string][]string{}
		tracing.Inject(ctx, out)
		if _, ok := out["traceparent"]; ok {
			t.Errorf("%s: injected %v", name, out)
		}
	}
}

func TestSetupStartsNothingWithoutEndpoint(t *testing.T) {
	global := otel.GetTracerProvider()
	env := map[string]string{"OTEL_SERVICE_NAME": "x"} // a name alone starts nothing
	tr, err := tracing.Setup(context.Background(), func(k string) string { return env[k] })
	if err != nil {
		t.Fatal(err)
	}
	if tr.Enabled() {
		t.Error("tracing enabled without an OTLP endpoint")
	}
	if _, ok := tr.Provider().(interface{ ForceFlush(context.Context) error }); ok {
		t.Errorf("an SDK provider (%T) was made without an OTLP endpoint", tr.Provider())
	}
	if otel.GetTracerProvider() != global {
		t.Error("Setup installed a global tracer provider")
	}
	// The incoming context still passes through Start untouched.
	ctx := tracing.Extract(context.Background(), map[string][]string{"traceparent": {traceparent}})
	sctx, span := tr.Start(ctx, "x", trace.SpanKindClient)
	defer span.End()
	if span.IsRecording() || !trace.SpanContextFromContext(sctx).Equal(trace.SpanContextFromContext(ctx)) {
		t.Error("a span without tracing changed or recorded the trace context")
	}
	if err := tr.Shutdown(context.Background()); err != nil {
		t.Error(err)
	}
}

func TestSetupExportsWithEitherEndpoint(t *testing.T) {
	for _, v := range []string{"OTEL_EXPORTER_OTLP_ENDPOINT", "OTEL_EXPORTER_OTLP_TRACES_ENDPOINT"} {
		t.Setenv(v, "http://127.0.0.1:1") // the exporter reads it too; nothing is sent here
		env := map[string]string{v: "http://127.0.0.1:1"}
		global := otel.GetTracerProvider()
		tr, err := tracing.Setup(context.Background(), func(k string) string { return env[k] })
		if err != nil {
			t.Fatalf("%s: %v", v, err)
		}
		if !tr.Enabled() {
			t.Errorf("%s set: tracing not enabled", v)
		}
		if otel.GetTracerProvider() != global {
			t.Error("Setup installed a global tracer provider")
		}
		if err := tr.Shutdown(context.Background()); err != nil {
			t.Errorf("%s: %v", v, err)
		}
	}
}

func TestServiceName(t *testing.T) {
	for in, want := range map[string]string{"": tracing.DefaultServiceName, "ocr-bridge": "ocr-bridge"} {
		r := tracing.ServiceResource(func(k string) string {
			if k == tracing.EnvServiceName {
				return in
			}
			return ""
		})
		if got, _ := r.Set().Value("service.name"); got.AsString() != want {
			t.Errorf("OTEL_SERVICE_NAME=%q: service.name %q, want %q", in, got.AsString(), want)
		}
	}
}
