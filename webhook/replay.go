package webhook

import (
	"sync"
	"time"
)

// MaxRememberedDeliveries bounds the svix-ids a [Handler] remembers to refuse replays: at
// most this many, the oldest forgotten first. An id is remembered only while its signed
// request would still pass the timestamp check (its svix-timestamp plus the tolerance); past
// that the signature check refuses the replay anyway. At about 100 bytes an id, 100,000 of
// them are some 10 MB at worst; a sender that gets more valid deliveries than that through
// within one tolerance window only makes a replay cost one GET /job again.
const MaxRememberedDeliveries = 100_000

// deliveries remembers the svix-ids of accepted signed webhooks until they expire, so that a
// replayed delivery (captured and sent again within the tolerance window) is answered without
// acting on it. It is per process: replicas do not share it (a replay at another replica costs
// one GET /job, and the job's event, which comes from GET /job, is published once anyway).
type deliveries struct {
	mu    sync.Mutex
	max   int                   // MaxRememberedDeliveries unless a test sets it
	until map[string]remembered // by svix-id
	order []delivery            // in the order claimed; order[head:] are live
	head  int
	seq   uint64
}

type remembered struct {
	until time.Time
	seq   uint64 // which claim, so that a stale order entry does not drop a newer claim
}

type delivery struct {
	id  string
	seq uint64
}

// claim reports whether id is new (or its memory expired) at now, and if so remembers it
// until until. A false answer means the delivery was already accepted, or is being handled.
func (d *deliveries) claim(id string, now, until time.Time) bool {
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.until == nil {
		d.until = map[string]remembered{}
	}
	if d.max <= 0 {
		d.max = MaxRememberedDeliveries
	}
	// Drop the expired ones at the front, and the oldest beyond the bound.
	for d.head < len(d.order) {
		first := d.order[d.head]
		r, ok := d.until[first.id]
		live := ok && r.seq == first.seq
		if live && now.Before(r.until) && len(d.order)-d.head < d.max {
			break
		}
		if live {
			delete(d.until, first.id)
		}
		d.order[d.head] = delivery{}
		d.head++
	}
	if d.head > len(d.order)/2 {
		d.order = append(d.order[:0], d.order[d.head:]...)
		d.head = 0
	}
	if r, ok := d.until[id]; ok && now.Before(r.until) {
		return false
	}
	d.seq++
	d.until[id] = remembered{until: until, seq: d.seq}
	d.order = append(d.order, delivery{id: id, seq: d.seq})
	return true
}

// forget drops id's claim: the delivery was not acted on, so the sender's retry (with the
// same svix-id) must be.
func (d *deliveries) forget(id string) {
	d.mu.Lock()
	defer d.mu.Unlock()
	delete(d.until, id)
}

// len is how many ids are remembered (for tests).
func (d *deliveries) len() int {
	d.mu.Lock()
	defer d.mu.Unlock()
	return len(d.until)
}
