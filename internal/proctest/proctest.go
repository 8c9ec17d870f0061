// Package proctest runs server processes for tests: it picks a free
// loopback port, starts a process with its output appended to a log file,
// polls until the server is ready, and stops or kills it. The nats-server
// (pipeline/pipetest/natsproc) and clickhouse-server (tracelog/chtest) test
// helpers share it.
package proctest

import (
	"errors"
	"net"
	"os"
	"os/exec"
	"syscall"
	"testing"
	"time"
)

// FreePort returns a TCP port that was free on the loopback interface a
// moment ago, for a server's configuration to name.
func FreePort(tb testing.TB) int {
	tb.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		tb.Fatal(err)
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port
}

// Process is a process Start started; a goroutine reaps it when it exits.
type Process struct {
	cmd    *exec.Cmd
	exited chan struct{}
}

// Start starts cmd with its standard output and error appended to the file
// logPath (created when missing), and reaps it in the background.
func Start(cmd *exec.Cmd, logPath string) (*Process, error) {
	log, err := os.OpenFile(logPath, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
	if err != nil {
		return nil, err
	}
	defer log.Close()
	cmd.Stdout, cmd.Stderr = log, log
	if err := cmd.Start(); err != nil {
		return nil, err
	}
	p := &Process{cmd: cmd, exited: make(chan struct{})}
	go func() { _ = cmd.Wait(); close(p.exited) }()
	return p, nil
}

// WaitReady calls ready every 20 ms until it returns nil. It fails, having
// killed the process, when the process exits first or limit passes (then
// with ready's last error).
func (p *Process) WaitReady(limit time.Duration, ready func() error) error {
	deadline := time.Now().Add(limit)
	last := errors.New("not polled")
	for time.Now().Before(deadline) {
		select {
		case <-p.exited:
			return errors.New("the process exited")
		default:
		}
		if last = ready(); last == nil {
			return nil
		}
		time.Sleep(20 * time.Millisecond)
	}
	p.Kill()
	return last
}

// Pid returns the process id.
func (p *Process) Pid() int { return p.cmd.Process.Pid }

// Signal sends sig to the process.
func (p *Process) Signal(sig os.Signal) error { return p.cmd.Process.Signal(sig) }

// Kill kills the process (SIGKILL) and waits until it has been reaped.
func (p *Process) Kill() {
	_ = p.cmd.Process.Kill()
	<-p.exited
}

// Terminate sends SIGTERM and waits up to limit for the process to exit,
// then kills it. It reports whether the process exited on SIGTERM.
func (p *Process) Terminate(limit time.Duration) bool {
	_ = p.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-p.exited:
		return true
	case <-time.After(limit):
		p.Kill()
		return false
	}
}
