package poller

import (
	"math"
	"time"
)

// schedule turns a job's poll count into the delay before its next poll: exponential backoff
// from initial by multiplier up to max, each interval randomized by ±jitter. It is the same
// policy as cenkalti/backoff's ExponentialBackOff (randomization around the current interval,
// the current interval capped at max), in closed form: nothing per job needs to be remembered
// between deliveries, since the delivery count of the track message is the state, and the
// random draw is an argument, so that the decision using it stays a pure function.
type schedule struct {
	initial, max time.Duration
	multiplier   float64
	jitter       float64
}

// interval returns the n-th interval (n >= 1; 0 counts as 1) of the schedule: the first is the
// delay between tracking and the first poll, the n-th the delay after poll n-1. draw is a
// uniform random number in [0, 1) that places the interval within ±jitter of its base.
func (s schedule) interval(n uint64, draw float64) time.Duration {
	base := float64(s.max)
	// initial*multiplier^(n-1), computed only while it can still be below max (n is bounded
	// by the exponent at which it passes max, so a job polled for hours costs the same).
	if steps := float64(max(n, 1) - 1); s.multiplier <= 1 {
		base = min(float64(s.initial), base)
	} else if steps < math.Log(float64(s.max)/float64(s.initial))/math.Log(s.multiplier)+1 {
		base = min(float64(s.initial)*math.Pow(s.multiplier, steps), base)
	}
	if s.jitter > 0 {
		draw = min(max(draw, 0), 1)
		base *= 1 - s.jitter + 2*s.jitter*draw
	}
	return time.Duration(math.Round(base))
}

// elapsed is when, after tracking, the schedule's n-th poll falls without jitter: the sum of
// its first n intervals (0 for n = 0).
func (s schedule) elapsed(n uint64) time.Duration {
	var sum time.Duration
	for i := uint64(1); i <= n; i++ {
		iv := s.interval(i, 0.5)
		if iv >= s.max || s.multiplier <= 1 {
			// Every further interval is this one: the rest in closed form.
			return sum + time.Duration(n-i+1)*iv
		}
		sum += iv
	}
	return sum
}

// steps is how many of the schedule's polls fall within age of tracking, without jitter: the
// largest n with elapsed(n) <= age. A job re-tracked at that age has reached step n.
func (s schedule) steps(age time.Duration) uint64 {
	var n uint64
	var sum time.Duration
	for {
		iv := s.interval(n+1, 0.5)
		if iv <= 0 {
			return n
		}
		if iv >= s.max || s.multiplier <= 1 {
			return n + uint64(max(age-sum, 0)/iv)
		}
		if sum+iv > age {
			return n
		}
		sum += iv
		n++
	}
}
