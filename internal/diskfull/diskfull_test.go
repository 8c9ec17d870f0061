package diskfull

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
)

func TestMatch(t *testing.T) {
	for _, tc := range []struct {
		name string
		err  error
		want bool
	}{
		{"nil", nil, false},
		{"sentinel", fmt.Errorf("insert: %w", ErrFull), true},
		{"ENOSPC", &fs.PathError{Op: "write", Path: "/x/3.blk", Err: syscall.ENOSPC}, true},
		{"EDQUOT", &os.SyscallError{Syscall: "write", Err: syscall.EDQUOT}, true},
		{"ENOSPC text", errors.New("write /run/nats/msgs/3.blk: no space left on device"), true},
		{"chdb", errors.New("Code: 243. DB::Exception: Cannot reserve 1.00 MiB, not enough space. (NOT_ENOUGH_SPACE)"), true},
		{"jetstream max_storage", errors.New("nats: API error: code=503 err_code=10023 description=insufficient resources"), true},
		{"jetstream account", errors.New("nats: resource limits exceeded for account"), true},
		{"jetstream storage", errors.New("insufficient storage resources available"), true},
		{"timeout", errors.New("publish: waiting for PubAck: context deadline exceeded"), false},
		{"permission", &fs.PathError{Op: "open", Path: "/x", Err: syscall.EACCES}, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if got := Match(tc.err); got != tc.want {
				t.Errorf("Match(%v) = %v, want %v", tc.err, got, tc.want)
			}
		})
	}
}

func TestError(t *testing.T) {
	cause := errors.New("write x: no space left on device")
	for _, tc := range []struct {
		name string
		err  *Error
		want []string
	}{
		{"all known", &Error{What: "the JetStream store", Where: "/runs/r/nats", Free: 948 << 10, Size: 20 << 20, Need: 3 << 19, Err: cause},
			[]string{"out of storage space: the JetStream store at /runs/r/nats is full", "948 KiB free of 20 MiB", "a write of 1.5 MiB failed", cause.Error()}},
		{"nothing known", &Error{Free: -1, Size: -1, Need: -1}, []string{"out of storage space: a store is full"}},
		{"server", &Error{What: "the trajectory log", Where: "clickhouse host:9000", Free: -1, Size: -1, Need: -1, Err: cause},
			[]string{"the trajectory log at clickhouse host:9000 is full: write x"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got := tc.err.Error()
			for _, w := range tc.want {
				if !strings.Contains(got, w) {
					t.Errorf("Error() = %q, want it to contain %q", got, w)
				}
			}
			if sum := tc.err.Summary(); !strings.HasPrefix(got, sum) || (tc.err.Err != nil && strings.Contains(sum, tc.err.Err.Error())) {
				t.Errorf("Summary() = %q: want Error() without the cause", sum)
			}
			if !errors.Is(tc.err, ErrFull) {
				t.Error("does not match ErrFull")
			}
			if tc.err.Err != nil && !errors.Is(tc.err, tc.err.Err) {
				t.Error("does not match its cause")
			}
		})
	}
}

func TestNewMeasuresTheFileSystem(t *testing.T) {
	dir := t.TempDir()
	e := NewAt("the trajectory log", filepath.Join(dir, "not", "yet"), 10, errors.New("full"))
	if _, _, ok := Space(dir); ok && (e.Free < 0 || e.Size <= 0) {
		t.Errorf("free %d, size %d: want both measured at the nearest existing parent", e.Free, e.Size)
	}
	var as *Error
	if !errors.As(fmt.Errorf("stage logger: %w", e), &as) || as.Need != 10 {
		t.Errorf("errors.As = %+v", as)
	}
	if e := New("the JetStream store", "nats://host:4222", -1, nil); e.Free != -1 || e.Size != -1 {
		t.Errorf("New measured %q: free %d, size %d", e.Where, e.Free, e.Size)
	}
}

func TestBytes(t *testing.T) {
	for n, want := range map[int64]string{0: "0 B", 1023: "1023 B", 1024: "1 KiB", 1536: "1.5 KiB", 20 << 20: "20 MiB", 150 << 30: "150 GiB"} {
		if got := Bytes(n); got != want {
			t.Errorf("Bytes(%d) = %q, want %q", n, got, want)
		}
	}
}
