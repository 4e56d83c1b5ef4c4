// Package capture downloads Reducto's URL results ({"type":"url","url":...}, a presigned link
// that expires) into the bridge's object store before the job's event is published, so that a
// consumer replaying REDUCTO_EVENTS after the link has expired still finds the result
// (BRIDGE_CAPTURE_URL_RESULTS). The download never carries the Reducto API key, is bounded in
// size (BRIDGE_CAPTURE_MAX_BYTES) and streamed, not buffered. It knows HTTP and the store
// interface, not NATS or the poller's policy: what a failed capture means is the poller's
// decision.
package capture

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"strings"
	"time"

	"github.com/reducto-bridge/reducto-bridge/event"
)

// Defaults applied by [New] to zero [Options] fields; config.Defaults() agrees with them
// (BRIDGE_CAPTURE_URL_RESULTS, BRIDGE_CAPTURE_MAX_BYTES).
const (
	// DefaultEnabled is BRIDGE_CAPTURE_URL_RESULTS's default: capture, as an event-sourced
	// consumer replaying the stream needs.
	DefaultEnabled = true
	// DefaultMaxBytes bounds one captured result: 256 MiB.
	DefaultMaxBytes = 256 << 20
	// DefaultTimeout bounds one download, headers to last byte.
	DefaultTimeout = 5 * time.Minute
	// maxRedirects is how many redirects a download follows (each one checked).
	maxRedirects = 5
)

// Errors of [Capturer.Capture], matched with errors.Is. Use [Permanent] to tell the failures
// a retry with a fresh URL cannot overcome.
var (
	// ErrTooLarge: the result exceeds the size bound; nothing was stored.
	ErrTooLarge = errors.New("url result exceeds BRIDGE_CAPTURE_MAX_BYTES")
	// ErrInsecure: the URL, or a redirect, is not https:// (and not loopback, and insecure
	// http is not allowed); nothing was requested from it.
	ErrInsecure = errors.New("url result is not https")
	// ErrRejected: the URL's host answered 403, 404 or 410: the presigned link has expired or
	// its object is gone. A fresh GET /job hands out a new link.
	ErrRejected = errors.New("url result link rejected (expired?)")
	// ErrDownload: the download failed (network, timeout, another status); worth retrying.
	ErrDownload = errors.New("url result download failed")
)

// Permanent reports whether a capture error is one that no retry, with this URL or a fresh
// one, can overcome: the result is too large, or its URL is not allowed.
func Permanent(err error) bool {
	return errors.Is(err, ErrTooLarge) || errors.Is(err, ErrInsecure)
}

// Store stores a result under a name and says where; *publisher.Publisher satisfies it. A
// failed put leaves no partial object and keeps what the name held before.
type Store interface {
	PutResult(ctx context.Context, name string, r io.Reader) (*event.ResultRef, error)
}

// Options configures a [Capturer]. Zero fields take the defaults above.
type Options struct {
	// MaxBytes bounds one result (BRIDGE_CAPTURE_MAX_BYTES); default DefaultMaxBytes.
	MaxBytes int64
	// Timeout bounds one download; default DefaultTimeout.
	Timeout time.Duration
	// AllowInsecure allows http:// URLs and redirects to any host
	// (BRIDGE_ALLOW_INSECURE_REDUCTO).
	AllowInsecure bool
	// AllowLoopback allows http:// URLs on loopback hosts (127.0.0.0/8, ::1, localhost): for
	// a Reducto, or a simulator, on this machine. Off, a link Reducto hands out cannot make
	// the bridge read a plain-http service on its own host into the results bucket.
	AllowLoopback bool
	// Transport sends the requests; nil means a clone of http.DefaultTransport without
	// keep-alives.
	Transport http.RoundTripper
}

// Capturer downloads URL results into a [Store]. It is safe for concurrent use.
type Capturer struct {
	store Store
	hc    *http.Client
	max   int64
	o     Options
}

// New returns a Capturer storing into store, or an error for unusable options.
func New(store Store, o Options) (*Capturer, error) {
	if store == nil {
		return nil, errors.New("capture: nil store")
	}
	if o.MaxBytes == 0 {
		o.MaxBytes = DefaultMaxBytes
	}
	if o.Timeout == 0 {
		o.Timeout = DefaultTimeout
	}
	if o.MaxBytes < 0 || o.Timeout < 0 {
		return nil, fmt.Errorf("capture: max bytes %d and timeout %s must not be negative", o.MaxBytes, o.Timeout)
	}
	rt := o.Transport
	if rt == nil {
		t := http.DefaultTransport.(*http.Transport).Clone()
		// Downloads are rare and long: no idle connection is kept, so none outlives the
		// bridge.
		t.DisableKeepAlives = true
		rt = t
	}
	c := &Capturer{store: store, max: o.MaxBytes, o: o}
	// A client of its own: no Authorization is ever set on it, so neither the Reducto API key
	// nor anything else of the bridge's reaches the URL's host, even across redirects.
	c.hc = &http.Client{Transport: rt, CheckRedirect: func(req *http.Request, via []*http.Request) error {
		if len(via) >= maxRedirects {
			return fmt.Errorf("%w: more than %d redirects", ErrDownload, maxRedirects)
		}
		return c.allowed(req.URL)
	}}
	return c, nil
}

// MaxBytes is the size bound of one result.
func (c *Capturer) MaxBytes() int64 { return c.max }

// Capture downloads the result at rawURL and stores it under name (the job id). The error
// never contains the URL: a presigned URL's query is a credential for the object.
func (c *Capturer) Capture(ctx context.Context, name, rawURL string) (*event.ResultRef, error) {
	u, err := url.Parse(rawURL)
	if err != nil || u.Host == "" {
		return nil, fmt.Errorf("%w: unusable url", ErrInsecure)
	}
	if err := c.allowed(u); err != nil {
		return nil, err
	}
	ctx, cancel := context.WithTimeout(ctx, c.o.Timeout)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, u.String(), nil)
	if err != nil {
		return nil, fmt.Errorf("%w: %s", ErrDownload, err.Error())
	}
	resp, err := c.hc.Do(req)
	if err != nil {
		return nil, scrub(err)
	}
	defer func() {
		_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, 64<<10))
		_ = resp.Body.Close()
	}()
	switch {
	case resp.StatusCode == http.StatusForbidden, resp.StatusCode == http.StatusNotFound, resp.StatusCode == http.StatusGone:
		return nil, fmt.Errorf("%w: HTTP %d from %s", ErrRejected, resp.StatusCode, u.Host)
	case resp.StatusCode != http.StatusOK:
		return nil, fmt.Errorf("%w: HTTP %d from %s", ErrDownload, resp.StatusCode, u.Host)
	case resp.ContentLength > c.max:
		return nil, fmt.Errorf("%w: %d bytes, limit %d", ErrTooLarge, resp.ContentLength, c.max)
	}
	body := &bounded{r: resp.Body, left: c.max}
	ref, err := c.store.PutResult(ctx, name, body)
	switch {
	case errors.Is(err, ErrTooLarge):
		return nil, fmt.Errorf("%w: more than %d bytes", ErrTooLarge, c.max)
	case body.err != nil:
		return nil, scrub(body.err)
	case err != nil:
		return nil, fmt.Errorf("%w: store: %w", ErrDownload, err)
	}
	return ref, nil
}

// allowed refuses a URL that is not https, unless insecure http is allowed, or the host is
// loopback and loopback http is (the rule REDUCTO_BASE_URL follows).
func (c *Capturer) allowed(u *url.URL) error {
	switch {
	case u.Scheme == "https":
		return nil
	case u.Scheme == "http" && (c.o.AllowInsecure || c.o.AllowLoopback && loopback(u.Hostname())):
		return nil
	}
	return fmt.Errorf("%w: %s://%s (set BRIDGE_ALLOW_INSECURE_REDUCTO=true to allow http)", ErrInsecure, u.Scheme, u.Host)
}

// Loopback reports whether host is 127.0.0.0/8, ::1 or localhost.
func Loopback(host string) bool { return loopback(host) }

func loopback(host string) bool {
	if strings.EqualFold(strings.TrimSuffix(host, "."), "localhost") {
		return true
	}
	ip := net.ParseIP(host)
	return ip != nil && ip.IsLoopback()
}

// scrub turns a transport error into ErrDownload (or the ErrInsecure/ErrDownload a redirect
// check returned) without the URL that *url.Error quotes.
func scrub(err error) error {
	var ue *url.Error
	if errors.As(err, &ue) {
		err = ue.Err
	}
	if errors.Is(err, ErrInsecure) || errors.Is(err, ErrDownload) {
		return err
	}
	return fmt.Errorf("%w: %s", ErrDownload, err.Error())
}

// bounded reads at most left bytes and fails with ErrTooLarge past them; it records the
// body's own read error, which the store may wrap or not.
type bounded struct {
	r    io.Reader
	left int64
	err  error
}

func (b *bounded) Read(p []byte) (int, error) {
	if b.left < 0 {
		return 0, ErrTooLarge
	}
	if int64(len(p)) > b.left+1 {
		p = p[:b.left+1]
	}
	n, err := b.r.Read(p)
	b.left -= int64(n)
	if b.left < 0 {
		return 0, ErrTooLarge
	}
	if err != nil && err != io.EOF {
		b.err = err
	}
	return n, err
}
