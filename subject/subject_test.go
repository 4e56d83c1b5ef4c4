package subject

import (
	"errors"
	"strings"
	"testing"
)

func TestValidJobID(t *testing.T) {
	tests := []struct {
		id string
		ok bool
	}{
		{"204a39e4-dd10-4c83-a978-0cee4af8cde2", true},
		{"x", true},
		{strings.Repeat("a", 256), true},
		{strings.Repeat("a", 257), false},
		{"", false},
		{"a.b", false},
		{"a*", false},
		{">", false},
		{"a b", false},
		{"a\tb", false},
		{"a\x00b", false},
		{"\xff\xfe", false},
		{"café", true},
	}
	for _, tt := range tests {
		err := ValidJobID(tt.id)
		if got := err == nil; got != tt.ok {
			t.Errorf("ValidJobID(%q) = %v, want ok=%v", tt.id, err, tt.ok)
		}
		if err != nil && !errors.Is(err, ErrInvalidJobID) {
			t.Errorf("ValidJobID(%q) error %v does not match ErrInvalidJobID", tt.id, err)
		}
	}
}

func TestValidPrefix(t *testing.T) {
	tests := []struct {
		p  string
		ok bool
	}{
		{"reducto", true},
		{"acme.reducto", true},
		{"", false},
		{"a..b", false},
		{".a", false},
		{"a.", false},
		{"a.*", false},
		{"a.>", false},
		{"a b", false},
		{"rédacto", true},
		{"\xff", false},
		{"acme.\xc3", false},
	}
	for _, tt := range tests {
		if got := ValidPrefix(tt.p) == nil; got != tt.ok {
			t.Errorf("ValidPrefix(%q) ok = %v, want %v", tt.p, got, tt.ok)
		}
	}
}

func TestSubjects(t *testing.T) {
	if got, want := Track("reducto", "j1"), "reducto.track.j1"; got != want {
		t.Errorf("Track = %q, want %q", got, want)
	}
	if got, want := Event("acme.r", "completed", "j1"), "acme.r.job.completed.j1"; got != want {
		t.Errorf("Event = %q, want %q", got, want)
	}
	if got, want := JobEvents("reducto", "j1"), "reducto.job.*.j1"; got != want {
		t.Errorf("JobEvents = %q, want %q", got, want)
	}
	if id, ok := TrackJobID("reducto", "reducto.track.j1"); !ok || id != "j1" {
		t.Errorf("TrackJobID = %q, %v, want j1, true", id, ok)
	}
	for _, s := range []string{"reducto.track.", "other.track.j1", "reducto.job.completed.j1"} {
		if id, ok := TrackJobID("reducto", s); ok {
			t.Errorf("TrackJobID(%q) = %q, true, want false", s, id)
		}
	}
}
