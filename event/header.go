package event

import "strings"

// Header names of an event (docs/contract.md section 2): CloudEvents binary mode, NATS
// protocol binding (binary mode is defined by the binding's draft 1.0.3-wip; 1.0.2 knows only
// structured mode). The JetStream header Nats-Msg-Id is set too, to [MsgID].
const (
	// HeaderContentType is kept for NATS clients that know no CloudEvents; the binding reads
	// the data's media type from [HeaderDataContentType].
	HeaderContentType     = "Content-Type"
	HeaderDataContentType = "ce-datacontenttype"
	HeaderDataSchema      = "ce-dataschema"
	HeaderSpecVersion     = "ce-specversion"
	HeaderID              = "ce-id"
	HeaderType            = "ce-type"
	HeaderSource          = "ce-source"
	HeaderSubject         = "ce-subject"
	HeaderTime            = "ce-time"
)

// Trace context headers (W3C Trace Context and Baggage), present on an event only when its
// job's track message, or the submit or cancel request that tracked it, carried them (package
// tracing). Lower-case, as the W3C specifications write them.
const (
	HeaderTraceparent = "traceparent"
	HeaderTracestate  = "tracestate"
	HeaderBaggage     = "baggage"
)

// TraceHeaders are the trace context headers an event may carry.
var TraceHeaders = []string{HeaderTraceparent, HeaderTracestate, HeaderBaggage}

// Header values that do not depend on the event.
const (
	ContentType = "application/json"
	SpecVersion = "1.0"
	// TypePrefix + kind is the ce-type of an event: "ai.reducto.job.completed".
	TypePrefix = "ai.reducto.job."
	// DataSchema is the ce-dataschema of every event: the URI, with its version, of the JSON
	// Schema of the body, docs/event.schema.json (whose $id it is). A change to the body that
	// breaks consumers gets a new version.
	DataSchema = "urn:reducto-bridge:schema:event:v1"
)

// MsgID is the Nats-Msg-Id (and, percent-encoded, the ce-id) of a job's event of kind k:
// "<job_id>:<kind>".
func MsgID(jobID string, k Kind) string { return jobID + ":" + string(k) }

// Headers returns the contract's headers of ev, published from source (ce-source), without
// the JetStream ones the publish adds. The map has the shape of nats.Header (and
// http.Header), so it converts to either. ce-time is ev.ObservedAt, which the caller sets.
func Headers(ev *Event, source string) map[string][]string {
	id := MsgID(ev.JobID, ev.Kind)
	return map[string][]string{
		HeaderContentType:     {ContentType},
		HeaderDataContentType: {ContentType},
		HeaderDataSchema:      {DataSchema},
		HeaderSpecVersion:     {SpecVersion},
		HeaderID:              {percentEncode(id)},
		HeaderType:            {percentEncode(TypePrefix + string(ev.Kind))},
		HeaderSource:          {percentEncode(source)},
		HeaderSubject:         {percentEncode(ev.JobID)},
		HeaderTime:            {percentEncode(ev.ObservedAt.UTC().Format(timeLayout))},
	}
}

// percentEncode applies the CloudEvents NATS binding's rule for header values: space, '"',
// '%' and every byte outside printable ASCII (so every byte of a non-ASCII character's UTF-8
// encoding) become %XX.
func percentEncode(s string) string {
	const hex = "0123456789ABCDEF"
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		c := s[i]
		if c > ' ' && c < 0x7f && c != '"' && c != '%' {
			b.WriteByte(c)
			continue
		}
		b.WriteByte('%')
		b.WriteByte(hex[c>>4])
		b.WriteByte(hex[c&0x0f])
	}
	return b.String()
}
