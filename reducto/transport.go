package reducto

import (
	"errors"
	"net"
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
