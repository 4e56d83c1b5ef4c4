package reductosim

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/base64"
	"io"
	"net/http"
	"net/http/httptest"
	"strconv"
	"sync"
	"testing"
	"time"

	"go.uber.org/goleak"
)

// hookRequest is one request a receiver saw.
type hookRequest struct {
	header http.Header
	body   string
}

// receiver is a webhook endpoint answering with the given statuses in turn (then 200).
type receiver struct {
	mu       sync.Mutex
	statuses []int
	got      []hookRequest
	ch       chan hookRequest
	ts       *httptest.Server
}

func newReceiver(t *testing.T, statuses ...int) *receiver {
	t.Helper()
	rc := &receiver{statuses: statuses, ch: make(chan hookRequest, 16)}
	rc.ts = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		b, _ := io.ReadAll(r.Body)
		req := hookRequest{header: r.Header.Clone(), body: string(b)}
		rc.mu.Lock()
		rc.got = append(rc.got, req)
		code := 200
		if len(rc.got) <= len(rc.statuses) {
			code = rc.statuses[len(rc.got)-1]
		}
		rc.mu.Unlock()
		w.WriteHeader(code)
		select {
		case rc.ch <- req:
		default:
		}
	}))
	t.Cleanup(rc.ts.Close)
	return rc
}

func (rc *receiver) requests() []hookRequest {
	rc.mu.Lock()
	defer rc.mu.Unlock()
	return append([]hookRequest(nil), rc.got...)
}

func TestDirectWebhook(t *testing.T) {
	rc := newReceiver(t, http.StatusInternalServerError)
	f := newFixture(t, Options{WebhookRetryWait: time.Millisecond, WebhookClient: rc.ts.Client()})
	id := f.submit(t, "/parse_async", `{"input":"x","async":{"metadata":{"user_id": "123", "n": [1, 2]},"webhook":{"mode":"direct","url":"`+rc.ts.URL+`/hook"}}}`)
	f.sim.Sweep()
	if n := len(rc.requests()); n != 0 {
		t.Fatalf("got %d webhooks before the job ended, want 0", n)
	}
	snap, _ := f.sim.Job(id)
	f.clock.Advance(snap.Spec.Duration)
	f.sim.Sweep() // waits for the delivery and its retry
	got := rc.requests()
	if len(got) != 2 {
		t.Fatalf("got %d attempts, want 2 (a failure, then a success)", len(got))
	}
	want := `{"status":"Completed","job_id":"` + id + `","metadata":{"user_id":"123","n":[1,2]}}`
	for i, r := range got {
		if r.body != want {
			t.Errorf("attempt %d: got %s, want %s", i+1, r.body, want)
		}
		if ct := r.header.Get("Content-Type"); ct != "application/json" {
			t.Errorf("attempt %d: got Content-Type %q, want application/json", i+1, ct)
		}
		if r.header.Get("svix-signature") != "" {
			t.Errorf("attempt %d: direct webhook is signed, want unsigned", i+1)
		}
	}
	// Later sweeps do not send it again.
	f.clock.Advance(time.Hour)
	f.sim.Sweep()
	if n := len(rc.requests()); n != 2 {
		t.Errorf("got %d attempts after another sweep, want still 2", n)
	}
	if st := f.sim.Stats(); st.WebhooksDelivered != 1 || st.WebhooksFailed != 0 || st.WebhookAttempts != 2 {
		t.Errorf("got delivered %d failed %d attempts %d, want 1, 0, 2", st.WebhooksDelivered, st.WebhooksFailed, st.WebhookAttempts)
	}
}

func TestWebhookGivesUp(t *testing.T) {
	rc := newReceiver(t, 500, 502, 503, 500, 500)
	f := newFixture(t, Options{WebhookRetryWait: time.Millisecond, WebhookClient: rc.ts.Client()})
	f.sim.Create(JobSpec{Outcome: OutcomeFail}, WithDirectWebhook(rc.ts.URL))
	f.sim.Sweep()
	if n := len(rc.requests()); n != 4 {
		t.Errorf("got %d attempts, want 4 (1 + 3 retries)", n)
	}
	if st := f.sim.Stats(); st.WebhooksDelivered != 0 || st.WebhooksFailed != 1 {
		t.Errorf("got delivered %d failed %d, want 0 and 1", st.WebhooksDelivered, st.WebhooksFailed)
	}
}

func TestLegacyEditWebhook(t *testing.T) {
	rc := newReceiver(t)
	f := newFixture(t, Options{WebhookClient: rc.ts.Client(), Spec: func(string, []byte) JobSpec { return JobSpec{} }})
	id := f.submit(t, "/edit_async", `{"document_url":"x","edit_instructions":"y","webhook":{"mode":"direct","url":"`+rc.ts.URL+`","metadata":{"k":"v"}}}`)
	f.sim.Sweep()
	got := rc.requests()
	if want := `{"status":"Completed","job_id":"` + id + `","metadata":{"k":"v"}}`; len(got) != 1 || got[0].body != want {
		t.Fatalf("got %v, want one %s", got, want)
	}
}

func TestSvixWebhook(t *testing.T) {
	key := []byte("0123456789abcdef0123456789abcdef")
	secret := "whsec_" + base64.StdEncoding.EncodeToString(key)
	rc := newReceiver(t, http.StatusServiceUnavailable)
	f := newFixture(t, Options{
		WebhookSecret:    secret,
		SvixURL:          rc.ts.URL + "/svix",
		WebhookClient:    rc.ts.Client(),
		WebhookRetryWait: time.Millisecond,
	})
	id := f.submit(t, "/extract_async", `{"input":"x","async":{"webhook":{"mode":"svix"}}}`)
	snap, _ := f.sim.Job(id)
	f.clock.Advance(snap.Spec.Duration)
	f.sim.Sweep()
	got := rc.requests()
	if len(got) != 2 {
		t.Fatalf("got %d attempts, want 2", len(got))
	}
	want := `{"status":"Completed","job_id":"` + id + `","metadata":null}`
	for i, r := range got {
		msgID, ts, sig := r.header.Get("svix-id"), r.header.Get("svix-timestamp"), r.header.Get("svix-signature")
		if r.body != want {
			t.Errorf("attempt %d: got %s, want %s", i+1, r.body, want)
		}
		if len(msgID) < 5 || msgID[:4] != "msg_" || msgID != got[0].header.Get("svix-id") {
			t.Errorf("attempt %d: got svix-id %q, want msg_... and the same on every attempt", i+1, msgID)
		}
		sec, err := strconv.ParseInt(ts, 10, 64)
		if err != nil || time.Since(time.Unix(sec, 0)).Abs() > 5*time.Minute {
			t.Errorf("attempt %d: got svix-timestamp %q, want the current unix time", i+1, ts)
		}
		// Recompute the signature independently of the simulator's code.
		m := hmac.New(sha256.New, key)
		m.Write([]byte(msgID + "." + ts + "." + r.body))
		if wantSig := "v1," + base64.StdEncoding.EncodeToString(m.Sum(nil)); sig != wantSig {
			t.Errorf("attempt %d: got svix-signature %q, want %q", i+1, sig, wantSig)
		}
	}
}

func TestSvixNotConfigured(t *testing.T) {
	f := newFixture(t, Options{})
	f.sim.Create(JobSpec{}, WithSvixWebhook())
	f.sim.Sweep()
	if st := f.sim.Stats(); st.WebhooksFailed != 1 || st.WebhookAttempts != 0 {
		t.Errorf("got failed %d attempts %d, want 1 and 0", st.WebhooksFailed, st.WebhookAttempts)
	}
}

func TestWebhookOnCancel(t *testing.T) {
	tests := []struct {
		style CancelStyle
		want  string
	}{{CancelAsFailed, StatusFailed}, {CancelAsCancelled, StatusCancelled}}
	for _, tt := range tests {
		t.Run(tt.want, func(t *testing.T) {
			rc := newReceiver(t)
			f := newFixture(t, Options{CancelStyle: tt.style, WebhookClient: rc.ts.Client()})
			id := f.sim.Create(JobSpec{Outcome: OutcomeNever}, WithDirectWebhook(rc.ts.URL), WithMetadata("m"))
			f.sim.Sweep()
			if r := f.call(t, "POST", "/cancel/"+id, ""); r.code != 200 {
				t.Fatalf("cancel: got %d", r.code)
			}
			f.sim.Sweep()
			got := rc.requests()
			if want := `{"status":"` + tt.want + `","job_id":"` + id + `","metadata":"m"}`; len(got) != 1 || got[0].body != want {
				t.Errorf("got %v, want one %s", got, want)
			}
		})
	}
}

func TestWebhookDroppedAfterDelete(t *testing.T) {
	rc := newReceiver(t)
	f := newFixture(t, Options{WebhookClient: rc.ts.Client()})
	id := f.sim.Create(JobSpec{Duration: time.Second}, WithDirectWebhook(rc.ts.URL))
	f.sim.Delete(id, 409, time.Second)
	f.clock.Advance(time.Minute)
	f.sim.Sweep()
	if n := len(rc.requests()); n != 0 {
		t.Errorf("got %d webhooks for a deleted job, want 0", n)
	}
}

func TestWebhookBackgroundLoop(t *testing.T) {
	rc := newReceiver(t)
	f := newFixture(t, Options{Clock: ScaledClock(1000), WebhookTick: time.Millisecond, WebhookClient: rc.ts.Client()})
	id := f.sim.Create(JobSpec{Duration: 2 * time.Second}, WithDirectWebhook(rc.ts.URL)) // 2ms of real time
	select {
	case r := <-rc.ch:
		if want := `{"status":"Completed","job_id":"` + id + `","metadata":null}`; r.body != want {
			t.Errorf("got %s, want %s", r.body, want)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("no webhook within 10s")
	}
}

func TestCloseLeavesNoGoroutines(t *testing.T) {
	// Leftovers of other tests (keep-alive connections winding down) are not ours.
	defer goleak.VerifyNone(t, goleak.IgnoreCurrent())
	rc := newReceiver(t, 500, 500, 500, 500)
	sim, err := New(Options{Clock: ScaledClock(1000), WebhookTick: time.Millisecond, WebhookRetryWait: time.Hour, Seed: 1})
	if err != nil {
		t.Fatal(err)
	}
	ts := httptest.NewServer(sim)
	// A delivery stuck in a one-hour retry wait, and jobs still to end.
	sim.Create(JobSpec{}, WithDirectWebhook(rc.ts.URL))
	for range 10 {
		sim.Create(JobSpec{Duration: time.Minute}, WithDirectWebhook(rc.ts.URL))
	}
	select {
	case <-rc.ch:
	case <-time.After(10 * time.Second):
		t.Fatal("no first attempt within 10s")
	}
	resp, err := ts.Client().Get(ts.URL + "/version")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	ts.Close()
	done := make(chan struct{})
	go func() {
		sim.Close()
		close(done)
	}()
	select {
	case <-done:
	case <-time.After(5 * time.Second):
		t.Fatal("Close did not return within 5s")
	}
	sim.Close() // idempotent
	rc.ts.Close()
	if st := sim.Stats(); st.WebhooksFailed < 1 || st.WebhooksDelivered != 0 {
		t.Errorf("got %d failed and %d delivered webhooks, want at least 1 (abandoned by Close) and 0",
			st.WebhooksFailed, st.WebhooksDelivered)
	}
}
