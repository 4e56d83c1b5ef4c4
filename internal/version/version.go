// Package version holds the bridge's semantic version, in one place: the micro service reports
// it in $SRV.INFO and $SRV.PING. A release build may set it with
// -ldflags "-X github.com/reducto-bridge/reducto-bridge/internal/version.Version=1.2.3".
package version

// Version is the bridge's semantic version.
var Version = "0.1.0"
