// Command bridge turns Reducto's polling-only async jobs into NATS JetStream events.
//
//	bridge [run]   the service, configured from the environment (see 'bridge env')
//	bridge demo    everything in one process: embedded NATS, the Reducto simulator, a few jobs
//	bridge env     every environment variable with its default and meaning
//	bridge sim     the Reducto simulator over HTTP, for developing against it locally
//	bridge bench   the docs' polling loop vs the bridge (polling, webhooks) on the simulator
//	bridge version the version, the Go version and the VCS revision
//	bridge track|cancel|status|watch|doctor   thin NATS clients of a running bridge
//
// 'bridge <command> -h' (or --help, or 'bridge help <command>') prints a command's help and
// exits 0 without starting anything.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"strings"
	"syscall"
	"time"

	"github.com/reducto-bridge/reducto-bridge/internal/bench"
	"github.com/reducto-bridge/reducto-bridge/internal/bridge"
	"github.com/reducto-bridge/reducto-bridge/internal/cli"
	"github.com/reducto-bridge/reducto-bridge/internal/demo"
	"github.com/reducto-bridge/reducto-bridge/internal/version"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	err := run(ctx, os.Args[1:], os.Stdout, os.Stderr)
	if errors.Is(err, flag.ErrHelp) {
		return // -h: the usage text has been printed, as asked
	}
	if err != nil {
		if !errors.Is(err, cli.ErrUsage) {
			fmt.Fprintln(os.Stderr, "bridge:", err)
		}
		os.Exit(1)
	}
}

const usage = `usage: bridge [command]

commands:
  run      run the bridge (the default), configured from the environment
  demo     run an embedded NATS, the Reducto simulator and the bridge with a few jobs
  env      print every environment variable with its default and meaning
  sim      serve the Reducto simulator over HTTP
  bench    benchmark the docs' polling loop against the bridge
  version  print the version, the Go version and the VCS revision
  help     print this, or 'bridge help <command>' that command's help

verbs (NATS clients of a running bridge, connected as NATS_URL and the NATS_* variables say):
%s
'bridge <command> -h' (or --help) prints a command's help and flags.
`

// usageText is usage with the NATS client verbs listed.
func usageText() string {
	var verbs strings.Builder
	for _, v := range cli.Verbs {
		fmt.Fprintf(&verbs, "  %-8s %s\n", v.Name, v.Summary)
	}
	return fmt.Sprintf(usage, verbs.String())
}

// run dispatches the subcommands; ctx ends on SIGINT or SIGTERM. A command's -h or --help
// returns flag.ErrHelp having printed its help, and starts nothing.
func run(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	cmd := "run"
	if len(args) > 0 {
		cmd, args = args[0], args[1:]
	}
	switch cmd {
	case "run":
		if err := noArgs("run", "runs the bridge, configured from the environment ('bridge env' lists the variables);\nexits 0 on SIGTERM or SIGINT.", args, stderr); err != nil {
			return err
		}
		return bridge.Run(ctx, stderr)
	case "demo":
		fs := flag.NewFlagSet("demo", flag.ContinueOnError)
		fs.SetOutput(stderr)
		var o demo.Options
		fs.BoolVar(&o.Verbose, "v", false, "show the bridge's logs")
		fs.DurationVar(&o.Timeout, "timeout", time.Minute, "give up when not every job has its event by then")
		if err := cli.ParseFlags(fs, args); err != nil {
			return err
		}
		return demo.Run(ctx, o, stdout, stderr)
	case "env":
		if err := noArgs("env", "prints every environment variable the bridge reads, with its default and meaning.", args, stderr); err != nil {
			return err
		}
		return printEnv(stdout)
	case "sim":
		return runSim(ctx, args, stdout, stderr)
	case "bench":
		return bench.Main(ctx, args, stdout, stderr)
	case "nats-server": // hidden: the scheduler benchmark's NATS server as its own process
		return bench.ServeNATS(ctx, args, stdout, stderr)
	case "version":
		if err := noArgs("version", "prints the bridge's version, its module version, the Go version and, when the\nbuild recorded it, the VCS revision.", args, stderr); err != nil {
			return err
		}
		return version.Write(stdout)
	case "help", "-h", "-help", "--help":
		if len(args) > 0 && args[0] != "help" && !strings.HasPrefix(args[0], "-") {
			return run(ctx, []string{args[0], "-h"}, stdout, stderr)
		}
		fmt.Fprint(stdout, usageText())
		return nil
	}
	if cli.IsVerb(cmd) {
		return cli.Run(ctx, cmd, args, stdout, stderr)
	}
	fmt.Fprintf(stderr, "bridge: unknown command %q\n\n%s", cmd, usageText())
	return cli.ErrUsage
}

// noArgs parses the command line of a command that takes no flags and no arguments: -h or
// --help prints its help (flag.ErrHelp), anything else is a usage error.
func noArgs(name, help string, args []string, stderr io.Writer) error {
	fs := flag.NewFlagSet(name, flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.Usage = func() { fmt.Fprintf(stderr, "usage: bridge %s\n\n'bridge %s' %s\n", name, name, help) }
	if err := cli.ParseFlags(fs, args); err != nil {
		return err
	}
	if fs.NArg() > 0 {
		fmt.Fprintf(stderr, "bridge %s: unexpected argument %q\n", name, fs.Arg(0))
		fs.Usage()
		return cli.ErrUsage
	}
	return nil
}
