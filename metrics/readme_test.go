package metrics_test

import (
	"os"
	"regexp"
	"strings"
	"testing"
)

// TestREADMEListsEveryMetric keeps the README's metrics table from drifting: every metric
// metrics.go defines is named there.
func TestREADMEListsEveryMetric(t *testing.T) {
	src, err := os.ReadFile("metrics.go")
	if err != nil {
		t.Fatal(err)
	}
	readme, err := os.ReadFile("../README.md")
	if err != nil {
		t.Fatal(err)
	}
	names := regexp.MustCompile(`Name: +"([a-z_]+)"`).FindAllStringSubmatch(string(src), -1)
	if len(names) < 20 {
		t.Fatalf("found %d metric names in metrics.go, want the 20 or more it defines", len(names))
	}
	for _, n := range names {
		if full := "`reducto_bridge_" + n[1]; !strings.Contains(string(readme), full+"`") && !strings.Contains(string(readme), full+"{") {
			t.Errorf("README.md does not list reducto_bridge_%s", n[1])
		}
	}
}
