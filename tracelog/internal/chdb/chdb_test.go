package chdb

import (
	"bufio"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

// libPath returns the cached libchdb.so or skips.
func libPath(t *testing.T) string {
	t.Helper()
	p := os.Getenv("WSGRPO_CHDB_LIB")
	if p == "" {
		home, _ := os.UserHomeDir()
		p = filepath.Join(home, ".cache", "wsgrpo", "lib", "libchdb.so")
	}
	if _, err := os.Stat(p); err != nil {
		t.Skipf("no chDB library at %s (run `make setup`, or set WSGRPO_CHDB_LIB)", p)
	}
	return p
}

func TestConnectQueryInsertReconnect(t *testing.T) {
	lib := libPath(t)
	dirA, dirB := filepath.Join(t.TempDir(), "a"), filepath.Join(t.TempDir(), "b")
	c, err := Connect(lib, dirA)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := Connect(lib, dirB); !errors.Is(err, ErrBusy) {
		t.Fatalf("second path while open: err = %v, want ErrBusy", err)
	}
	c2, err := Connect(lib, dirA)
	if err != nil {
		t.Fatalf("second connection to the same path: %v", err)
	}
	c2.Close()
	steps := []struct {
		q, format, want string
	}{
		{"CREATE TABLE t (a String, n UInt32) ENGINE = MergeTree ORDER BY a", "", ""},
		{"SELECT count() FROM t", "TSV", "0\n"},
	}
	for _, s := range steps {
		r, err := c.Query([]byte(s.q), s.format)
		if err != nil || string(r.Data) != s.want {
			t.Fatalf("%s: %q, %v", s.q, r.Data, err)
		}
	}
	// Data with semicolons, NULs and newlines goes through the insert stream.
	r, err := c.Insert("INSERT INTO t (a, n)", "RowBinary", []byte("\x03a;\x00\x2a\x00\x00\x00\x02\n;\x07\x00\x00\x00"))
	if err != nil || r.RowsWritten != 2 {
		t.Fatalf("insert: %+v, %v", r, err)
	}
	if _, err := c.Insert("INSERT INTO t (a, n)", "RowBinary", []byte("\x05ab")); !errors.Is(err, ErrQuery) {
		t.Fatalf("truncated insert: err = %v, want ErrQuery", err)
	}
	if _, err := c.Query([]byte("SELECT FROM WHERE ("), ""); !errors.Is(err, ErrQuery) || !strings.Contains(err.Error(), "Syntax") {
		t.Fatalf("bad SQL: err = %v", err)
	}
	c.Close()
	c.Close()
	if _, err := c.Query([]byte("SELECT 1"), ""); !errors.Is(err, ErrClosed) {
		t.Fatalf("closed: err = %v", err)
	}
	// Data persists, and another path may be opened once all are closed.
	for _, dir := range []string{dirA, dirB} {
		c, err := Connect(lib, dir)
		if err != nil {
			t.Fatal(err)
		}
		r, err := c.Query([]byte("SELECT sum(n) FROM t"), "TSV")
		c.Close()
		switch dir {
		case dirA:
			if err != nil || string(r.Data) != "49\n" {
				t.Fatalf("reopened %s: %q, %v", dir, r.Data, err)
			}
		case dirB:
			if !errors.Is(err, ErrQuery) {
				t.Fatalf("fresh %s has table t: %q, %v", dir, r.Data, err)
			}
		}
	}
}

func TestLoadErrors(t *testing.T) {
	if err := Load(filepath.Join(t.TempDir(), "missing.so")); !errors.Is(err, ErrLibrary) {
		t.Fatalf("missing: err = %v", err)
	}
	bad := filepath.Join(t.TempDir(), "bad.so")
	if err := os.WriteFile(bad, []byte("not an ELF"), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := Load(bad); !errors.Is(err, ErrLibrary) {
		t.Fatalf("not a library: err = %v", err)
	}
}

// envHoldDir makes TestHelperHoldDir, run in a child process, hold the
// data directory it names until its stdin closes.
const envHoldDir = "WSGRPO_CHDB_TEST_HOLD_DIR"

// TestConnectHeldByAnotherProcess: a data directory another process has
// open is ErrConnect (the engine locks it), not ErrLibrary: the library
// itself is fine.
func TestConnectHeldByAnotherProcess(t *testing.T) {
	if testing.Short() {
		t.Skip("starts a process")
	}
	lib := libPath(t)
	dir := filepath.Join(t.TempDir(), "held")
	cmd := exec.Command(os.Args[0], "-test.run=^TestHelperHoldDir$", "-test.count=1")
	cmd.Env = append(os.Environ(), envHoldDir+"="+dir)
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
	t.Cleanup(func() { _ = stdin.Close(); _ = cmd.Wait() })
	line, err := bufio.NewReader(stdout).ReadString('\n')
	if err != nil || line != "holding\n" {
		t.Fatalf("helper said %q, %v", line, err)
	}
	c, err := Connect(lib, dir)
	if err == nil {
		c.Close()
	}
	if !errors.Is(err, ErrConnect) || errors.Is(err, ErrLibrary) || !strings.Contains(err.Error(), dir) {
		t.Fatalf("connect to a directory another process holds: err = %v, want ErrConnect naming %s", err, dir)
	}
}

// TestHelperHoldDir is the child of TestConnectHeldByAnotherProcess.
func TestHelperHoldDir(t *testing.T) {
	dir := os.Getenv(envHoldDir)
	if dir == "" {
		t.Skip("runs as the child process of TestConnectHeldByAnotherProcess")
	}
	c, err := Connect(libPath(t), dir)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	fmt.Println("holding")
	_, _ = io.Copy(io.Discard, os.Stdin)
}
