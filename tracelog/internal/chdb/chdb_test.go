package chdb

import (
	"errors"
	"os"
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
