// Package cli is what the bridge's subcommands share about their command lines (how flags are
// parsed and how a wrong command line is reported, so cmd/bridge maps both to the same exit
// status, 0 for -h and 1 otherwise, whichever package parsed the flags), and the verbs that
// are thin NATS clients of a running bridge: track, cancel, status, watch and doctor ([Run]).
package cli

import (
	"errors"
	"flag"
)

// ErrUsage reports a command line that was wrong; the usage text has been printed.
var ErrUsage = errors.New("usage")

// ParseFlags parses a subcommand's flags (fs must use flag.ContinueOnError): flag.ErrHelp for
// -h (the usage has been printed and the process exits 0), ErrUsage for anything else wrong.
func ParseFlags(fs *flag.FlagSet, args []string) error {
	err := fs.Parse(args)
	if err == nil || errors.Is(err, flag.ErrHelp) {
		return err
	}
	return ErrUsage
}
