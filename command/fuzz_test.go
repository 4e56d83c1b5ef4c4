package command

import (
	"bytes"
	"encoding/json"
	"strings"
	"testing"
	"unicode/utf8"

	"github.com/reducto-bridge/reducto-bridge/reducto"
	"github.com/reducto-bridge/reducto-bridge/subject"
)

// The fuzz targets below run their seeds with every `go test`; fuzz one with, for example,
//
//	go test -run '^$' -fuzz '^FuzzDecodeCancel$' -fuzztime 2m ./command

// FuzzDecodeCancel: a cancel request never panics the decoder; it is either refused with a 400
// and a clean description, or yields a job id that is one valid subject token and is what the
// request said.
func FuzzDecodeCancel(f *testing.F) {
	for _, s := range []string{
		`{"job_id":"204a39e4-dd10-4c83-a978-0cee4af8cde2"}`,
		`{"job_id":"x","extra":[1,2,3]}`,
		`{"job_id":"\u0061bc"}`,
		`{"job_id":"café"}`,
		`{"job_id":"` + strings.Repeat("a", 256) + `"}`,
		`{"job_id":"` + strings.Repeat("a", 300) + `"}`,
		`{"job_id":"a.b"}`,
		`{"job_id":"a*"}`,
		`{"job_id":">"}`,
		`{"job_id":"a b"}`,
		`{"job_id":"a\tb"}`,
		`{"job_id":"a\u0000b"}`,
		`{"job_id":"\ud800"}`,
		`{"job_id":""}`,
		`{"job_id":null}`,
		`{"job_id":3}`,
		`{"job_id":["a"]}`,
		`{"JOB_ID":"x"}`,
		`{"job_id":"x","job_id":"y"}`,
		`{}`,
		`[]`,
		`null`,
		`"x"`,
		``,
		`{`,
		`not json`,
		"\xff\xfe",
		"{\"job_id\":\"\xff\"}",
		"{\"job_id\":\"ab\xffcd\"}",
		"{\"job_id\":\"ok\",\"x\":\"\xff\"}",
		"\xef\xbb\xbf{\"job_id\":\"x\"}",
		strings.Repeat(`{"job_id":`, 12000),
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		id, res, ok := decodeCancel(data)
		if !ok {
			if res.code != 400 || !strings.HasPrefix(res.desc, "bad request") {
				t.Fatalf("refusal = %d %q, want 400 bad request", res.code, res.desc)
			}
			if hv := headerValue(res.desc); len(hv) > maxDescription+len("...") || strings.ContainsAny(hv, "\r\n") {
				t.Fatalf("description %q is not one bounded header line", hv)
			}
			return
		}
		if err := subject.ValidJobID(id); err != nil {
			t.Fatalf("accepted id %q: %v", id, err)
		}
		if !utf8.Valid(data) {
			t.Fatalf("accepted a request that is not UTF-8: %q", data)
		}
		var req CancelRequest
		if err := json.Unmarshal(data, &req); err != nil || req.JobID != id {
			t.Fatalf("id %q, but the request says %q (%v)", id, req.JobID, err)
		}
	})
}

// FuzzSubmitBody: a submit request never panics decoding or body building; a body that goes to
// Reducto is valid JSON in UTF-8, keeps every top-level key of the caller's body with its
// value, keeps the caller's own webhook and metadata, and carries the bridge's when the caller
// set none.
func FuzzSubmitBody(f *testing.F) {
	for _, s := range []struct {
		req  string
		mode uint8 // 0: no webhook, 1: direct, 2: svix
	}{
		{`{"endpoint":"parse","body":{"input":"https://x/a.pdf?a=1&b=<2>","async":{"priority":true}},"metadata":{"tenant":"t1","n":[1, 2]}}`, 1},
		{`{"endpoint":"extract","body":{"input":"jobid://abc","instructions":{"schema":{}}}}`, 1},
		{`{"endpoint":"split","body":{"input":"x"}}`, 0},
		{`{"endpoint":"pipeline","body":{"input":"x","pipeline_id":"p"},"metadata":"m"}`, 2},
		{`{"endpoint":"parse","body":{"input":"x","async":{"webhook":{"mode":"svix"},"metadata":{"mine":1}}},"metadata":{"theirs":2}}`, 1},
		{`{"endpoint":"edit","body":{"document_url":"x","edit_instructions":"y"},"metadata":{"a":1}}`, 1},
		{`{"endpoint":"edit","body":{"document_url":"x","webhook":{"mode":"direct","url":"https://me"}},"metadata":{"a":1}}`, 0},
		{`{"endpoint":"edit","body":{"document_url":"x","webhook":null},"metadata":{"a":1}}`, 0},
		{`{"endpoint":"parse","body":{"input":"x","async":null},"metadata":1}`, 0},
		{`{"endpoint":"parse","body":{"input":"x","async":"no"}}`, 1},
		{`{"endpoint":"parse","body":{"input":"x","async":{"metadata":null}},"metadata":{"m":1}}`, 0},
		{`{"endpoint":"parse","body":{"input":"x"},"metadata":null}`, 1},
		{`{"endpoint":"parse","body":{"input":"<&>\u2028","\u0061sync":{"priority":true}},"metadata":"x"}`, 2},
		{`{"endpoint":"parse","body":{"input":"x","async":{"a":1},"async":{"b":2}},"metadata":3}`, 1},
		{`{"endpoint":"parse","body":{"input":1e400,"n":12345678901234567890123},"metadata":{"big":1e400}}`, 1},
		{`{"endpoint":"parse","body":{}}`, 1},
		{`{"endpoint":"parse","body":{"":1,"a b":2}}`, 1},
		{`{"endpoint":"PARSE","body":{}}`, 0},
		{`{"endpoint":"parse_async","body":{}}`, 0},
		{`{"endpoint":3,"body":{}}`, 0},
		{`{"endpoint":"parse","body":[]}`, 0},
		{`{"endpoint":"parse","body":"x"}`, 0},
		{`{"endpoint":"parse"}`, 0},
		{`{"body":{}}`, 0},
		{`{}`, 0},
		{`[]`, 0},
		{``, 0},
		{`{"endpoint":"parse","body":{"input":"x"}`, 0},
		{"{\"endpoint\":\"parse\",\"body\":{\"input\":\"\xff\"},\"metadata\":1}", 1},
		{"{\"endpoint\":\"parse\",\"body\":{\"k\xff\":1},\"metadata\":1}", 1},
		{"{\"endpoint\":\"parse\",\"body\":{\"input\":\"x\"},\"metadata\":\"\xfe\"}", 0},
		{`{"endpoint":"parse","body":{"input":"x"},"metadata":"\ud800"}`, 1},
		{`{"endpoint":"parse","body":{"input":` + strings.Repeat(`[`, 9000) + strings.Repeat(`]`, 9000) + `}}`, 1},
	} {
		f.Add([]byte(s.req), s.mode)
	}
	services := make([]*Service, 3)
	for i, o := range []struct {
		public string
		svix   bool
	}{{"", false}, {"https://bridge.example.com/b", false}, {"https://bridge.example.com", true}} {
		wh, err := newWebhookConfig(o.public, "t&k", o.svix)
		if err != nil {
			f.Fatal(err)
		}
		services[i] = &Service{webhook: wh}
	}
	f.Fuzz(func(t *testing.T, data []byte, mode uint8) {
		s := services[int(mode)%len(services)]
		req, res, ok := decodeSubmit(data)
		if !ok {
			if res.code != 400 || !strings.HasPrefix(res.desc, "bad request") {
				t.Fatalf("refusal = %d %q, want 400 bad request", res.code, res.desc)
			}
			return
		}
		if !req.Endpoint.Valid() {
			t.Fatalf("accepted endpoint %q", req.Endpoint)
		}
		if !utf8.Valid(data) {
			t.Fatalf("accepted a request that is not UTF-8: %q", data)
		}
		body, _, res, ok := s.reductoBody(req)
		if !ok {
			if res.code != 400 {
				t.Fatalf("body refused with %d %q (%v), want 400", res.code, res.desc, res.err)
			}
			return
		}
		if !json.Valid(body) || !utf8.Valid(body) {
			t.Fatalf("body %q is not valid JSON in UTF-8", body)
		}
		caller, _ := object(req.Body)
		sent, isObject := object(body)
		if !isObject {
			t.Fatalf("body %q is not a JSON object", body)
		}
		key := "async"
		if req.Endpoint == reducto.EndpointEdit {
			key = "webhook"
		}
		for k, v := range caller {
			got, present := sent[k]
			if !present {
				t.Fatalf("caller's key %q missing from %s", k, body)
			}
			if k != key && !sameJSON(got, v) {
				t.Fatalf("caller's %q = %s, sent %s", k, v, got)
			}
		}
		if len(sent) != len(caller) && !(len(sent) == len(caller)+1 && caller[key] == nil) {
			t.Fatalf("keys added besides %q: caller %d, sent %d", key, len(caller), len(sent))
		}
		callerInner, _ := object(caller[key])
		sentInner, _ := object(sent[key])
		for k, v := range callerInner {
			if isNull(v) && (k == "metadata" || k == "webhook") {
				continue // unset: the bridge may fill it in
			}
			if !sameJSON(sentInner[k], v) {
				t.Fatalf("caller's %s.%s = %s, sent %s", key, k, v, sentInner[k])
			}
		}
		// What the bridge adds, where the caller left it unset.
		if req.Metadata != nil && sentInner != nil && isNull(callerInner["metadata"]) && !sameJSON(sentInner["metadata"], req.Metadata) {
			t.Fatalf("%s.metadata = %s, want the request's %s", key, sentInner["metadata"], req.Metadata)
		}
		if req.Endpoint != reducto.EndpointEdit && req.Metadata != nil && isNull(callerInner["metadata"]) && sentInner == nil {
			t.Fatalf("metadata not added to %s", body)
		}
		if s.webhook != nil && req.Endpoint != reducto.EndpointEdit && isNull(callerInner["webhook"]) {
			want, _ := encode(s.webhook.fields())
			if !sameJSON(sentInner["webhook"], want) {
				t.Fatalf("async.webhook = %s, want %s", sentInner["webhook"], want)
			}
		}
	})
}

// sameJSON compares two JSON values after compacting (what re-encoding may change).
func sameJSON(a, b json.RawMessage) bool {
	var ca, cb bytes.Buffer
	if json.Compact(&ca, a) != nil || json.Compact(&cb, b) != nil {
		return bytes.Equal(a, b)
	}
	return bytes.Equal(ca.Bytes(), cb.Bytes())
}
