package bridge

import (
	"context"
	"errors"

	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/codes"
	"go.opentelemetry.io/otel/trace"

	"github.com/reducto-bridge/reducto-bridge/event"
	"github.com/reducto-bridge/reducto-bridge/internal/redact"
	"github.com/reducto-bridge/reducto-bridge/poller"
	"github.com/reducto-bridge/reducto-bridge/publisher"
	"github.com/reducto-bridge/reducto-bridge/reducto"
	"github.com/reducto-bridge/reducto-bridge/tracing"
)

// Span names and attributes of the poller's spans (README "Tracing"). Attributes hold job
// ids, statuses, kinds and HTTP codes only: never a secret, a metadata value or a result.
const (
	spanGetJob  = "GET /job"
	spanPublish = "publish event"

	attrJobID      = "reducto.job_id"
	attrJobStatus  = "reducto.job.status"
	attrHTTPStatus = "http.response.status_code"
	attrKind       = "reducto.event.kind"
	attrDuplicate  = "reducto.event.duplicate"
)

// tracedJobs makes one client span per poll (GET /job), a child of the track message's trace
// context; the Reducto request carries the span's context in its traceparent.
type tracedJobs struct {
	jobs   poller.JobGetter
	tr     *tracing.Tracer
	redact *redact.Redactor
}

func (j tracedJobs) GetJob(ctx context.Context, id string) (*reducto.Job, error) {
	ctx, span := j.tr.Start(ctx, spanGetJob, trace.SpanKindClient, attribute.String(attrJobID, id))
	defer span.End()
	job, err := j.jobs.GetJob(ctx, id)
	var apiErr *reducto.APIError
	if errors.As(err, &apiErr) && apiErr.StatusCode > 0 {
		span.SetAttributes(attribute.Int(attrHTTPStatus, apiErr.StatusCode))
	}
	if err != nil {
		span.SetStatus(codes.Error, j.redact.String(err.Error()))
		return job, err
	}
	span.SetAttributes(attribute.String(attrJobStatus, string(job.Status)))
	return job, nil
}

// tracedEvents makes one producer span per event publish, a child of the track message's
// trace context; the event's traceparent header names it.
type tracedEvents struct {
	events poller.EventPublisher
	tr     *tracing.Tracer
	redact *redact.Redactor
}

func (e tracedEvents) Publish(ctx context.Context, ev *event.Event) (publisher.Result, error) {
	var attrs []attribute.KeyValue
	if ev != nil {
		attrs = []attribute.KeyValue{attribute.String(attrJobID, ev.JobID), attribute.String(attrKind, string(ev.Kind)), attribute.String("messaging.system", "nats")}
	}
	ctx, span := e.tr.Start(ctx, spanPublish, trace.SpanKindProducer, attrs...)
	defer span.End()
	out, err := e.events.Publish(ctx, ev)
	if err != nil {
		span.SetStatus(codes.Error, e.redact.String(err.Error()))
		return out, err
	}
	span.SetAttributes(attribute.Bool(attrDuplicate, out.Duplicate))
	return out, nil
}

func (e tracedEvents) Lookup(ctx context.Context, jobID string) (*event.Event, error) {
	return e.events.Lookup(ctx, jobID)
}
