package poller

import (
	"math"
	"sync"
	"time"
)

// Tuning of the poll calendar.
const (
	// calendarWidth is the width of one bucket of the calendar.
	calendarWidth = time.Second
	// calendarHeadroom is the share of the GET /job rate the calendar books: the rest is left
	// for what it does not book (confirmations, hints, polls handed back). It is above
	// 1/1.1, so that a cycle through every outstanding job (outstanding / (rate x headroom))
	// stays within outstanding / rate + 10%; 0.9 would be 11% above.
	calendarHeadroom = 0.95
)

// calendar books the polls of this process in time buckets whose capacity is the GET /job
// rate it may spend (times calendarHeadroom), so that polls never fall due faster than the
// budget serves them. A poll is booked at the time its schedule wants, or, when that bucket
// is full, spread over the first bucket after it that is not: polls then come in booking
// order, each job about once per outstanding / rate seconds. A bucket's capacity is fixed
// when it is first used, from the rate then. Full buckets point at a later bucket from which
// to look for a free one (union-find with path compression), so a burst of bookings costs
// about O(1) each. Buckets in the past are dropped: memory is one small entry per future
// bucket used. Safe for concurrent use.
type calendar struct {
	rate func() float64 // requests per second this process may spend on GET /job

	mu      sync.Mutex
	buckets map[int64]*bucket // by index: unix time / calendarWidth
	first   int64             // no bucket below this index is kept
	last    time.Time         // the latest slot booked
}

// bucket is one calendarWidth of the calendar. Once n reaches capacity, next is a bucket
// index at or before the first one after it that may have room.
type bucket struct {
	n, capacity int
	next        int64
}

func newCalendar(rate func() float64) *calendar {
	return &calendar{rate: rate, buckets: map[int64]*bucket{}}
}

// book returns the time, at or after want, at which a poll wanted at want is booked. With
// no rate to share (none set, or zero), want is returned unchanged.
func (c *calendar) book(now, want time.Time) time.Time {
	perBucket := c.rate() * calendarWidth.Seconds() * calendarHeadroom
	if !(perBucket > 0) || math.IsInf(perBucket, 0) {
		return want
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	cur := index(now)
	c.prune(cur)
	wanted := max(index(want), cur)
	i := c.free(wanted, perBucket)
	b := c.buckets[i]
	slot := want
	if i != wanted {
		// Spread over the bucket, in booking order.
		slot = time.Unix(0, i*int64(calendarWidth)+int64(calendarWidth)*int64(b.n)/int64(b.capacity))
	}
	if b.n++; b.n >= b.capacity {
		b.next = i + 1
	}
	if slot.After(c.last) {
		c.last = slot
	}
	return slot
}

// horizon is how far ahead of now the latest booked slot lies (0 when none does).
func (c *calendar) horizon(now time.Time) time.Duration {
	c.mu.Lock()
	defer c.mu.Unlock()
	return max(c.last.Sub(now), 0)
}

// free returns the index of the first bucket at or after i with room, creating it when new.
func (c *calendar) free(i int64, perBucket float64) int64 {
	start := i
	for {
		b, ok := c.buckets[i]
		if !ok {
			// floor((i+1) r) - floor(i r): the capacities average to r, fractions included.
			n := int(math.Floor(float64(i+1)*perBucket) - math.Floor(float64(i)*perBucket))
			b = &bucket{capacity: n, next: i + 1}
			c.buckets[i] = b
		}
		if b.n < b.capacity {
			break
		}
		i = b.next
	}
	// Path compression: every full bucket on the way now points at the free one.
	for j := start; j != i; {
		b := c.buckets[j]
		j, b.next = b.next, i
	}
	return i
}

// prune drops the buckets before cur.
func (c *calendar) prune(cur int64) {
	if cur <= c.first {
		return
	}
	if cur-c.first > int64(len(c.buckets)) {
		for i := range c.buckets {
			if i < cur {
				delete(c.buckets, i)
			}
		}
	} else {
		for i := c.first; i < cur; i++ {
			delete(c.buckets, i)
		}
	}
	c.first = cur
}

func index(t time.Time) int64 { return t.UnixNano() / int64(calendarWidth) }
