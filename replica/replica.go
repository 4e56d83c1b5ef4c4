// Package replica counts the live replicas of one API key, so that they can share the key's
// Reducto rate limits. Every replica announces itself on core NATS every [DefaultInterval]
// (subject [subject.Replicas], body: a random replica id, never the key), re-announces at once
// when it hears a new id (so a newcomer learns of the others within a round trip rather than a
// period), and says goodbye when it stops. A replica counts the distinct ids heard within the
// last [DefaultWindow], itself included: a replica that dies without a goodbye drops out after
// that window.
//
// Why announcements rather than the micro service's $SRV.PING: a ping is a request whose
// answers must be awaited for an arbitrary time and repeated by every replica; announcements
// are one-way, cost one small message per replica per second, and the subject is per API key
// (two bridges on different keys, or on different prefixes, never share a budget).
package replica

import (
	"crypto/rand"
	"encoding/hex"
	"log/slog"
	"sync"
	"time"

	"github.com/nats-io/nats.go"
)

// Defaults of the announcement period and the liveness window.
const (
	DefaultInterval = time.Second
	DefaultWindow   = 3 * time.Second
)

// maxPeers bounds how many other ids a replica remembers: announcements come from anyone who
// may publish on the subject, and a flood of made-up ids must not grow memory without bound.
// (It can still shrink this replica's share, never raise it above the configured rate.)
const maxPeers = 1024

// leaveHeader marks a goodbye: the replica that sent it is gone at once.
const leaveHeader = "Reducto-Bridge-Replica"

// Set is the pure bookkeeping of the ids heard and when. Not safe for concurrent use.
type Set struct {
	self   string
	window time.Duration
	seen   map[string]time.Time
}

// NewSet returns a set that counts self and the ids heard within window.
func NewSet(self string, window time.Duration) *Set {
	return &Set{self: self, window: window, seen: map[string]time.Time{}}
}

// Heard records an announcement of id at now and reports whether id was not live before.
// Its own id, an empty one and ids beyond the bound are ignored.
func (s *Set) Heard(id string, now time.Time) bool {
	if id == s.self || id == "" {
		return false
	}
	last, ok := s.seen[id]
	fresh := !ok || now.Sub(last) > s.window
	if !ok && len(s.seen) >= maxPeers {
		s.prune(now)
		if len(s.seen) >= maxPeers {
			return false
		}
	}
	s.seen[id] = now
	return fresh
}

// Left forgets id (its goodbye) and reports whether it was known.
func (s *Set) Left(id string) bool {
	_, ok := s.seen[id]
	delete(s.seen, id)
	return ok
}

// Live prunes the ids not heard within the window before now and returns the live replicas,
// self included.
func (s *Set) Live(now time.Time) int {
	s.prune(now)
	return len(s.seen) + 1
}

func (s *Set) prune(now time.Time) {
	for id, t := range s.seen {
		if now.Sub(t) > s.window {
			delete(s.seen, id)
		}
	}
}

// Options configure a [Tracker].
type Options struct {
	// Subject is where the replicas of the key announce themselves ([subject.Replicas]).
	Subject string
	// Interval between announcements; 0 means [DefaultInterval].
	Interval time.Duration
	// Window within which a replica must have been heard to count; 0 means [DefaultWindow].
	Window time.Duration
	// OnChange is called with the live count (self included) whenever it changes, and once
	// at start with 1. Calls are serialised.
	OnChange func(live int)
	// Logger receives joins and departures at info level (default: discard).
	Logger *slog.Logger
}

// Tracker announces this replica and follows the others. Safe for concurrent use.
type Tracker struct {
	nc   *nats.Conn
	opts Options
	id   string
	sub  *nats.Subscription
	stop chan struct{}
	done chan struct{}

	mu   sync.Mutex
	set  *Set
	live int
}

// Start subscribes to the subject, announces this replica and keeps announcing until
// [Tracker.Stop].
func Start(nc *nats.Conn, opts Options) (*Tracker, error) {
	if opts.Interval <= 0 {
		opts.Interval = DefaultInterval
	}
	if opts.Window <= 0 {
		opts.Window = DefaultWindow
	}
	if opts.Logger == nil {
		opts.Logger = slog.New(slog.DiscardHandler)
	}
	var raw [8]byte
	rand.Read(raw[:])
	t := &Tracker{nc: nc, opts: opts, id: hex.EncodeToString(raw[:]), stop: make(chan struct{}), done: make(chan struct{}), live: 1}
	t.set = NewSet(t.id, opts.Window)
	if opts.OnChange != nil {
		opts.OnChange(1)
	}
	var err error
	if t.sub, err = nc.Subscribe(opts.Subject, t.receive); err != nil {
		return nil, err
	}
	t.announce(false)
	go t.run()
	return t, nil
}

// ID is this replica's random id.
func (t *Tracker) ID() string { return t.id }

// Live is the number of live replicas, this one included.
func (t *Tracker) Live() int {
	t.mu.Lock()
	defer t.mu.Unlock()
	return t.live
}

// Stop stops announcing, says goodbye (so the others grow their share at once) and
// unsubscribes. Call it before the connection is drained or closed.
func (t *Tracker) Stop() {
	select {
	case <-t.stop:
		return
	default:
	}
	close(t.stop)
	<-t.done
	t.sub.Unsubscribe()
	// No Flush: with NATS out of reach it would wait for a PONG; draining the connection
	// (or its next flush) sends the goodbye.
	t.announce(true)
}

func (t *Tracker) run() {
	defer close(t.done)
	tick := time.NewTicker(t.opts.Interval)
	defer tick.Stop()
	for {
		select {
		case <-t.stop:
			return
		case <-tick.C:
			t.announce(false)
			t.update(func(time.Time) {})
		}
	}
}

func (t *Tracker) announce(leaving bool) {
	m := nats.NewMsg(t.opts.Subject)
	m.Data = []byte(t.id)
	if leaving {
		m.Header.Set(leaveHeader, "leaving")
	}
	// A failed publish (connection down) only delays the others' count; the next tick retries.
	t.nc.PublishMsg(m)
}

func (t *Tracker) receive(m *nats.Msg) {
	id := string(m.Data)
	if len(id) != 16 || !isHex(id) {
		return
	}
	if m.Header.Get(leaveHeader) != "" {
		t.update(func(time.Time) { t.set.Left(id) })
		return
	}
	var joined bool
	t.update(func(now time.Time) { joined = t.set.Heard(id, now) })
	if joined {
		// A newcomer announced itself: tell it about this replica now, not in a period.
		t.announce(false)
	}
}

// update applies f to the set under the lock and reports a change of the live count.
func (t *Tracker) update(f func(now time.Time)) {
	t.mu.Lock()
	defer t.mu.Unlock()
	now := time.Now()
	f(now)
	n := t.set.Live(now)
	if n == t.live {
		return
	}
	old := t.live
	t.live = n
	if n > old {
		t.opts.Logger.Info("replica joined; sharing the rate budget", "replicas", n)
	} else {
		t.opts.Logger.Info("replica gone; sharing the rate budget", "replicas", n)
	}
	if t.opts.OnChange != nil {
		t.opts.OnChange(n)
	}
}

func isHex(s string) bool {
	for _, c := range s {
		if !('0' <= c && c <= '9' || 'a' <= c && c <= 'f') {
			return false
		}
	}
	return true
}
