package cli

import (
	"context"
	"errors"
	"fmt"
	"io"
	"slices"
	"strings"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/reducto-bridge/reducto-bridge/command"
	"github.com/reducto-bridge/reducto-bridge/config"
	"github.com/reducto-bridge/reducto-bridge/event"
	"github.com/reducto-bridge/reducto-bridge/reducto"
	"github.com/reducto-bridge/reducto-bridge/subject"
	"github.com/reducto-bridge/reducto-bridge/track"
)

// ErrProblems: 'bridge doctor' found something wrong (it has printed what and how to fix it).
var ErrProblems = errors.New("doctor found problems")

// Expect is what the bridge, configured from the same environment, sets up and relies on.
type Expect struct {
	Prefix          string        // BRIDGE_SUBJECT_PREFIX
	AckWait         time.Duration // BRIDGE_ACK_WAIT: the track consumer's AckWait
	HTTPTimeout     time.Duration // BRIDGE_HTTP_TIMEOUT: AckWait must exceed it
	DuplicateWindow time.Duration // BRIDGE_DUPLICATE_WINDOW: REDUCTO_EVENTS' dedup window
	EventsMaxAge    time.Duration // BRIDGE_EVENTS_MAX_AGE
	Replicas        int           // BRIDGE_STREAM_REPLICAS
}

// ExpectFrom is what a bridge with configuration cfg sets up.
func ExpectFrom(cfg *config.Config) Expect {
	return Expect{
		Prefix:          cfg.SubjectPrefix,
		AckWait:         cfg.AckWait,
		HTTPTimeout:     cfg.HTTPTimeout,
		DuplicateWindow: min(cfg.DuplicateWindow, cfg.EventsMaxAge),
		EventsMaxAge:    cfg.EventsMaxAge,
		Replicas:        cfg.StreamReplicas,
	}
}

// Lister is the cheap Reducto request the doctor makes; *reducto.Client satisfies it.
type Lister interface {
	ListJobs(ctx context.Context, o reducto.ListOptions) (*reducto.JobList, error)
}

// Finding is one check: Problems empty when it passed, otherwise what is wrong and how to fix it.
type Finding struct {
	Check    string
	Problems []string
	Fix      string
}

// OK reports whether the check passed.
func (f Finding) OK() bool { return len(f.Problems) == 0 }

// restartFix is the fix of a setting the bridge writes at every start.
const restartFix = "start (or restart) a bridge with the same environment: it rewrites these settings at start-up; " +
	"or correct them with 'nats stream edit' / 'nats consumer edit'"

// Doctor checks NATS (JetStream, the streams, the consumer, a bridge answering commands) and,
// with keys non-nil, that Reducto accepts the API key (GET /jobs?limit=1). It changes nothing.
func Doctor(ctx context.Context, c *Client, x Expect, keys Lister) []Finding {
	var out []Finding
	out = append(out, c.checkJetStream(ctx))
	out = append(out, c.checkTrack(ctx, x)...)
	out = append(out, c.checkEvents(ctx, x))
	out = append(out, c.checkResults(ctx))
	out = append(out, c.checkService(ctx))
	out = append(out, checkKey(ctx, keys))
	return out
}

// Report prints the findings, one line per check and the problems and fix of each failed one,
// and returns ErrProblems when any failed.
func Report(w io.Writer, fs []Finding) error {
	failed := 0
	for _, f := range fs {
		if f.OK() {
			fmt.Fprintf(w, "ok    %s\n", f.Check)
			continue
		}
		failed++
		fmt.Fprintf(w, "FAIL  %s\n", f.Check)
		for _, p := range f.Problems {
			fmt.Fprintf(w, "      - %s\n", p)
		}
		if f.Fix != "" {
			fmt.Fprintf(w, "      fix: %s\n", f.Fix)
		}
	}
	if failed > 0 {
		fmt.Fprintf(w, "%d of %d checks failed\n", failed, len(fs))
		return fmt.Errorf("%w: %d of %d checks failed", ErrProblems, failed, len(fs))
	}
	fmt.Fprintf(w, "all %d checks passed\n", len(fs))
	return nil
}

func (c *Client) checkJetStream(ctx context.Context) Finding {
	f := Finding{Check: "JetStream available to this user ($JS.API.INFO)"}
	if _, err := c.JS.AccountInfo(ctx); err != nil {
		f.Problems = append(f.Problems, err.Error())
		f.Fix = "enable JetStream on the server and the account, and allow this user to publish $JS.API.INFO (docs/security.md)"
	}
	return f
}

// stream reads a stream's configuration, or records why it cannot.
func (c *Client) stream(ctx context.Context, f *Finding, name string) *jetstream.StreamConfig {
	st, err := c.JS.Stream(ctx, name)
	switch {
	case errors.Is(err, jetstream.ErrStreamNotFound):
		f.Problems = append(f.Problems, "stream "+name+" does not exist")
		f.Fix = "start a bridge: it creates the stream at start-up"
		return nil
	case err != nil:
		f.Problems = append(f.Problems, "cannot read stream "+name+": "+err.Error())
		f.Fix = "allow this user $JS.API.STREAM.INFO." + name + " (docs/security.md), or run doctor as the operator"
		return nil
	}
	cfg := st.CachedInfo().Config
	return &cfg
}

func (c *Client) checkTrack(ctx context.Context, x Expect) []Finding {
	sf := Finding{Check: "track stream " + subject.TrackStream}
	if cfg := c.stream(ctx, &sf, subject.TrackStream); cfg != nil {
		if cfg.Retention != jetstream.WorkQueuePolicy {
			sf.Problems = append(sf.Problems, fmt.Sprintf("retention %s, want work queue", cfg.Retention))
		}
		if cfg.MaxMsgsPerSubject != 1 {
			sf.Problems = append(sf.Problems, fmt.Sprintf("max messages per subject %d, want 1 (one track message per job)", cfg.MaxMsgsPerSubject))
		}
		if cfg.Discard != jetstream.DiscardNew {
			sf.Problems = append(sf.Problems, "discard policy old: a full stream would drop outstanding jobs; want new")
		}
		if !slices.Contains(cfg.Subjects, subject.TrackAll(x.Prefix)) {
			sf.Problems = append(sf.Problems, fmt.Sprintf("subjects %v lack %s (BRIDGE_SUBJECT_PREFIX=%s)", cfg.Subjects, subject.TrackAll(x.Prefix), x.Prefix))
		}
		if x.Replicas > 0 && cfg.Replicas != x.Replicas {
			sf.Problems = append(sf.Problems, fmt.Sprintf("replicas %d, BRIDGE_STREAM_REPLICAS is %d", cfg.Replicas, x.Replicas))
		}
		if !sf.OK() && sf.Fix == "" {
			sf.Fix = restartFix
		}
	}

	cf := Finding{Check: "track consumer " + track.ConsumerName}
	cons, err := c.JS.Consumer(ctx, subject.TrackStream, track.ConsumerName)
	switch {
	case errors.Is(err, jetstream.ErrConsumerNotFound) || errors.Is(err, jetstream.ErrStreamNotFound):
		cf.Problems = append(cf.Problems, "consumer "+track.ConsumerName+" does not exist: no job is polled")
		cf.Fix = "start a bridge: it creates the consumer at start-up (and recreates it when deleted)"
		return []Finding{sf, cf}
	case err != nil:
		cf.Problems = append(cf.Problems, "cannot read the consumer: "+err.Error())
		cf.Fix = "allow this user $JS.API.CONSUMER.INFO." + subject.TrackStream + "." + track.ConsumerName + ", or run doctor as the operator"
		return []Finding{sf, cf}
	}
	cc := cons.CachedInfo().Config
	if len(cc.BackOff) > 0 {
		cf.Problems = append(cf.Problems, fmt.Sprintf("BackOff is set (%v): it distorts the NakWithDelay schedule; want none", cc.BackOff))
	}
	if cc.MaxAckPending != -1 {
		cf.Problems = append(cf.Problems, fmt.Sprintf("MaxAckPending %d: every parked job counts toward it, so polling stalls at that many outstanding jobs; want -1 (unlimited)", cc.MaxAckPending))
	}
	if cc.AckPolicy != jetstream.AckExplicitPolicy {
		cf.Problems = append(cf.Problems, fmt.Sprintf("ack policy %s, want explicit", cc.AckPolicy))
	}
	if cc.MaxDeliver != -1 {
		cf.Problems = append(cf.Problems, fmt.Sprintf("MaxDeliver %d: a job polled that often would stop being polled; want -1", cc.MaxDeliver))
	}
	if f := append([]string{cc.FilterSubject}, cc.FilterSubjects...); cc.FilterSubject != "" || len(cc.FilterSubjects) > 0 {
		cf.Problems = append(cf.Problems, fmt.Sprintf("filter subject %q: nats-server then counts pending jobs subject by subject (slow with many outstanding jobs); want none (older bridges set %q; the bridge removes it at start-up)", strings.Join(slices.DeleteFunc(f, func(s string) bool { return s == "" }), ","), subject.TrackAll(x.Prefix)))
	}
	if x.AckWait > 0 && cc.AckWait != x.AckWait {
		cf.Problems = append(cf.Problems, fmt.Sprintf("AckWait %s, BRIDGE_ACK_WAIT is %s", cc.AckWait, x.AckWait))
	}
	if cc.AckWait <= x.HTTPTimeout {
		cf.Problems = append(cf.Problems, fmt.Sprintf("AckWait %s does not exceed BRIDGE_HTTP_TIMEOUT %s: a slow poll is handed to another replica", cc.AckWait, x.HTTPTimeout))
	}
	if !cf.OK() {
		cf.Fix = restartFix
	}
	return []Finding{sf, cf}
}

func (c *Client) checkEvents(ctx context.Context, x Expect) Finding {
	f := Finding{Check: "events stream " + subject.EventsStream + " and its dedup window"}
	cfg := c.stream(ctx, &f, subject.EventsStream)
	if cfg == nil {
		return f
	}
	want := subject.EventKinds(x.Prefix, string(event.Completed), string(event.Failed), string(event.Cancelled), string(event.Expired))
	got := slices.Clone(cfg.Subjects)
	slices.Sort(got)
	slices.Sort(want)
	if !slices.Equal(got, want) {
		f.Problems = append(f.Problems, fmt.Sprintf("subjects %v, want %v", cfg.Subjects, want))
	}
	if cfg.Retention != jetstream.LimitsPolicy {
		f.Problems = append(f.Problems, fmt.Sprintf("retention %s, want limits", cfg.Retention))
	}
	if cfg.Discard != jetstream.DiscardNew {
		f.Problems = append(f.Problems, "discard policy old: a full stream would drop events, and a re-tracked job could be reported twice; want new")
	}
	if x.DuplicateWindow > 0 && cfg.Duplicates != x.DuplicateWindow {
		f.Problems = append(f.Problems, fmt.Sprintf("dedup window %s, BRIDGE_DUPLICATE_WINDOW is %s", cfg.Duplicates, x.DuplicateWindow))
	}
	if cfg.MaxAge > 0 && cfg.Duplicates > cfg.MaxAge {
		f.Problems = append(f.Problems, fmt.Sprintf("dedup window %s exceeds MaxAge %s", cfg.Duplicates, cfg.MaxAge))
	}
	if x.EventsMaxAge > 0 && cfg.MaxAge != x.EventsMaxAge {
		f.Problems = append(f.Problems, fmt.Sprintf("MaxAge %s, BRIDGE_EVENTS_MAX_AGE is %s", cfg.MaxAge, x.EventsMaxAge))
	}
	if !cfg.AllowDirect {
		f.Problems = append(f.Problems, "direct get is off: event look-ups are served by the leader only")
	}
	if x.Replicas > 0 && cfg.Replicas != x.Replicas {
		f.Problems = append(f.Problems, fmt.Sprintf("replicas %d, BRIDGE_STREAM_REPLICAS is %d", cfg.Replicas, x.Replicas))
	}
	if !f.OK() && f.Fix == "" {
		f.Fix = restartFix
	}
	return f
}

func (c *Client) checkResults(ctx context.Context) Finding {
	f := Finding{Check: "object store " + subject.ResultsBucket}
	if _, err := c.JS.ObjectStore(ctx, subject.ResultsBucket); err != nil {
		f.Problems = append(f.Problems, "cannot open it: "+err.Error())
		f.Fix = "start a bridge: it creates the bucket at start-up; a reader needs the object store's permissions (docs/security.md)"
	}
	return f
}

// checkService asks $SRV.PING for the bridge's micro service, then sends P.status for a job
// nobody tracks: the request/reply path a client uses, under this user's permissions.
func (c *Client) checkService(ctx context.Context) Finding {
	f := Finding{Check: "a bridge answers commands (" + subject.Status(c.Prefix) + ")"}
	ctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	if _, err := c.NC.RequestWithContext(ctx, "$SRV.PING."+command.ServiceName, nil); err != nil {
		f.Problems = append(f.Problems, "no "+command.ServiceName+" service answers $SRV.PING: "+err.Error())
		f.Fix = "start a bridge on this NATS system (and allow this user $SRV.> and _INBOX.>)"
		return f
	}
	_, err := c.request(ctx, "status", subject.Status(c.Prefix), jobBody("doctor-probe"))
	var se *ServiceError
	switch {
	case errors.As(err, &se):
		f.Problems = append(f.Problems, se.Error())
		f.Fix = "see the bridge's log"
	case errors.Is(err, nats.ErrTimeout) || errors.Is(err, context.DeadlineExceeded):
		f.Problems = append(f.Problems, "P.status got no answer: this user may not publish "+subject.Status(c.Prefix)+" (a permissions violation is silent)")
		f.Fix = "allow this user to publish " + subject.Status(c.Prefix) + " (docs/security.md)"
	case err != nil:
		f.Problems = append(f.Problems, err.Error())
		f.Fix = "a bridge of this version answers P.status; check BRIDGE_SUBJECT_PREFIX and the bridge's version"
	}
	return f
}

func checkKey(ctx context.Context, keys Lister) Finding {
	f := Finding{Check: "Reducto accepts REDUCTO_API_KEY (GET /jobs?limit=1)"}
	if keys == nil {
		f.Problems = append(f.Problems, "REDUCTO_API_KEY is not set")
		f.Fix = "set REDUCTO_API_KEY (and REDUCTO_BASE_URL for another region) as the bridge has them"
		return f
	}
	_, err := keys.ListJobs(ctx, reducto.ListOptions{Limit: 1, ExcludeConfigs: true})
	switch {
	case err == nil:
	case errors.Is(err, reducto.ErrUnauthorized):
		f.Problems = append(f.Problems, "Reducto rejected the API key: "+err.Error())
		f.Fix = "set REDUCTO_API_KEY to a valid key of the account (and REDUCTO_BASE_URL to its region)"
	default:
		f.Problems = append(f.Problems, "GET /jobs failed: "+err.Error())
		f.Fix = "check REDUCTO_BASE_URL and the network path to Reducto"
	}
	return f
}
