package e2e

import (
	"bytes"
	"encoding/json"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
)

// ackWatch sniffs the replies bridges send for track messages ($JS.ACK.REDUCTO_TRACK.>: ack,
// nak, term), which name the delivery they answer. It tells when a message was handed out
// again while a replica still held it: the next delivery was answered sooner after the nak
// than the delay that nak asked for, so it was not the nak that caused it but AckWait
// running out (a starved machine). That is the documented at-least-once window in which two
// holders may poll one job at once.
type ackWatch struct {
	mu    sync.Mutex
	bySeq map[uint64]map[uint64]ackRec // stream sequence -> delivery count -> first reply
}

type ackRec struct {
	answered time.Time     // when the reply was seen
	kind     string        // +ACK, -NAK, +TERM, +WPI
	delay    time.Duration // of a -NAK
}

func watchAcks(t testing.TB, nc *nats.Conn) *ackWatch {
	t.Helper()
	a := &ackWatch{bySeq: make(map[uint64]map[uint64]ackRec)}
	sub, err := nc.Subscribe("$JS.ACK."+trackStream+".>", a.record)
	if err != nil {
		t.Fatalf("subscribe to acks: %v", err)
	}
	if err := sub.SetPendingLimits(-1, -1); err != nil {
		t.Fatalf("pending limits: %v", err)
	}
	if err := nc.Flush(); err != nil {
		t.Fatalf("flush: %v", err)
	}
	t.Cleanup(func() { _ = sub.Unsubscribe() })
	return a
}

// record parses $JS.ACK.<stream>.<consumer>.<delivered>.<sseq>.<cseq>.<ts>.<pending> (and the
// v2 form with domain and account hash after ACK).
func (a *ackWatch) record(m *nats.Msg) {
	now := time.Now()
	tok := strings.Split(m.Subject, ".")
	var i int
	switch {
	case len(tok) == 9:
		i = 4
	case len(tok) >= 11:
		i = 6
	default:
		return
	}
	dc, err1 := strconv.ParseUint(tok[i], 10, 64)
	sseq, err2 := strconv.ParseUint(tok[i+1], 10, 64)
	if err1 != nil || err2 != nil {
		return
	}
	rec := ackRec{answered: now, kind: "+ACK"}
	if len(m.Data) > 0 {
		k, arg, _ := bytes.Cut(m.Data, []byte(" "))
		rec.kind = string(k)
		if rec.kind == "-NAK" && len(arg) > 0 {
			var opt struct {
				Delay time.Duration `json:"delay"`
			}
			if json.Unmarshal(arg, &opt) == nil {
				rec.delay = opt.Delay
			} else if d, err := time.ParseDuration(string(arg)); err == nil {
				rec.delay = d
			}
		}
	}
	a.mu.Lock()
	defer a.mu.Unlock()
	ds := a.bySeq[sseq]
	if ds == nil {
		ds = make(map[uint64]ackRec)
		a.bySeq[sseq] = ds
	}
	if _, seen := ds[dc]; !seen {
		ds[dc] = rec
	}
}

// overlaps returns, for each delivery of the message that was made while the previous one
// was still held, the time window around both answers in which two holders may have polled.
// slack absorbs the lag between the server handling a reply and this watcher seeing it.
func (a *ackWatch) overlaps(sseq uint64, slack time.Duration) [][2]time.Time {
	a.mu.Lock()
	defer a.mu.Unlock()
	ds := a.bySeq[sseq]
	var out [][2]time.Time
	for dc, prev := range ds {
		next, ok := ds[dc+1]
		if !ok {
			continue
		}
		// A delivery caused by the previous nak comes after its delay; one answered
		// sooner was made by AckWait running out while the previous holder still worked.
		if prev.kind == "-NAK" && next.answered.Before(prev.answered.Add(prev.delay-slack)) ||
			prev.kind != "-NAK" && next.answered.Before(prev.answered) {
			lo, hi := prev.answered, next.answered
			if hi.Before(lo) {
				lo, hi = hi, lo
			}
			out = append(out, [2]time.Time{lo.Add(-ackWait - time.Second), hi.Add(slack)})
		}
	}
	return out
}

// doubleHeld counts the deliveries made while the previous one was still held.
func (a *ackWatch) doubleHeld(slack time.Duration) int {
	a.mu.Lock()
	seqs := make([]uint64, 0, len(a.bySeq))
	for s := range a.bySeq {
		seqs = append(seqs, s)
	}
	a.mu.Unlock()
	n := 0
	for _, s := range seqs {
		n += len(a.overlaps(s, slack))
	}
	return n
}
