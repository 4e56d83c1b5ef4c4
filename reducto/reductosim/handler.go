package reductosim

import (
	"crypto/subtle"
	"encoding/base64"
	"encoding/json"
	"errors"
	"io"
	"mime"
	"net/http"
	"path"
	"sort"
	"strconv"
	"strings"
	"sync"
	"time"
)

// Response bodies. 401 and 404 bodies are not documented by Reducto; these are FastAPI's
// shapes, which the API uses for its 422s. 429 bodies are verbatim from the rate-limit docs.
const (
	bodyUnauthorized     = `{"detail":"Invalid or missing API key"}`
	bodyJobNotFound      = `{"detail":"Job not found"}`
	bodyNotFound         = `{"detail":"Not Found"}`
	bodyMethodNotAllowed = `{"detail":"Method Not Allowed"}`
	bodyTooLarge         = `{"detail":"Request body too large"}`
	bodyBadMultipart     = `{"detail":"There was an error parsing the body"}`
	bodyDeleting         = `{"error":{"message":"Job deletion in progress","type":"JOB_DELETION_IN_PROGRESS","code":409}}`
	bodyDeleted          = `{"error":{"message":"Job has been deleted","type":"JOB_DELETED","code":410}}`
	bodyNotTerminal      = `{"error":{"message":"Job not in a terminal state","type":"JOB_NOT_COMPLETE","code":400}}`
	body2000             = `{"message": "[CODE 2000] rate limit exceeded, please use webhooks instead of polling"}`
	body1000             = `{"message": "[CODE 1000] rate limit exceeded, retry with exponential backoff"}`
	bodyNoSuchKey        = "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<Error><Code>NoSuchKey</Code>" +
		"<Message>The specified key does not exist.</Message></Error>"
	bodyExpired = "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<Error><Code>AccessDenied</Code>" +
		"<Message>Request has expired</Message></Error>"
)

// htmlForbidden answers a request without any Authorization header: Reducto's docs say a
// missing key gets a 403 with an HTML page (from the edge, not the API's JSON). The page itself
// is not documented; this one is a generic edge page.
const htmlForbidden = "<html>\r\n<head><title>403 Forbidden</title></head>\r\n<body>\r\n" +
	"<center><h1>403 Forbidden</h1></center>\r\n</body>\r\n</html>\r\n"

// Version is what GET /version answers (as a JSON string).
const Version = "v1.11.57-reductosim"

// maxBody bounds submission bodies.
const maxBody = 32 << 20

var (
	ctJSON = []string{"application/json"}
	ctXML  = []string{"application/xml"}
	ctPDF  = []string{"application/pdf"}
	ctHTML = []string{"text/html"}
)

var bufPool = sync.Pool{New: func() any { b := make([]byte, 0, 2048); return &b }}

// route maps a request to its endpoint and path argument; code is 0, 404 or 405.
func route(r *http.Request) (ep endpoint, arg string, code int) {
	p := r.URL.Path
	want := http.MethodPost
	switch {
	case p == "/parse_async":
		ep = epParse
	case p == "/extract_async":
		ep = epExtract
	case p == "/split_async":
		ep = epSplit
	case p == "/edit_async":
		ep = epEdit
	case p == "/pipeline_async":
		ep = epPipeline
	case strings.HasPrefix(p, "/job/"):
		ep, arg, want = epGetJob, p[len("/job/"):], http.MethodGet
		if r.Method == http.MethodDelete {
			ep, want = epDeleteJob, http.MethodDelete
		}
	case strings.HasPrefix(p, "/cancel/"):
		ep, arg = epCancel, p[len("/cancel/"):]
	case p == "/jobs":
		ep, want = epJobs, http.MethodGet
	case p == "/upload":
		ep = epUpload
	case strings.HasPrefix(p, "/presigned/"):
		ep, arg, want = epUploadPut, p[len("/presigned/"):], http.MethodPut
	case p == "/version":
		ep, want = epVersion, http.MethodGet
	case strings.HasPrefix(p, "/results/"):
		ep, arg, want = epResults, p[len("/results/"):], http.MethodGet
	default:
		return epOther, "", http.StatusNotFound
	}
	switch ep {
	case epGetJob, epDeleteJob, epCancel, epUploadPut, epResults:
		if arg == "" || strings.Contains(arg, "/") {
			return epOther, "", http.StatusNotFound
		}
	}
	if r.Method != want {
		return ep, arg, http.StatusMethodNotAllowed
	}
	return ep, arg, 0
}

// ServeHTTP answers one request the way Reducto would: global rate limit, GET /job rate
// limit, injected faults, auth, then the endpoint.
func (s *Server) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	ep, arg, code := route(r)
	s.stats.requests[ep].Add(1)
	s.catchUp(s.clock.Now())
	if s.global != nil && !s.global.Allow() {
		s.stats.limited1000.Add(1)
		s.tooMany(w, body1000)
		return
	}
	if ep == epGetJob && code == 0 && s.jobLimit != nil && !s.jobLimit.Allow() {
		s.stats.limited2000.Add(1)
		s.tooMany(w, body2000)
		return
	}
	if f := s.faults.Load(); f.active() {
		if f.Slow > 0 && s.random() < f.Slow {
			s.stats.faults.Add(1)
			if !s.delay(r.Context(), f.SlowDelay) {
				s.stats.status(StatusClientClosed)
				return
			}
		}
		serve := func(w http.ResponseWriter) { s.serve(w, r, ep, arg, code) }
		if s.injectFault(w, s.pickFault(f), serve) {
			return
		}
	}
	s.serve(w, r, ep, arg, code)
}

func (s *Server) serve(w http.ResponseWriter, r *http.Request, ep endpoint, arg string, code int) {
	switch code {
	case http.StatusNotFound:
		s.sendString(w, code, bodyNotFound)
		return
	case http.StatusMethodNotAllowed:
		s.sendString(w, code, bodyMethodNotAllowed)
		return
	}
	switch ep {
	case epVersion, epResults, epUploadPut: // no auth: public, or a presigned URL
	default:
		switch s.authorize(r) {
		case authMissing:
			w.Header()["Content-Type"] = ctHTML
			s.sendString(w, http.StatusForbidden, htmlForbidden)
			return
		case authWrong:
			s.sendString(w, http.StatusUnauthorized, bodyUnauthorized)
			return
		}
	}
	switch ep {
	case epParse, epExtract, epSplit, epEdit, epPipeline:
		s.submit(w, r, ep)
	case epGetJob:
		s.getJob(w, r, arg)
	case epDeleteJob:
		s.deleteJob(w, arg)
	case epCancel:
		s.cancelJob(w, arg)
	case epJobs:
		s.listJobs(w, r)
	case epUpload:
		s.upload(w, r)
	case epUploadPut:
		_, _ = io.Copy(io.Discard, r.Body)
		s.send(w, http.StatusOK, nil)
	case epVersion:
		s.sendString(w, http.StatusOK, strconv.Quote(Version))
	case epResults:
		s.result(w, r, arg)
	}
}

type authResult int

const (
	authOK      authResult = iota
	authMissing            // no Authorization header at all: 403 HTML
	authWrong              // a header with another scheme or key: 401 JSON
)

// authorize checks "Authorization: Bearer <key>" (scheme case-insensitive, like FastAPI's
// HTTPBearer) in constant time.
func (s *Server) authorize(r *http.Request) authResult {
	if s.auth == "" {
		return authOK
	}
	if _, ok := r.Header["Authorization"]; !ok {
		return authMissing
	}
	h := r.Header.Get("Authorization")
	scheme, token, ok := strings.Cut(h, " ")
	if !ok || !strings.EqualFold(scheme, "Bearer") {
		return authWrong
	}
	want := s.auth[len("Bearer "):]
	if subtle.ConstantTimeCompare([]byte(token), []byte(want)) != 1 {
		return authWrong
	}
	return authOK
}

// send writes a complete response and counts its status.
func (s *Server) send(w http.ResponseWriter, code int, b []byte) {
	h := w.Header()
	if _, ok := h["Content-Type"]; !ok {
		h["Content-Type"] = ctJSON
	}
	h["Content-Length"] = []string{strconv.Itoa(len(b))}
	w.WriteHeader(code)
	_, _ = w.Write(b)
	s.count(w, code)
}

func (s *Server) sendString(w http.ResponseWriter, code int, b string) {
	s.send(w, code, []byte(b))
}

// sendBody writes a multi-part body, substituting the base URL for nil parts.
func (s *Server) sendBody(w http.ResponseWriter, r *http.Request, code int, b body) {
	var base string
	n := 0
	for _, p := range b {
		if p == nil {
			if base == "" {
				base = s.baseURL(r)
			}
			n += len(base)
		}
		n += len(p)
	}
	h := w.Header()
	h["Content-Type"] = ctJSON
	h["Content-Length"] = []string{strconv.Itoa(n)}
	w.WriteHeader(code)
	for _, p := range b {
		if p == nil {
			_, _ = io.WriteString(w, base)
			continue
		}
		_, _ = w.Write(p)
	}
	s.count(w, code)
}

func (s *Server) count(w http.ResponseWriter, code int) {
	if _, ok := w.(*capture); !ok {
		s.stats.status(code)
	}
}

func (s *Server) tooMany(w http.ResponseWriter, body string) {
	if s.retryAfter != nil {
		w.Header()["Retry-After"] = s.retryAfter
	}
	s.sendString(w, http.StatusTooManyRequests, body)
}

func (s *Server) unprocessable(w http.ResponseWriter, errs []fieldError) {
	b, _ := json.Marshal(struct {
		Detail []fieldError `json:"detail"`
	}{errs})
	s.send(w, http.StatusUnprocessableEntity, b)
}

// sendDeleted answers for a deleted job with the status its deletion stage calls for.
func (s *Server) sendDeleted(w http.ResponseWriter, code int) {
	switch code {
	case http.StatusNotFound:
		s.sendString(w, code, bodyJobNotFound)
	case http.StatusConflict:
		s.sendString(w, code, bodyDeleting)
	default:
		s.sendString(w, http.StatusGone, bodyDeleted)
	}
}

func (s *Server) submit(w http.ResponseWriter, r *http.Request, ep endpoint) {
	data, err := io.ReadAll(http.MaxBytesReader(w, r.Body, maxBody))
	if err != nil {
		var tooLarge *http.MaxBytesError
		if errors.As(err, &tooLarge) {
			s.sendString(w, http.StatusRequestEntityTooLarge, bodyTooLarge)
			return
		}
		s.unprocessable(w, []fieldError{{Loc: []any{"body"}, Msg: "Error reading body", Type: "value_error"}})
		return
	}
	var sub submission
	var errs []fieldError
	if ep == epEdit {
		sub, errs = parseEdit(data)
	} else {
		sub, errs = parseV3(data, ep)
	}
	if len(errs) > 0 {
		s.unprocessable(w, errs)
		return
	}
	var spec JobSpec
	if s.spec != nil {
		spec = s.spec(r.URL.Path, data)
	} else {
		spec = s.defaultSpec(r.URL.Path, data)
	}
	if spec.Type == "" {
		spec.Type = typeForEndpoint(r.URL.Path)
	}
	j := s.newJob(spec, string(data), sub.metadata, sub.hook)
	b := make([]byte, 0, 64)
	b = append(b, `{"job_id":`...)
	b = append(b, j.idJSON...)
	b = append(b, '}')
	s.send(w, http.StatusOK, b)
}

func (s *Server) getJob(w http.ResponseWriter, r *http.Request, id string) {
	j := s.lookup(id)
	if j == nil {
		s.sendString(w, http.StatusNotFound, bodyJobNotFound)
		return
	}
	j.gets.Add(1)
	st := j.state()
	now := s.clock.Now()
	if st.deleted {
		s.sendDeleted(w, st.deletionCode(now))
		return
	}
	v := s.view(j, st.cancelledAt, now)
	// A Malformed fault runs this handler into a capture and cuts the answer: it neither
	// advances a flapping job nor counts as an odd answer, since the client sees neither.
	_, captured := w.(*capture)
	if !v.terminal && j.spec.Flap && !captured && j.flapN.Add(1)%2 == 1 {
		j.flaps.Add(1)
		s.stats.flaps.Add(1)
		s.sendString(w, http.StatusNotFound, bodyJobNotFound)
		return
	}
	odd := j.spec.OddTypes
	if f := s.faults.Load(); !odd && f.OddTypes > 0 {
		odd = s.random() < f.OddTypes
	}
	if odd && !captured {
		j.odd.Add(1)
		s.stats.oddTypes.Add(1)
	}
	if odd {
		// Not cached: the odd body is built afresh each time (kept, for the shared parts).
		b := builder{keep: true}
		s.appendJob(&b, j, v, true)
		s.sendBody(w, r, http.StatusOK, b.done())
		return
	}
	if v.terminal {
		s.sendBody(w, r, http.StatusOK, s.finalBody(j, v))
		return
	}
	bp := bufPool.Get().(*[]byte)
	b := builder{cur: (*bp)[:0]}
	s.appendJob(&b, j, v, false)
	s.send(w, http.StatusOK, b.cur)
	*bp = b.cur[:0]
	bufPool.Put(bp)
}

func (s *Server) cancelJob(w http.ResponseWriter, id string) {
	j := s.lookup(id)
	if j == nil {
		s.sendString(w, http.StatusNotFound, bodyJobNotFound)
		return
	}
	j.cancels.Add(1)
	if st := j.state(); st.deleted {
		s.sendDeleted(w, st.deletionCode(s.clock.Now()))
		return
	}
	s.cancel(j)
	s.sendString(w, http.StatusOK, "null")
}

// deleteJob is DELETE /job/{id} (reference §7): 202 for a terminal job, which then answers
// 409 for DeleteDuration and 410 afterwards; 400 for a job still running.
func (s *Server) deleteJob(w http.ResponseWriter, id string) {
	j := s.lookup(id)
	if j == nil {
		s.sendString(w, http.StatusNotFound, bodyJobNotFound)
		return
	}
	now := s.clock.Now()
	st := j.state()
	if st.deleted {
		s.sendDeleted(w, st.deletionCode(now))
		return
	}
	if !s.view(j, st.cancelledAt, now).terminal {
		s.sendString(w, http.StatusBadRequest, bodyNotTerminal)
		return
	}
	s.markDeleted(j, http.StatusConflict, s.deleteFor)
	b := append(append([]byte(`{"job_id":`), j.idJSON...), '}')
	s.send(w, http.StatusAccepted, b)
}

// cursor is a position in the newest-first listing: the (created, seq) of the last job of a
// page, encoded opaquely.
type cursor struct {
	nanos int64
	seq   uint64
}

func (c cursor) String() string {
	return base64.RawURLEncoding.EncodeToString([]byte(strconv.FormatInt(c.nanos, 10) + "." + strconv.FormatUint(c.seq, 10)))
}

func parseCursor(s string) (cursor, bool) {
	raw, err := base64.RawURLEncoding.DecodeString(s)
	if err != nil {
		return cursor{}, false
	}
	a, b, ok := strings.Cut(string(raw), ".")
	if !ok {
		return cursor{}, false
	}
	n, err1 := strconv.ParseInt(a, 10, 64)
	q, err2 := strconv.ParseUint(b, 10, 64)
	return cursor{nanos: n, seq: q}, err1 == nil && err2 == nil
}

func (c cursor) compare(j *job) int {
	switch n := j.created.UnixNano(); {
	case n < c.nanos:
		return -1
	case n > c.nanos:
		return 1
	case j.seq < c.seq:
		return -1
	case j.seq > c.seq:
		return 1
	}
	return 0
}

func parseBool(v string) (bool, bool) {
	switch strings.ToLower(v) {
	case "true", "1", "yes", "on", "t", "y":
		return true, true
	case "false", "0", "no", "off", "f", "n":
		return false, true
	}
	return false, false
}

// listJobs is GET /jobs: newest first, by pages of limit, with an opaque keyset cursor or,
// with OffsetCursors, a numeric offset.
func (s *Server) listJobs(w http.ResponseWriter, r *http.Request) {
	q := r.URL.Query()
	limit := 100
	if vs, ok := q["limit"]; ok {
		n, err := strconv.Atoi(vs[0])
		switch {
		case err != nil:
			s.unprocessable(w, []fieldError{{Loc: []any{"query", "limit"}, Msg: "Input should be a valid integer, unable to parse string as an integer", Type: "int_parsing"}})
			return
		case n < 1:
			s.unprocessable(w, []fieldError{{Loc: []any{"query", "limit"}, Msg: "Input should be greater than or equal to 1", Type: "greater_than_equal"}})
			return
		case n > 500:
			s.unprocessable(w, []fieldError{{Loc: []any{"query", "limit"}, Msg: "Input should be less than or equal to 500", Type: "less_than_equal"}})
			return
		}
		limit = n
	}
	exclude := false
	if vs, ok := q["exclude_configs"]; ok {
		b, valid := parseBool(vs[0])
		if !valid {
			s.unprocessable(w, []fieldError{{Loc: []any{"query", "exclude_configs"}, Msg: "Input should be a valid boolean, unable to interpret input", Type: "bool_parsing"}})
			return
		}
		exclude = b
	}
	var after *cursor
	offset := 0
	if v := q.Get("cursor"); v != "" {
		ok := false
		if s.offsetCursors {
			offset, ok = parseOffset(v)
		} else {
			var c cursor
			c, ok = parseCursor(v)
			after = &c
		}
		if !ok {
			s.unprocessable(w, []fieldError{{Loc: []any{"query", "cursor"}, Msg: "Invalid cursor", Type: "value_error"}})
			return
		}
	}

	page := make([]*job, 0, min(limit, 128))
	more := false
	s.orderMu.RLock()
	i := len(s.order)
	if after != nil {
		i = sort.Search(len(s.order), func(k int) bool { return after.compare(s.order[k]) >= 0 })
	}
	skip := offset
	for i--; i >= 0; i-- {
		j := s.order[i]
		if j.state().deleted {
			continue
		}
		if skip > 0 {
			skip--
			continue
		}
		if len(page) == limit {
			more = true
			break
		}
		page = append(page, j)
	}
	s.orderMu.RUnlock()

	// Statuses as of ListStaleness ago; the membership of the listing is current.
	at := s.clock.Now().Add(-s.listStaleness)
	b := make([]byte, 0, 256*len(page)+64)
	b = append(b, `{"jobs":[`...)
	for k, j := range page {
		if k > 0 {
			b = append(b, ',')
		}
		b = s.appendSingleJob(b, j, at, exclude)
	}
	b = append(b, `],"next_cursor":`...)
	switch {
	case !more:
		b = append(b, "null"...)
	case s.offsetCursors:
		b = strconv.AppendQuote(b, strconv.Itoa(offset+len(page)))
	default:
		last := page[len(page)-1]
		b = strconv.AppendQuote(b, cursor{nanos: last.created.UnixNano(), seq: last.seq}.String())
	}
	b = append(b, '}')
	s.send(w, http.StatusOK, b)
}

// parseOffset reads an offset cursor ([Options.OffsetCursors]): a non-negative integer.
func parseOffset(v string) (int, bool) {
	n, err := strconv.Atoi(v)
	return n, err == nil && n >= 0
}

// appendSingleJob writes a SingleJob of the GET /jobs listing, with the job as it was at the
// simulator time at (a cancellation after at is not seen yet).
func (s *Server) appendSingleJob(b []byte, j *job, at time.Time, exclude bool) []byte {
	cancelledAt := j.state().cancelledAt
	if cancelledAt.After(at) {
		cancelledAt = time.Time{}
	}
	v := s.view(j, cancelledAt, at)
	b = append(b, `{"job_id":`...)
	b = append(b, j.idJSON...)
	b = append(b, `,"status":"`...)
	b = append(b, v.status...)
	b = append(b, `","type":"`...)
	b = append(b, j.spec.Type...)
	b = append(b, '"')
	if !exclude {
		b = append(b, `,"raw_config":`...)
		b = append(b, j.rawConfigJSON...)
	}
	b = append(b, `,"created_at":`...)
	b = append(b, j.createdJSON...)
	b = append(b, `,"num_pages":`...)
	if v.terminal && !v.failed {
		b = strconv.AppendInt(b, int64(j.spec.NumPages), 10)
	} else {
		b = append(b, "null"...)
	}
	b = append(b, `,"total_pages":`...)
	b = strconv.AppendInt(b, int64(j.spec.NumPages), 10)
	b = append(b, `,"duration":`...)
	if v.terminal {
		b = appendNum(b, v.end.Sub(j.created).Seconds())
	} else {
		b = append(b, "null"...)
	}
	return append(b, `,"source":null,"bucket":null}`...)
}

// upload is POST /upload: a multipart "file" is stored (and discarded) at once; without one,
// the answer carries a presigned URL to PUT the bytes to.
func (s *Server) upload(w http.ResponseWriter, r *http.Request) {
	ext := strings.TrimPrefix(r.URL.Query().Get("extension"), ".")
	found := false
	if mt, _, _ := mime.ParseMediaType(r.Header.Get("Content-Type")); strings.HasPrefix(mt, "multipart/") {
		mr, err := r.MultipartReader()
		if err != nil {
			s.sendString(w, http.StatusBadRequest, bodyBadMultipart)
			return
		}
		for {
			part, err := mr.NextPart()
			if err == io.EOF {
				break
			}
			if err != nil {
				s.sendString(w, http.StatusBadRequest, bodyBadMultipart)
				return
			}
			if part.FormName() == "file" {
				found = true
				if ext == "" {
					ext = strings.TrimPrefix(path.Ext(part.FileName()), ".")
				}
			}
			_, _ = io.Copy(io.Discard, part)
			_ = part.Close()
		}
	}
	id := s.newID()
	var b []byte
	if found {
		if ext == "" {
			ext = "pdf"
		}
		b = append(b, `{"file_id":"reducto://`+id+"."+ext+`","presigned_url":null}`...)
	} else {
		fileID := "reducto://" + id
		if ext != "" {
			fileID += "." + ext
		}
		u := s.baseURL(r) + "/presigned/" + id + "?X-Amz-Algorithm=AWS4-HMAC-SHA256&X-Amz-Expires=3600&X-Amz-Signature=" + s.token(32)
		b = append(b, `{"file_id":`...)
		b = append(b, quote(fileID)...)
		b = append(b, `,"presigned_url":`...)
		b = append(b, quote(u)...)
		b = append(b, '}')
	}
	s.send(w, http.StatusOK, b)
}

// result serves a URL result or an edited document, like a presigned S3 URL: no auth, and
// S3's NoSuchKey when it does not (or no longer) exist.
func (s *Server) result(w http.ResponseWriter, r *http.Request, rid string) {
	if s.resultURLTTL > 0 {
		exp, err := strconv.ParseInt(r.URL.Query().Get("expires"), 10, 64)
		if err != nil || s.clock.Now().UnixNano() > exp {
			w.Header()["Content-Type"] = ctXML
			s.sendString(w, http.StatusForbidden, bodyExpired)
			return
		}
	}
	v, ok := s.results.Load(rid)
	var j *job
	if ok {
		j = v.(*job)
		st := j.state()
		if st.deleted {
			j = nil
		} else if jv := s.view(j, st.cancelledAt, s.clock.Now()); !jv.terminal || jv.failed {
			j = nil
		}
	}
	if j == nil {
		w.Header()["Content-Type"] = ctXML
		s.sendString(w, http.StatusNotFound, bodyNoSuchKey)
		return
	}
	if j.spec.Type == TypeEdit {
		w.Header()["Content-Type"] = ctPDF
		s.send(w, http.StatusOK, editedPDF)
		return
	}
	s.send(w, http.StatusOK, s.inner(j))
}
