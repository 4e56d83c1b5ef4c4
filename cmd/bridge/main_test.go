package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"flag"
	"io"
	"net/http"
	"os"
	"os/exec"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/reducto-bridge/reducto-bridge/internal/cli"
	"github.com/reducto-bridge/reducto-bridge/internal/logtest"
	"github.com/reducto-bridge/reducto-bridge/internal/natstest"
)

const testKey = "sk-live-TESTKEY-0b7d"

// readyz returns the status and body of GET /readyz on addr (status 0 if it did not answer).
func readyz(addr string) (int, string) {
	c := http.Client{Timeout: 5 * time.Second}
	resp, err := c.Get("http://" + addr + "/readyz")
	if err != nil {
		return 0, err.Error()
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(body)
}

func TestCommandLine(t *testing.T) {
	var out bytes.Buffer
	if err := run(t.Context(), []string{"env"}, &out, io.Discard); err != nil {
		t.Fatal(err)
	}
	for _, v := range []string{"REDUCTO_API_KEY", "NATS_URL", "BRIDGE_POLL_INITIAL_INTERVAL", "BRIDGE_WEBHOOK_TOKEN"} {
		if !strings.Contains(out.String(), v) {
			t.Errorf("bridge env lacks %s", v)
		}
	}
	var stderr bytes.Buffer
	if err := run(t.Context(), []string{"frobnicate"}, io.Discard, &stderr); err == nil || !strings.Contains(stderr.String(), "unknown command") {
		t.Errorf("unknown command: %v %s", err, stderr.String())
	}
	// -h prints a subcommand's flags and is not an error (exit 0); a bad flag is (exit 1).
	for _, cmd := range []string{"sim", "demo", "bench"} {
		stderr.Reset()
		if err := run(t.Context(), []string{cmd, "-h"}, io.Discard, &stderr); !errors.Is(err, flag.ErrHelp) || !strings.Contains(stderr.String(), "Usage of "+cmd) {
			t.Errorf("%s -h: %v %s", cmd, err, stderr.String())
		}
		if err := run(t.Context(), []string{cmd, "-no-such-flag"}, io.Discard, io.Discard); !errors.Is(err, cli.ErrUsage) {
			t.Errorf("%s -no-such-flag: %v, want cli.ErrUsage", cmd, err)
		}
	}
}

func TestSimCommand(t *testing.T) {
	ctx, cancel := context.WithCancel(t.Context())
	pr, pw := io.Pipe()
	errc := make(chan error, 1)
	go func() {
		errc <- run(ctx, []string{"sim", "-addr", "127.0.0.1:0", "-api-key", "k", "-median", "1ms"}, pw, io.Discard)
		pw.Close()
	}()
	line := make([]byte, 200)
	n, _ := pr.Read(line)
	_, addr, ok := strings.Cut(strings.TrimSpace(string(line[:n])), "http://")
	if !ok {
		t.Fatalf("no address in %q", line[:n])
	}
	addr, _, _ = strings.Cut(addr, " ")
	go io.Copy(io.Discard, pr)
	req, _ := http.NewRequest("POST", "http://"+addr+"/parse_async", strings.NewReader(`{"input":"https://x/a.pdf"}`))
	req.Header.Set("Authorization", "Bearer k")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	var sub struct {
		JobID string `json:"job_id"`
	}
	json.NewDecoder(resp.Body).Decode(&sub)
	resp.Body.Close()
	if resp.StatusCode != 200 || sub.JobID == "" {
		t.Fatalf("submit to bridge sim: %d %+v", resp.StatusCode, sub)
	}
	cancel()
	if err := <-errc; err != nil {
		t.Errorf("sim exited with %v", err)
	}
}

// startupHelperEnv switches this test binary into 'bridge run' through main, for
// TestSIGTERMDuringStartup.
const startupHelperEnv = "STARTUP_TEST_HELPER_MAIN"

// TestStartupHelperMain is not a test: with STARTUP_TEST_HELPER_MAIN=1 it is the bridge
// process of TestSIGTERMDuringStartup, signal handling and exit status included.
func TestStartupHelperMain(t *testing.T) {
	if os.Getenv(startupHelperEnv) != "1" {
		t.Skip("the bridge process of TestSIGTERMDuringStartup")
	}
	os.Args = []string{"bridge", "run"}
	main()
	os.Exit(0)
}

// TestSIGTERMDuringStartup sends SIGTERM to a bridge process that is waiting for NATS and
// expects exit status 0 and a log line.
func TestSIGTERMDuringStartup(t *testing.T) {
	addr := natstest.FreeAddr(t)
	env := []string{startupHelperEnv + "=1"}
	for _, kv := range os.Environ() {
		if !strings.HasPrefix(kv, "BRIDGE_") && !strings.HasPrefix(kv, "REDUCTO_") && !strings.HasPrefix(kv, "NATS_") {
			env = append(env, kv)
		}
	}
	env = append(env,
		"REDUCTO_API_KEY="+testKey,
		"REDUCTO_BASE_URL=http://127.0.0.1:1",
		"NATS_URL=nats://"+natstest.FreeAddr(t), // refused: nobody listens there
		"BRIDGE_HTTP_ADDR="+addr,
	)
	cmd := exec.Command(os.Args[0], "-test.run=^TestStartupHelperMain$")
	cmd.Env = env
	var out logtest.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	exited := make(chan struct{})
	go func() {
		cmd.Wait()
		close(exited)
	}()
	t.Cleanup(func() {
		select {
		case <-exited:
		default:
			cmd.Process.Kill()
			<-exited
		}
	})
	natstest.WaitFor(t, func() bool {
		select {
		case <-exited:
			t.Fatalf("the bridge exited early with status %d:\n%s", cmd.ProcessState.ExitCode(), out.String())
		default:
		}
		code, body := readyz(addr)
		return code == http.StatusServiceUnavailable && strings.Contains(body, "connection refused")
	})
	if err := cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	select {
	case <-exited:
	case <-time.After(20 * time.Second):
		t.Fatalf("no exit within 20s of SIGTERM:\n%s", out.String())
	}
	if code := cmd.ProcessState.ExitCode(); code != 0 {
		t.Errorf("exit status %d after SIGTERM during start-up, want 0:\n%s", code, out.String())
	}
	if want := `msg="start-up interrupted; exiting" cause="terminated signal received"`; !strings.Contains(out.String(), want) {
		t.Errorf("output lacks %q:\n%s", want, out.String())
	}
}
