// Package webhook receives Reducto's job webhooks (POST /webhooks/reducto) and turns each
// valid one into a hint: "this job has just finished, look at it now". Webhooks never replace
// polling (a lost webhook is found by the poll schedule); they only make detection immediate
// and save the polls in between.
//
// Two modes, as Reducto offers them:
//   - Svix: signed with the endpoint's whsec_ secret (svix-id, svix-timestamp, svix-signature,
//     or the white-labelled webhook-* names); stale timestamps and bad signatures get 401, and
//     a replay of an accepted delivery (same svix-id) gets 200 without being acted on.
//   - direct: unsigned, so a shared token is required, in the URL query (?token=) or in the
//     job's metadata ("webhook_token"); without a configured token direct webhooks are refused.
package webhook

import (
	"bytes"
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"time"

	"golang.org/x/time/rate"

	"github.com/reducto-bridge/reducto-bridge/metrics"
	"github.com/reducto-bridge/reducto-bridge/subject"
)

// Defaults.
const (
	// DefaultTolerance is how far a Svix timestamp may be from now (svix libraries use 5 min).
	DefaultTolerance = 5 * time.Minute
	// MaxBody bounds a webhook body; Reducto's payload is a few hundred bytes plus metadata.
	MaxBody = 1 << 20
	// MaxMetadataTokenBody bounds the body of a direct webhook with no ?token=, whose token can
	// only be in the metadata: it must declare a Content-Length of at most this, or it is
	// refused before its body is read (so an unauthenticated sender cannot make the bridge
	// buffer MaxBody per connection).
	MaxMetadataTokenBody = 64 << 10
	// DefaultReadTimeout bounds reading a webhook's body, so a sender that trickles it cannot
	// hold a handler (the server's ReadHeaderTimeout covers only the headers).
	DefaultReadTimeout = 10 * time.Second
	// hintTimeout bounds the work done before answering; Svix waits 15 s at most.
	hintTimeout = 10 * time.Second
)

// Hinter acts on a valid webhook. It returns an error only when the job is neither reported
// nor tracked afterwards, so the sender should retry.
type Hinter interface {
	Hint(ctx context.Context, jobID string, metadata json.RawMessage) error
}

// Options configure a [Handler].
type Options struct {
	// Secret is the Svix endpoint signing secret ("whsec_" + base64); empty refuses signed
	// webhooks.
	Secret string
	// Token is the shared token of direct webhooks; empty refuses direct webhooks.
	Token       string
	Tolerance   time.Duration // default DefaultTolerance
	ReadTimeout time.Duration // default DefaultReadTimeout
	Logger      *slog.Logger
	Metrics     *metrics.Metrics
	Now         func() time.Time // default time.Now
}

// Handler is the webhook endpoint. Construct it with [New].
type Handler struct {
	hint      Hinter
	key       []byte // decoded Svix secret
	token     []byte
	tolerance time.Duration
	readTO    time.Duration
	log       *slog.Logger
	logs      rejectLog  // rate limit of the rejection warnings
	seen      deliveries // svix-ids accepted within the tolerance window, to ignore replays
	m         *metrics.Metrics
	now       func() time.Time
}

// New returns the handler; it fails only on a malformed secret.
func New(h Hinter, o Options) (*Handler, error) {
	w := &Handler{hint: h, token: []byte(o.Token), tolerance: o.Tolerance, readTO: o.ReadTimeout, log: o.Logger, m: o.Metrics, now: o.Now}
	if o.Secret != "" {
		key, err := ParseSecret(o.Secret)
		if err != nil {
			return nil, err
		}
		w.key = key
	}
	if w.tolerance <= 0 {
		w.tolerance = DefaultTolerance
	}
	if w.readTO <= 0 {
		w.readTO = DefaultReadTimeout
	}
	if w.log == nil {
		w.log = slog.New(slog.DiscardHandler)
	}
	if w.now == nil {
		w.now = time.Now
	}
	return w, nil
}

// Payload is Reducto's webhook body (identical in both modes).
type Payload struct {
	Status   string          `json:"status"`
	JobID    string          `json:"job_id"`
	Metadata json.RawMessage `json:"metadata,omitempty"`
}

// ServeHTTP authenticates, parses and acts on one webhook: 200 once the job is reported or
// tracked, 401 for a bad signature or token, 400 for a malformed body, 503 when the job could
// not be looked at nor tracked (the sender retries).
//
// A signed webhook whose svix-id was accepted before, within the tolerance window, is a
// replay: it is answered 200 without acting on it, and counted and logged (rate-limited) as
// result "replayed". The ids are remembered per process, at most [MaxRememberedDeliveries].
//
// What can be refused from the request line and headers alone is refused before a byte of
// the body is read, with "Connection: close" so the server does not read it either: another
// method (405), no Svix headers and no token where one is needed, incomplete Svix headers, a
// stale timestamp, a wrong ?token= (401), a declared body over [MaxBody] (413). A direct
// webhook whose token is only in the metadata must declare a Content-Length of at most
// [MaxMetadataTokenBody]; otherwise it is refused (401) unread.
func (w *Handler) ServeHTTP(rw http.ResponseWriter, r *http.Request) {
	if r.Method != http.MethodPost {
		rw.Header().Set("Allow", http.MethodPost)
		rw.Header().Set("Connection", "close")
		http.Error(rw, "method not allowed", http.StatusMethodNotAllowed)
		return
	}
	// Not every ResponseWriter supports deadlines (test recorders do not); a real server does.
	_ = http.NewResponseController(rw).SetReadDeadline(time.Now().Add(w.readTO))
	sh := svixHeaders(r.Header)
	signed := sh.present()
	limit, err := w.precheck(r, sh, signed)
	if err != nil {
		rw.Header().Set("Connection", "close")
		w.reject(rw, r, "", http.StatusUnauthorized, "unauthorized", "unauthorized", err)
		return
	}
	if r.ContentLength > MaxBody {
		rw.Header().Set("Connection", "close")
		w.reject(rw, r, "", http.StatusRequestEntityTooLarge, "malformed", "body too large", nil)
		return
	}
	body, err := io.ReadAll(io.LimitReader(r.Body, limit+1))
	if err != nil {
		w.reject(rw, r, "", http.StatusBadRequest, "malformed", "unreadable body", err)
		return
	}
	if int64(len(body)) > limit {
		w.reject(rw, r, "", http.StatusRequestEntityTooLarge, "malformed", "body too large", nil)
		return
	}
	p, perr := Parse(body)
	// Authenticate before anything else is believed; a direct webhook's token may sit in the
	// metadata, which needs the parsed body.
	if err := w.authenticate(r, body, p, signed); err != nil {
		w.reject(rw, r, p.jobID(), http.StatusUnauthorized, "unauthorized", "unauthorized", err)
		return
	}
	if perr != nil {
		w.reject(rw, r, "", http.StatusBadRequest, "malformed", perr.Error(), nil)
		return
	}
	// Signed or not, the token is never echoed: a caller may set it in the metadata of a job
	// whose webhook goes out signed.
	if signed && !w.seen.claim(sh.id, w.now(), w.expiry(sh)) {
		// Accepted before (or being handled now): acting again would only cost a GET /job.
		// 2xx, so that a sender that lost our first answer stops resending.
		w.reject(rw, r, p.JobID, http.StatusOK, "replayed", "replayed delivery, already accepted", nil)
		return
	}
	metadata := StripToken(p.Metadata)
	ctx, cancel := context.WithTimeout(r.Context(), hintTimeout)
	defer cancel()
	if err := w.hint.Hint(ctx, p.JobID, metadata); err != nil {
		if signed {
			w.seen.forget(sh.id) // the sender's retry, with the same svix-id, must be acted on
		}
		w.m.Webhook("failed")
		w.log.Warn("webhook not acted on; sender should retry", "job_id", p.JobID, "error", err)
		http.Error(rw, "job could not be looked at; retry", http.StatusServiceUnavailable)
		return
	}
	w.m.Webhook("accepted")
	w.log.Debug("webhook accepted", "job_id", p.JobID, "status", p.Status, "signed", signed)
	rw.WriteHeader(http.StatusOK)
}

// precheck refuses, from the headers and the URL only, a request that cannot be authentic, and
// returns how much of the body may then be read.
func (w *Handler) precheck(r *http.Request, h headers, signed bool) (int64, error) {
	if signed {
		if w.key == nil {
			return 0, errors.New("signed webhook but BRIDGE_WEBHOOK_SECRET is not set")
		}
		return MaxBody, w.checkTimestamp(h)
	}
	if len(w.token) == 0 {
		return 0, errors.New("unsigned webhook but BRIDGE_WEBHOOK_TOKEN is not set")
	}
	if t := r.URL.Query().Get(TokenParam); t != "" {
		if subtle.ConstantTimeCompare([]byte(t), w.token) == 1 {
			return MaxBody, nil
		}
		return 0, errors.New("wrong token")
	}
	if r.ContentLength < 0 || r.ContentLength > MaxMetadataTokenBody {
		return 0, fmt.Errorf("no signature headers and no %s parameter (a token in the metadata needs a Content-Length of at most %d)", TokenParam, MaxMetadataTokenBody)
	}
	return MaxMetadataTokenBody, nil
}

// reject answers a refused webhook. Every refusal is counted (webhooks_total{result}), but
// at most one warning a second per result is logged (a burst of 5), naming the peer, the
// svix-id and the job when known, with how many were left out since: a flood of forged
// webhooks must not turn into a flood of log lines.
func (w *Handler) reject(rw http.ResponseWriter, r *http.Request, jobID string, code int, result, msg string, err error) {
	w.m.Webhook(result)
	if suppressed, ok := w.logs.allow(result); ok {
		attrs := []any{"status", code, "reason", msg, "peer", r.RemoteAddr}
		if id := r.Header.Get("svix-id"); id != "" {
			attrs = append(attrs, "svix_id", truncate(id, 64))
		}
		if jobID != "" {
			attrs = append(attrs, "job_id", truncate(jobID, 64))
		}
		if err != nil {
			attrs = append(attrs, "error", err)
		}
		if suppressed > 0 {
			attrs = append(attrs, "suppressed", suppressed)
		}
		w.log.Warn("webhook rejected", attrs...)
	}
	http.Error(rw, msg, code)
}

// rejectLog limits rejection warnings per result.
type rejectLog struct {
	mu         sync.Mutex
	limits     map[string]*rate.Limiter
	suppressed map[string]int
}

// allow reports whether a warning for result may be logged now, and how many were left out
// since the last one.
func (l *rejectLog) allow(result string) (suppressed int, ok bool) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.limits == nil {
		l.limits, l.suppressed = map[string]*rate.Limiter{}, map[string]int{}
	}
	lim := l.limits[result]
	if lim == nil {
		lim = rate.NewLimiter(1, 5)
		l.limits[result] = lim
	}
	if !lim.Allow() {
		l.suppressed[result]++
		return 0, false
	}
	n := l.suppressed[result]
	l.suppressed[result] = 0
	return n, true
}

// jobID is the payload's job id, "" without a payload.
func (p *Payload) jobID() string {
	if p == nil {
		return ""
	}
	return p.JobID
}

func truncate(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return s[:n] + "..."
}

// Parse reads a webhook body: the documented {"status","job_id","metadata"}, also when wrapped
// in an event envelope {"type":..., "data": {...}} (how Svix-mode bodies look is unconfirmed).
func Parse(body []byte) (*Payload, error) {
	var p Payload
	if err := json.Unmarshal(body, &p); err != nil {
		return nil, errors.New("body is not a JSON object")
	}
	if p.JobID == "" {
		var env struct {
			Data *Payload `json:"data"`
		}
		if json.Unmarshal(body, &env) == nil && env.Data != nil {
			p = *env.Data
		}
	}
	if p.JobID == "" {
		return nil, errors.New("no job_id")
	}
	if err := subject.ValidJobID(p.JobID); err != nil {
		return nil, fmt.Errorf("job_id: %w", err)
	}
	if bytes.Equal(p.Metadata, []byte("null")) {
		p.Metadata = nil
	}
	return &p, nil
}

// authenticate checks a Svix signature, or a direct webhook's token.
func (w *Handler) authenticate(r *http.Request, body []byte, p *Payload, signed bool) error {
	if signed {
		if w.key == nil {
			return errors.New("signed webhook but BRIDGE_WEBHOOK_SECRET is not set")
		}
		return w.verify(svixHeaders(r.Header), body)
	}
	if len(w.token) == 0 {
		return errors.New("unsigned webhook but BRIDGE_WEBHOOK_TOKEN is not set")
	}
	if t := r.URL.Query().Get(TokenParam); t != "" {
		if subtle.ConstantTimeCompare([]byte(t), w.token) == 1 {
			return nil
		}
		return errors.New("wrong token")
	}
	if p != nil {
		if t := metadataToken(p.Metadata); t != "" && subtle.ConstantTimeCompare([]byte(t), w.token) == 1 {
			return nil
		}
	}
	return errors.New("missing or wrong token")
}

// headers are the Svix signature headers, under either naming.
type headers struct{ id, timestamp, signature string }

func svixHeaders(h http.Header) headers {
	get := func(name string) string {
		if v := h.Get("svix-" + name); v != "" {
			return v
		}
		return h.Get("webhook-" + name)
	}
	return headers{id: get("id"), timestamp: get("timestamp"), signature: get("signature")}
}

func (h headers) present() bool { return h.id != "" || h.timestamp != "" || h.signature != "" }

// verify checks the Svix scheme: base64(HMAC-SHA256(key, id.timestamp.body)) against each
// "v1,<sig>" of the signature header, in constant time, and the timestamp's freshness.
func (w *Handler) verify(h headers, body []byte) error {
	if err := w.checkTimestamp(h); err != nil {
		return err
	}
	mac := hmac.New(sha256.New, w.key)
	mac.Write([]byte(h.id + "." + h.timestamp + "."))
	mac.Write(body)
	want := mac.Sum(nil)
	for _, sig := range strings.Fields(h.signature) {
		version, b64, ok := strings.Cut(sig, ",")
		if !ok || version != "v1" {
			continue
		}
		got, err := base64.StdEncoding.DecodeString(b64)
		if err == nil && hmac.Equal(got, want) {
			return nil
		}
	}
	return errors.New("no matching signature")
}

// checkTimestamp checks that all three Svix headers are there and the timestamp is fresh.
func (w *Handler) checkTimestamp(h headers) error {
	if h.id == "" || h.timestamp == "" || h.signature == "" {
		return errors.New("incomplete signature headers")
	}
	ts, err := strconv.ParseInt(h.timestamp, 10, 64)
	if err != nil {
		return errors.New("bad timestamp")
	}
	if d := w.now().Sub(time.Unix(ts, 0)); d > w.tolerance || d < -w.tolerance {
		return fmt.Errorf("timestamp %s away from now", d.Round(time.Second))
	}
	return nil
}

// expiry is when a signed request with these (checked) headers stops passing the timestamp
// check (a second after timestamp + tolerance: the check is inclusive and whole seconds), so
// its svix-id need not be remembered longer.
func (w *Handler) expiry(h headers) time.Time {
	ts, _ := strconv.ParseInt(h.timestamp, 10, 64)
	return time.Unix(ts, 0).Add(w.tolerance + time.Second)
}

// metadataToken reads the shared token from a metadata object, if there is one.
func metadataToken(md json.RawMessage) string {
	var m map[string]json.RawMessage
	if json.Unmarshal(md, &m) != nil {
		return ""
	}
	var t string
	if json.Unmarshal(m[TokenMetadataKey], &t) != nil {
		return ""
	}
	return t
}
