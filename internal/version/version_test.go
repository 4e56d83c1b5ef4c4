package version

import (
	"bytes"
	"runtime"
	"runtime/debug"
	"strings"
	"testing"
)

func TestFormat(t *testing.T) {
	tests := []struct {
		name string
		bi   *debug.BuildInfo
		want string
	}{
		{"no build information", nil, "reducto-bridge 0.1.0\ngo: " + runtime.Version() + "\n"},
		{"a release built from a clean tree", &debug.BuildInfo{
			GoVersion: "go1.26.8",
			Main:      debug.Module{Path: "github.com/reducto-bridge/reducto-bridge", Version: "v0.1.0"},
			Settings: []debug.BuildSetting{
				{Key: "vcs", Value: "git"}, {Key: "vcs.revision", Value: "42d1785abc"},
				{Key: "vcs.time", Value: "2026-12-01T17:00:00Z"}, {Key: "vcs.modified", Value: "false"},
			},
		}, "reducto-bridge 0.1.0\nmodule: github.com/reducto-bridge/reducto-bridge v0.1.0\ngo: go1.26.8\nrevision: 42d1785abc 2026-12-01T17:00:00Z\n"},
		{"a dirty work tree", &debug.BuildInfo{
			GoVersion: "go1.26.8",
			Main:      debug.Module{Path: "github.com/reducto-bridge/reducto-bridge"},
			Settings:  []debug.BuildSetting{{Key: "vcs.revision", Value: "b49a193"}, {Key: "vcs.modified", Value: "true"}},
		}, "reducto-bridge 0.1.0\nmodule: github.com/reducto-bridge/reducto-bridge (devel)\ngo: go1.26.8\nrevision: b49a193 (modified)\n"},
		{"built without VCS stamping", &debug.BuildInfo{
			GoVersion: "go1.26.8", Main: debug.Module{Path: "github.com/reducto-bridge/reducto-bridge", Version: "(devel)"},
			Settings: []debug.BuildSetting{{Key: "-buildvcs", Value: "false"}},
		}, "reducto-bridge 0.1.0\nmodule: github.com/reducto-bridge/reducto-bridge (devel)\ngo: go1.26.8\n"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := Format(tt.bi); got != tt.want {
				t.Errorf("got\n%s\nwant\n%s", got, tt.want)
			}
		})
	}
}

func TestWriteReadsThisBinary(t *testing.T) {
	var b bytes.Buffer
	if err := Write(&b); err != nil {
		t.Fatal(err)
	}
	if !strings.HasPrefix(b.String(), "reducto-bridge "+Version+"\n") || !strings.Contains(b.String(), "go: "+runtime.Version()+"\n") {
		t.Errorf("Write = %q", b.String())
	}
}
