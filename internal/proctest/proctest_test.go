package proctest

import (
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

func TestProcess(t *testing.T) {
	sh, err := exec.LookPath("sh")
	if err != nil {
		t.Skip("no sh")
	}
	log := filepath.Join(t.TempDir(), "out.log")

	// Ready on the third poll; the output goes to the log; SIGTERM stops it.
	p, err := Start(exec.Command(sh, "-c", "echo hello; exec sleep 60"), log)
	if err != nil {
		t.Fatal(err)
	}
	polls := 0
	if err := p.WaitReady(10*time.Second, func() error {
		if polls++; polls < 3 {
			return errors.New("not yet")
		}
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	if p.Pid() <= 0 {
		t.Fatalf("pid %d", p.Pid())
	}
	if !p.Terminate(10 * time.Second) {
		t.Fatal("did not exit on SIGTERM")
	}
	if b, _ := os.ReadFile(log); !strings.Contains(string(b), "hello") {
		t.Fatalf("log %q", b)
	}

	// A process that exits before it is ready fails at once.
	p, err = Start(exec.Command(sh, "-c", "exit 3"), log)
	if err != nil {
		t.Fatal(err)
	}
	if err := p.WaitReady(10*time.Second, func() error { return errors.New("never") }); err == nil || !strings.Contains(err.Error(), "exited") {
		t.Fatalf("WaitReady = %v, want the process exited", err)
	}

	// Past the limit: ready's last error, the process killed.
	p, err = Start(exec.Command(sh, "-c", "exec sleep 60"), log)
	if err != nil {
		t.Fatal(err)
	}
	errLast := errors.New("last")
	if err := p.WaitReady(100*time.Millisecond, func() error { return errLast }); !errors.Is(err, errLast) {
		t.Fatalf("WaitReady = %v, want %v", err, errLast)
	}
	select {
	case <-p.exited:
	default:
		t.Fatal("not killed after the limit")
	}

	if _, err := Start(exec.Command(filepath.Join(t.TempDir(), "nope")), log); err == nil {
		t.Fatal("started a missing binary")
	}
	if port := FreePort(t); port <= 0 {
		t.Fatalf("port %d", port)
	}
}
