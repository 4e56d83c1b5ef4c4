package track

import (
	"bytes"
	"encoding/json"
	"errors"
	"io"
	"strings"
	"testing"
	"unicode"
	"unicode/utf8"

	"github.com/reducto-bridge/reducto-bridge/subject"
	"github.com/reducto-bridge/reducto-bridge/webhook"
)

// The fuzz targets below run their seeds with every `go test`; fuzz one with, for example,
//
//	go test -run '^$' -fuzz '^FuzzTrackBody$' -fuzztime 2m ./track

// FuzzTrackBody: a track body never panics the parser, and yields either no metadata or
// metadata that is valid JSON and valid UTF-8, within the size limit, and equal to the body's
// "metadata" member.
func FuzzTrackBody(f *testing.F) {
	for _, s := range []struct {
		body string
		max  uint16
	}{
		{``, 0},
		{`   `, 0},
		{`{}`, 0},
		{`{"metadata":{"tenant":"acme","n":[1,2,3]}}`, 0},
		{`{"metadata":"x"}`, 0},
		{`{"metadata":null}`, 0},
		{`{"metadata": null }`, 0},
		{`{"metadata":12.5e3,"other":true}`, 0},
		{`{"metadata":[1,{"a":null}]}`, 0},
		{`{"Metadata":1,"metadata":2}`, 0},
		{`{"metadata":1,"METADATA":2}`, 0},
		{`{"metadata":1,"metadata":2}`, 0},
		{`{"metadata":"0123456789abcdef"}`, 8},
		{`{"metadata":{"k":"` + strings.Repeat("v", 100) + `"}}`, 64},
		{` {"metadata":true} `, 0},
		{"{\"metadata\":\"\xff\xfe\"}", 0},
		{"{\"metadata\":{\"k\xff\":1}}", 0},
		{"{\"junk\":\"\xff\",\"metadata\":1}", 0},
		{`{"metadata":"\ud800"}`, 0},
		{`{"metadata":"\u0000<>&\u2028"}`, 0},
		{"\xef\xbb\xbf{\"metadata\":1}", 0},
		{`not json at all`, 0},
		{`null`, 0},
		{`[]`, 0},
		{`"metadata"`, 0},
		{`{"metadata":`, 0},
		{`{"metadata":1}{"metadata":2}`, 0},
		{`{"metadata":01}`, 0},
		{`{"metadata":{"webhook_token":"tok","k":1}}`, 0},
		{`{"metadata":{"webhook_token":"tok"}}`, 0},
		{strings.Repeat(`{"metadata":`, 12000), 0},
		{`{"metadata":` + strings.Repeat(`[`, 9000) + strings.Repeat(`]`, 9000) + `}`, 0},
	} {
		f.Add([]byte(s.body), s.max)
	}
	f.Fuzz(func(t *testing.T, body []byte, max uint16) {
		limit := int(max)
		if limit == 0 {
			limit = 64 << 10
		}
		req, err := ParseBody(body, limit)
		md := req.Metadata
		if err != nil {
			if md != nil {
				t.Fatalf("metadata %q returned with error %v", md, err)
			}
			var tooLarge *MetadataTooLargeError
			if !errors.Is(err, ErrBodyNotObject) && !errors.Is(err, ErrMetadataNotUTF8) && !errors.As(err, &tooLarge) {
				t.Fatalf("unexpected error kind: %v", err)
			}
			return
		}
		if md == nil {
			return
		}
		if !json.Valid(md) || !utf8.Valid(md) {
			t.Fatalf("metadata %q is not valid JSON in UTF-8", md)
		}
		if len(md) > limit {
			t.Fatalf("metadata of %d bytes above the limit %d", len(md), limit)
		}
		if bytes.Equal(md, []byte("null")) {
			t.Fatal("metadata null kept")
		}
		if !isMetadataMember(body, md) {
			t.Fatalf("metadata %q is not a metadata member of %q (less its webhook token)", md, body)
		}
		var members map[string]json.RawMessage
		if json.Unmarshal(md, &members) == nil {
			if _, ok := members[webhook.TokenMetadataKey]; ok {
				t.Fatalf("metadata %q keeps the webhook token", md)
			}
		}
		// What an event carries survives a round trip through encoding/json unchanged.
		out, err := json.Marshal(Request{Metadata: md})
		if err != nil || !json.Valid(out) || !utf8.Valid(out) {
			t.Fatalf("re-encoding metadata %q: %q, %v", md, out, err)
		}
	})
}

// isMetadataMember reports whether md is, byte for byte, the value of a top-level member of
// body whose key matches "metadata" the way encoding/json matches field names, less its
// webhook token (webhook.StripToken).
func isMetadataMember(body, md []byte) bool {
	dec := json.NewDecoder(bytes.NewReader(body))
	if tok, err := dec.Token(); err != nil || tok != json.Delim('{') {
		return false
	}
	for dec.More() {
		tok, err := dec.Token()
		if err != nil {
			return false
		}
		var v json.RawMessage
		if err := dec.Decode(&v); err != nil {
			return false
		}
		if key, _ := tok.(string); strings.EqualFold(key, "metadata") && bytes.Equal(webhook.StripToken(v), md) {
			return true
		}
	}
	_, err := dec.Token()
	return err == nil || err == io.EOF
}

// FuzzTrackSubject: a subject yields a job id only when the id is one valid subject token, and
// the track subject built from that id is the subject it came from.
func FuzzTrackSubject(f *testing.F) {
	for _, s := range []struct{ prefix, subj string }{
		{"reducto", "reducto.track.204a39e4-dd10-4c83-a978-0cee4af8cde2"},
		{"reducto", "reducto.track.j1"},
		{"reducto", "reducto.track."},
		{"reducto", "reducto.track"},
		{"reducto", "reducto.track.a.b"},
		{"reducto", "reducto.track.*"},
		{"reducto", "reducto.track.>"},
		{"reducto", "reducto.track.a b"},
		{"reducto", "reducto.track.a\tb"},
		{"reducto", "reducto.track.a\u00a0b"},
		{"reducto", "reducto.track.a\u2028b"},
		{"reducto", "reducto.track.\x00"},
		{"reducto", "reducto.track.\xff\xfe"},
		{"reducto", "reducto.track.café"},
		{"reducto", "reducto.track." + strings.Repeat("x", 256)},
		{"reducto", "reducto.track." + strings.Repeat("x", 300)},
		{"reducto", "reducto.track." + strings.Repeat("é", 128)},
		{"reducto", "other.track.j1"},
		{"reducto", "reducto.job.completed.j1"},
		{"acme.reducto", "acme.reducto.track.j1"},
		{"acme.reducto", "reducto.track.j1"},
		{"re", "reducto.track.j1"},
		{"", ".track.j1"},
	} {
		f.Add(s.prefix, s.subj)
	}
	f.Fuzz(func(t *testing.T, prefix, subj string) {
		if subject.ValidPrefix(prefix) != nil {
			return // refused at start-up
		}
		id, err := (&Queue{prefix: prefix}).JobID(subj)
		if err != nil {
			if id != "" {
				t.Fatalf("id %q returned with error %v", id, err)
			}
			return
		}
		if err := subject.ValidJobID(id); err != nil {
			t.Fatalf("accepted id %q: %v", id, err)
		}
		if id == "" || len(id) > subject.MaxJobIDLen || !utf8.ValidString(id) {
			t.Fatalf("accepted id %q: empty, too long or not UTF-8", id)
		}
		if strings.ContainsAny(id, ".*>") || strings.IndexFunc(id, unicode.IsSpace) >= 0 {
			t.Fatalf("accepted id %q contains a separator, a wildcard or a space", id)
		}
		if got := subject.Track(prefix, id); got != subj {
			t.Fatalf("Track(%q, %q) = %q, want the subject it came from, %q", prefix, id, got, subj)
		}
	})
}
