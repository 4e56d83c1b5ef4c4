package subject

import (
	"strings"
	"testing"
	"unicode"
	"unicode/utf8"
)

// The fuzz targets below run their seeds with every `go test`; fuzz one with, for example,
//
//	go test -run '^$' -fuzz '^FuzzValidJobID$' -fuzztime 2m ./subject

// idSeeds are job ids: real ones, the limits, and every kind of character a token must not have.
var idSeeds = []string{
	"204a39e4-dd10-4c83-a978-0cee4af8cde2",
	"x",
	"café",
	"日本語",
	"a$b",
	"a\u200bb", // zero-width space: not a space to unicode
	strings.Repeat("a", 256),
	strings.Repeat("a", 257),
	strings.Repeat("a", 300),
	strings.Repeat("é", 128),
	strings.Repeat("é", 129),
	"",
	"a.b", ".", "a*", "*", ">", "a>",
	"a b", "a\tb", "a\nb", "a\rb", "a\fb", "a\vb",
	"a\u0085b", "a\u00a0b", "a\u1680b", "a\u2028b", "a\u3000b",
	"a\x00b", "a\x7fb", "a\u009fb",
	"\xff\xfe", "a\xc3", "\xed\xa0\x80", // invalid UTF-8, a cut rune, a surrogate
	"\ufffd",
}

// FuzzValidJobID: an accepted id is one subject token (no '.', '*', '>', whitespace or control
// characters, valid UTF-8, 1 to 256 bytes), and the subjects built from it have exactly one
// token more than their fixed parts and give the id back.
func FuzzValidJobID(f *testing.F) {
	for _, id := range idSeeds {
		f.Add(id)
	}
	f.Fuzz(func(t *testing.T, id string) {
		if ValidJobID(id) != nil {
			return
		}
		checkToken(t, "id", id)
		if len(id) > MaxJobIDLen {
			t.Fatalf("accepted id of %d bytes", len(id))
		}
		checkSubjects(t, DefaultPrefix, id)
	})
}

// FuzzValidPrefix: an accepted prefix is one or more tokens, each free of wildcards, whitespace
// and control characters and valid UTF-8 (stream configs travel as JSON, which would silently
// turn a bad byte into U+FFFD and so subscribe the streams to other subjects than the bridge
// publishes on); with any accepted id it builds well-formed subjects.
func FuzzValidPrefix(f *testing.F) {
	for _, p := range []string{
		"reducto", "acme.reducto", "a.b.c.d", "$JS", "rédacto",
		"", ".", "a..b", ".a", "a.", "a.*", "a.>", "*", ">", "a b", "a\tb", "a\x00b",
		"a\u2028b", "\xff", "a.\xfe", "a\u200bb",
	} {
		for _, id := range []string{"j1", "a.b", "\xff"} {
			f.Add(p, id)
		}
	}
	f.Fuzz(func(t *testing.T, prefix, id string) {
		if ValidPrefix(prefix) != nil {
			return
		}
		for _, tok := range strings.Split(prefix, ".") {
			checkToken(t, "prefix token", tok)
		}
		if ValidJobID(id) != nil {
			return
		}
		checkSubjects(t, prefix, id)
	})
}

// checkToken fails unless tok can be one NATS subject token.
func checkToken(t *testing.T, what, tok string) {
	t.Helper()
	if tok == "" || !utf8.ValidString(tok) {
		t.Fatalf("accepted %s %q: empty or not UTF-8", what, tok)
	}
	if strings.ContainsAny(tok, ".*>") {
		t.Fatalf("accepted %s %q: contains '.', '*' or '>'", what, tok)
	}
	if i := strings.IndexFunc(tok, func(r rune) bool { return unicode.IsSpace(r) || unicode.IsControl(r) }); i >= 0 {
		t.Fatalf("accepted %s %q: whitespace or control character at %d", what, tok, i)
	}
}

// checkSubjects fails unless every subject built from a valid prefix and id has the expected
// tokens and gives the id back.
func checkSubjects(t *testing.T, prefix, id string) {
	t.Helper()
	n := strings.Count(prefix, ".") + 1
	for _, c := range []struct {
		subj   string
		tokens int
	}{
		{Track(prefix, id), n + 2},
		{Event(prefix, "completed", id), n + 3},
		{JobEvents(prefix, id), n + 3},
	} {
		toks := strings.Split(c.subj, ".")
		if len(toks) != c.tokens || toks[len(toks)-1] != id {
			t.Fatalf("subject %q: %d tokens ending %q, want %d ending with the id %q", c.subj, len(toks), toks[len(toks)-1], c.tokens, id)
		}
	}
	if got, ok := TrackJobID(prefix, Track(prefix, id)); !ok || got != id {
		t.Fatalf("TrackJobID(Track(%q, %q)) = %q, %v", prefix, id, got, ok)
	}
	if !strings.HasPrefix(Track(prefix, id), strings.TrimSuffix(TrackAll(prefix), ">")) {
		t.Fatalf("Track(%q, %q) not under TrackAll", prefix, id)
	}
	if !strings.HasPrefix(Event(prefix, "failed", id), strings.TrimSuffix(EventsAll(prefix), ">")) {
		t.Fatalf("Event(%q, %q) not under EventsAll", prefix, id)
	}
}
