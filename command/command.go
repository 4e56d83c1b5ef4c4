// Package command serves the bridge's request/reply commands (docs/contract.md section 3) as the
// NATS micro service "reducto-bridge": P.cancel cancels a Reducto job and makes sure its
// terminal event will be published, P.submit submits an async job and tracks it, P.status tells
// what the streams know of a job (when [Options.Status] is set). Every request
// gets a JSON reply or a micro error (Nats-Service-Error and Nats-Service-Error-Code headers);
// none is dropped silently.
//
// A command waits for Reducto (the shared rate budget, then HTTP) for up to seconds, so each
// endpoint's handler only hands the request to a goroutine, bounded by [Options.Concurrency],
// which replies when done. The service answers the NATS service API ($SRV.PING, $SRV.INFO,
// $SRV.STATS) itself, with micro's types, so that its statistics count the replies, not the
// hand-offs (discovery.go).
package command

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"strconv"
	"strings"
	"sync"
	"time"
	"unicode/utf8"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/micro"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/codes"
	"go.opentelemetry.io/otel/trace"

	"github.com/reducto-bridge/reducto-bridge/event"
	"github.com/reducto-bridge/reducto-bridge/internal/redact"
	"github.com/reducto-bridge/reducto-bridge/internal/version"
	"github.com/reducto-bridge/reducto-bridge/metrics"
	"github.com/reducto-bridge/reducto-bridge/reducto"
	"github.com/reducto-bridge/reducto-bridge/subject"
	"github.com/reducto-bridge/reducto-bridge/tracing"
	"github.com/reducto-bridge/reducto-bridge/track"
	"github.com/reducto-bridge/reducto-bridge/webhook"
)

// ServiceName is the micro service's name, as `nats micro ls` and $SRV.PING.<name> show it.
const ServiceName = "reducto-bridge"

// Endpoint names of the micro service; they are also the values of the "command" metric label.
const (
	EndpointCancel = "cancel"
	EndpointSubmit = "submit"
	EndpointStatus = "status"
)

// Defaults of [Options].
const (
	DefaultTimeout     = 30 * time.Second
	DefaultConcurrency = 64
)

// flushTimeout bounds the round trips that confirm subscribing and unsubscribing; while NATS
// is unreachable they would otherwise wait the whole time.
const flushTimeout = 5 * time.Second

// Jobs is the part of Reducto's API the commands use; *reducto.Client satisfies it.
type Jobs interface {
	GetJob(ctx context.Context, id string) (*reducto.Job, error)
	CancelJob(ctx context.Context, id string) error
	Submit(ctx context.Context, e reducto.Endpoint, body json.RawMessage) (string, error)
}

// Events finds a job's already-published terminal event (nil when there is none);
// *publisher.Publisher satisfies it.
type Events interface {
	Lookup(ctx context.Context, jobID string) (*event.Event, error)
}

// Tracker makes sure a job is tracked, so that its terminal event will be published. It
// reports whether it created the track; a job already tracked keeps its track message and
// metadata. (*track.Queue).Ensure is the usual implementation. req.Webhook says that Reducto
// will announce the job's end to this bridge by webhook.
type Tracker func(ctx context.Context, id string, req track.Request) (bool, error)

// Options configures the service. The zero value of every field but Prefix has a default.
type Options struct {
	// Prefix is the subject prefix P (BRIDGE_SUBJECT_PREFIX); empty means "reducto".
	Prefix string
	// Version is the service's semantic version shown by $SRV.INFO; default the bridge's
	// ([version.Version]).
	Version string
	// PublicURL is BRIDGE_PUBLIC_URL, an absolute http(s) URL. When set, submit asks Reducto
	// for webhooks to <PublicURL>/webhooks/reducto, unless the caller chose a webhook itself.
	PublicURL string
	// WebhookToken is BRIDGE_WEBHOOK_TOKEN: direct-mode webhook URLs carry ?token=<token>.
	WebhookToken string
	// Secrets are values that never appear in a reply's error description, a log line or
	// $SRV.STATS (the Reducto key, NATS credentials, the Svix secret): a Reducto error message
	// that quotes one has it replaced by "[redacted]". WebhookToken is always one of them.
	Secrets []string
	// WebhookSvix asks for Svix webhooks ({"mode":"svix"}) instead of direct ones; set it when
	// BRIDGE_WEBHOOK_SECRET is set (the Svix endpoint is configured in Reducto's dashboard).
	WebhookSvix bool
	// Timeout bounds the Reducto calls of one command; default 30s. Tracking afterwards gets
	// its own budget of the same length, so a slow Reducto cannot leave a job untracked.
	Timeout time.Duration
	// Concurrency is how many commands are handled at once (both endpoints together); default
	// 64. When all are busy, the endpoints stop taking requests (they queue in NATS).
	Concurrency int
	// Logger receives the service's logs; nil discards them.
	Logger *slog.Logger
	// Metrics counts replies by command and code; nil records nothing.
	Metrics *metrics.Metrics
	// CancelTrackedOnly is BRIDGE_CANCEL_TRACKED_ONLY: P.cancel refuses (403) a job that has
	// neither a track message (see Tracked) nor an event, and sends nothing to Reducto.
	CancelTrackedOnly bool
	// Tracked reports whether the job has a track message; required with CancelTrackedOnly.
	// (*track.Queue).Last, nil meaning none, is the usual implementation.
	Tracked func(ctx context.Context, id string) (bool, error)
	// RefuseWebhooks is BRIDGE_SUBMIT_WEBHOOKS=false: P.submit refuses (403) a body that sets
	// its own webhook (body.async.webhook or body.webhook), and sends nothing to Reducto. The
	// bridge's own webhook (PublicURL) is still added.
	RefuseWebhooks bool
	// Status, when set, serves P.status from these look-ups; nil serves no P.status.
	Status *StatusSources
	// Tracer makes one server span per command, a child of the request's trace context
	// (spanCommand); nil records none. The context is carried either way.
	Tracer *tracing.Tracer
}

// Span of a command and its attributes (README "Tracing"): job ids and codes only.
const (
	spanCommand   = "command " // + the endpoint's name
	attrJobID     = "reducto.job_id"
	attrReplyCode = "reducto.command.code"
)

// Service is the running micro service. Construct it with [Start]; end it with [Service.Stop].
type Service struct {
	nc      *nats.Conn
	svc     *discovery
	jobs    Jobs
	events  Events // may be nil: no lookup
	track   Tracker
	timeout time.Duration
	log     *slog.Logger
	metrics *metrics.Metrics
	tracer  *tracing.Tracer
	webhook *webhookConfig // nil: submit adds no webhook
	redact  *redact.Redactor

	cancelTrackedOnly bool
	tracked           func(ctx context.Context, id string) (bool, error)
	refuseWebhooks    bool
	prefix            string
	statusSrc         *StatusSources // nil: no P.status

	sem chan struct{} // one slot per command being handled
	// base is every command's parent context; Shutdown cancels it when its own context ends,
	// so that commands in flight end at once and queued ones are answered 503 unrun.
	base      context.Context
	abortBase context.CancelFunc

	mu     sync.Mutex
	idle   *sync.Cond // signalled when active drops to zero
	active int        // handler calls and command goroutines not yet finished
	closed bool       // Stop has finished waiting: late requests get 503
}

// Start registers the service on nc and starts serving P.cancel, P.submit and (with
// [Options.Status]) P.status, in micro's default queue group so that replicas share the load.
// jobs and tracker are required; events may be nil (no check for an already-published event).
func Start(nc *nats.Conn, jobs Jobs, events Events, tracker Tracker, o Options) (*Service, error) {
	if nc == nil || jobs == nil || tracker == nil {
		return nil, errors.New("start command service: nil connection, jobs or tracker")
	}
	if o.Prefix == "" {
		o.Prefix = subject.DefaultPrefix
	}
	if err := subject.ValidPrefix(o.Prefix); err != nil {
		return nil, fmt.Errorf("start command service: %w", err)
	}
	if o.Version == "" {
		o.Version = version.Version
	}
	if o.Timeout <= 0 {
		o.Timeout = DefaultTimeout
	}
	if o.Concurrency <= 0 {
		o.Concurrency = DefaultConcurrency
	}
	if o.Logger == nil {
		o.Logger = slog.New(slog.DiscardHandler)
	}
	if o.Tracer == nil {
		o.Tracer = tracing.New(nil)
	}
	if o.Status != nil && (o.Status.Track == nil || o.Status.Event == nil) {
		return nil, errors.New("start command service: Status needs Track and Event")
	}
	if o.CancelTrackedOnly && o.Tracked == nil {
		return nil, errors.New("start command service: CancelTrackedOnly needs Tracked")
	}
	wh, err := newWebhookConfig(o.PublicURL, o.WebhookToken, o.WebhookSvix)
	if err != nil {
		return nil, fmt.Errorf("start command service: %w", err)
	}
	s := &Service{
		nc:      nc,
		jobs:    jobs,
		events:  events,
		track:   tracker,
		timeout: o.Timeout,
		log:     o.Logger,
		metrics: o.Metrics,
		tracer:  o.Tracer,
		webhook: wh,
		redact:  redact.New(append([]string{o.WebhookToken}, o.Secrets...)...),
		sem:     make(chan struct{}, o.Concurrency),

		cancelTrackedOnly: o.CancelTrackedOnly,
		tracked:           o.Tracked,
		refuseWebhooks:    o.RefuseWebhooks,
		prefix:            o.Prefix,
		statusSrc:         o.Status,
	}
	s.idle = sync.NewCond(&s.mu)
	s.base, s.abortBase = context.WithCancel(context.Background())

	s.svc, err = newDiscovery(nc, ServiceName, o.Version, "Reducto async jobs as NATS events: cancel, submit and status commands",
		map[string]string{"prefix": o.Prefix}, o.Logger)
	if err != nil {
		return nil, fmt.Errorf("start command service: %w", err)
	}
	endpoints := []struct {
		name, subject string
		run           func(context.Context, []byte) result
	}{
		{EndpointCancel, subject.Cancel(o.Prefix), s.cancel},
		{EndpointSubmit, subject.Submit(o.Prefix), s.submit},
	}
	if o.Status != nil {
		endpoints = append(endpoints, struct {
			name, subject string
			run           func(context.Context, []byte) result
		}{EndpointStatus, subject.Status(o.Prefix), s.status})
	}
	for _, e := range endpoints {
		if err := s.svc.addEndpoint(e.name, e.subject, s.handler(e.name, e.run)); err != nil {
			_ = s.svc.stop(context.Background())
			return nil, fmt.Errorf("start command service: %w", err)
		}
	}
	if err := s.svc.subscribeVerbs(); err != nil {
		_ = s.svc.stop(context.Background())
		return nil, fmt.Errorf("start command service: %w", err)
	}
	// Subscribing only queues the SUBs; after the round trip the server has them, so a
	// request sent once Start has returned finds a responder. While disconnected the SUBs go
	// out on reconnect, which is no reason to fail.
	if err := nc.FlushTimeout(flushTimeout); err != nil {
		s.log.LogAttrs(context.Background(), slog.LevelWarn, "command service subscriptions not confirmed",
			slog.String("error", err.Error()))
	}
	return s, nil
}

// Stop is Shutdown without a bound: it waits for every command, however long.
func (s *Service) Stop() error { return s.Shutdown(context.Background()) }

// Shutdown stops the service: the service API is unsubscribed and the endpoints drained, so
// requests NATS has already delivered are still handled, and it waits until every command has
// replied. A request arriving after that (a drain that did not end in time) is answered 503
// "bridge is stopping, retry".
//
// When ctx ends first, the commands in flight are cancelled (their callers get the error of a
// cancelled Reducto call) and those still queued are answered 503 without being run, so that
// Shutdown returns promptly however many requests are queued (BRIDGE_DRAIN_TIMEOUT bounds it
// in the bridge). Shutdown is idempotent.
func (s *Service) Shutdown(ctx context.Context) error {
	stopWake := context.AfterFunc(ctx, func() {
		s.abortBase()
		s.mu.Lock()
		s.idle.Broadcast()
		s.mu.Unlock()
	})
	defer stopWake()
	// Once the drains are over, every request NATS delivered has been handed to its handler
	// and is counted in active.
	err := s.svc.stop(ctx)
	s.mu.Lock()
	for s.active > 0 {
		s.idle.Wait()
	}
	s.closed = true
	s.mu.Unlock()
	if ctx.Err() != nil {
		return fmt.Errorf("stop command service: commands cut short: %w", context.Cause(ctx))
	}
	if err != nil {
		return fmt.Errorf("stop command service: %w", err)
	}
	return nil
}

// result is the outcome of one command: a JSON body on success (code 200), otherwise a micro
// error code and description.
type result struct {
	code  int
	desc  string // error description sent to the caller; empty on success
	body  []byte // success reply
	jobID string // for the log
	err   error  // cause, logged and never sent
}

func success(jobID string, v any) result {
	body, err := json.Marshal(v)
	if err != nil {
		return result{code: 500, desc: "internal error", jobID: jobID, err: err}
	}
	return result{code: 200, body: body, jobID: jobID}
}

func fail(code int, desc string) result { return result{code: code, desc: desc} }

// handler adapts a command to its endpoint's subscription: it reserves a slot (blocking the endpoint's subscription
// while all are busy) and runs the command on its own goroutine.
func (s *Service) handler(name string, run func(context.Context, []byte) result) nats.MsgHandler {
	return func(req *nats.Msg) {
		// A reply's processing time runs from here: a wait for a free slot counts.
		start := time.Now()
		s.mu.Lock()
		if s.closed {
			s.mu.Unlock()
			s.finish(name, req, fail(503, "bridge is stopping, retry"), time.Since(start))
			return
		}
		s.active++
		s.mu.Unlock()

		acquired := false
		select {
		case s.sem <- struct{}{}:
			acquired = true
		case <-s.base.Done():
		}
		if s.base.Err() != nil {
			// Shutdown ran out of time: answer without running the command.
			if acquired {
				<-s.sem
			}
			s.finish(name, req, fail(503, "bridge is stopping, retry"), time.Since(start))
			s.done()
			return
		}
		go func() {
			defer s.release()
			// The request's trace context goes to Reducto and to the job's track message,
			// through the command's span when spans are recorded.
			ctx, span := s.tracer.Start(tracing.Extract(s.base, req.Header), spanCommand+name, trace.SpanKindServer,
				attribute.String("messaging.system", "nats"), attribute.String("messaging.destination.name", req.Subject))
			var res result
			func() {
				defer func() {
					if p := recover(); p != nil {
						res = result{code: 500, desc: "internal error", err: fmt.Errorf("panic: %v", p)}
					}
				}()
				ctx, cancel := context.WithTimeout(ctx, s.timeout)
				defer cancel()
				res = run(ctx, req.Data)
			}()
			s.finish(name, req, res, time.Since(start))
			span.SetAttributes(attribute.Int(attrReplyCode, res.code))
			if res.jobID != "" {
				span.SetAttributes(attribute.String(attrJobID, res.jobID))
			}
			if res.code >= 500 {
				span.SetStatus(codes.Error, s.redact.String(res.desc))
			}
			span.End()
		}()
	}
}

func (s *Service) release() {
	<-s.sem
	s.done()
}

// done counts one handler call or command as finished.
func (s *Service) done() {
	s.mu.Lock()
	s.active--
	if s.active == 0 {
		s.idle.Broadcast()
	}
	s.mu.Unlock()
}

// finish sends the reply, counts it and logs it. The secrets are redacted from the
// description and the cause first, so none reaches the caller, the log or $SRV.STATS. The
// reply is the body, or micro's two error headers and no body.
func (s *Service) finish(name string, req *nats.Msg, res result, elapsed time.Duration) {
	res.desc = s.redact.String(res.desc)
	var cause string
	if res.err != nil {
		cause = s.redact.String(res.err.Error())
	}
	s.metrics.Command(name, res.code)
	if e := s.svc.endpoint(name); e != nil {
		e.record(res.code, headerValue(res.desc), elapsed)
	}

	attrs := []slog.Attr{slog.String("command", name), slog.Int("code", res.code), slog.Duration("elapsed", elapsed)}
	if res.jobID != "" {
		attrs = append(attrs, slog.String("job_id", res.jobID))
	}
	if res.desc != "" {
		attrs = append(attrs, slog.String("description", res.desc))
	}
	if res.err != nil {
		attrs = append(attrs, slog.String("error", cause))
	}
	level := slog.LevelInfo
	if res.code == 429 || res.code >= 500 {
		level = slog.LevelWarn
	}
	s.log.LogAttrs(context.Background(), level, "command", attrs...)

	if req.Reply == "" {
		s.log.LogAttrs(context.Background(), slog.LevelDebug, "command reply not sent: no reply subject",
			slog.String("command", name), slog.Int("code", res.code))
		return
	}
	msg := &nats.Msg{Subject: req.Reply}
	if res.code == 200 {
		msg.Data = res.body
	} else {
		msg.Header = nats.Header{
			micro.ErrorHeader:     []string{headerValue(res.desc)},
			micro.ErrorCodeHeader: []string{strconv.Itoa(res.code)},
		}
	}
	if err := s.nc.PublishMsg(msg); err != nil {
		s.log.LogAttrs(context.Background(), slog.LevelWarn, "command reply failed",
			slog.String("command", name), slog.Int("code", res.code), slog.String("error", err.Error()))
	}
}

// maxDescription bounds an error description (it travels in a header).
const maxDescription = 300

// headerValue makes a description safe as a header value: one line, bounded, never empty.
func headerValue(s string) string {
	s = strings.Map(func(r rune) rune {
		if r < 0x20 || r == 0x7f {
			return ' '
		}
		return r
	}, s)
	s = strings.TrimSpace(s)
	if len(s) > maxDescription {
		cut := maxDescription
		for cut > 0 && !utf8.RuneStart(s[cut]) {
			cut--
		}
		s = s[:cut] + "..."
	}
	if s == "" {
		s = "error"
	}
	return s
}

// webhookConfig is the webhook the bridge asks Reducto for on submissions.
type webhookConfig struct {
	svix bool
	url  string // direct mode: <PublicURL>/webhooks/reducto[?token=...]
}

func newWebhookConfig(publicURL, token string, svix bool) (*webhookConfig, error) {
	if publicURL == "" {
		return nil, nil
	}
	u, err := webhook.URL(publicURL, token)
	if err != nil {
		return nil, err
	}
	if svix {
		return &webhookConfig{svix: true}, nil
	}
	return &webhookConfig{url: u}, nil
}

// fields returns the webhook object's keys: {"mode":"svix"} or {"mode":"direct","url":...}.
func (w *webhookConfig) fields() map[string]json.RawMessage {
	if w.svix {
		return map[string]json.RawMessage{"mode": json.RawMessage(`"svix"`)}
	}
	u, _ := encode(w.url) // a string always encodes
	return map[string]json.RawMessage{"mode": json.RawMessage(`"direct"`), "url": u}
}
