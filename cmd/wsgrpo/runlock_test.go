package main

import (
	"bufio"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
)

// holderOf returns the record of dir's lock file (nil when empty).
func holderOf(tb testing.TB, dir string) *runLockHolder {
	tb.Helper()
	f, err := os.Open(filepath.Join(dir, runLockFile))
	if err != nil {
		tb.Fatal(err)
	}
	defer f.Close()
	return readHolder(f)
}

// TestRunLockSecondAcquisition: a lock held through one open file refuses
// another (as it refuses another process) with ErrRunInUse naming the
// holder; released, it can be taken again. Holds within one process
// share the lock until the last is given back.
func TestRunLockSecondAcquisition(t *testing.T) {
	dir := t.TempDir()
	first, err := acquireRunLock(dir)
	if err != nil {
		t.Fatal(err)
	}
	_, err = acquireRunLock(dir)
	var inUse *runInUseError
	if !errors.Is(err, ErrRunInUse) || !errors.As(err, &inUse) || inUse.Holder == nil {
		t.Fatalf("second acquisition: err = %v, want a *runInUseError naming the holder", err)
	}
	host, _ := os.Hostname()
	if h := inUse.Holder; h.PID != os.Getpid() || h.Host != host || h.Since.IsZero() || !strings.Contains(h.Command, filepath.Base(os.Args[0])) {
		t.Fatalf("holder %+v, want this process (pid %d on %s, %s)", h, os.Getpid(), host, os.Args[0])
	}
	if msg := err.Error(); !strings.Contains(msg, fmt.Sprintf("pid %d", os.Getpid())) || !strings.Contains(msg, dir) {
		t.Errorf("refusal %q does not name the pid and the directory", msg)
	}
	first.release()
	if h := holderOf(t, dir); h != nil {
		t.Errorf("a released lock still records %+v", h)
	}
	again, err := acquireRunLock(dir)
	if err != nil {
		t.Fatalf("after release: %v", err)
	}
	again.release()

	// Holds of one process share the lock.
	r1, err := holdRunLock(dir)
	if err != nil {
		t.Fatal(err)
	}
	r2, err := holdRunLock(filepath.Join(dir, ".")) // the same directory, spelt otherwise
	if err != nil {
		t.Fatalf("second hold in one process: %v", err)
	}
	r1()
	r1() // twice is harmless
	if _, err := acquireRunLock(dir); !errors.Is(err, ErrRunInUse) {
		t.Fatalf("with one hold left: err = %v, want ErrRunInUse", err)
	}
	r2()
	l, err := acquireRunLock(dir)
	if err != nil {
		t.Fatalf("after the last hold: %v", err)
	}
	l.release()
}

// envHoldLock makes TestHelperHoldRunLock, run in a child process, hold
// the lock of the run directory it names until its stdin closes.
const envHoldLock = "WSGRPO_CMD_TEST_HOLD_LOCK"

// startLockHolder starts a process that holds dir's lock, and returns it
// once it does.
func startLockHolder(t *testing.T, dir string) *exec.Cmd {
	t.Helper()
	cmd := exec.Command(os.Args[0], "-test.run=^TestHelperHoldRunLock$", "-test.count=1")
	cmd.Env = append(os.Environ(), envHoldLock+"="+dir)
	stdin, err := cmd.StdinPipe()
	if err != nil {
		t.Fatal(err)
	}
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	cmd.Stderr = os.Stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = stdin.Close(); _ = cmd.Process.Kill(); _ = cmd.Wait() })
	if line, err := bufio.NewReader(stdout).ReadString('\n'); err != nil || line != "holding\n" {
		t.Fatalf("lock holder said %q, %v", line, err)
	}
	return cmd
}

// TestRunLockStale: a live process's lock refuses this one; once that
// process is killed (SIGKILL: no chance to clean up), the kernel has
// released its lock, and this process takes the directory over and
// records itself in place of the dead holder.
func TestRunLockStale(t *testing.T) {
	if testing.Short() {
		t.Skip("starts a process")
	}
	dir := t.TempDir()
	holder := startLockHolder(t, dir)
	_, err := acquireRunLock(dir)
	var inUse *runInUseError
	if !errors.As(err, &inUse) || inUse.Holder == nil || inUse.Holder.PID != holder.Process.Pid {
		t.Fatalf("while the holder lives: err = %v, want ErrRunInUse naming pid %d", err, holder.Process.Pid)
	}
	if err := holder.Process.Signal(syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	_ = holder.Wait()
	if h := holderOf(t, dir); h == nil || h.PID != holder.Process.Pid {
		t.Fatalf("the killed holder's record is %+v; want it left behind (stale)", h)
	}
	l, err := acquireRunLock(dir)
	if err != nil {
		t.Fatalf("after the holder was killed: %v; want its lock taken over", err)
	}
	defer l.release()
	if h := holderOf(t, dir); h == nil || h.PID != os.Getpid() {
		t.Fatalf("after the takeover the lock records %+v, want this process (pid %d)", h, os.Getpid())
	}
}

// TestHelperHoldRunLock is the child of startLockHolder.
func TestHelperHoldRunLock(t *testing.T) {
	dir := os.Getenv(envHoldLock)
	if dir == "" {
		t.Skip("runs as a child process of the run lock tests")
	}
	l, err := acquireRunLock(dir)
	if err != nil {
		t.Fatal(err)
	}
	defer l.release()
	fmt.Println("holding")
	_, _ = io.Copy(io.Discard, os.Stdin)
}

// TestLockCommandLine: the holder's command line keeps its arguments,
// quoted where needed, without a DSN's password.
func TestLockCommandLine(t *testing.T) {
	saved := os.Args
	t.Cleanup(func() { os.Args = saved })
	os.Args = []string{"/usr/local/bin/wsgrpo", "sql", "--clickhouse-dsn=clickhouse://u:secret@h:9000/db", "--run", "r 1",
		"clickhouse://u:secret2@h/db", "SELECT 1"}
	got := commandLine()
	if strings.Contains(got, "secret") || !strings.HasPrefix(got, "wsgrpo sql --clickhouse-dsn=clickhouse://u@h:9000/db --run ") ||
		!strings.Contains(got, `"r 1"`) || !strings.Contains(got, `"SELECT 1"`) {
		t.Fatalf("command line %s", got)
	}
}
