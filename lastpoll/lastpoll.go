// Package lastpoll keeps what the last poll of each job saw, and shares it among the replicas
// of one API key, so that P.status can give a job's last status and progress, its deliveries
// so far and its next poll whichever replica polled it.
//
// A job parked with NakWithDelay is consumer state inside nats-server that no API reads, and a
// poll does not rewrite its message; so the replica that polls a job records the poll in
// memory, in a [Book] of bounded size, and answers the other replicas' questions on core NATS
// ([subject.Polls]). [Peers.Ask] asks every live replica, itself included, and keeps the
// newest answer. It is informational: no event depends on it.
package lastpoll

import (
	"context"
	"encoding/json"
	"sync"
	"time"

	"github.com/nats-io/nats.go"

	"github.com/reducto-bridge/reducto-bridge/subject"
)

// Poll is what one poll of a job saw.
type Poll struct {
	// Status is Reducto's status of the job; empty when the poll got no answer (Failure).
	Status string `json:"status,omitempty"`
	// Progress is Reducto's progress, as reported; absent when null.
	Progress *float64 `json:"progress,omitempty"`
	// Failure is why the poll got no status: transient, rate_limited, unauthorized, gone or
	// permanent (the values of reducto_bridge_polls_total's outcome).
	Failure string `json:"failure,omitempty"`
	// PolledAt is when the poll's answer came.
	PolledAt time.Time `json:"polled_at"`
	// Deliveries is the delivery count of the job's track message at this poll (1 was its
	// admission), and Since when that message was stored: a re-track starts a new message.
	Deliveries uint64    `json:"deliveries"`
	Since      time.Time `json:"track_stored_at"`
	// NextPoll is when the next poll was scheduled.
	NextPoll time.Time `json:"next_poll"`
}

// DefaultMax is how many jobs a [Book] remembers by default, a few hundred bytes each (tens
// of MB in all).
const DefaultMax = 100_000

// Book is one replica's last polls, by job id, at most max of them: when full, a new job
// replaces an arbitrary one. Safe for concurrent use.
type Book struct {
	mu    sync.Mutex
	max   int
	polls map[string]Poll
}

// NewBook returns an empty book for at most max jobs (DefaultMax when max <= 0).
func NewBook(max int) *Book {
	if max <= 0 {
		max = DefaultMax
	}
	return &Book{max: max, polls: map[string]Poll{}}
}

// Record keeps p as job id's last poll.
func (b *Book) Record(id string, p Poll) {
	b.mu.Lock()
	defer b.mu.Unlock()
	if _, ok := b.polls[id]; !ok && len(b.polls) >= b.max {
		for k := range b.polls {
			delete(b.polls, k)
			break
		}
	}
	b.polls[id] = p
}

// Forget drops job id (its event is published).
func (b *Book) Forget(id string) {
	b.mu.Lock()
	defer b.mu.Unlock()
	delete(b.polls, id)
}

// Get returns job id's last poll, if this book has it.
func (b *Book) Get(id string) (Poll, bool) {
	b.mu.Lock()
	defer b.mu.Unlock()
	p, ok := b.polls[id]
	return p, ok
}

// Len is how many jobs the book holds.
func (b *Book) Len() int {
	b.mu.Lock()
	defer b.mu.Unlock()
	return len(b.polls)
}

// AskWait bounds how long [Peers.Ask] waits for the replicas' answers: a replica that died
// without a goodbye still counts as live for a few seconds, and is not waited for longer.
const AskWait = 250 * time.Millisecond

// maxAnswer bounds an answer's size: a Poll's JSON is about 250 bytes. Anyone who may publish
// on the inbox could answer; a larger body is not decoded.
const maxAnswer = 4096

// Peers answers the other replicas' questions from a book, and asks them. Construct it with
// [Serve]; end it with [Peers.Stop].
type Peers struct {
	nc      *nats.Conn
	subject string
	book    *Book
	live    func() int
	sub     *nats.Subscription
}

// Serve answers questions about the jobs in book on subj ([subject.Polls]). live is how many
// replicas of the key are running, this one included (nil: 1); Ask waits for that many
// answers.
func Serve(nc *nats.Conn, subj string, book *Book, live func() int) (*Peers, error) {
	if live == nil {
		live = func() int { return 1 }
	}
	p := &Peers{nc: nc, subject: subj, book: book, live: live}
	var err error
	if p.sub, err = nc.Subscribe(subj, p.answer); err != nil {
		return nil, err
	}
	return p, nil
}

// answer replies to a question (body: a job id) with the job's last poll, or an empty body
// when this replica has none.
func (p *Peers) answer(m *nats.Msg) {
	if m.Reply == "" || subject.ValidJobID(string(m.Data)) != nil {
		return
	}
	var data []byte
	if poll, ok := p.book.Get(string(m.Data)); ok {
		data, _ = json.Marshal(poll)
	}
	_ = m.Respond(data) // the asker may be gone; nothing to do then
}

// Ask returns the newest last poll of job id that a live replica (this one included) has, and
// whether any has one. It waits for every live replica's answer, at most AskWait or until ctx
// ends; an answer that does not decode is ignored.
func (p *Peers) Ask(ctx context.Context, id string) (Poll, bool) {
	if subject.ValidJobID(id) != nil {
		return Poll{}, false
	}
	inbox := p.nc.NewInbox()
	sub, err := p.nc.SubscribeSync(inbox)
	if err != nil {
		return Poll{}, false
	}
	defer func() { _ = sub.Unsubscribe() }()
	// The SUB goes out before the request on the one connection, so no answer misses it.
	if err := p.nc.PublishRequest(p.subject, inbox, []byte(id)); err != nil {
		return Poll{}, false
	}
	ctx, cancel := context.WithTimeout(ctx, AskWait)
	defer cancel()
	var best Poll
	found := false
	for range max(1, p.live()) {
		m, err := sub.NextMsgWithContext(ctx)
		if err != nil {
			break
		}
		if len(m.Data) == 0 || len(m.Data) > maxAnswer {
			continue
		}
		var poll Poll
		if json.Unmarshal(m.Data, &poll) != nil || poll.PolledAt.IsZero() {
			continue
		}
		if !found || poll.PolledAt.After(best.PolledAt) {
			best, found = poll, true
		}
	}
	return best, found
}

// Stop stops answering.
func (p *Peers) Stop() {
	_ = p.sub.Unsubscribe()
}
