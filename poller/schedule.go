package poller

import (
	"time"

	"github.com/cenkalti/backoff/v4"
)

// schedule turns a job's poll count into the delay before its next poll: exponential backoff
// from Initial by Multiplier up to Max, each interval randomized by ±Jitter.
type schedule struct {
	initial, max time.Duration
	multiplier   float64
	jitter       float64
}

// interval returns the n-th interval (n >= 1) of the schedule: the first is the delay between
// tracking and the first poll, the n-th the delay after poll n-1. It is computed from scratch
// with cenkalti/backoff, so nothing per job needs to be remembered between deliveries: the
// delivery count of the track message is the state.
func (s schedule) interval(n uint64) time.Duration {
	b := backoff.NewExponentialBackOff(
		backoff.WithInitialInterval(s.initial),
		backoff.WithMultiplier(s.multiplier),
		backoff.WithMaxInterval(s.max),
		backoff.WithRandomizationFactor(s.jitter),
		backoff.WithMaxElapsedTime(0),
	)
	// The interval stops growing once it reaches max, so only the first few steps matter;
	// bounding the loop keeps a job polled for hours cheap.
	steps := min(max(n, 1), 64)
	var d time.Duration
	for range steps {
		d = b.NextBackOff()
	}
	return d
}
