package main

import (
	"bytes"
	"errors"
	"flag"
	"io"
	"os"
	"os/exec"
	"runtime"
	"strings"
	"testing"

	"github.com/reducto-bridge/reducto-bridge/internal/cli"
	"github.com/reducto-bridge/reducto-bridge/internal/logtest"
	"github.com/reducto-bridge/reducto-bridge/internal/version"
)

// verbs are every command of bridge, the hidden nats-server included, with a line its help
// must contain.
var verbs = map[string]string{
	"run":         "usage: bridge run",
	"env":         "usage: bridge env",
	"version":     "usage: bridge version",
	"demo":        "Usage of demo",
	"sim":         "Usage of sim",
	"bench":       "Usage of bench",
	"nats-server": "Usage of nats-server",
	"track":       "usage: bridge track <job_id>",
	"cancel":      "usage: bridge cancel <job_id>",
	"status":      "usage: bridge status <job_id>",
	"watch":       "usage: bridge watch [kind]",
	"doctor":      "usage: bridge doctor",
}

// TestEveryVerbHelp: 'bridge <verb> -h', '--help' and 'bridge help <verb>' print that verb's
// help and return flag.ErrHelp (exit 0) without starting anything. 'run' without an API key
// would fail at once, and 'sim' would block serving, so an answer of ErrHelp is proof that
// nothing ran.
func TestEveryVerbHelp(t *testing.T) {
	t.Setenv("REDUCTO_API_KEY", "")
	for verb, want := range verbs {
		for _, args := range [][]string{{verb, "-h"}, {verb, "--help"}, {verb, "-help"}, {"help", verb}} {
			var stdout, stderr bytes.Buffer
			err := run(t.Context(), args, &stdout, &stderr)
			if !errors.Is(err, flag.ErrHelp) {
				t.Errorf("%q: %v, want flag.ErrHelp", args, err)
			}
			if !strings.Contains(stderr.String(), want) {
				t.Errorf("%q: help %q lacks %q", args, stderr.String(), want)
			}
		}
	}
	for _, verb := range []string{"run", "env", "version"} {
		var stderr bytes.Buffer
		if err := run(t.Context(), []string{verb, "extra"}, io.Discard, &stderr); !errors.Is(err, cli.ErrUsage) || !strings.Contains(stderr.String(), `unexpected argument "extra"`) {
			t.Errorf("%s extra: %v %q, want a usage error", verb, err, stderr.String())
		}
	}
	var stdout bytes.Buffer
	if err := run(t.Context(), []string{"help"}, &stdout, io.Discard); err != nil {
		t.Fatal(err)
	}
	for verb := range verbs {
		if verb != "nats-server" && !strings.Contains(stdout.String(), "\n  "+verb+" ") {
			t.Errorf("bridge help does not list %s:\n%s", verb, stdout.String())
		}
	}
}

func TestVersionCommand(t *testing.T) {
	var stdout bytes.Buffer
	if err := run(t.Context(), []string{"version"}, &stdout, io.Discard); err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{"reducto-bridge " + version.Version + "\n", "go: " + runtime.Version() + "\n"} {
		if !strings.Contains(stdout.String(), want) {
			t.Errorf("bridge version = %q, lacks %q", stdout.String(), want)
		}
	}
}

// helpHelperEnv switches this test binary into main with the arguments it holds (separated by
// spaces), for TestHelpExitsZero.
const helpHelperEnv = "HELP_TEST_HELPER_ARGS"

// TestHelpHelperMain is not a test: with HELP_TEST_HELPER_ARGS set it is the bridge process of
// TestHelpExitsZero.
func TestHelpHelperMain(t *testing.T) {
	args := os.Getenv(helpHelperEnv)
	if args == "" {
		t.Skip("the bridge process of TestHelpExitsZero")
	}
	os.Args = append([]string{"bridge"}, strings.Fields(args)...)
	main()
	os.Exit(0)
}

// TestHelpExitsZero runs 'bridge <verb> -h' as a process: exit status 0, its help printed. A
// 'bridge run' that started would exit 1 here (no REDUCTO_API_KEY); a wrong flag exits 1.
func TestHelpExitsZero(t *testing.T) {
	if testing.Short() {
		t.Skip("runs processes")
	}
	var env []string
	for _, kv := range os.Environ() {
		if !strings.HasPrefix(kv, "BRIDGE_") && !strings.HasPrefix(kv, "REDUCTO_") && !strings.HasPrefix(kv, "NATS_") {
			env = append(env, kv)
		}
	}
	cases := []struct {
		args, want string
		code       int
	}{
		{"run -h", "usage: bridge run", 0},
		{"run --help", "usage: bridge run", 0},
		{"env --help", "usage: bridge env", 0},
		{"version -h", "usage: bridge version", 0},
		{"sim --help", "Usage of sim", 0},
		{"help run", "usage: bridge run", 0},
		{"version", "reducto-bridge " + version.Version, 0},
		{"run --no-such-flag", "usage: bridge run", 1},
		{"run", "REDUCTO_API_KEY", 1},
	}
	for _, c := range cases {
		cmd := exec.Command(os.Args[0], "-test.run=^TestHelpHelperMain$")
		cmd.Env = append(env, helpHelperEnv+"="+c.args)
		var out logtest.Buffer
		cmd.Stdout, cmd.Stderr = &out, &out
		err := cmd.Run()
		var exit *exec.ExitError
		if err != nil && !errors.As(err, &exit) {
			t.Fatalf("%s: %v", c.args, err)
		}
		if code := cmd.ProcessState.ExitCode(); code != c.code || !strings.Contains(out.String(), c.want) {
			t.Errorf("bridge %s: exit %d, want %d; output lacks %q?\n%s", c.args, code, c.code, c.want, out.String())
		}
	}
}
