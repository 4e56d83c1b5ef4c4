// Command bridge turns Reducto's polling-only async jobs into NATS JetStream events.
//
//	bridge [run]   the service, configured from the environment (see 'bridge env')
//	bridge demo    everything in one process: embedded NATS, the Reducto simulator, a few jobs
//	bridge env     every environment variable with its default and meaning
//	bridge sim     the Reducto simulator over HTTP, for developing against it locally
//	bridge bench   the docs' polling loop vs the bridge (polling, webhooks) on the simulator
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"syscall"
	"time"

	"github.com/reducto-bridge/reducto-bridge/internal/bench"
	"github.com/reducto-bridge/reducto-bridge/internal/bridge"
	"github.com/reducto-bridge/reducto-bridge/internal/cli"
	"github.com/reducto-bridge/reducto-bridge/internal/demo"
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
  run     run the bridge (the default), configured from the environment
  demo    run an embedded NATS, the Reducto simulator and the bridge with a few jobs
  env     print every environment variable with its default and meaning
  sim     serve the Reducto simulator over HTTP (bridge sim -h for its flags)
  bench   benchmark the docs' polling loop against the bridge (bridge bench -h for its flags)
`

// run dispatches the subcommands; ctx ends on SIGINT or SIGTERM.
func run(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	cmd := "run"
	if len(args) > 0 {
		cmd, args = args[0], args[1:]
	}
	switch cmd {
	case "run":
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
		return printEnv(stdout)
	case "sim":
		return runSim(ctx, args, stdout, stderr)
	case "bench":
		return bench.Main(ctx, args, stdout, stderr)
	case "nats-server": // hidden: the scheduler benchmark's NATS server as its own process
		return bench.ServeNATS(ctx, args, stdout, stderr)
	case "help", "-h", "-help", "--help":
		fmt.Fprint(stdout, usage)
		return nil
	}
	fmt.Fprintf(stderr, "bridge: unknown command %q\n\n%s", cmd, usage)
	return cli.ErrUsage
}
