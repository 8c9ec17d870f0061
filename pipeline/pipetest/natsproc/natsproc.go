// Package natsproc runs nats-server as a separate process for tests, built
// from the nats-server module this repository requires, and makes the TLS
// certificates a secured server and its clients need.
package natsproc

import (
	"bufio"
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/wsgrpo/wsgrpo/internal/proctest"
)

// EnvBinary names a nats-server binary to use instead of building one.
const EnvBinary = "WSGRPO_NATS_SERVER"

// module is the nats-server module whose main package Binary builds.
const module = "github.com/nats-io/nats-server/v2"

var (
	buildOnce sync.Once
	buildPath string
	buildErr  error
)

// Binary returns the path of a nats-server binary: $WSGRPO_NATS_SERVER, or
// one built with the go tool from the required nats-server module into
// $WSGRPO_HOME/bin (default the user cache's wsgrpo/bin) and kept there
// for later runs. It skips the test, saying why, when neither is
// available.
func Binary(tb testing.TB) string {
	tb.Helper()
	if p := os.Getenv(EnvBinary); p != "" {
		return p
	}
	buildOnce.Do(func() { buildPath, buildErr = build() })
	if buildErr != nil {
		tb.Skipf("no nats-server binary (set %s, or have the go tool build %s): %v", EnvBinary, module, buildErr)
	}
	return buildPath
}

// build compiles nats-server into the cache unless it is there already.
func build() (string, error) {
	goTool, err := exec.LookPath("go")
	if err != nil {
		return "", err
	}
	// Test binaries carry no dependency versions: ask the go tool which
	// version this module requires.
	out, err := exec.Command(goTool, "list", "-m", "-f", "{{.Version}}", module).Output()
	if err != nil {
		return "", fmt.Errorf("go list -m %s: %w", module, err)
	}
	version := strings.TrimSpace(string(out))
	dir := os.Getenv("WSGRPO_HOME")
	if dir == "" {
		cache, err := os.UserCacheDir()
		if err != nil {
			return "", err
		}
		dir = filepath.Join(cache, "wsgrpo")
	}
	dir = filepath.Join(dir, "bin")
	path := filepath.Join(dir, "nats-server-"+version)
	if st, err := os.Stat(path); err == nil && st.Mode().IsRegular() {
		return path, nil
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return "", err
	}
	// Build beside the target and rename, so that test binaries of other
	// packages building at the same time never run a partial file.
	tmp := fmt.Sprintf("%s.%d.tmp", path, os.Getpid())
	cmd := exec.Command(goTool, "build", "-o", tmp, module)
	if out, err := cmd.CombinedOutput(); err != nil {
		_ = os.Remove(tmp)
		return "", fmt.Errorf("go build %s: %w\n%s", module, err, out)
	}
	return path, os.Rename(tmp, path)
}

// Server is a nats-server process started by Start.
type Server struct {
	// Port is the client port.
	Port int

	conf string
	env  []string
	proc *proctest.Process
	log  string
}

// FreePort returns a TCP port that was free on the loopback interface a
// moment ago, for a configuration file to name.
func FreePort(tb testing.TB) int {
	tb.Helper()
	return proctest.FreePort(tb)
}

// Start runs nats-server with the configuration file conf, which must
// listen on 127.0.0.1:port, with env added to this process's environment,
// waits until it accepts connections, and kills it at cleanup. The
// server's log is kept in a file and shown when it does not start.
func Start(tb testing.TB, conf string, port int, env ...string) *Server {
	tb.Helper()
	s := &Server{Port: port, conf: conf, env: env, log: filepath.Join(tb.TempDir(), "nats-server.log")}
	tb.Cleanup(s.Stop)
	s.start(tb)
	return s
}

// start runs the server process, its output appended to the log, and
// waits until it accepts connections.
func (s *Server) start(tb testing.TB) {
	tb.Helper()
	cmd := exec.Command(Binary(tb), "-c", s.conf)
	cmd.Env = append(os.Environ(), s.env...)
	proc, err := proctest.Start(cmd, s.log)
	if err != nil {
		tb.Fatalf("start nats-server: %v", err)
	}
	if err := proc.WaitReady(30*time.Second, s.ready); err != nil {
		tb.Fatalf("nats-server did not start: %v\n%s", err, s.Log())
	}
	s.proc = proc
}

// Restart shuts the server down cleanly (SIGTERM: JetStream flushes its
// store; a SIGKILL after limit) and starts it again with the same
// configuration, store and port, as an operator restarting it would. It
// returns once the new process accepts connections; clients reconnect on
// their own.
func (s *Server) Restart(tb testing.TB, limit time.Duration) {
	tb.Helper()
	if s.proc != nil {
		if !s.proc.Terminate(limit) {
			tb.Logf("nats-server did not stop within %s of SIGTERM; killed it", limit)
		}
		s.proc = nil
	}
	s.start(tb)
}

// Crash kills the server (SIGKILL: no shutdown, so whatever its file
// store had not yet written is lost, as in a crash) and starts it again
// with the same configuration, store and port. It returns once the new
// process accepts connections.
func (s *Server) Crash(tb testing.TB) {
	tb.Helper()
	s.Stop()
	s.start(tb)
}

// Log returns what the server has logged so far.
func (s *Server) Log() string {
	b, _ := os.ReadFile(s.log)
	return string(b)
}

// Signal sends sig to the server process, e.g. SIGSTOP and SIGCONT to
// stall it without closing its connections.
func (s *Server) Signal(sig os.Signal) error {
	if s.proc == nil {
		return errors.New("nats-server is not running")
	}
	return s.proc.Signal(sig)
}

// Stop kills the server and waits for it to exit.
func (s *Server) Stop() {
	if s.proc == nil {
		return
	}
	s.proc.Kill()
	s.proc = nil
}

// ready reports whether the server sends its INFO line on the client port.
func (s *Server) ready() error {
	c, err := net.DialTimeout("tcp", net.JoinHostPort("127.0.0.1", strconv.Itoa(s.Port)), time.Second)
	if err != nil {
		return err
	}
	_ = c.SetDeadline(time.Now().Add(time.Second))
	line, err := bufio.NewReader(c).ReadString('\n')
	_ = c.Close()
	if err == nil && strings.HasPrefix(line, "INFO ") {
		return nil
	}
	return fmt.Errorf("first line %q: %w", line, err)
}
