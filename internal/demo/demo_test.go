package demo

import (
	"bytes"
	"strings"
	"testing"
	"time"
)

// TestDemo runs the demo as a newcomer would (go run ./cmd/bridge demo, with its default
// flags) and checks that it succeeds and shows what it promises.
func TestDemo(t *testing.T) {
	if testing.Short() {
		t.Skip("the demo takes about 15s")
	}
	var out, errOut bytes.Buffer
	if err := Run(t.Context(), Options{Timeout: time.Minute}, &out, &errOut); err != nil {
		t.Fatalf("demo: %v\nstdout:\n%s\nstderr:\n%s", err, out.String(), errOut.String())
	}
	s := out.String()
	for _, want := range []string{
		"tracked 20 jobs",
		`cancel no-such-job: error 404`,
		`"cancel":"requested"`,
		"failed     ",
		"cancelled  ",
		"in object store REDUCTO_RESULTS",
		"result as URL",
		"DOCUMENT_PASSWORD_PROTECTED",
		"track body was not JSON",
		"21, exactly one per job",
		"429s from Reducto  0",
	} {
		if !strings.Contains(s, want) {
			t.Errorf("demo output lacks %q:\n%s", want, s)
		}
	}
}
