package reductosim

import (
	"bytes"
	"math"
	"strconv"
)

// body is a response split into parts so that large shared pieces (a result's chunks) are
// encoded once and reused by every job and every GET. A nil part stands for the request's base
// URL, which only the request knows.
type body [][]byte

// builder assembles a body: small job-specific bytes go into cur, shared slices and the base
// URL placeholder become parts of their own.
type builder struct {
	parts body
	cur   []byte
	// keep marks a body that is kept (a terminal job's): parts are copied to their exact
	// size and ref'd slices are shared rather than copied. Otherwise the body is written
	// once from a pooled cur and must consist of cur alone.
	keep bool
}

func (b *builder) str(s string)    { b.cur = append(b.cur, s...) }
func (b *builder) raw(p []byte)    { b.cur = append(b.cur, p...) }
func (b *builder) int(n int)       { b.cur = strconv.AppendInt(b.cur, int64(n), 10) }
func (b *builder) num(f float64)   { b.cur = appendNum(b.cur, f) }
func (b *builder) shared(p []byte) { b.flush(); b.parts = append(b.parts, p) }

// ref adds bytes owned by the job: shared in a kept body, copied otherwise.
func (b *builder) ref(p []byte) {
	if b.keep {
		b.shared(p)
		return
	}
	b.raw(p)
}
func (b *builder) base() { b.flush(); b.parts = append(b.parts, nil) }

func (b *builder) flush() {
	if len(b.cur) == 0 {
		return
	}
	if b.keep {
		b.parts = append(b.parts, bytes.Clone(b.cur))
		b.cur = b.cur[:0]
		return
	}
	b.parts = append(b.parts, b.cur)
	b.cur = nil
}

func (b *builder) done() body {
	b.flush()
	return b.parts
}

// appendNum appends f rounded to 3 decimals, in the shortest form.
func appendNum(dst []byte, f float64) []byte {
	return strconv.AppendFloat(dst, roundTo(f, 3), 'f', -1, 64)
}

// appendOdd appends f as a JSON number with a fraction even when it is whole (3 -> 3.0), the
// float form a strict integer field rejects.
func appendOdd(dst []byte, f float64) []byte {
	dst = appendNum(dst, f)
	if f == math.Trunc(f) {
		dst = append(dst, ".0"...)
	}
	return dst
}

// appendJob writes the enhanced GET /job/{id} response for the job as seen in v. odd gives
// the optional fields unexpected JSON types ([Faults.OddTypes]); status and result stay right.
func (s *Server) appendJob(b *builder, j *job, v jobView, odd bool) {
	b.str(`{"status":"`)
	b.str(v.status)
	b.str(`","result":`)
	completed := v.terminal && !v.failed
	if completed {
		s.appendResult(b, j)
	} else {
		b.str("null")
	}
	b.str(`,"progress":`)
	switch {
	case v.hasProgress && odd:
		b.str(`"`)
		b.num(roundTo(v.progress, 2))
		b.str(`"`)
	case v.hasProgress:
		b.num(roundTo(v.progress, 2))
	default:
		b.str("null")
	}
	b.str(`,"reason":`)
	switch {
	case v.cancelled:
		b.str(cancelReasonJSON)
	case v.failed:
		b.raw(j.reasonJSON)
	default:
		b.str("null")
	}
	b.str(`,"type":"`)
	b.str(j.spec.Type)
	b.str(`","num_pages":`)
	switch {
	case completed && odd:
		b.cur = appendOdd(b.cur, float64(j.spec.NumPages))
	case completed:
		b.int(j.spec.NumPages)
	default:
		b.str("null")
	}
	b.str(`,"total_pages":`)
	if odd {
		b.cur = appendOdd(b.cur, float64(j.spec.NumPages))
	} else {
		b.int(j.spec.NumPages)
	}
	b.str(`,"duration":`)
	switch {
	case v.terminal && odd:
		b.str(`"`)
		b.num(v.end.Sub(j.created).Seconds())
		b.str(`"`)
	case v.terminal:
		b.num(v.end.Sub(j.created).Seconds())
	default:
		b.str("null")
	}
	b.str(`,"created_at":`)
	b.raw(j.createdJSON)
	b.str(`,"raw_config":`)
	b.ref(j.rawConfigJSON)
	b.str(`,"source":null,"bucket":null`)
	if v.failed {
		b.str(`,"error":{"code":`)
		code := j.spec.ErrorCode
		if v.cancelled {
			code = CancelErrorCode
		}
		if odd {
			b.cur = appendOdd(b.cur, float64(code))
		} else {
			b.int(code)
		}
		if v.cancelled {
			b.str(`,"name":"` + CancelErrorName + `","message":` + cancelReasonJSON)
		} else {
			b.str(`,"name":`)
			b.raw(j.errNameJSON)
			b.str(`,"message":`)
			b.raw(j.reasonJSON)
		}
		b.str(`,"job_id":`)
		b.raw(j.idJSON)
		b.str("}")
	}
	b.str("}")
}

var cancelReasonJSON = string(quote(CancelReason))

// finalBody returns the GET /job body of a terminal job, built once: a terminal job never
// changes again (deletion is answered before this is consulted).
func (s *Server) finalBody(j *job, v jobView) body {
	if p := j.final.Load(); p != nil {
		return *p
	}
	bp := bufPool.Get().(*[]byte)
	b := builder{cur: (*bp)[:0], keep: true}
	s.appendJob(&b, j, v, false)
	out := b.done()
	*bp = b.cur[:0]
	bufPool.Put(bp)
	if s.resultURLTTL > 0 && j.spec.Outcome == OutcomeCompleteURL && j.spec.Type == TypeParse {
		return out // an expiring link: a fresh one every time
	}
	j.final.Store(&out)
	return out
}

// appendResult writes the "result" object of a completed job, per type (reference §3.1).
func (s *Server) appendResult(b *builder, j *job) {
	sp := &j.spec
	switch sp.Type {
	case TypeExtract:
		b.str(`{"usage":{"num_pages":`)
		b.int(sp.NumPages)
		b.str(`,"num_fields":`)
		b.int(extractFields)
		b.str(`,"credits":`)
		b.int(2 * sp.NumPages)
		b.str(`},"result":`)
		s.appendInner(b, j)
		b.str(`,"citations":null,"job_id":`)
		b.raw(j.idJSON)
		b.str(`,"studio_link":"https://studio.reducto.ai/job/` + j.id + `"}`)
	case TypeSplit:
		b.str(`{"usage":{"num_pages":`)
		b.int(sp.NumPages)
		b.str(`,"credits":`)
		b.int(sp.NumPages)
		b.str(`},"result":`)
		s.appendInner(b, j)
		b.str("}")
	case TypeEdit:
		b.str(`{"document_url":"`)
		b.base()
		b.str(`/results/` + j.resultID + `","form_schema":null,"usage":{"num_pages":`)
		b.int(sp.NumPages)
		b.str(`,"credits":`)
		b.int(sp.NumPages)
		b.str(`}}`)
	case TypePipeline:
		// PipelineResponse {job_id, usage, result: {parse: ParseResponse, extract, split}}: a
		// parse-only pipeline, whose parse step is a whole ParseResponse (as the SDKs type it).
		b.str(`{"job_id":`)
		b.raw(j.idJSON)
		b.str(`,"usage":{"num_pages":`)
		b.int(sp.NumPages)
		b.str(`,"credits":`)
		b.int(sp.NumPages)
		b.str(`},"result":{"parse":`)
		s.appendParse(b, j)
		b.str(`,"extract":null,"split":null}}`)
	default:
		s.appendParse(b, j)
	}
}

// appendParse writes a ParseResponse: job_id, duration, usage, result (full, or a URL result
// for OutcomeCompleteURL), pdf_url and studio_link.
func (s *Server) appendParse(b *builder, j *job) {
	sp := &j.spec
	b.str(`{"job_id":`)
	b.raw(j.idJSON)
	b.str(`,"duration":`)
	b.num(sp.Duration.Seconds())
	b.str(`,"usage":{"num_pages":`)
	b.int(sp.NumPages)
	b.str(`,"credits":`)
	b.int(sp.NumPages)
	b.str(`},"result":`)
	s.appendInner(b, j)
	b.str(`,"pdf_url":null,"studio_link":"https://studio.reducto.ai/job/` + j.id + `"}`)
}

// appendInner writes the result's own "result" field: the shared full result, or (parse jobs
// only, see [OutcomeCompleteURL]) a UrlResult pointing at GET /results/{result_id}.
func (s *Server) appendInner(b *builder, j *job) {
	if j.spec.Outcome == OutcomeCompleteURL && j.spec.Type == TypeParse {
		b.str(`{"type":"url","url":"`)
		b.base()
		b.str(`/results/` + j.resultID)
		if s.resultURLTTL > 0 {
			exp := s.clock.Now().Add(s.resultURLTTL)
			b.str(`?X-Amz-Expires=` + strconv.FormatInt(int64(s.resultURLTTL.Seconds()), 10) + `&expires=` + strconv.FormatInt(exp.UnixNano(), 10))
		}
		b.str(`","result_id":"` + j.resultID + `"}`)
		return
	}
	b.shared(s.inner(j))
}

// innerKey identifies a generated inner result; jobs with the same key share the bytes.
type innerKey struct {
	typ   string
	size  int // ResultSize rounded up to 512 bytes
	pages int
}

type innerDoc struct{ data []byte }

// maxInnerCache bounds the bytes kept in the shared cache; beyond it each job keeps its own.
const maxInnerCache = 256 << 20

// wrapperOverhead approximates the bytes of the GET /job response around the inner result,
// so that the whole result lands near ResultSize.
const wrapperOverhead = 350

// inner returns the job's inner result bytes (what GET /results serves for URL results).
func (s *Server) inner(j *job) []byte {
	if p := j.inner.Load(); p != nil {
		return *p
	}
	k := innerKey{typ: j.spec.Type, size: (j.spec.ResultSize + 511) / 512 * 512, pages: j.spec.NumPages}
	s.innerMu.RLock()
	d := s.inners[k]
	s.innerMu.RUnlock()
	if d != nil {
		return d.data
	}
	data := generateInner(k.typ, max(k.size-wrapperOverhead, 0), k.pages)
	s.innerMu.Lock()
	defer s.innerMu.Unlock()
	if d := s.inners[k]; d != nil {
		return d.data
	}
	if s.innerBytes+len(data) > maxInnerCache {
		j.inner.Store(&data)
		return data
	}
	s.inners[k] = &innerDoc{data: data}
	s.innerBytes += len(data)
	return data
}

const extractFields = 6

// generateInner produces a realistic inner result of about size bytes.
func generateInner(typ string, size, pages int) []byte {
	switch typ {
	case TypeExtract:
		return extractInner(size)
	case TypeSplit:
		return splitInner(pages)
	case TypePipeline:
		// The ParseResponse around the full result adds about 200 bytes.
		return parseInner(max(size-200, 0), pages)
	}
	return parseInner(size, pages)
}

const loremText = "Lorem ipsum dolor sit amet, consectetur adipiscing elit, sed do eiusmod tempor " +
	"incididunt ut labore et dolore magna aliqua. Ut enim ad minim veniam, quis nostrud " +
	"exercitation ullamco laboris nisi ut aliquip ex ea commodo consequat."

// parseInner is a FullResult: {"type":"full","chunks":[...],"ocr":null,"custom":null}.
func parseInner(size, pages int) []byte {
	b := make([]byte, 0, size+1024)
	b = append(b, `{"type":"full","chunks":[`...)
	for i := 0; i == 0 || len(b)+60 < size; i++ {
		if i > 0 {
			b = append(b, ',')
		}
		page := i%pages + 1
		text := "Section " + strconv.Itoa(i+1) + ". " + loremText
		b = append(b, `{"content":`...)
		b = append(b, quote(text)...)
		b = append(b, `,"embed":`...)
		b = append(b, quote(text)...)
		b = append(b, `,"enriched":null,"blocks":[{"type":"Text","bbox":{"left":0.1,"top":`...)
		b = strconv.AppendFloat(b, 0.05+float64(i%16)*0.055, 'f', 3, 64)
		b = append(b, `,"width":0.8,"height":0.05,"page":`...)
		b = strconv.AppendInt(b, int64(page), 10)
		b = append(b, `},"content":`...)
		b = append(b, quote(text)...)
		b = append(b, `,"confidence":"high"}]}`...)
	}
	return append(b, `],"ocr":null,"custom":null}`...)
}

// extractInner is an extract result array with one object of fields; line items pad it.
func extractInner(size int) []byte {
	b := make([]byte, 0, size+256)
	b = append(b, `[{"invoice_number":"INV-2024-0042","vendor_name":"Acme Corporation",`+
		`"invoice_date":"2024-03-15","currency":"USD","total_amount":1234.56,"line_items":[`...)
	for i := 0; i == 0 || len(b)+40 < size; i++ {
		if i > 0 {
			b = append(b, ',')
		}
		b = append(b, `{"description":"Consulting services, item `...)
		b = strconv.AppendInt(b, int64(i+1), 10)
		b = append(b, `","quantity":`...)
		b = strconv.AppendInt(b, int64(i%5+1), 10)
		b = append(b, `,"amount":`...)
		b = strconv.AppendFloat(b, 10.5*float64(i%7+1), 'f', 2, 64)
		b = append(b, '}')
	}
	return append(b, "]}]"...)
}

// splitInner is a SplitResult: one split per group of up to two pages.
func splitInner(pages int) []byte {
	b := []byte(`{"splits":[`)
	for first, n := 1, 1; first <= pages; first, n = first+2, n+1 {
		if n > 1 {
			b = append(b, ',')
		}
		b = append(b, `{"name":"Section `...)
		b = strconv.AppendInt(b, int64(n), 10)
		b = append(b, `","pages":[`...)
		b = strconv.AppendInt(b, int64(first), 10)
		if first+1 <= pages {
			b = append(b, ',')
			b = strconv.AppendInt(b, int64(first+1), 10)
		}
		b = append(b, `],"conf":"high"}`...)
	}
	return append(b, "]}"...)
}

// editedPDF is what the edited document URL serves: a minimal valid PDF.
var editedPDF = []byte("%PDF-1.4\n1 0 obj<</Type/Catalog/Pages 2 0 R>>endobj\n" +
	"2 0 obj<</Type/Pages/Kids[3 0 R]/Count 1>>endobj\n" +
	"3 0 obj<</Type/Page/Parent 2 0 R/MediaBox[0 0 612 792]>>endobj\n" +
	"trailer<</Root 1 0 R>>\n%%EOF\n")
