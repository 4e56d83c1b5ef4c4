// Package reducto is the bridge's client for Reducto's REST API: job status, cancel, list and
// async submission. It is the only code that talks to Reducto. Every failure is classified
// here, once ([IsTransient], [RetryAfter], the sentinel errors and [*APIError]), so the layers
// above decide what to do without looking at HTTP. It knows nothing of NATS.
//
// The classification: network errors, timeouts, malformed answers, 408, 429 and every 5xx
// (500 included: a 500 on a status read says nothing about the job) are transient; 401 and
// 403 are [ErrUnauthorized] and not transient, whatever their body; other 4xx are permanent.
// A 3xx is [ErrRedirect], not transient: the client never follows a redirect, so the API key
// is only ever sent to the base URL.
// A GET /job body is malformed only when it is not a JSON object with a string status: an
// optional field of an unexpected type is converted when it can be and dropped when not.
package reducto

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"

	"github.com/reducto-bridge/reducto-bridge/tracing"
)

// DefaultBaseURL is Reducto's production API (EU: https://eu.platform.reducto.ai, AU:
// https://au.platform.reducto.ai).
const DefaultBaseURL = "https://platform.reducto.ai"

// Defaults of the client options.
const (
	DefaultTimeout       = 30 * time.Second
	DefaultRetryAfterMax = 60 * time.Second
	DefaultRetries       = 3
	// DefaultMaxBody bounds what the client reads from one response (256 MiB). Reducto
	// switches a result to a URL near 6 MB, so anything far beyond that is not a job.
	DefaultMaxBody int64 = 256 << 20
)

// Operations, the op of [Limiter.Wait], [Observer] and [APIError.Op]; a submission's op is
// "submit " followed by its [Endpoint].
const (
	OpGetJob    = "get job"    // GET /job/{id}: under the GET /job limit and the all-endpoints one
	OpCancelJob = "cancel job" // POST /cancel/{id}
	OpListJobs  = "list jobs"  // GET /jobs
)

// Limiter is a request budget: every request waits on it before it is sent, naming its
// operation (op, e.g. [OpGetJob]), so that a budget can keep Reducto's GET /job limit apart
// from its all-endpoints limit. Share one per process so that all callers spend one budget.
type Limiter interface {
	Wait(ctx context.Context, op string) error
}

// Throttler is implemented by a [Limiter] that adapts to Reducto's rate limiting: the client
// calls Throttled after every 429 with its error, which names the operation, the limit that
// was hit ([APIError.RateLimitCode]) and the Retry-After (0 if none).
type Throttler interface {
	Throttled(e *APIError)
}

// Observer is told the outcome of every HTTP exchange: op, the status code (0 when no response
// arrived) and how long it took. Used for metrics.
type Observer func(op string, statusCode int, elapsed time.Duration)

// Client calls Reducto's REST API. It is safe for concurrent use. Construct it with [New].
type Client struct {
	base          *url.URL
	cred          *credential // behind a pointer, so no %v of a Client value can print the key
	hc            *http.Client
	timeout       time.Duration
	retryAfterMax time.Duration
	retries       int
	maxBody       int64
	limiter       Limiter
	observe       Observer
	log           *slog.Logger
	now           func() time.Time
}

// Option configures a [Client].
type Option func(*Client)

// WithHTTPClient sets the HTTP client (transport, proxies, TLS). Its Timeout should be zero:
// the per-request timeout is [WithTimeout].
func WithHTTPClient(hc *http.Client) Option { return func(c *Client) { c.hc = hc } }

// WithTimeout bounds each HTTP request (default 30s), within the caller's context.
func WithTimeout(d time.Duration) Option { return func(c *Client) { c.timeout = d } }

// WithRetryAfterMax caps the Retry-After the client reports (default 60s).
func WithRetryAfterMax(d time.Duration) Option { return func(c *Client) { c.retryAfterMax = d } }

// WithRetries sets how many times CancelJob and Submit repeat a retryable failure (default 3;
// 0 disables). GetJob and ListJobs never retry: their callers reschedule.
func WithRetries(n int) Option { return func(c *Client) { c.retries = n } }

// WithMaxBody bounds the size of one response body (default [DefaultMaxBody]; n <= 0 keeps
// the default). A larger answer is refused without being read: at once when its
// Content-Length says so, after n+1 bytes otherwise. Refused, a 2xx is [ErrMalformedResponse]
// (transient: a GET /job that always answers too much is polled until the job expires); an
// error status keeps its status, without its body.
func WithMaxBody(n int64) Option {
	return func(c *Client) {
		if n > 0 {
			c.maxBody = n
		}
	}
}

// WithLimiter makes every request wait on l first.
func WithLimiter(l Limiter) Option { return func(c *Client) { c.limiter = l } }

// WithObserver registers a callback for every HTTP exchange.
func WithObserver(o Observer) Option { return func(c *Client) { c.observe = o } }

// WithLogger sets the logger (default: discard). Requests are logged at debug level, without
// headers or bodies.
func WithLogger(l *slog.Logger) Option { return func(c *Client) { c.log = l } }

// New returns a client for the API at baseURL (e.g. [DefaultBaseURL], or a simulator),
// authenticating with apiKey. User information in baseURL (user:password@) is ignored.
func New(baseURL, apiKey string, opts ...Option) (*Client, error) {
	u, err := url.Parse(baseURL)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return nil, fmt.Errorf("%w: base URL must be an absolute http(s) URL", errInvalidArgument)
	}
	u.Path = strings.TrimSuffix(u.Path, "/")
	// User information in the base URL is never sent (the Authorization header takes its
	// place), so it is dropped: it would otherwise show in every transport error, which
	// carries the request URL, and from there in logs and events.
	u.User = nil
	if apiKey == "" {
		return nil, fmt.Errorf("%w: empty API key", errInvalidArgument)
	}
	c := &Client{
		base:          u,
		cred:          &credential{auth: "Bearer " + apiKey, key: apiKey},
		hc:            &http.Client{},
		timeout:       DefaultTimeout,
		retryAfterMax: DefaultRetryAfterMax,
		retries:       DefaultRetries,
		maxBody:       DefaultMaxBody,
		log:           slog.New(slog.DiscardHandler),
		now:           time.Now,
	}
	for _, o := range opts {
		o(c)
	}
	// Never follow a redirect, whoever built the http.Client: following one would send the
	// API key to another address (net/http keeps Authorization on a redirect to the same host
	// on another port, or to a subdomain), possibly downgraded to plain http. A copy, so that
	// the caller's client is left as it was.
	hc := *c.hc
	hc.CheckRedirect = func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }
	c.hc = &hc
	return c, nil
}

// String describes the client without its key.
func (c *Client) String() string { return "reducto.Client(" + c.base.String() + ")" }

// GoString describes the client without its key, also for %#v.
func (c *Client) GoString() string { return c.String() }

// LogValue keeps the key out of structured logs.
func (c *Client) LogValue() slog.Value { return slog.StringValue(c.String()) }

// GetJob fetches a job's status and, when finished, its result (GET /job/{id}). It makes one
// request and never retries: the poller reschedules a job whose poll failed transiently.
func (c *Client) GetJob(ctx context.Context, id string) (*Job, error) {
	if id == "" {
		return nil, fmt.Errorf("get job: %w: empty job id", errInvalidArgument)
	}
	body, err := c.do(ctx, OpGetJob, http.MethodGet, "/job/"+url.PathEscape(id), nil, nil)
	if err != nil {
		return nil, err
	}
	j, dropped, err := decodeJob(id, body)
	if err != nil {
		return nil, fmt.Errorf("get job: %w", err)
	}
	if len(dropped) > 0 {
		// Field names only: the values are Reducto's and could carry anything.
		c.log.LogAttrs(ctx, slog.LevelDebug, "reducto job fields of unexpected type dropped",
			slog.String("job_id", id), slog.Any("fields", dropped))
	}
	return j, nil
}

// CancelJob asks Reducto to cancel a job (POST /cancel/{id}). The job reaches a terminal
// status later; poll it to see which. Cancelling is idempotent, so transient failures are
// retried (see [WithRetries]), honouring Retry-After.
func (c *Client) CancelJob(ctx context.Context, id string) error {
	if id == "" {
		return fmt.Errorf("cancel job: %w: empty job id", errInvalidArgument)
	}
	return c.retry(ctx, IsTransient, func() error {
		_, err := c.do(ctx, OpCancelJob, http.MethodPost, "/cancel/"+url.PathEscape(id), nil, nil)
		return err
	})
}

// ListOptions selects a page of GET /jobs.
type ListOptions struct {
	Cursor         string // NextCursor of the previous page; empty for the first
	Limit          int    // 1..500; 0 means Reducto's default (100)
	ExcludeConfigs bool   // leave raw_config out, to make the page smaller
}

// ListJobs fetches one page of the account's jobs, newest first (GET /jobs). One request, no
// retry.
func (c *Client) ListJobs(ctx context.Context, o ListOptions) (*JobList, error) {
	if o.Limit < 0 || o.Limit > 500 {
		return nil, fmt.Errorf("list jobs: %w: limit %d not in 1..500", errInvalidArgument, o.Limit)
	}
	q := url.Values{}
	if o.Cursor != "" {
		q.Set("cursor", o.Cursor)
	}
	if o.Limit > 0 {
		q.Set("limit", strconv.Itoa(o.Limit))
	}
	if o.ExcludeConfigs {
		q.Set("exclude_configs", "true")
	}
	body, err := c.do(ctx, OpListJobs, http.MethodGet, "/jobs", q, nil)
	if err != nil {
		return nil, err
	}
	l, err := decodeJobList(body)
	if err != nil {
		return nil, fmt.Errorf("list jobs: %w", err)
	}
	return l, nil
}

// Endpoint names an async submission endpoint.
type Endpoint string

// Async endpoints: POST /<endpoint>_async.
const (
	EndpointParse    Endpoint = "parse"
	EndpointExtract  Endpoint = "extract"
	EndpointSplit    Endpoint = "split"
	EndpointEdit     Endpoint = "edit"
	EndpointPipeline Endpoint = "pipeline"
)

// Valid reports whether e is one of the async endpoints.
func (e Endpoint) Valid() bool {
	switch e {
	case EndpointParse, EndpointExtract, EndpointSplit, EndpointEdit, EndpointPipeline:
		return true
	}
	return false
}

// Submit sends an async request the caller built (the v3 body {input, async: {metadata,
// priority, webhook}, ...}; edit uses the legacy {document_url, edit_instructions, webhook})
// to POST /<endpoint>_async and returns the new job id.
//
// Reducto has no idempotency key, so a request that may have reached it is never repeated: a
// retry after a timeout or a 500/502/504 could create a second job. Submit therefore does not
// follow [IsTransient]: it retries only failures where the request provably created nothing:
// the connection was refused, or Reducto answered 429 (rejected at its edge) or 503 (service
// unavailable, nothing accepted).
func (c *Client) Submit(ctx context.Context, e Endpoint, body json.RawMessage) (string, error) {
	if !e.Valid() {
		return "", fmt.Errorf("submit: %w: unknown endpoint %q", errInvalidArgument, e)
	}
	if !json.Valid(body) {
		return "", fmt.Errorf("submit: %w: body is not valid JSON", errInvalidArgument)
	}
	op := "submit " + string(e)
	var id string
	err := c.retry(ctx, notSubmitted, func() error {
		resp, err := c.do(ctx, op, http.MethodPost, "/"+string(e)+"_async", nil, body)
		if err != nil {
			return err
		}
		var w struct {
			JobID string `json:"job_id"`
		}
		if err := json.Unmarshal(resp, &w); err != nil || w.JobID == "" {
			return fmt.Errorf("%s: %w: no job_id in response", op, ErrMalformedResponse)
		}
		id = w.JobID
		return nil
	})
	return id, err
}

// do sends one request and returns the body of a 2xx answer, or the classified error.
func (c *Client) do(ctx context.Context, op, method, path string, q url.Values, body []byte) ([]byte, error) {
	if c.limiter != nil {
		if err := c.limiter.Wait(ctx, op); err != nil {
			return nil, fmt.Errorf("%s: wait for rate budget: %w", op, err)
		}
	}
	ctx, cancel := context.WithTimeout(ctx, c.timeout)
	defer cancel()

	u := *c.base
	u.Path += path
	u.RawQuery = q.Encode()
	var rd io.Reader
	if body != nil {
		rd = bytes.NewReader(body)
	}
	req, err := http.NewRequestWithContext(ctx, method, u.String(), rd)
	if err != nil {
		return nil, fmt.Errorf("%s: build request: %w", op, err)
	}
	req.Header.Set("Authorization", c.cred.auth)
	req.Header.Set("Accept", "application/json")
	req.Header.Set("User-Agent", "reducto-bridge")
	tracing.InjectHTTP(ctx, req.Header)
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}

	start := c.now()
	resp, err := c.hc.Do(req)
	if err != nil {
		c.observed(op, 0, start)
		c.log.LogAttrs(ctx, slog.LevelDebug, "reducto request failed", slog.String("op", op), slog.String("error", c.scrub(err.Error())))
		if isDialError(err) {
			err = &dialError{err}
		}
		return nil, fmt.Errorf("%s: %w", op, err)
	}
	defer resp.Body.Close()
	if resp.StatusCode >= 300 && resp.StatusCode <= 399 {
		c.observed(op, resp.StatusCode, start)
		err := c.redirectError(op, resp)
		c.log.LogAttrs(ctx, slog.LevelDebug, "reducto request redirected", slog.String("op", op), slog.String("path", path),
			slog.Int("status", resp.StatusCode), slog.String("error", err.Error()))
		return nil, err
	}
	data, err := c.readBody(resp)
	c.observed(op, resp.StatusCode, start)
	c.log.LogAttrs(ctx, slog.LevelDebug, "reducto request", slog.String("op", op), slog.String("path", path),
		slog.Int("status", resp.StatusCode), slog.Duration("elapsed", c.now().Sub(start)))
	if resp.StatusCode < 200 || resp.StatusCode > 299 {
		apiErr := c.apiError(op, resp.StatusCode, resp.Header, data)
		if resp.StatusCode == http.StatusTooManyRequests {
			if t, ok := c.limiter.(Throttler); ok {
				t.Throttled(apiErr)
			}
		}
		return nil, apiErr
	}
	if err != nil {
		return nil, fmt.Errorf("%s: read response: %w", op, err)
	}
	return data, nil
}

// apiError builds the error of a non-2xx answer, without the API key.
func (c *Client) apiError(op string, status int, h http.Header, body []byte) *APIError {
	return newAPIError(op, status, h, c.scrubBytes(body), c.now(), c.retryAfterMax, c.scrub)
}

// redirectError is the error of a 3xx answer: an [*APIError] that matches [ErrRedirect] and
// names where the redirect pointed by scheme and host only (a path or query could carry a
// token). The body is not read.
func (c *Client) redirectError(op string, resp *http.Response) *APIError {
	msg := "redirect without a Location not followed"
	if loc, err := resp.Location(); err == nil && loc.Host != "" {
		host := loc.Host
		if len(host) > maxHost {
			host = host[:maxHost] + "..."
		}
		msg = fmt.Sprintf("redirect to %s://%s not followed", loc.Scheme, host)
	}
	msg += " (the API key is never sent elsewhere; check the base URL)"
	return &APIError{Op: op, StatusCode: resp.StatusCode, Message: c.scrub(msg), Name: redirectName}
}

// maxHost bounds the Location host an error shows (DNS names are at most 253 bytes).
const maxHost = 255

func (c *Client) observed(op string, code int, start time.Time) {
	if c.observe != nil {
		c.observe(op, code, c.now().Sub(start))
	}
}

// readBody reads at most c.maxBody bytes, sizing the buffer from Content-Length when known (up
// to preallocMax: a declared length is a claim, and a server that trickles a few bytes must
// not make the client hold the limit in memory per request). A Content-Length above the limit
// is refused before anything is read.
func (c *Client) readBody(resp *http.Response) ([]byte, error) {
	if resp.ContentLength > c.maxBody {
		return nil, fmt.Errorf("%w: body of %d bytes (Content-Length) larger than %d bytes", ErrMalformedResponse, resp.ContentLength, c.maxBody)
	}
	var buf bytes.Buffer
	if n := resp.ContentLength; n > 0 {
		buf.Grow(int(min(n, preallocMax)) + bytes.MinRead)
	}
	n, err := buf.ReadFrom(io.LimitReader(resp.Body, c.maxBody+1))
	if n > c.maxBody {
		return nil, fmt.Errorf("%w: body larger than %d bytes", ErrMalformedResponse, c.maxBody)
	}
	if err != nil {
		return buf.Bytes(), err
	}
	return buf.Bytes(), nil
}

// preallocMax caps the buffer readBody allocates from a Content-Length before reading.
const preallocMax = 8 << 20

// scrub removes the API key from text that came from elsewhere (an error from a proxy, an
// echoed header): it must never reach an error or a log.
func (c *Client) scrub(s string) string {
	if !strings.Contains(s, c.cred.key) {
		return s
	}
	return strings.ReplaceAll(s, c.cred.key, redacted)
}

func (c *Client) scrubBytes(b []byte) []byte {
	if !bytes.Contains(b, []byte(c.cred.key)) {
		return b
	}
	return bytes.ReplaceAll(b, []byte(c.cred.key), []byte(redacted))
}

const redacted = "[redacted]"

// credential is the API key and its Authorization header value.
type credential struct {
	auth string // "Bearer <key>"
	key  string // to scrub the key from anything a server might echo back
}

func (*credential) String() string   { return redacted }
func (*credential) GoString() string { return redacted }
