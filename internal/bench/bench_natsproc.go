package bench

import (
	"bufio"
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/nats-io/nats-server/v2/server"

	"github.com/reducto-bridge/reducto-bridge/internal/cli"
)

// natsReadyPrefix starts the line 'bridge nats-server' prints once it accepts clients,
// followed by its client URL.
const natsReadyPrefix = "nats-server ready "

// ServeNATS is the hidden 'bridge nats-server -dir D -addr A': the embedded nats-server with
// JetStream file storage in D, listening on A (127.0.0.1:0 picks a port), as a process of its
// own, so that the scheduler benchmark can measure its CPU and memory apart from the bench's.
// Once it accepts clients it prints "nats-server ready <url>" on stdout; it shuts down when
// ctx ends (SIGINT, SIGTERM).
func ServeNATS(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("nats-server", flag.ContinueOnError)
	fs.SetOutput(stderr)
	dir := fs.String("dir", "", "JetStream storage directory (required)")
	addr := fs.String("addr", "127.0.0.1:0", "host:port to listen on (port 0: any free port)")
	if err := cli.ParseFlags(fs, args); err != nil {
		return err
	}
	if fs.NArg() > 0 || *dir == "" {
		fmt.Fprintln(stderr, "nats-server: usage: bridge nats-server -dir D [-addr host:port]")
		return cli.ErrUsage
	}
	host, portText, err := net.SplitHostPort(*addr)
	if err != nil {
		return fmt.Errorf("nats-server: -addr %q: %w", *addr, err)
	}
	port, err := strconv.Atoi(portText)
	if err != nil || port < 0 || port > 65535 {
		return fmt.Errorf("nats-server: -addr %q: port must be 0..65535", *addr)
	}
	if port == 0 {
		port = -1 // the server's "any free port"
	}
	ns, err := server.NewServer(&server.Options{
		ServerName: "bridge-bench", Host: host, Port: port,
		JetStream: true, StoreDir: *dir, NoLog: true, NoSigs: true,
	})
	if err != nil {
		return fmt.Errorf("nats-server: %w", err)
	}
	ns.Start()
	defer func() {
		ns.Shutdown()
		ns.WaitForShutdown()
	}()
	if !ns.ReadyForConnections(30 * time.Second) {
		return errors.New("nats-server: not ready within 30s")
	}
	if _, err := fmt.Fprintln(stdout, natsReadyPrefix+ns.ClientURL()); err != nil {
		return err
	}
	<-ctx.Done()
	return nil
}

// natsProcess is a 'bridge nats-server' child process.
type natsProcess struct {
	cmd  *exec.Cmd
	url  string
	done chan struct{} // closed when it has exited
	err  error         // cmd.Wait's result, set before done is closed
}

// startNATSProcess starts argv (nil: this executable with "nats-server") with -dir dir and
// -addr 127.0.0.1:0, its stderr (and stdout after the ready line) appended to logPath, and
// waits for its ready line.
func startNATSProcess(argv, extraEnv []string, dir, logPath string) (*natsProcess, error) {
	if len(argv) == 0 {
		exe, err := os.Executable()
		if err != nil {
			return nil, fmt.Errorf("nats-server process: find own executable: %w", err)
		}
		argv = []string{exe, "nats-server"}
	}
	argv = append(append([]string(nil), argv...), "-dir", dir, "-addr", "127.0.0.1:0")
	logf, err := os.OpenFile(logPath, os.O_CREATE|os.O_WRONLY|os.O_TRUNC, 0o644)
	if err != nil {
		return nil, fmt.Errorf("nats-server process: log file: %w", err)
	}
	defer logf.Close() // the child and the copier hold their own
	cmd := exec.Command(argv[0], argv[1:]...)
	cmd.Env = append(os.Environ(), extraEnv...)
	cmd.Stderr = logf
	out, err := cmd.StdoutPipe()
	if err != nil {
		return nil, err
	}
	if err := cmd.Start(); err != nil {
		return nil, fmt.Errorf("nats-server process: start: %w", err)
	}
	p := &natsProcess{cmd: cmd, done: make(chan struct{})}
	ready := make(chan string, 1)
	copyLog, err := os.OpenFile(logPath, os.O_WRONLY|os.O_APPEND, 0o644)
	if err != nil {
		_ = cmd.Process.Kill()
		return nil, err
	}
	go func() {
		defer copyLog.Close()
		sc := bufio.NewScanner(out)
		for sc.Scan() {
			if url, ok := strings.CutPrefix(sc.Text(), natsReadyPrefix); ok {
				select {
				case ready <- url:
				default:
				}
				continue
			}
			fmt.Fprintln(copyLog, sc.Text())
		}
		p.err = cmd.Wait() // after the pipe is drained, as exec requires
		close(p.done)
	}()
	t := time.NewTimer(time.Minute)
	defer t.Stop()
	select {
	case p.url = <-ready:
		return p, nil
	case <-p.done:
		return nil, fmt.Errorf("nats-server process exited before it was ready: %v (see %s)", p.err, logPath)
	case <-t.C:
		_ = p.stop(time.Second)
		return nil, fmt.Errorf("nats-server process not ready within a minute (see %s)", logPath)
	}
}

// pid is the process's id.
func (p *natsProcess) pid() int { return p.cmd.Process.Pid }

// exited is closed when the process has exited.
func (p *natsProcess) exited() <-chan struct{} { return p.done }

// stop SIGTERMs the process and waits for it, killing it after timeout.
func (p *natsProcess) stop(timeout time.Duration) error {
	select {
	case <-p.done:
		return p.err
	default:
	}
	_ = p.cmd.Process.Signal(syscall.SIGTERM)
	t := time.NewTimer(timeout)
	defer t.Stop()
	select {
	case <-p.done:
		return p.err
	case <-t.C:
		_ = p.cmd.Process.Kill()
		<-p.done
		return fmt.Errorf("nats-server process did not stop within %s; killed", timeout)
	}
}

// userHZ is the unit of utime and stime in /proc/<pid>/stat: USER_HZ, 100 on every Linux
// architecture Go supports.
const userHZ = 100

// procCPU reads a process's CPU time so far (user + system) from /proc/<pid>/stat.
func procCPU(pid int) (time.Duration, bool) {
	b, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/stat")
	if err != nil {
		return 0, false
	}
	return parseStatCPU(string(b))
}

// parseStatCPU reads utime + stime from the text of /proc/<pid>/stat. The command name, in
// parentheses, may hold spaces and parentheses, so the fields are counted after the last ")":
// state is field 3, utime 14 and stime 15.
func parseStatCPU(stat string) (time.Duration, bool) {
	i := strings.LastIndexByte(stat, ')')
	if i < 0 {
		return 0, false
	}
	f := strings.Fields(stat[i+1:])
	if len(f) < 13 {
		return 0, false
	}
	ut, err1 := strconv.ParseInt(f[11], 10, 64)
	st, err2 := strconv.ParseInt(f[12], 10, 64)
	if err1 != nil || err2 != nil {
		return 0, false
	}
	return time.Duration(ut+st) * time.Second / userHZ, true
}
