// Package version holds the bridge's semantic version, in one place: the micro service reports
// it in $SRV.INFO and $SRV.PING, and 'bridge version' prints it with what the Go toolchain
// recorded in the binary. A release build may set it with
// -ldflags "-X github.com/reducto-bridge/reducto-bridge/internal/version.Version=1.2.3".
package version

import (
	"fmt"
	"io"
	"runtime"
	"runtime/debug"
)

// Version is the bridge's semantic version.
var Version = "0.1.0"

// Write prints what 'bridge version' shows: the semantic version, the main module's path and
// version, the Go version, and the VCS revision (with its time, and "modified" for a dirty
// tree) when the build recorded one.
func Write(w io.Writer) error {
	bi, _ := debug.ReadBuildInfo()
	_, err := io.WriteString(w, Format(bi))
	return err
}

// Format renders bi (nil when the binary carries no build information) as [Write] prints it.
func Format(bi *debug.BuildInfo) string {
	s := fmt.Sprintf("reducto-bridge %s\n", Version)
	goVersion := runtime.Version()
	if bi == nil {
		return s + "go: " + goVersion + "\n"
	}
	if bi.GoVersion != "" {
		goVersion = bi.GoVersion
	}
	if bi.Main.Path != "" {
		mod := bi.Main.Version
		if mod == "" {
			mod = "(devel)"
		}
		s += fmt.Sprintf("module: %s %s\n", bi.Main.Path, mod)
	}
	s += "go: " + goVersion + "\n"
	settings := map[string]string{}
	for _, kv := range bi.Settings {
		settings[kv.Key] = kv.Value
	}
	if rev := settings["vcs.revision"]; rev != "" {
		line := "revision: " + rev
		if t := settings["vcs.time"]; t != "" {
			line += " " + t
		}
		if settings["vcs.modified"] == "true" {
			line += " (modified)"
		}
		s += line + "\n"
	}
	return s
}

// Build reports the Go version the binary was built with and its VCS revision (empty when the
// build recorded none), as reducto_bridge_build_info labels them.
func Build() (goVersion, revision string) {
	goVersion = runtime.Version()
	bi, ok := debug.ReadBuildInfo()
	if !ok {
		return goVersion, ""
	}
	if bi.GoVersion != "" {
		goVersion = bi.GoVersion
	}
	for _, kv := range bi.Settings {
		if kv.Key == "vcs.revision" {
			revision = kv.Value
		}
	}
	return goVersion, revision
}
