package reductosim

import (
	"context"
	"net/http"
	"time"
)

// Faults are fractions (0..1) of requests answered badly, to exercise a client's error
// handling. Err500, Err502, Err503, Err504, Shed429 and Malformed are exclusive (one draw picks
// at most one of them, in that order, so their sum should stay <= 1); Slow is drawn
// independently and delays whatever answer follows. Rate limits are applied before faults.
// OddTypes and Flap act inside GET /job/{id} itself, after the faults above.
type Faults struct {
	// Err500, Err502, Err503 and Err504 answer with that status and the documented generic
	// error body {"error":{"message":...,"type":...,"code":...}}.
	Err500, Err502, Err503, Err504 float64
	// Shed429 answers 429 without a [CODE ...] marker, like Reducto's rare infrastructure sheds.
	Shed429 float64
	// Malformed answers either 200 with a truncated JSON body (the real handler runs, so a
	// submission does create a job) or, with equal chance, a proxy's HTML 502 page.
	Malformed float64
	// Slow delays the response by SlowDelay (real time), giving up when the request's context
	// is cancelled.
	Slow float64
	// SlowDelay is the delay of a slow response. 0 means 1s.
	SlowDelay time.Duration
	// OddTypes is the fraction of 200 GET /job/{id} answers (drawn independently per answer)
	// whose optional fields have unexpected JSON types while status and result stay right:
	// num_pages and total_pages as floats (3.0), duration and progress as strings ("12.5",
	// "50"), and a failed job's error.code as a float (400.0). Null fields stay null. Each
	// such answer is counted in [Stats.OddTypes].
	OddTypes float64
	// Flap is the fraction of new jobs (drawn once per job at creation, from the seed) that
	// flap: see [JobSpec.Flap]. Changing it affects only jobs created afterwards. Each
	// flapping 404 is counted in [Stats.Flaps].
	Flap float64
}

func clamp01(f float64) float64 {
	if f != f { // NaN
		return 0
	}
	return min(max(f, 0), 1)
}

// SetFaults replaces the fault injection; fractions are clamped to 0..1 (NaN counts as 0). Safe to call while
// requests are being served.
func (s *Server) SetFaults(f Faults) {
	f.Err500, f.Err502, f.Err503 = clamp01(f.Err500), clamp01(f.Err502), clamp01(f.Err503)
	f.Err504, f.Shed429, f.Malformed = clamp01(f.Err504), clamp01(f.Shed429), clamp01(f.Malformed)
	f.Slow, f.OddTypes, f.Flap = clamp01(f.Slow), clamp01(f.OddTypes), clamp01(f.Flap)
	if f.SlowDelay <= 0 {
		f.SlowDelay = time.Second
	}
	s.faults.Store(&f)
}

func (f *Faults) active() bool {
	return f.Err500 > 0 || f.Err502 > 0 || f.Err503 > 0 || f.Err504 > 0 || f.Shed429 > 0 || f.Malformed > 0 || f.Slow > 0
}

type fault int

const (
	faultNone fault = iota
	fault500
	fault502
	fault503
	fault504
	faultShed
	faultMalformed
)

func (s *Server) pickFault(f *Faults) fault {
	if f.Err500+f.Err502+f.Err503+f.Err504+f.Shed429+f.Malformed == 0 {
		return faultNone
	}
	r := s.random()
	for _, c := range []struct {
		p float64
		k fault
	}{{f.Err500, fault500}, {f.Err502, fault502}, {f.Err503, fault503}, {f.Err504, fault504}, {f.Shed429, faultShed}, {f.Malformed, faultMalformed}} {
		if r < c.p {
			return c.k
		}
		r -= c.p
	}
	return faultNone
}

// Fault bodies follow the generic error format of docs.reducto.ai/reference/error-codes.
const (
	body500  = `{"error":{"message":"Internal server error","type":"internal_server_error","code":500}}`
	body502  = `{"error":{"message":"LLM service error, please retry","type":"llm_service_error","code":502}}`
	body503  = `{"error":{"message":"Service temporarily unavailable, please retry","type":"service_unavailable","code":503}}`
	body504  = `{"error":{"message":"Document conversion timed out, please retry","type":"timeout","code":504}}`
	bodyShed = `{"message":"Too Many Requests"}`
	// htmlBadGateway is what a proxy in front of the API answers when the upstream is gone.
	htmlBadGateway = "<html>\r\n<head><title>502 Bad Gateway</title></head>\r\n<body>\r\n" +
		"<center><h1>502 Bad Gateway</h1></center>\r\n<hr><center>cloudflare</center>\r\n</body>\r\n</html>\r\n"
)

// injectFault answers the request with fault k; it reports false for faultNone.
func (s *Server) injectFault(w http.ResponseWriter, k fault, serve func(http.ResponseWriter)) bool {
	switch k {
	case fault500:
		s.sendString(w, http.StatusInternalServerError, body500)
	case fault502:
		s.sendString(w, http.StatusBadGateway, body502)
	case fault503:
		s.sendString(w, http.StatusServiceUnavailable, body503)
	case fault504:
		s.sendString(w, http.StatusGatewayTimeout, body504)
	case faultShed:
		s.stats.shed.Add(1)
		s.tooMany(w, bodyShed)
	case faultMalformed:
		if s.random() < 0.5 {
			h := w.Header()
			h["Content-Type"] = ctHTML
			s.send(w, http.StatusBadGateway, []byte(htmlBadGateway))
			break
		}
		// Run the real handler, then cut its answer in half, as a dropped connection or a
		// broken proxy would.
		c := &capture{header: make(http.Header), code: http.StatusOK}
		serve(c)
		cut := c.buf[:len(c.buf)/2]
		if len(cut) == 0 {
			cut = []byte("{")
		}
		s.send(w, http.StatusOK, cut)
	default:
		return false
	}
	s.stats.faults.Add(1)
	return true
}

// delay waits d of real time; it reports false when the request went away first.
func (s *Server) delay(ctx context.Context, d time.Duration) bool {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return true
	case <-ctx.Done():
		return false
	}
}

// capture is a ResponseWriter that keeps the response in memory; responses written to it are
// not counted in the statistics (the outer response is).
type capture struct {
	header http.Header
	code   int
	buf    []byte
}

func (c *capture) Header() http.Header         { return c.header }
func (c *capture) WriteHeader(code int)        { c.code = code }
func (c *capture) Write(p []byte) (int, error) { c.buf = append(c.buf, p...); return len(p), nil }
