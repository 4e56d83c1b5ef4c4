package reducto

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"net/http"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"
	"unicode/utf8"
)

// The fuzz targets below run their seeds with every `go test`; fuzz one with, for example,
//
//	go test -run '^$' -fuzz '^FuzzDecodeJob$' -fuzztime 2m ./reducto

// jobSeeds are GET /job bodies: the documented shapes, then hostile ones.
var jobSeeds = []string{
	`{"status":"Pending","result":{"job_id":"job_id","duration":0,"usage":{"num_pages":0},"result":{},"response_type":"parse","pdf_url":"pdf_url","studio_link":"studio_link","document_properties":{}},"progress":0,"reason":"reason","error":{"code":0,"name":"TIMEOUT","message":"message","job_id":"job_id"}}`,
	`{ "status": "Completed", "result": null, "progress": null, "reason": null, "type": "Parse", "num_pages": null, "total_pages": null, "source": null, "duration": null, "created_at": null, "raw_config": null, "bucket": null }`,
	`{"status":"Completed","progress":100,"type":"Parse","num_pages":7,"total_pages":7,"duration":12.4,"created_at":"2026-11-29T14:00:00.123Z","result":{"job_id":"j","duration":12.4,"usage":{"num_pages":7},"result":{"type":"full","chunks":[{"content":"héllo \u00e9"}]}}}`,
	`{"status":"Completed","result":{"job_id":"j","duration":1,"usage":{"num_pages":900},"result":{"type":"url","url":"https://s3/x.json","result_id":"r1"}}}`,
	`{"status":"Completed","type":"Extract","result":{"usage":{"num_pages":1,"num_fields":2},"result":[{"total":3}],"citations":null}}`,
	`{"status":"Failed","reason":"The document is corrupt","error":{"code":400,"name":"DOCUMENT_CORRUPT","message":"could not open","job_id":"j"}}`,
	`{"status":"Failed","error":{"code":499,"name":"JOB_CANCELLED"}}`,
	`{"status":"Failed","error":{"code":499,"name":"job_cancelled"}}`,
	`{"status":"Failed","reason":"Job was cancelled by the user"}`,
	`{"status":"Cancelled"}`,
	`{"status":"Canceled"}`,
	`{"status":"CANCELLED"}`,
	`{"status":"Idle"}`,
	`{"status":"InProgress","progress":42.5}`,
	`{"status":"Completing"}`,
	`{"status":"Thinking"}`,
	`{"status":"completed"}`,
	`{"status":"Pending","new_field":{"x":[1,2]},"studio_link":"s"}`,
	`{"status":"Failed","error":"boom"}`,
	`{"status":"Failed","error":[1,2,3]}`,
	`{"status":"Failed","error":{"code":"400"}}`,
	`{"status":"Completed","created_at":"2026-11-29T14:00:00.123456"}`,
	`{"status":"Completed","created_at":"2026-11-29 14:00:00+00:00"}`,
	`{"status":"Completed","created_at":"yesterday"}`,
	`{"status":"Completed","num_pages":3.0,"total_pages":"2","duration":"12","progress":"50","reason":5,"type":{},"created_at":12345}`,
	`{"status":"Failed","error":{"code":400.0,"name":"DOCUMENT_CORRUPT","job_id":"j","later":[1]}}`,
	`{"status":"Failed","error":{"code":"4e2","name":7,"message":{}}}`,
	`{"status":"Completed","num_pages":"NaN","duration":"Infinity","progress":"0x1p3"}`,
	// Malformed or hostile.
	``,
	`null`,
	`[]`,
	`"Completed"`,
	`{}`,
	`{"status":""}`,
	`{"status":3}`,
	`{"status":null}`,
	`{"status":"Completed","num_pages":7.5}`,
	`{"status":"Completed","num_pages":1e400}`,
	`{"status":"Completed","progress":1e400}`,
	`{"status":"Completed","num_pages":99999999999999999999999}`,
	`{"status":"Completed","result":{"chunks":[`,
	`<!doctype html><html>maintenance</html>`,
	"\xef\xbb\xbf{\"status\":\"Completed\"}",
	"{\"status\":\"Compl\xffeted\"}",
	"{\"status\":\"Failed\",\"reason\":\"\xff\xfe cancel\"}",
	"{\"status\":\"Completed\",\"result\":\"\xff\"}",
	`{"status":"Completed","status":"Pending"}`,
	`{"Status":"Completed"}`,
	`{"status":"Completed\u0000"}`,
	`{"status":"\u0043ompleted"}`,
	`{"status":"Failed","reason":"\ud800"}`,
	strings.Repeat(`[`, 20000),
	`{"status":"Completed","result":` + strings.Repeat(`[`, 5000) + strings.Repeat(`]`, 5000) + `}`,
}

// FuzzDecodeJob: decodeJob never panics; it either fails with ErrMalformedResponse or returns a
// job whose status is set and whose Outcome agrees with Terminal.
func FuzzDecodeJob(f *testing.F) {
	for _, s := range jobSeeds {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, body []byte) {
		j, dropped, err := decodeJob("job-1", body)
		if err != nil {
			if j != nil || dropped != nil {
				t.Fatalf("decodeJob returned a job (or dropped fields) and an error: %v", err)
			}
			if !errors.Is(err, ErrMalformedResponse) {
				t.Fatalf("error %v does not match ErrMalformedResponse", err)
			}
			if !IsTransient(err) {
				t.Fatalf("malformed body not transient: %v", err)
			}
			return
		}
		if j == nil {
			t.Fatal("decodeJob returned neither a job nor an error")
		}
		if j.ID != "job-1" {
			t.Errorf("ID = %q, want job-1", j.ID)
		}
		if j.Status == "" {
			t.Error("accepted a job without a status")
		}
		out := j.Outcome()
		switch out {
		case "", OutcomeCompleted, OutcomeFailed, OutcomeCancelled:
		default:
			t.Errorf("outcome %q is not one of the event kinds", out)
		}
		if got, want := j.Status.Terminal(), out != ""; got != want {
			t.Errorf("status %q: Terminal() = %v but Outcome() = %q", j.Status, got, out)
		}
		if j.Result != nil && (!json.Valid(j.Result) || bytes.Equal(j.Result, []byte("null"))) {
			t.Errorf("result %q is not a non-null JSON value", j.Result)
		}
		if j.Result != nil && !bytes.Contains(body, j.Result) {
			t.Errorf("result %q is not verbatim from the body", j.Result)
		}
		if j.Error != nil && (!json.Valid(j.Error.Raw) || !bytes.Contains(body, j.Error.Raw)) {
			t.Errorf("error raw %q is not a JSON value verbatim from the body", j.Error.Raw)
		}
		for _, name := range dropped {
			if !knownFields[name] {
				t.Errorf("dropped %q, not a field name", name)
			}
		}
	})
}

// knownFields are the names decodeJob may report as dropped.
var knownFields = map[string]bool{
	"progress": true, "reason": true, "type": true, "duration": true, "num_pages": true,
	"total_pages": true, "created_at": true, "error.code": true, "error.name": true, "error.message": true,
}

// FuzzDecodeJobOptionalField: whatever JSON value an optional field holds, the status and the
// result are read, the result byte for byte.
func FuzzDecodeJobOptionalField(f *testing.F) {
	fields := []string{"progress", "reason", "type", "duration", "num_pages", "total_pages", "created_at", "error"}
	for i, v := range []string{
		`3.0`, `"3"`, `3.5`, `-0`, `1e400`, `99999999999999999999999`, `"NaN"`, `"0x10"`, `" 12 "`,
		`12345`, `5`, `{}`, `[]`, `true`, `null`, `"some string"`, `{"code":400.0}`, `{"code":"400"}`,
		`{"code":{},"name":7,"message":[1]}`, `"\ud800"`, `{"a":` + strings.Repeat(`[`, 1000) + strings.Repeat(`]`, 1000) + `}`,
	} {
		f.Add(uint8(i), v)
	}
	const result = `{"job_id":"j","result":{"type":"full","chunks":[{"content":"h\u00e9"}]}}`
	f.Fuzz(func(t *testing.T, field uint8, value string) {
		if !json.Valid([]byte(value)) {
			return
		}
		name := fields[int(field)%len(fields)]
		body := `{"status":"Failed","result":` + result + `,"` + name + `":` + value + `}`
		j, _, err := decodeJob("job-1", []byte(body))
		if err != nil {
			t.Fatalf("%s: %s: %v", name, value, err)
		}
		if j.Status != StatusFailed || string(j.Result) != result {
			t.Fatalf("%s: %s: status %q result %s", name, value, j.Status, j.Result)
		}
	})
}

// fuzzKey is the API key of the fuzzed client. The seeds hide it in bodies in every way a
// server could echo it: raw, JSON-escaped, split across validation items, at the truncation
// boundary, in a header.
const fuzzKey = "sk-live-FUZZ-7e3b9d"

// escapedKey is fuzzKey with every character written as a JSON \u escape.
func escapedKey() string {
	var b strings.Builder
	for _, r := range fuzzKey {
		fmt.Fprintf(&b, `\u%04x`, r)
	}
	return b.String()
}

// FuzzAPIError: the error of a non-2xx answer is built without panicking, its message never
// exceeds the cap, it never contains the API key, and its classification follows the status.
func FuzzAPIError(f *testing.F) {
	long := strings.Repeat("é", 400) // 800 bytes: the cap falls inside a rune
	seeds := []struct {
		status                 int
		body, ct, ra, raMillis string
	}{
		{422, `{"detail": [{"loc": ["loc"], "msg": "msg", "type": "type", "ctx": {}}]}`, "application/json", "", ""},
		{422, `{"detail":[{"loc":["body","input",0],"msg":"Field required","type":"missing"}]}`, "application/json", "", ""},
		{404, `{"detail":"Job not found"}`, "application/json", "", ""},
		{400, `{"error":{"message":"Failed to download file from url","type":"file_download_failure","code":400}}`, "application/json", "", ""},
		{410, `{"error":{"message":"Job has been deleted","type":"JOB_DELETED","code":410}}`, "", "", ""},
		{409, `{"error":{"message":"in progress","type":"JOB_DELETION_IN_PROGRESS","code":409}}`, "", "", ""},
		{401, `{"detail":"Not authenticated"}`, "", "", ""},
		{403, ``, "", "", ""},
		{403, `<!DOCTYPE html><html><body>Forbidden</body></html>`, "text/html", "", ""},
		{401, `<html>` + fuzzKey + `</html>`, "text/html", "", ""},
		{404, `<html>Not Found</html>`, "text/html", "", ""},
		{501, ``, "", "", ""},
		{599, `{"detail":"x"}`, "", "", ""},
		{429, `{"message": "[CODE 2000] rate limit exceeded, please use webhooks instead of polling"}`, "application/json", "", ""},
		{429, `{"message": "[CODE 1000] rate limit exceeded, retry with exponential backoff"}`, "application/json", "2", ""},
		{429, `{"message":"Too Many Requests"}`, "", "", "1500"},
		{429, `{"message":"[CODE 99999999999999999999999] x"}`, "", "3600", ""},
		{429, ``, "", "Wed, 21 Oct 2015 07:28:00 GMT", ""},
		{429, ``, "", "1e300", ""},
		{429, ``, "", "", "1e300"},
		{429, ``, "", "Inf", "NaN"},
		{429, ``, "", "-5", "-1"},
		{408, ``, "", "", ""},
		{500, `{"error":{"message":"content extraction error","type":"internal","code":500}}`, "", "", ""},
		{502, `<html><body>Bad Gateway</body></html>`, "text/html", "", ""},
		{503, `{"detail":"Service unavailable"}`, "", "", ""},
		{442, `{"error":{"message":"password","type":"document_access_error","code":442}}`, "", "", ""},
		{400, `{"oops":1}`, "", "", ""},
		{400, `{"detail":{"nested":[1,2]}}`, "", "", ""},
		{400, `{"detail":null,"message":"m"}`, "", "", ""},
		{400, `{"error":null,"detail":"d"}`, "", "", ""},
		{400, `{"error":{"message":""},"message":"flat"}`, "", "", ""},
		{0, ``, "", "", ""},
		{-1, `{}`, "", "", ""},
		{999, `{"detail":"x"}`, "", "", ""},
		// The key, echoed back in every shape.
		{401, `{"detail":"you sent Bearer ` + fuzzKey + `"}`, "", "", ""},
		{401, `{"detail":"you sent Bearer ` + escapedKey() + `"}`, "", "", ""},
		{401, `{"detail":"you sent Bearer \u0073k-live-FUZZ-7e3b9d"}`, "", "", ""},
		{400, `{"error":{"message":"m","type":"` + escapedKey() + `"}}`, "", "", ""},
		{400, `{"error":{"message":"m","name":"` + fuzzKey + `"}}`, "", "", ""},
		{422, `{"detail":[{"loc":["sk-live","FUZZ-7e3b9d"],"msg":"bad"}]}`, "", "", ""},
		{422, `{"detail":[{"loc":[],"msg":"sk-live-FUZZ"},{"loc":[],"msg":"-7e3b9d"}]}`, "", "", ""},
		{400, `{"detail":{"echo":"` + escapedKey() + `"}}`, "", "", ""},
		{400, `{"detail":"` + strings.Repeat("x", 500) + escapedKey() + `"}`, "", "", ""},
		{502, `<html>` + fuzzKey + `</html>`, "text/html; key=" + fuzzKey, "", ""},
		// Long and broken text.
		{400, `{"detail":"` + long + `"}`, "", "", ""},
		{400, `{"message":"` + strings.Repeat("x", 511) + `é"}`, "", "", ""},
		{400, "{\"detail\":\"\xff\xfe\"}", "", "", ""},
		{400, "{\"detail\":[\"\xff\"]}", "", "", ""},
		{400, "\xff\xfe", "text/plain\xff", "", ""},
		{400, strings.Repeat(`{"detail":`, 20000), "", "", ""},
	}
	for _, s := range seeds {
		f.Add(s.status, []byte(s.body), s.ct, s.ra, s.raMillis)
	}
	const retryMax = time.Minute
	c, err := New("http://127.0.0.1:1", fuzzKey, WithRetryAfterMax(retryMax))
	if err != nil {
		f.Fatal(err)
	}
	f.Fuzz(func(t *testing.T, status int, body []byte, ct, ra, raMillis string) {
		h := http.Header{}
		for k, v := range map[string]string{"Content-Type": ct, "Retry-After": ra, "Retry-After-Ms": raMillis} {
			if v != "" {
				h.Set(k, v)
			}
		}
		e := c.apiError("get job", status, h, body)
		if e == nil {
			t.Fatal("nil error")
		}
		if e.StatusCode != status || e.Op != "get job" {
			t.Errorf("status, op = %d, %q, want %d, get job", e.StatusCode, e.Op, status)
		}
		if len(e.Message) > maxMessage+len("...") {
			t.Errorf("message of %d bytes, cap %d", len(e.Message), maxMessage)
		}
		if utf8.Valid(body) && utf8.ValidString(ct) && !utf8.ValidString(e.Message) {
			t.Errorf("message %q is not valid UTF-8 although its sources are", e.Message)
		}
		for _, s := range []string{e.Error(), e.Message, e.Name, fmt.Sprintf("%+v", e), fmt.Sprintf("%#v", e)} {
			if strings.Contains(s, fuzzKey) || strings.Contains(unescapeJSON(s), fuzzKey) {
				t.Fatalf("error contains the API key: %q", s)
			}
		}
		if e.RetryAfter < 0 || e.RetryAfter > retryMax {
			t.Errorf("RetryAfter = %v, want within [0, %v]", e.RetryAfter, retryMax)
		}
		if status != http.StatusTooManyRequests && e.RateLimitCode != 0 {
			t.Errorf("rate limit code %d on a %d", e.RateLimitCode, status)
		}
		if got, want := errors.Is(e, ErrRateLimited), status == http.StatusTooManyRequests; got != want {
			t.Errorf("errors.Is(ErrRateLimited) = %v on a %d", got, status)
		}
		switch {
		case status == 401, status == 403:
			if IsTransient(e) || errors.Is(e, ErrMalformedResponse) || !errors.Is(e, ErrUnauthorized) {
				t.Errorf("a %d is not unauthorized only (transient %v, malformed %v)", status, IsTransient(e), errors.Is(e, ErrMalformedResponse))
			}
		case status == 408, status == 429, status >= 500 && status <= 599:
			if !IsTransient(e) {
				t.Errorf("a %d is not transient", status)
			}
		case errors.Is(e, ErrMalformedResponse):
			if !IsTransient(e) {
				t.Errorf("a malformed %d is not transient", status)
			}
		}
	})
}

var jsonEscape = regexp.MustCompile(`\\u[0-9a-fA-F]{4}`)

// unescapeJSON resolves the \u escapes of s: how a message reads to whoever decodes it.
func unescapeJSON(s string) string {
	return jsonEscape.ReplaceAllStringFunc(s, func(esc string) string {
		r, _ := strconv.ParseUint(esc[2:], 16, 32)
		return string(rune(r))
	})
}

// FuzzParseRetryAfter: the delay is never negative, never above the cap, and a server asking
// for a wait of a second or more never gets "retry at once" (huge values must saturate, not
// overflow).
func FuzzParseRetryAfter(f *testing.F) {
	for _, s := range []struct {
		ra, ms string
		max    int64
	}{
		{"3", "", int64(time.Minute)},
		{"3600", "", int64(time.Minute)},
		{"", "1500", int64(time.Minute)},
		{"250.5", "", 0},
		{"9", "250.5", int64(time.Minute)},
		{"Wed, 21 Oct 2015 07:28:00 GMT", "", int64(time.Minute)},
		{"Fri, 31 Dec 9999 23:59:59 GMT", "", 0},
		{"soon", "later", int64(time.Minute)},
		{"-5", "-1", int64(time.Minute)},
		{"0", "0", int64(time.Minute)},
		{"1e300", "", int64(time.Minute)},
		{"", "1e300", int64(time.Minute)},
		{"1e10", "", 0},
		{"9223372037", "", 0},
		{"Inf", "", int64(time.Minute)},
		{"+Inf", "NaN", 0},
		{"NaN", "", int64(time.Minute)},
		{"0x1p40", "", int64(time.Minute)},
		{"1e-300", "", int64(time.Minute)},
		{" 7 ", "", int64(time.Minute)},
		{"\xff", "\x00", -1},
	} {
		f.Add(s.ra, s.ms, s.max)
	}
	now := time.Date(2026, 11, 29, 12, 0, 0, 0, time.UTC)
	f.Fuzz(func(t *testing.T, ra, ms string, maxNanos int64) {
		h := http.Header{}
		if ra != "" {
			h.Set("Retry-After", ra)
		}
		if ms != "" {
			h.Set("Retry-After-Ms", ms)
		}
		limit := time.Duration(maxNanos)
		d := parseRetryAfter(h, now, limit)
		if d < 0 {
			t.Fatalf("negative delay %v", d)
		}
		if limit > 0 && d > limit {
			t.Fatalf("delay %v above the cap %v", d, limit)
		}
		// What the server asked for, in seconds, when it asked in numbers.
		asked := math.NaN()
		if v, err := strconv.ParseFloat(strings.TrimSpace(h.Get("Retry-After-Ms")), 64); err == nil && v > 0 {
			asked = v / 1000
		} else if v, err := strconv.ParseFloat(strings.TrimSpace(h.Get("Retry-After")), 64); err == nil && v > 0 {
			asked = v
		}
		if asked >= 1 && d == 0 {
			t.Fatalf("a wait of %gs became 0", asked)
		}
		if asked >= 1 && !math.IsInf(asked, 0) && asked < 1e9 {
			want := time.Duration(asked * float64(time.Second))
			if limit > 0 {
				want = min(want, limit)
			}
			if diff := d - want; diff < -time.Microsecond || diff > time.Microsecond {
				t.Fatalf("a wait of %gs became %v, want %v", asked, d, want)
			}
		}
	})
}
