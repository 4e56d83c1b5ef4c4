package reductosim

import (
	"bytes"
	"container/heap"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/base64"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strconv"
	"sync"
	"time"
)

// Webhook modes.
const (
	hookDirect = "direct"
	hookSvix   = "svix"
)

// errReceiverStatus is returned when a webhook receiver answers with a non-2xx status.
var errReceiverStatus = errors.New("webhook receiver answered non-2xx")

// errNoSvix is returned for a Svix-mode webhook when the server has no SvixURL or secret.
var errNoSvix = errors.New("svix delivery not configured")

type hookTarget struct {
	mode     string
	url      string // direct mode only
	channels []string
}

// hookQueue holds jobs with a webhook, ordered by the simulator time they become terminal.
// A job can be queued twice (natural end, then cancel); the first pop to find it terminal
// sends the webhook and the other is dropped.
type hookQueue struct {
	mu sync.Mutex
	h  hookHeap
}

type hookEntry struct {
	due time.Time
	j   *job
}

type hookHeap []hookEntry

func (h hookHeap) Len() int           { return len(h) }
func (h hookHeap) Less(i, k int) bool { return h[i].due.Before(h[k].due) }
func (h hookHeap) Swap(i, k int)      { h[i], h[k] = h[k], h[i] }
func (h *hookHeap) Push(x any)        { *h = append(*h, x.(hookEntry)) }
func (h *hookHeap) Pop() any {
	old := *h
	e := old[len(old)-1]
	*h = old[:len(old)-1]
	return e
}

func (q *hookQueue) push(due time.Time, j *job) {
	q.mu.Lock()
	heap.Push(&q.h, hookEntry{due: due, j: j})
	q.mu.Unlock()
}

func (q *hookQueue) popDue(now time.Time) []hookEntry {
	q.mu.Lock()
	defer q.mu.Unlock()
	var due []hookEntry
	for len(q.h) > 0 && !q.h[0].due.After(now) {
		due = append(due, heap.Pop(&q.h).(hookEntry))
	}
	return due
}

// delivery is one webhook to send, with all its attempts.
type delivery struct {
	j       *job
	target  *hookTarget
	payload []byte
	msgID   string // svix-id, the same across retries
}

func (s *Server) hookLoop() {
	defer s.wg.Done()
	t := time.NewTicker(s.hookTick)
	defer t.Stop()
	for {
		select {
		case <-s.stop:
			return
		case <-t.C:
			s.sweep(false)
		}
	}
}

// Sweep sends the webhooks of every job that has become terminal (on the simulator clock) and
// waits until the deliveries it started, retries included, are over. The background loop does
// the same without waiting; tests on a [FakeClock] set [Options.WebhookTick] negative and call
// Sweep after advancing the clock.
func (s *Server) Sweep() { s.sweep(true) }

func (s *Server) sweep(wait bool) {
	now := s.clock.Now()
	due := s.hooks.popDue(now)
	if len(due) == 0 {
		return
	}
	var pass sync.WaitGroup
	s.closeMu.RLock()
	if s.closed {
		s.closeMu.RUnlock()
		return
	}
	for _, e := range due {
		select {
		case <-s.stop:
			s.closeMu.RUnlock()
			return
		default:
		}
		d, ok := s.prepare(e.j, now)
		if !ok {
			continue
		}
		select {
		case s.sem <- struct{}{}:
		case <-s.stop:
			s.stats.hookFailed.Add(1)
			continue
		}
		s.wg.Add(1)
		pass.Add(1)
		go func() {
			defer s.wg.Done()
			defer pass.Done()
			defer func() { <-s.sem }()
			s.deliver(d)
		}()
	}
	s.closeMu.RUnlock()
	if wait {
		pass.Wait()
	}
}

// prepare claims the job's webhook if the job is terminal at now and its webhook not yet sent.
func (s *Server) prepare(j *job, now time.Time) (delivery, bool) {
	j.mu.Lock()
	if j.hookFired || j.deleted {
		j.mu.Unlock()
		return delivery{}, false
	}
	v := s.view(j, j.cancelledAt, now)
	if !v.terminal {
		// The clock went backwards: try again when the job ends.
		j.mu.Unlock()
		if j.spec.Outcome != OutcomeNever {
			s.hooks.push(j.naturalEnd, j)
		}
		return delivery{}, false
	}
	j.hookFired = true
	j.mu.Unlock()

	p := make([]byte, 0, 96+len(j.metadata))
	p = append(p, `{"status":"`...)
	p = append(p, v.status...)
	p = append(p, `","job_id":`...)
	p = append(p, j.idJSON...)
	p = append(p, `,"metadata":`...)
	if j.metadata != nil {
		p = append(p, j.metadata...)
	} else {
		p = append(p, "null"...)
	}
	p = append(p, '}')
	d := delivery{j: j, target: j.hook, payload: p}
	if j.hook.mode == hookSvix {
		d.msgID = "msg_" + s.token(27)
	}
	return d, true
}

// deliver makes the first attempt and up to hookRetries retries with doubling waits.
func (s *Server) deliver(d delivery) {
	url := d.target.url
	if d.target.mode == hookSvix {
		url = s.svixURL
		if url == "" || s.svixKey == nil {
			s.stats.hookFailed.Add(1)
			s.log.Debug("webhook not sent", "job_id", d.j.id, "error", errNoSvix)
			return
		}
	}
	wait := s.hookWait
	for attempt := 1; attempt <= 1+s.hookRetries; attempt++ {
		if attempt > 1 {
			t := time.NewTimer(wait)
			select {
			case <-t.C:
			case <-s.stop:
				t.Stop()
				s.stats.hookFailed.Add(1)
				return
			}
			wait *= 2
		}
		s.stats.hookAttempts.Add(1)
		err := s.post(url, d)
		if err == nil {
			s.stats.hookDelivered.Add(1)
			return
		}
		s.log.Debug("webhook delivery failed", "job_id", d.j.id, "attempt", attempt, "error", err)
	}
	s.stats.hookFailed.Add(1)
}

func (s *Server) post(url string, d delivery) error {
	req, err := http.NewRequestWithContext(s.ctx, http.MethodPost, url, bytes.NewReader(d.payload))
	if err != nil {
		return fmt.Errorf("build webhook request: %w", err)
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("User-Agent", "reductosim")
	if d.target.mode == hookSvix {
		// Svix stamps each attempt with the real time, which receivers check against theirs.
		ts := strconv.FormatInt(time.Now().Unix(), 10)
		req.Header.Set("svix-id", d.msgID)
		req.Header.Set("svix-timestamp", ts)
		req.Header.Set("svix-signature", "v1,"+svixSign(s.svixKey, d.msgID, ts, d.payload))
	}
	resp, err := s.client.Do(req)
	if err != nil {
		return fmt.Errorf("post webhook: %w", err)
	}
	_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, 64<<10))
	_ = resp.Body.Close()
	if resp.StatusCode/100 != 2 {
		return fmt.Errorf("%w: %d", errReceiverStatus, resp.StatusCode)
	}
	return nil
}

// svixSign is Svix's scheme: base64(HMAC-SHA256(key, id + "." + timestamp + "." + body)).
func svixSign(key []byte, id, ts string, payload []byte) string {
	m := hmac.New(sha256.New, key)
	m.Write([]byte(id))
	m.Write([]byte{'.'})
	m.Write([]byte(ts))
	m.Write([]byte{'.'})
	m.Write(payload)
	return base64.StdEncoding.EncodeToString(m.Sum(nil))
}
