package publisher

import (
	"strings"
	"time"

	"github.com/nats-io/nats.go"
)

// Header names of CONTRACT.md section 2 (CloudEvents binary mode, NATS protocol binding).
const (
	HeaderContentType = "Content-Type"
	HeaderSpecVersion = "ce-specversion"
	HeaderID          = "ce-id"
	HeaderType        = "ce-type"
	HeaderSource      = "ce-source"
	HeaderSubject     = "ce-subject"
	HeaderTime        = "ce-time"
)

// typePrefix + kind is the CloudEvents type of an event.
const typePrefix = "ai.reducto.job."

// MsgID is the Nats-Msg-Id (and ce-id) of a job's event of kind k: "<job_id>:<kind>".
func MsgID(jobID string, k Kind) string { return jobID + ":" + string(k) }

// headers are the contract's headers of ev, without the JetStream ones the publish options add.
func headers(ev *Event, source string) nats.Header {
	id := MsgID(ev.JobID, ev.Kind)
	return nats.Header{
		HeaderContentType: {"application/json"},
		HeaderSpecVersion: {"1.0"},
		HeaderID:          {percentEncode(id)},
		HeaderType:        {percentEncode(typePrefix + string(ev.Kind))},
		HeaderSource:      {percentEncode(source)},
		HeaderSubject:     {percentEncode(ev.JobID)},
		HeaderTime:        {percentEncode(ev.ObservedAt.UTC().Format(timeLayout))},
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

// eventTime is the time written into ce-time and observed_at; a zero time becomes now.
func eventTime(t time.Time) time.Time {
	if t.IsZero() {
		return time.Now().UTC()
	}
	return t.UTC()
}
