package webhook

import (
	"bufio"
	"bytes"
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"
)

const jobID = "204a39e4-dd10-4c83-a978-0cee4af8cde2"

var (
	key    = []byte("0123456789abcdef0123456789abcdef")
	secret = "whsec_" + base64.StdEncoding.EncodeToString(key)
	now    = time.Date(2026, 11, 29, 12, 0, 0, 0, time.UTC)
)

// recorder is a Hinter that records its calls.
type recorder struct {
	mu    sync.Mutex
	calls []string // "id metadata"
	err   error
}

func (r *recorder) Hint(_ context.Context, id string, md json.RawMessage) error {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.calls = append(r.calls, id+" "+string(md))
	return r.err
}

// sign computes the Svix signature the way the docs describe it, independently of verify.
func sign(id string, ts int64, body string) string {
	mac := hmac.New(sha256.New, key)
	mac.Write([]byte(id + "." + strconv.FormatInt(ts, 10) + "." + body))
	return "v1," + base64.StdEncoding.EncodeToString(mac.Sum(nil))
}

func TestWebhook(t *testing.T) {
	body := `{"status":"Completed","job_id":"` + jobID + `","metadata":{"user_id":"123","document_type":"invoice"}}`
	signed := func(h http.Header, b string) {
		h.Set("svix-id", "msg_1")
		h.Set("svix-timestamp", strconv.FormatInt(now.Unix(), 10))
		h.Set("svix-signature", sign("msg_1", now.Unix(), b))
	}
	tests := []struct {
		name     string
		opts     Options
		target   string
		body     string
		header   func(http.Header, string)
		hintErr  error
		wantCode int
		wantHint string // the hint call, "" for none
	}{
		{name: "svix good signature", opts: Options{Secret: secret}, body: body, header: signed, wantCode: 200,
			wantHint: jobID + ` {"user_id":"123","document_type":"invoice"}`},
		{name: "svix white-labelled headers", opts: Options{Secret: secret}, body: body, header: func(h http.Header, b string) {
			h.Set("webhook-id", "msg_1")
			h.Set("webhook-timestamp", strconv.FormatInt(now.Unix(), 10))
			h.Set("webhook-signature", sign("msg_1", now.Unix(), b))
		}, wantCode: 200, wantHint: jobID + ` {"user_id":"123","document_type":"invoice"}`},
		{name: "svix one of several signatures matches", opts: Options{Secret: secret}, body: body, header: func(h http.Header, b string) {
			signed(h, b)
			h.Set("svix-signature", "v1,AAAA v2,xyz "+sign("msg_1", now.Unix(), b))
		}, wantCode: 200, wantHint: jobID + ` {"user_id":"123","document_type":"invoice"}`},
		{name: "svix bad signature", opts: Options{Secret: secret}, body: body, header: func(h http.Header, b string) {
			signed(h, b)
			h.Set("svix-signature", sign("msg_1", now.Unix(), b+" "))
		}, wantCode: 401},
		{name: "svix body tampered", opts: Options{Secret: secret}, body: strings.Replace(body, "Completed", "Failed", 1), header: func(h http.Header, b string) {
			signed(h, body)
		}, wantCode: 401},
		{name: "svix stale timestamp", opts: Options{Secret: secret}, body: body, header: func(h http.Header, b string) {
			ts := now.Add(-6 * time.Minute).Unix()
			h.Set("svix-id", "msg_1")
			h.Set("svix-timestamp", strconv.FormatInt(ts, 10))
			h.Set("svix-signature", sign("msg_1", ts, b))
		}, wantCode: 401},
		{name: "svix future timestamp", opts: Options{Secret: secret}, body: body, header: func(h http.Header, b string) {
			ts := now.Add(6 * time.Minute).Unix()
			h.Set("svix-id", "msg_1")
			h.Set("svix-timestamp", strconv.FormatInt(ts, 10))
			h.Set("svix-signature", sign("msg_1", ts, b))
		}, wantCode: 401},
		{name: "svix missing signature header", opts: Options{Secret: secret}, body: body, header: func(h http.Header, b string) {
			signed(h, b)
			h.Del("svix-signature")
		}, wantCode: 401},
		{name: "svix without a configured secret", opts: Options{Token: "tok"}, body: body, header: signed, wantCode: 401},
		{name: "svix enveloped body", opts: Options{Secret: secret}, body: `{"type":"async.update","data":` + body + `}`, header: signed,
			wantCode: 200, wantHint: jobID + ` {"user_id":"123","document_type":"invoice"}`},
		{name: "direct token in query", opts: Options{Token: "s3cret"}, target: "/webhooks/reducto?token=s3cret", body: body,
			wantCode: 200, wantHint: jobID + ` {"user_id":"123","document_type":"invoice"}`},
		{name: "direct token in metadata is not echoed", opts: Options{Token: "s3cret"},
			body:     `{"status":"Completed","job_id":"` + jobID + `","metadata":{"webhook_token":"s3cret","k":1}}`,
			wantCode: 200, wantHint: jobID + ` {"k":1}`},
		{name: "direct token in metadata, the rest kept byte for byte", opts: Options{Token: "s3cret"},
			body:     `{"status":"Completed","job_id":"` + jobID + `","metadata":{"z":1, "webhook_token":"s3cret", "a":"<&>"}}`,
			wantCode: 200, wantHint: jobID + ` {"z":1, "a":"<&>"}`},
		{name: "svix metadata token is not echoed either", opts: Options{Secret: secret, Token: "s3cret"},
			body:   `{"status":"Completed","job_id":"` + jobID + `","metadata":{"tenant":"a","webhook_token":"s3cret"}}`,
			header: signed, wantCode: 200, wantHint: jobID + ` {"tenant":"a"}`},
		{name: "direct metadata only the token", opts: Options{Token: "s3cret"},
			body:     `{"status":"Completed","job_id":"` + jobID + `","metadata":{"webhook_token":"s3cret"}}`,
			wantCode: 200, wantHint: jobID + ` `},
		{name: "direct wrong token", opts: Options{Token: "s3cret"}, target: "/webhooks/reducto?token=guess", body: body, wantCode: 401},
		{name: "direct missing token", opts: Options{Token: "s3cret"}, body: body, wantCode: 401},
		{name: "direct refused without a configured token", opts: Options{Secret: secret}, body: body, wantCode: 401},
		{name: "malformed body", opts: Options{Token: "t"}, target: "/webhooks/reducto?token=t", body: `{"status":`, wantCode: 400},
		{name: "no job id", opts: Options{Token: "t"}, target: "/webhooks/reducto?token=t", body: `{"status":"Completed"}`, wantCode: 400},
		{name: "invalid job id", opts: Options{Token: "t"}, target: "/webhooks/reducto?token=t", body: `{"job_id":"a.b"}`, wantCode: 400},
		{name: "unknown job is hinted (tracks it)", opts: Options{Token: "t"}, target: "/webhooks/reducto?token=t",
			body: `{"status":"Failed","job_id":"never-tracked"}`, wantCode: 200, wantHint: "never-tracked "},
		{name: "hint failure asks for a retry", opts: Options{Token: "t"}, target: "/webhooks/reducto?token=t", body: body,
			hintErr: errors.New("nats down"), wantCode: 503, wantHint: jobID + ` {"user_id":"123","document_type":"invoice"}`},
		{name: "too large", opts: Options{Token: "t"}, target: "/webhooks/reducto?token=t",
			body: `{"job_id":"x","metadata":"` + strings.Repeat("a", MaxBody) + `"}`, wantCode: 413},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			rec := &recorder{err: tt.hintErr}
			tt.opts.Now = func() time.Time { return now }
			h, err := New(rec, tt.opts)
			if err != nil {
				t.Fatal(err)
			}
			target := tt.target
			if target == "" {
				target = Path
			}
			req := httptest.NewRequest(http.MethodPost, target, strings.NewReader(tt.body))
			if tt.header != nil {
				tt.header(req.Header, tt.body)
			}
			w := httptest.NewRecorder()
			h.ServeHTTP(w, req)
			if w.Code != tt.wantCode {
				t.Errorf("status = %d (%s), want %d", w.Code, strings.TrimSpace(w.Body.String()), tt.wantCode)
			}
			var got string
			if len(rec.calls) > 0 {
				got = rec.calls[0]
			}
			if got != tt.wantHint || len(rec.calls) > 1 {
				t.Errorf("hints = %q, want %q", rec.calls, tt.wantHint)
			}
			if bytes.Contains(w.Body.Bytes(), []byte("s3cret")) {
				t.Error("response echoes the token")
			}
		})
	}
}

func TestNewRejectsBadSecret(t *testing.T) {
	for _, s := range []string{"nope", "whsec_", "whsec_!!notbase64"} {
		if _, err := New(&recorder{}, Options{Secret: s}); !errors.Is(err, ErrBadSecret) {
			t.Errorf("New(secret %q) = %v, want ErrBadSecret", s, err)
		}
	}
}

func TestMethodNotAllowed(t *testing.T) {
	h, _ := New(&recorder{}, Options{Token: "t"})
	w := httptest.NewRecorder()
	h.ServeHTTP(w, httptest.NewRequest(http.MethodGet, Path, nil))
	if w.Code != http.StatusMethodNotAllowed {
		t.Errorf("GET = %d, want 405", w.Code)
	}
}

// TestSlowBody: a sender that announces a body and trickles it is answered 400 once the read
// timeout passes, instead of holding the handler; nothing is hinted.
func TestSlowBody(t *testing.T) {
	rec := &recorder{}
	h, _ := New(rec, Options{Token: "t", ReadTimeout: 200 * time.Millisecond})
	srv := httptest.NewServer(h)
	defer srv.Close()
	conn, err := net.Dial("tcp", srv.Listener.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	fmt.Fprintf(conn, "POST %s?token=t HTTP/1.1\r\nHost: x\r\nContent-Length: 1000\r\n\r\n{\"job_id\":", Path)
	// Our own bound, far above the handler's: without one on the server side, this read times
	// out and the test fails.
	conn.SetReadDeadline(time.Now().Add(10 * time.Second))
	resp, err := http.ReadResponse(bufio.NewReader(conn), nil)
	if err != nil {
		t.Fatalf("no answer to a trickled body: %v", err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusBadRequest {
		t.Errorf("status = %d, want 400", resp.StatusCode)
	}
	if len(rec.calls) != 0 {
		t.Errorf("hinted %v", rec.calls)
	}
}

// FuzzParse: no body makes Parse panic, and an accepted job id is a valid token.
func FuzzParse(f *testing.F) {
	f.Add([]byte(`{"status":"Completed","job_id":"204a39e4-dd10-4c83-a978-0cee4af8cde2","metadata":{"user_id":"123"}}`))
	f.Add([]byte(`{"type":"async.update","data":{"status":"Failed","job_id":"a"}}`))
	f.Add([]byte(`{"job_id":"a.b"}`))
	f.Add([]byte(`{"job_id":"` + strings.Repeat("x", 300) + `"}`))
	f.Add([]byte(`{"job_id":"\xff"}`))
	f.Add([]byte(`{"data":null}`))
	f.Add([]byte(`[]`))
	f.Add([]byte(`null`))
	f.Fuzz(func(t *testing.T, body []byte) {
		p, err := Parse(body)
		if err != nil {
			return
		}
		if p.JobID == "" || strings.ContainsAny(p.JobID, ".*> \t\r\n") || len(p.JobID) > 256 {
			t.Fatalf("accepted job id %q", p.JobID)
		}
		if p.Metadata != nil && !json.Valid(p.Metadata) {
			t.Fatalf("metadata not JSON: %q", p.Metadata)
		}
	})
}

// TestRefusedBeforeBody: a request that cannot be authentic is answered from its headers
// alone. Each one announces a body and sends none; the handler's body read timeout is an
// hour, so an answer within the test's 10 s bound means the body was never waited for. The
// answer closes the connection, so the server does not read the body either.
func TestRefusedBeforeBody(t *testing.T) {
	fresh := strconv.FormatInt(time.Now().Unix(), 10)
	stale := strconv.FormatInt(time.Now().Add(-time.Hour).Unix(), 10)
	tests := []struct {
		name    string
		opts    Options
		request string // up to the blank line
		want    int
	}{
		{"no svix headers and no token, large body", Options{Token: "t"},
			"POST " + Path + " HTTP/1.1\r\nHost: x\r\nContent-Length: 1000000\r\n", 401},
		{"no svix headers and no token, small body", Options{Token: "t", Secret: secret},
			"POST " + Path + " HTTP/1.1\r\nHost: x\r\nContent-Length: 100000\r\n", 401},
		{"no svix headers and no token, chunked", Options{Token: "t"},
			"POST " + Path + " HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n", 401},
		{"unsigned without a configured token", Options{Secret: secret},
			"POST " + Path + " HTTP/1.1\r\nHost: x\r\nContent-Length: 1000\r\n", 401},
		{"wrong token parameter", Options{Token: "t"},
			"POST " + Path + "?token=guess HTTP/1.1\r\nHost: x\r\nContent-Length: 1000\r\n", 401},
		{"incomplete svix headers", Options{Secret: secret},
			"POST " + Path + " HTTP/1.1\r\nHost: x\r\nsvix-id: msg_1\r\nContent-Length: 1000\r\n", 401},
		{"stale svix timestamp", Options{Secret: secret},
			"POST " + Path + " HTTP/1.1\r\nHost: x\r\nsvix-id: msg_1\r\nsvix-timestamp: " + stale + "\r\nsvix-signature: v1,AAAA\r\nContent-Length: 1000\r\n", 401},
		{"svix headers without a configured secret", Options{Token: "t"},
			"POST " + Path + " HTTP/1.1\r\nHost: x\r\nsvix-id: msg_1\r\nsvix-timestamp: " + fresh + "\r\nsvix-signature: v1,AAAA\r\nContent-Length: 1000\r\n", 401},
		{"declared body too large", Options{Token: "t"},
			"POST " + Path + "?token=t HTTP/1.1\r\nHost: x\r\nContent-Length: 2000000\r\n", 413},
		{"GET", Options{Token: "t"},
			"GET " + Path + " HTTP/1.1\r\nHost: x\r\nContent-Length: 1000\r\n", 405},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			rec := &recorder{}
			tt.opts.ReadTimeout = time.Hour
			h, err := New(rec, tt.opts)
			if err != nil {
				t.Fatal(err)
			}
			srv := httptest.NewServer(h)
			defer srv.Close()
			conn, err := net.Dial("tcp", srv.Listener.Addr().String())
			if err != nil {
				t.Fatal(err)
			}
			defer conn.Close()
			fmt.Fprint(conn, tt.request+"\r\n")
			conn.SetReadDeadline(time.Now().Add(10 * time.Second))
			resp, err := http.ReadResponse(bufio.NewReader(conn), nil)
			if err != nil {
				t.Fatalf("no answer without the body: %v", err)
			}
			resp.Body.Close()
			if resp.StatusCode != tt.want {
				t.Errorf("status = %d, want %d", resp.StatusCode, tt.want)
			}
			if !resp.Close {
				t.Error("the answer keeps the connection open (the server would then read the body)")
			}
			if len(rec.calls) != 0 {
				t.Errorf("hinted %v", rec.calls)
			}
		})
	}
}

// TestMetadataTokenNeedsSmallDeclaredBody: a direct webhook whose token is only in the
// metadata is accepted with a declared Content-Length up to MaxMetadataTokenBody, and refused
// above it even when the token is right.
func TestMetadataTokenNeedsSmallDeclaredBody(t *testing.T) {
	mk := func(pad int) string {
		return `{"status":"Completed","job_id":"` + jobID + `","metadata":{"webhook_token":"s3cret","pad":"` + strings.Repeat("a", pad) + `"}}`
	}
	small := mk(100)
	big := mk(MaxMetadataTokenBody)
	for _, tc := range []struct {
		body string
		want int
	}{{small, 200}, {big, 401}} {
		rec := &recorder{}
		h, _ := New(rec, Options{Token: "s3cret"})
		w := httptest.NewRecorder()
		h.ServeHTTP(w, httptest.NewRequest(http.MethodPost, Path, strings.NewReader(tc.body)))
		if w.Code != tc.want {
			t.Errorf("metadata token, body of %d bytes: status = %d, want %d", len(tc.body), w.Code, tc.want)
		}
		// The same body with the token in the query is fine either way.
		rec = &recorder{}
		h, _ = New(rec, Options{Token: "s3cret"})
		w = httptest.NewRecorder()
		h.ServeHTTP(w, httptest.NewRequest(http.MethodPost, Path+"?token=s3cret", strings.NewReader(tc.body)))
		if w.Code != 200 {
			t.Errorf("query token, body of %d bytes: status = %d, want 200", len(tc.body), w.Code)
		}
	}
}
