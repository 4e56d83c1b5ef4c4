package bridge

import (
	"log/slog"
	"strings"

	"github.com/reducto-bridge/reducto-bridge/config"
)

// warnUnknownVars logs one warning per BRIDGE_* or REDUCTO_* variable of environ that nothing
// reads, most likely a typo (BRIDGE_RATE_LIMT), with the variable it is closest to. Only
// names are logged, never a value: it may be a secret.
func warnUnknownVars(log *slog.Logger, environ []string) {
	for _, v := range config.UnknownVars(environ, extraVars...) {
		args := []any{"variable", v.Name}
		if v.Suggestion != "" {
			args = append(args, "did_you_mean", v.Suggestion)
		}
		log.Warn("unknown environment variable; ignored", args...)
	}
}

// unknownVarsNote is the same for a configuration error (which is printed before any
// logger exists): "" or a line naming the unknown variables, since a typo may be why a
// variable seems unset.
func unknownVarsNote(environ []string) string {
	vars := config.UnknownVars(environ, extraVars...)
	if len(vars) == 0 {
		return ""
	}
	names := make([]string, len(vars))
	for i, v := range vars {
		names[i] = v.Name
		if v.Suggestion != "" {
			names[i] += " (did you mean " + v.Suggestion + "?)"
		}
	}
	return "\nunknown environment variables, ignored: " + strings.Join(names, ", ")
}

// extraVars are the BRIDGE_* and REDUCTO_* variables read outside [config.Config]: with
// os.Getenv, not envconfig.
var extraVars = []string{CrashAfterPublishEnv}
