package poller

import (
	"testing"
	"time"
)

var calendarEpoch = time.Unix(1_800_000_000, 0)

func fixedRate(r float64) func() float64 { return func() float64 { return r } }

// While the budget keeps up, every poll is booked at the time its schedule wants.
func TestCalendarKeepsWantedTimesUnderTheBudget(t *testing.T) {
	c := newCalendar(fixedRate(100)) // 95 per second
	now := calendarEpoch
	for i := range 90 {
		want := now.Add(2*time.Second + time.Duration(i)*time.Millisecond)
		if got := c.book(now, want); !got.Equal(want) {
			t.Fatalf("booking %d: got %v, want %v unchanged", i, got.Sub(now), want.Sub(now))
		}
	}
}

// A burst beyond the budget is spread over the following buckets, in booking order, at the
// calendar's rate: the n-th booking comes about n / (rate x headroom) seconds later.
func TestCalendarSpreadsABurstInOrder(t *testing.T) {
	const rate, n = 100.0, 100_000
	c := newCalendar(fixedRate(rate))
	now := calendarEpoch
	want := now.Add(2 * time.Second)
	var prev time.Time
	perSecond := map[int64]int{}
	start := time.Now()
	for i := range n {
		got := c.book(now, want)
		if got.Before(want) {
			t.Fatalf("booking %d at %v, before the wanted %v", i, got.Sub(now), want.Sub(now))
		}
		if got.Before(prev) {
			t.Fatalf("booking %d at %v, before booking %d at %v: not in booking order", i, got.Sub(now), i-1, prev.Sub(now))
		}
		prev = got
		perSecond[index(got)]++
	}
	if el := time.Since(start); el > 2*time.Second {
		t.Errorf("%d bookings took %v: not about O(1) each", n, el)
	}
	for i, k := range perSecond {
		if k > int(rate*calendarHeadroom)+1 {
			t.Errorf("bucket %d holds %d polls, more than %v per second", i-index(now), k, rate*calendarHeadroom)
		}
	}
	span := prev.Sub(want).Seconds()
	if wantSpan := n / (rate * calendarHeadroom); span < wantSpan-2 || span > wantSpan+2 {
		t.Errorf("the burst spans %.1f s, want about %.1f s", span, wantSpan)
	}
	if h := c.horizon(now); h.Seconds() < span {
		t.Errorf("horizon %v, want at least %.1f s", h, span)
	}
	// A job booked after the burst, wanting the same time, waits its turn behind it, not
	// more; a bucket before the burst is still free.
	if early := now.Add(time.Second); !c.book(now, early).Equal(early) {
		t.Errorf("a booking before the burst's first bucket moved")
	}
	late := c.book(now, want)
	if !late.After(prev) || late.Sub(prev) > time.Second {
		t.Errorf("a later booking at %v, want just after the burst's last %v", late.Sub(now), prev.Sub(now))
	}
}

// A rate below one per bucket still averages out: 0.5/s books one poll every other second.
func TestCalendarFractionalRate(t *testing.T) {
	c := newCalendar(fixedRate(0.5 / calendarHeadroom))
	now := calendarEpoch
	var last time.Time
	for range 10 {
		last = c.book(now, now)
	}
	if s := last.Sub(now).Seconds(); s < 17 || s > 21 {
		t.Errorf("10 polls at 0.5/s end after %.1f s, want about 19", s)
	}
}

// No rate (zero, negative, NaN) books nothing and keeps every wanted time.
func TestCalendarWithoutRate(t *testing.T) {
	for _, r := range []float64{0, -1, nanRate()} {
		c := newCalendar(fixedRate(r))
		now := calendarEpoch
		for range 1000 {
			if got := c.book(now, now.Add(time.Second)); !got.Equal(now.Add(time.Second)) {
				t.Fatalf("rate %v: booked at %v, want the wanted time", r, got.Sub(now))
			}
		}
	}
}

func nanRate() float64 {
	zero := 0.0
	return zero / zero
}

// Buckets in the past are dropped: memory is bounded by the future buckets in use.
func TestCalendarDropsPastBuckets(t *testing.T) {
	c := newCalendar(fixedRate(10))
	now := calendarEpoch
	for range 3600 {
		for range 5 {
			c.book(now, now.Add(2*time.Second))
		}
		now = now.Add(time.Second)
	}
	if n := len(c.buckets); n > 4 {
		t.Errorf("after an hour, %d buckets kept, want only the few ahead", n)
	}
	// A long idle gap is pruned in one go.
	now = now.Add(1000 * time.Hour)
	c.book(now, now)
	if n := len(c.buckets); n != 1 {
		t.Errorf("after an idle gap, %d buckets kept, want 1", n)
	}
}
