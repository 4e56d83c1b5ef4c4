package main

import (
	"context"
	"io"
	"net/http"
	"strings"
	"testing"
	"time"
)

// startSimCmd runs 'bridge sim' with args on a free port until the test ends and returns its
// base URL.
func startSimCmd(t *testing.T, args ...string) string {
	t.Helper()
	ctx, cancel := context.WithCancel(t.Context())
	pr, pw := io.Pipe()
	errc := make(chan error, 1)
	go func() {
		errc <- runSim(ctx, append([]string{"-addr", "127.0.0.1:0", "-api-key", "k"}, args...), pw, io.Discard)
		pw.Close()
	}()
	t.Cleanup(func() {
		cancel()
		if err := <-errc; err != nil {
			t.Errorf("sim exited with %v", err)
		}
	})
	line := make([]byte, 200)
	n, _ := pr.Read(line)
	_, addr, ok := strings.Cut(strings.TrimSpace(string(line[:n])), "http://")
	if !ok {
		t.Fatalf("no address in %q", line[:n])
	}
	addr, _, _ = strings.Cut(addr, " ")
	go io.Copy(io.Discard, pr)
	return "http://" + addr
}

type simReply struct {
	code int
	ct   string
	body string
}

func simDo(t *testing.T, method, url, auth, body string) simReply {
	t.Helper()
	req, err := http.NewRequest(method, url, strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	if auth != "" {
		req.Header.Set("Authorization", auth)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return simReply{code: resp.StatusCode, ct: resp.Header.Get("Content-Type"), body: string(b)}
}

// simSubmit submits a parse job and returns its id.
func simSubmit(t *testing.T, base string) string {
	t.Helper()
	r := simDo(t, "POST", base+"/parse_async", "Bearer k", `{"input":"https://x/a.pdf"}`)
	_, rest, ok := strings.Cut(r.body, `"job_id":"`)
	id, _, _ := strings.Cut(rest, `"`)
	if r.code != 200 || !ok || id == "" {
		t.Fatalf("submit: %d %s", r.code, r.body)
	}
	return id
}

// TestSimFlags checks the flags of 'bridge sim' that shape GET /job answers. Jobs are queued
// or running for an hour, so that no answer depends on timing.
func TestSimFlags(t *testing.T) {
	tests := []struct {
		name  string
		args  []string
		check func(t *testing.T, base, id string)
	}{
		{"default statuses keep to the GET /job enum", []string{"-queue", "1h"}, func(t *testing.T, base, id string) {
			if r := simDo(t, "GET", base+"/job/"+id, "Bearer k", ""); r.code != 200 || !strings.Contains(r.body, `"status":"Idle"`) {
				t.Errorf("queued job: got %d %s, want Idle", r.code, r.body)
			}
		}},
		{"default running is Pending", []string{"-median", "1h", "-sigma", "0"}, func(t *testing.T, base, id string) {
			if r := simDo(t, "GET", base+"/job/"+id, "Bearer k", ""); r.code != 200 || !strings.Contains(r.body, `"status":"Pending"`) {
				t.Errorf("running job: got %d %s, want Pending", r.code, r.body)
			}
		}},
		{"-lifecycle", []string{"-lifecycle", "-median", "1h", "-sigma", "0"}, func(t *testing.T, base, id string) {
			if r := simDo(t, "GET", base+"/job/"+id, "Bearer k", ""); r.code != 200 || !strings.Contains(r.body, `"status":"InProgress"`) {
				t.Errorf("running job with -lifecycle: got %d %s, want InProgress", r.code, r.body)
			}
		}},
		{"-flap", []string{"-flap", "1", "-median", "1h", "-sigma", "0"}, func(t *testing.T, base, id string) {
			var codes []int
			for range 4 {
				codes = append(codes, simDo(t, "GET", base+"/job/"+id, "Bearer k", "").code)
			}
			if codes[0] != 404 || codes[1] != 200 || codes[2] != 404 || codes[3] != 200 {
				t.Errorf("flapping job: got %v, want 404 200 404 200", codes)
			}
		}},
		{"-odd-types", []string{"-odd-types", "1", "-median", "1h", "-sigma", "0"}, func(t *testing.T, base, id string) {
			r := simDo(t, "GET", base+"/job/"+id, "Bearer k", "")
			if r.code != 200 || !strings.Contains(r.body, `.0,"duration":null`) || !strings.Contains(r.body, `"progress":"`) {
				t.Errorf("odd job: got %d %s, want total_pages as a float and progress as a string", r.code, r.body)
			}
		}},
		{"-err504", []string{"-err504", "1"}, func(t *testing.T, base, id string) {
			if r := simDo(t, "GET", base+"/jobs", "Bearer k", ""); r.code != 504 || !strings.Contains(r.body, `"code":504`) {
				t.Errorf("GET /jobs: got %d %s, want 504 with the generic error body", r.code, r.body)
			}
		}},
		{"-offset-cursors", []string{"-offset-cursors", "-median", "1h", "-sigma", "0"}, func(t *testing.T, base, id string) {
			simSubmit(t, base)
			if r := simDo(t, "GET", base+"/jobs?limit=1", "Bearer k", ""); r.code != 200 || !strings.Contains(r.body, `"next_cursor":"1"`) {
				t.Errorf("GET /jobs?limit=1 of two jobs: got %d %s, want next_cursor \"1\"", r.code, r.body)
			}
		}},
		{"-list-staleness", []string{"-list-staleness", "1h", "-median", "1ms", "-sigma", "0"}, func(t *testing.T, base, id string) {
			// Wait on the condition GET /job reports, not on time: the job ends after 1 ms.
			for !strings.Contains(simDo(t, "GET", base+"/job/"+id, "Bearer k", "").body, `"status":"Completed"`) {
				time.Sleep(time.Millisecond)
			}
			if r := simDo(t, "GET", base+"/jobs", "Bearer k", ""); r.code != 200 || !strings.Contains(r.body, `"status":"Idle"`) {
				t.Errorf("GET /jobs of a job that GET /job reports Completed: got %d %s, want Idle (as of an hour ago)", r.code, r.body)
			}
		}},
		{"-background", []string{"-background", "1000", "-median", "1h", "-sigma", "0"}, func(t *testing.T, base, id string) {
			// At 1000/s some background job has arrived by the time a list request is made;
			// poll the listing until it shows a job other than the submitted one.
			for {
				r := simDo(t, "GET", base+"/jobs?exclude_configs=true", "Bearer k", "")
				if r.code != 200 {
					t.Fatalf("GET /jobs: %d %s", r.code, r.body)
				}
				if strings.Count(r.body, `"job_id"`) > 1 {
					return
				}
				time.Sleep(time.Millisecond)
			}
		}},
		{"missing key is a 403 page", nil, func(t *testing.T, base, id string) {
			if r := simDo(t, "GET", base+"/job/"+id, "", ""); r.code != 403 || r.ct != "text/html" {
				t.Errorf("no Authorization: got %d %s %s, want 403 text/html", r.code, r.ct, r.body)
			}
			if r := simDo(t, "GET", base+"/job/"+id, "Bearer nope", ""); r.code != 401 || r.ct != "application/json" {
				t.Errorf("wrong key: got %d %s %s, want 401 JSON", r.code, r.ct, r.body)
			}
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			// -fail 0 and no rate limits, so that only the flag under test shapes the answer.
			args := append([]string{"-fail", "0", "-rate-limit", "0", "-global-rate-limit", "0", "-seed", "1"}, tt.args...)
			base := startSimCmd(t, args...)
			id := ""
			if tt.name != "-err504" {
				id = simSubmit(t, base)
			}
			tt.check(t, base, id)
		})
	}
}

func TestSimFlagValidation(t *testing.T) {
	tests := []struct {
		args []string
		want string
	}{
		{[]string{"-flap", "2"}, "-flap"},
		{[]string{"-odd-types", "-0.5"}, "-odd-types"},
		{[]string{"-err504", "NaN"}, "-err504"},
		{[]string{"-errors", "0.6", "-err504", "0.6"}, "-errors + -err504"},
		{[]string{"-queue", "-1s"}, "-queue"},
		{[]string{"-list-staleness", "-1s"}, "-list-staleness"},
		{[]string{"-background", "-1"}, "-background"},
	}
	for _, tt := range tests {
		t.Run(strings.Join(tt.args, " "), func(t *testing.T) {
			err := runSim(t.Context(), append([]string{"-addr", "127.0.0.1:0"}, tt.args...), io.Discard, io.Discard)
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Errorf("got %v, want an error naming %s", err, tt.want)
			}
		})
	}
}
