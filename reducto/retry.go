package reducto

// The client's one retry layer: CancelJob and Submit repeat a failure that [IsTransient] (or
// notSubmitted) allows, with exponential backoff or Retry-After; GetJob and ListJobs never do.

import (
	"context"
	"errors"
	"log/slog"
	"net"
	"net/http"
	"time"

	"github.com/cenkalti/backoff/v4"
)

// isDialError reports whether err means the TCP connection was never established, so the
// request cannot have reached Reducto.
func isDialError(err error) bool {
	var opErr *net.OpError
	return errors.As(err, &opErr) && opErr.Op == "dial"
}

// newRetryBackOff is the schedule between the few retries of CancelJob and Submit.
func newRetryBackOff() backoff.BackOff {
	return backoff.NewExponentialBackOff(
		backoff.WithInitialInterval(250*time.Millisecond),
		backoff.WithMaxInterval(4*time.Second),
		backoff.WithMultiplier(2),
		backoff.WithRandomizationFactor(0.25),
		backoff.WithMaxElapsedTime(0),
	)
}

// notSubmitted reports whether a failed submission certainly created no job.
func notSubmitted(err error) bool {
	var apiErr *APIError
	if errors.As(err, &apiErr) {
		return apiErr.StatusCode == http.StatusTooManyRequests || apiErr.StatusCode == http.StatusServiceUnavailable
	}
	var dialErr *dialError
	return errors.As(err, &dialErr)
}

// retry runs f until it succeeds, fails with an error retryable rejects, or c.retries repeats
// are spent; it waits between attempts with exponential backoff, or Retry-After when longer.
func (c *Client) retry(ctx context.Context, retryable func(error) bool, f func() error) error {
	b := newRetryBackOff()
	for attempt := 0; ; attempt++ {
		err := f()
		if err == nil || attempt >= c.retries || !retryable(err) || ctx.Err() != nil {
			return err
		}
		wait := b.NextBackOff()
		if ra, ok := RetryAfter(err); ok && ra > wait {
			wait = ra
		}
		c.log.LogAttrs(ctx, slog.LevelDebug, "reducto retry", slog.Int("attempt", attempt+1),
			slog.Duration("wait", wait), slog.String("error", err.Error()))
		t := time.NewTimer(wait)
		select {
		case <-ctx.Done():
			t.Stop()
			return err
		case <-t.C:
		}
	}
}

// dialError marks a request that never left this machine: the TCP connection was not made.
type dialError struct{ err error }

func (e *dialError) Error() string { return e.err.Error() }
func (e *dialError) Unwrap() error { return e.err }
