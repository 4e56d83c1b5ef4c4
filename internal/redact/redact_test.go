package redact

import (
	"strings"
	"testing"
)

func TestRedactor(t *testing.T) {
	r := New("", "s3cret/t+k&<", "key-1")
	for _, in := range []string{
		"plain s3cret/t+k&< here",
		"url https://b.example/webhooks/reducto?token=s3cret%2Ft%2Bk%26%3C",
		"path /s3cret%2Ft+k&%3C/",
		`json {"webhook_token":"s3cret/t+k\u0026\u003c"}`,
		"twice key-1 key-1",
	} {
		got := r.String(in)
		if strings.Contains(got, "s3cret") || strings.Contains(got, "key-1") || !strings.Contains(got, Placeholder) {
			t.Errorf("String(%q) = %q", in, got)
		}
	}
	if got := r.String("nothing to hide"); got != "nothing to hide" {
		t.Errorf("String changed clean text: %q", got)
	}
	var none *Redactor = New("")
	if none != nil || none.String("a") != "a" {
		t.Error("a Redactor of no secrets changes text")
	}
}
