package command

import (
	"context"
	"sync"
	"testing"

	"github.com/nats-io/nats.go"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/sdk/trace/tracetest"
	"go.opentelemetry.io/otel/trace"

	"github.com/reducto-bridge/reducto-bridge/internal/reductotest"
	"github.com/reducto-bridge/reducto-bridge/reducto"
	"github.com/reducto-bridge/reducto-bridge/tracing"
	"github.com/reducto-bridge/reducto-bridge/track"
)

const (
	inTrace = "0af7651916cd43dd8448eb211c80319c"
	inSpan  = "b7ad6b7169203331"
)

// TestCommandSpans: with spans recorded, each command is a server span, a child of the
// request's traceparent, holding its reply code and job id (a 502 is an error), and the
// command's Reducto calls and track run inside it. Without a tracer the request's own context
// reaches them unchanged.
func TestCommandSpans(t *testing.T) {
	var mu sync.Mutex
	var seen []trace.SpanContext // the span context of each Reducto call and track
	note := func(ctx context.Context) {
		mu.Lock()
		seen = append(seen, trace.SpanContextFromContext(ctx))
		mu.Unlock()
	}
	jobs := &reductotest.Jobs{
		GetJobFunc: func(ctx context.Context, id string) (*reducto.Job, error) {
			note(ctx)
			if id == "broken" {
				return nil, &reducto.APIError{StatusCode: 500, Message: "boom"}
			}
			return &reducto.Job{Status: "Pending"}, nil
		},
	}
	tracker := func(ctx context.Context, id string, _ track.Request) (bool, error) {
		note(ctx)
		return true, nil
	}
	for _, recording := range []bool{true, false} {
		mu.Lock()
		seen = nil
		mu.Unlock()
		rec := tracetest.NewSpanRecorder()
		o := Options{}
		if recording {
			o.Tracer = tracing.New(sdktrace.NewTracerProvider(sdktrace.WithSpanProcessor(rec)))
		}
		e := start(t, jobs, nil, tracker, o)
		for _, id := range []string{jobID, "broken"} {
			req := &nats.Msg{Subject: prefix + ".cancel", Data: []byte(`{"job_id":"` + id + `"}`), Header: nats.Header{}}
			req.Header.Set("traceparent", "00-"+inTrace+"-"+inSpan+"-01")
			msg, err := e.nc.RequestMsg(req, reqWait)
			if err != nil {
				t.Fatal(err)
			}
			replyCode(t, msg)
		}
		mu.Lock()
		calls := append([]trace.SpanContext(nil), seen...)
		mu.Unlock()
		if len(calls) < 3 {
			t.Fatalf("recording %v: %d Reducto calls and tracks seen, want at least 3", recording, len(calls))
		}
		spans := map[trace.SpanID]sdktrace.ReadOnlySpan{}
		for _, s := range rec.Ended() {
			spans[s.SpanContext().SpanID()] = s
		}
		for _, sc := range calls {
			if sc.TraceID().String() != inTrace {
				t.Errorf("recording %v: a call ran in trace %s, want %s", recording, sc.TraceID(), inTrace)
			}
			if recording && spans[sc.SpanID()] == nil {
				t.Errorf("a call ran in span %s, not a command span", sc.SpanID())
			}
			if !recording && sc.SpanID().String() != inSpan {
				t.Errorf("untraced: a call ran in span %s, want the request's %s", sc.SpanID(), inSpan)
			}
		}
		if !recording {
			if len(rec.Ended()) != 0 {
				t.Errorf("%d spans recorded without a tracer", len(rec.Ended()))
			}
			continue
		}
		if len(spans) != 2 {
			t.Fatalf("%d spans, want one per command (2)", len(spans))
		}
		for _, s := range spans {
			attrs := map[string]string{}
			for _, a := range s.Attributes() {
				attrs[string(a.Key)] = a.Value.Emit()
			}
			if s.Name() != "command cancel" || s.SpanKind() != trace.SpanKindServer || s.Parent().SpanID().String() != inSpan || !s.Parent().IsRemote() {
				t.Errorf("span %q kind %v parent %s, want command cancel, server, a child of %s", s.Name(), s.SpanKind(), s.Parent().SpanID(), inSpan)
			}
			switch attrs[attrJobID] {
			case jobID:
				if attrs[attrReplyCode] != "200" || s.Status().Code.String() == "Error" {
					t.Errorf("cancel of %s: attributes %v status %v, want code 200, no error", jobID, attrs, s.Status())
				}
			case "broken":
				if attrs[attrReplyCode] != "502" || s.Status().Code.String() != "Error" {
					t.Errorf("cancel of broken: attributes %v status %v, want code 502, an error", attrs, s.Status())
				}
			default:
				t.Errorf("span attributes %v: no job id", attrs)
			}
		}
	}
}
