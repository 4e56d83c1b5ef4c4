package command

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"regexp"
	"sync"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/micro"
	"github.com/nats-io/nuid"
)

// discovery answers the NATS service API ($SRV.PING, $SRV.INFO and $SRV.STATS, at each of
// their three subjects) for the command service and owns its endpoint subscriptions. It takes
// the place of nats.go's micro.Service, whose figures are recorded when an endpoint's handler
// returns: the handlers here return as soon as a command is on its goroutine, so micro's counts
// and times would be the hand-off's. Here [endpoint.record] is called where the reply is sent.
// The replies are micro's own types, so `nats micro ls`, `info` and `stats` read them as they
// read any micro service's.
type discovery struct {
	identity    micro.ServiceIdentity
	description string
	started     time.Time
	log         *slog.Logger

	nc        *nats.Conn
	endpoints []*endpoint // fixed once subscribed
	verbSubs  []*nats.Subscription
}

// endpoint is one command's subject, subscribed in the queue group micro.DefaultQueueGroup, and
// its figures.
type endpoint struct {
	name, subject string
	sub           *nats.Subscription

	mu        sync.Mutex
	requests  int
	errors    int
	lastError string
	total     time.Duration
}

// semVer is semver.org's expression for a version (micro requires one).
var semVer = regexp.MustCompile(`^(0|[1-9]\d*)\.(0|[1-9]\d*)\.(0|[1-9]\d*)(?:-((?:0|[1-9]\d*|\d*[a-zA-Z-][0-9a-zA-Z-]*)(?:\.(?:0|[1-9]\d*|\d*[a-zA-Z-][0-9a-zA-Z-]*))*))?(?:\+([0-9a-zA-Z-]+(?:\.[0-9a-zA-Z-]+)*))?$`)

func newDiscovery(nc *nats.Conn, name, version, description string, metadata map[string]string, log *slog.Logger) (*discovery, error) {
	if !semVer.MatchString(version) {
		return nil, fmt.Errorf("version %q is not a semantic version", version)
	}
	return &discovery{
		nc:          nc,
		identity:    micro.ServiceIdentity{Name: name, ID: nuid.Next(), Version: version, Metadata: metadata},
		description: description,
		started:     time.Now().UTC(),
		log:         log,
	}, nil
}

// addEndpoint subscribes handle to subject in the queue group.
func (d *discovery) addEndpoint(name, subject string, handle nats.MsgHandler) error {
	sub, err := d.nc.QueueSubscribe(subject, micro.DefaultQueueGroup, handle)
	if err != nil {
		return fmt.Errorf("subscribe endpoint %s to %s: %w", name, subject, err)
	}
	d.endpoints = append(d.endpoints, &endpoint{name: name, subject: subject, sub: sub})
	return nil
}

// endpoint returns the named endpoint; nil when there is none.
func (d *discovery) endpoint(name string) *endpoint {
	for _, e := range d.endpoints {
		if e.name == name {
			return e
		}
	}
	return nil
}

// subscribeVerbs answers PING, INFO and STATS on $SRV.<VERB>, $SRV.<VERB>.<name> and
// $SRV.<VERB>.<name>.<id>, as micro does.
func (d *discovery) subscribeVerbs() error {
	for _, verb := range []micro.Verb{micro.PingVerb, micro.InfoVerb, micro.StatsVerb} {
		for _, scope := range [][2]string{{}, {d.identity.Name, ""}, {d.identity.Name, d.identity.ID}} {
			subj, err := micro.ControlSubject(verb, scope[0], scope[1])
			if err != nil {
				return err
			}
			sub, err := d.nc.Subscribe(subj, func(m *nats.Msg) { d.answer(verb, m) })
			if err != nil {
				return fmt.Errorf("subscribe %s: %w", subj, err)
			}
			d.verbSubs = append(d.verbSubs, sub)
		}
	}
	return nil
}

func (d *discovery) answer(verb micro.Verb, m *nats.Msg) {
	var v any
	switch verb {
	case micro.PingVerb:
		v = micro.Ping{ServiceIdentity: d.identity, Type: micro.PingResponseType}
	case micro.InfoVerb:
		v = d.info()
	default:
		v = d.stats()
	}
	data, err := json.Marshal(v)
	if err == nil {
		err = m.Respond(data)
	}
	if err != nil && !errors.Is(err, nats.ErrMsgNoReply) {
		d.log.LogAttrs(context.Background(), slog.LevelDebug, "service API reply failed",
			slog.String("verb", verb.String()), slog.String("error", err.Error()))
	}
}

func (d *discovery) info() micro.Info {
	info := micro.Info{ServiceIdentity: d.identity, Type: micro.InfoResponseType, Description: d.description, Endpoints: []micro.EndpointInfo{}}
	for _, e := range d.endpoints {
		info.Endpoints = append(info.Endpoints, micro.EndpointInfo{
			Name: e.name, Subject: e.subject, QueueGroup: micro.DefaultQueueGroup,
			Metadata: map[string]string{"format": "application/json"},
		})
	}
	return info
}

func (d *discovery) stats() micro.Stats {
	st := micro.Stats{ServiceIdentity: d.identity, Type: micro.StatsResponseType, Started: d.started, Endpoints: []*micro.EndpointStats{}}
	for _, e := range d.endpoints {
		st.Endpoints = append(st.Endpoints, e.snapshot())
	}
	return st
}

// record counts one reply: its processing time (from the hand-off to the reply) and, when it
// is an error, the error as micro writes it ("<code>:<description>").
func (e *endpoint) record(code int, desc string, elapsed time.Duration) {
	e.mu.Lock()
	defer e.mu.Unlock()
	e.requests++
	e.total += elapsed
	if code != 200 {
		e.errors++
		e.lastError = fmt.Sprintf("%d:%s", code, desc)
	}
}

func (e *endpoint) snapshot() *micro.EndpointStats {
	e.mu.Lock()
	defer e.mu.Unlock()
	s := &micro.EndpointStats{
		Name: e.name, Subject: e.subject, QueueGroup: micro.DefaultQueueGroup,
		NumRequests: e.requests, NumErrors: e.errors, LastError: e.lastError, ProcessingTime: e.total,
	}
	if e.requests > 0 {
		s.AverageProcessingTime = e.total / time.Duration(e.requests)
	}
	return s
}

// drainLimit bounds the wait for a drain to end: it takes a round trip to the server, which a
// connection that is down or closed midway may never give.
const drainLimit = 2 * flushTimeout

// stop unsubscribes the service API and drains the endpoints, then waits, at most until ctx
// ends or drainLimit, until every request NATS delivered before the drain has been handed to
// its handler. While the connection is down no drain can end, and nothing more arrives:
// stop does not wait then.
func (d *discovery) stop(ctx context.Context) error {
	var errs []error
	for _, sub := range d.verbSubs {
		if err := sub.Unsubscribe(); err != nil && !errors.Is(err, nats.ErrConnectionClosed) && !errors.Is(err, nats.ErrBadSubscription) {
			errs = append(errs, fmt.Errorf("unsubscribe %s: %w", sub.Subject, err))
		}
	}
	var closed []<-chan nats.SubStatus
	for _, e := range d.endpoints {
		ch := e.sub.StatusChanged(nats.SubscriptionClosed)
		if err := e.sub.Drain(); err != nil {
			if !errors.Is(err, nats.ErrConnectionClosed) && !errors.Is(err, nats.ErrBadSubscription) {
				errs = append(errs, fmt.Errorf("drain endpoint %s: %w", e.name, err))
			}
			continue
		}
		closed = append(closed, ch)
	}
	if len(closed) == 0 {
		return errors.Join(errs...)
	}
	down := d.nc.StatusChanged(nats.RECONNECTING, nats.DISCONNECTED, nats.CLOSED)
	defer d.nc.RemoveStatusListener(down)
	if !d.nc.IsConnected() {
		return errors.Join(errs...)
	}
	limit := time.NewTimer(drainLimit)
	defer limit.Stop()
	for _, ch := range closed {
		select {
		case <-ch:
		case <-down:
			return errors.Join(errs...)
		case <-ctx.Done():
			return errors.Join(append(errs, fmt.Errorf("drain: %w", context.Cause(ctx)))...)
		case <-limit.C:
			return errors.Join(append(errs, fmt.Errorf("drain: not over after %s", drainLimit))...)
		}
	}
	return errors.Join(errs...)
}
