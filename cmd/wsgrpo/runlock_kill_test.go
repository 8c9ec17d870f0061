package main

import (
	"bytes"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/wsgrpo/wsgrpo/bench/reporting"
	"github.com/wsgrpo/wsgrpo/tracelog"
	"github.com/wsgrpo/wsgrpo/tracelog/chtest"
)

// cliProc starts the test binary as the wsgrpo binary (envCLI) with args;
// cleanup kills it if it still runs.
func cliProc(t *testing.T, stderr *bytes.Buffer, args ...string) *exec.Cmd {
	t.Helper()
	cmd := exec.Command(os.Args[0], args...)
	cmd.Env = append(os.Environ(), envCLI+"=1")
	cmd.Stderr = stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = cmd.Process.Kill(); _ = cmd.Wait() })
	return cmd
}

// TestSecondProcessRefused runs `wsgrpo train --wiring` as its own process
// on a run directory that holds a trajectory log, and checks while it
// runs: a second `train --wiring` process on the directory is refused at
// once (exit status 1) naming the first one's pid, command line and NATS
// URL and saying what to do (--nats, or wait); so are sql, report and dlq in this
// process, which say the run is in use instead of failing to open its
// data. After a SIGKILL of the first process the directory is free: sql
// reads the log, and a new wiring run takes the killed run's embedded
// NATS store over and completes.
func TestSecondProcessRefused(t *testing.T) {
	if testing.Short() {
		t.Skip("starts processes")
	}
	lib := chtest.Library(t)
	t.Setenv("WSGRPO_CHDB_LIB", lib)
	dir := markedRunDir(t, filepath.Join(t.TempDir(), "dual"))
	fillStore(t, tracelog.Config{Dir: tracelog.EmbeddedDir(dir), Lib: lib}, reporting.SyntheticRows("dual", 0, 16, 16, 8, 1))

	// The first process: enough batches to run for minutes; no logger, so
	// that its CPU goes to the check; its NATS server listens.
	var firstErr bytes.Buffer
	first := cliProc(t, &firstErr, "train", "--wiring", "--run", "dual", "--dir", dir, "--listen", "127.0.0.1:0",
		"--batches", "1000000", "--rows", "1", "--no-log", "--timeout", "5m", "--log-level", "warn")
	deadline := time.Now().Add(time.Minute)
	var natsURL string
	for {
		if f, err := os.Open(filepath.Join(dir, runLockFile)); err == nil {
			h := readHolder(f)
			_ = f.Close()
			if h != nil && h.PID == first.Process.Pid && h.NATS != "" {
				natsURL = h.NATS
				break
			}
		}
		if time.Now().After(deadline) {
			t.Fatalf("the first process never took the run directory's lock; it said:\n%s", firstErr.String())
		}
		time.Sleep(20 * time.Millisecond)
	}
	pid := fmt.Sprintf("pid %d", first.Process.Pid)

	// A second process is refused at once.
	var secondErr bytes.Buffer
	start := time.Now()
	second := cliProc(t, &secondErr, "train", "--wiring", "--run", "dual", "--dir", dir, "--batches", "10", "--no-log")
	err := second.Wait()
	var exit *exec.ExitError
	if !errors.As(err, &exit) || exit.ExitCode() != 1 {
		t.Fatalf("second process: %v, want exit status 1; it said:\n%s", err, secondErr.String())
	}
	if took := time.Since(start); took > 30*time.Second {
		t.Errorf("the second process took %s to be refused", took)
	}
	for _, want := range []string{"run directory in use", pid, "train --wiring --run dual", "join that run with --nats " + natsURL, "wait for it to finish"} {
		if !strings.Contains(secondErr.String(), want) {
			t.Errorf("the second process's message does not say %q:\n%s", want, secondErr.String())
		}
	}

	// Commands in this process, writing and reading.
	for _, tc := range []struct {
		name string
		run  func() error
		says string
	}{
		{"train --wiring", func() error {
			_, err := execute(t, newTrainCmd(), "--wiring", "--run", "dual", "--dir", dir, "--batches", "1", "--no-log")
			return err
		}, "`wsgrpo stage NAME --nats URL`"},
		{"sql", func() error {
			_, err := execute(t, newSQLCmd(), "--run", dir, "SELECT count() FROM trajectories")
			return err
		}, "trajectory log opens in one process at a time"},
		{"report", func() error {
			_, err := execute(t, newReportCmd(), "--run", dir, "--out", t.TempDir())
			return err
		}, "trajectory log opens in one process at a time"},
		{"dlq list", func() error {
			_, err := execute(t, newDLQCmd(), "list", "--run", dir)
			return err
		}, "give that --nats URL"},
	} {
		err := tc.run()
		var inUse *runInUseError
		if !errors.As(err, &inUse) || inUse.Holder == nil || inUse.Holder.PID != first.Process.Pid ||
			!strings.Contains(err.Error(), pid) || !strings.Contains(err.Error(), tc.says) || errors.Is(err, tracelog.ErrNoLibrary) {
			t.Errorf("%s: err = %v; want ErrRunInUse naming %s and saying %q", tc.name, err, pid, tc.says)
		}
	}

	// A killed owner's directory is taken over.
	if err := first.Process.Signal(syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	_ = first.Wait()
	if got, err := execute(t, newSQLCmd(), "--run", dir, "--format", "csv", "SELECT count() FROM trajectories_dedup"); err != nil || got != "count()\n16\n" {
		t.Fatalf("sql after the kill: %q, %v", got, err)
	}
	got, err := execute(t, newTrainCmd(), "--wiring", "--run", "after", "--dir", dir, "--batches", "4", "--rows", "8", "--no-log", "--timeout", "1m")
	if err != nil || !strings.Contains(got, "32 unique of 32 expected") {
		t.Fatalf("wiring run after the kill: %v\n%s", err, got)
	}
	if h := holderOf(t, dir); h != nil {
		t.Errorf("after the last command the lock still records %+v", h)
	}
}
