// Package diskfull recognises the failures of a store that ran out of
// space (JetStream's file store, the trajectory log) and describes them:
// what is full, where, how much room is left and how much a write needed.
// The pipeline, the trajectory log and the stage contract export its
// sentinel under their own names (pipeline.ErrStorageFull,
// tracelog.ErrStorageFull, stage.ErrStorageFull): one error value, so
// errors.Is matches across them.
package diskfull

import (
	"errors"
	"fmt"
	"strings"
	"syscall"
)

// ErrFull marks a write that failed because its store is out of space.
var ErrFull = errors.New("out of storage space")

// Error is a store's out-of-space failure.
type Error struct {
	// What names the store: "the JetStream store", "the trajectory log".
	What string
	// Where is its directory, or a server's address; "" when unknown.
	Where string
	// Free is the space left for writing on Where's file system and Size
	// that file system's size, in bytes; -1 when unknown.
	Free, Size int64
	// Need is how many bytes the failed write needed; -1 when unknown.
	Need int64
	// Err is the store's own error.
	Err error
}

// New returns the out-of-space error of the store what at where (a
// directory or a server's address; "" when unknown) whose write of need
// bytes (-1: unknown) failed with err. Free and Size are unknown.
func New(what, where string, need int64, err error) *Error {
	return &Error{What: what, Where: where, Free: -1, Size: -1, Need: need, Err: err}
}

// NewAt is New for a store in the local directory dir: Free and Size are
// read from dir's file system now.
func NewAt(what, dir string, need int64, err error) *Error {
	e := New(what, dir, need, err)
	if free, size, ok := Space(dir); ok {
		e.Free, e.Size = int64(free), int64(size)
	}
	return e
}

// Error says what is full, where, with the room left and needed when
// known, and the store's own error.
func (e *Error) Error() string {
	if e.Err == nil {
		return e.Summary()
	}
	return e.Summary() + ": " + e.Err.Error()
}

// Summary is Error without the store's own error: what is full, where,
// and the room left and needed when known.
func (e *Error) Summary() string {
	var b strings.Builder
	b.WriteString(ErrFull.Error())
	b.WriteString(": ")
	b.WriteString(cmpOr(e.What, "a store"))
	if e.Where != "" {
		b.WriteString(" at ")
		b.WriteString(e.Where)
	}
	b.WriteString(" is full")
	var room []string
	if e.Free >= 0 {
		s := Bytes(e.Free) + " free"
		if e.Size > 0 {
			s += " of " + Bytes(e.Size)
		}
		room = append(room, s)
	}
	if e.Need > 0 {
		room = append(room, "a write of "+Bytes(e.Need)+" failed")
	}
	if len(room) > 0 {
		b.WriteString(" (" + strings.Join(room, "; ") + ")")
	}
	return b.String()
}

// Unwrap returns ErrFull and the store's own error.
func (e *Error) Unwrap() []error {
	if e.Err == nil {
		return []error{ErrFull}
	}
	return []error{ErrFull, e.Err}
}

// outOfSpaceTexts are what stores say when they run out of space, in
// lower case: the C library's ENOSPC and EDQUOT messages, ClickHouse's
// NOT_ENOUGH_SPACE (chDB's "Cannot reserve 1.00 MiB, not enough space")
// and nats-server's resource errors (JetStream's max_storage or
// max_memory reached: "insufficient resources", "insufficient storage
// resources available", "resource limits exceeded for account",
// "JetStream resource limits exceeded for server").
var outOfSpaceTexts = []string{
	"no space left on device",
	"disk quota exceeded",
	"not_enough_space",
	"not enough space",
	"insufficient resources",
	"insufficient storage resources",
	"insufficient memory resources",
	"resource limits exceeded",
}

// Match reports whether err is an out-of-space failure: it wraps ErrFull,
// syscall.ENOSPC or syscall.EDQUOT, or its text is one of the messages
// stores give for it (MatchText).
func Match(err error) bool {
	if err == nil {
		return false
	}
	if errors.Is(err, ErrFull) || errors.Is(err, syscall.ENOSPC) || errors.Is(err, syscall.EDQUOT) {
		return true
	}
	return MatchText(err.Error())
}

// MatchText reports whether s, a store's error or log line, says that
// the store is out of space.
func MatchText(s string) bool {
	s = strings.ToLower(s)
	for _, t := range outOfSpaceTexts {
		if strings.Contains(s, t) {
			return true
		}
	}
	return false
}

// Bytes formats n bytes for people: "948 KiB", "1.5 GiB".
func Bytes(n int64) string {
	const unit = 1024
	if n < unit {
		return fmt.Sprintf("%d B", n)
	}
	div, exp := int64(unit), 0
	for m := n / unit; m >= unit && exp < 5; m /= unit {
		div *= unit
		exp++
	}
	v := float64(n) / float64(div)
	prefix := "KMGTPE"[exp : exp+1]
	if v >= 100 || v == float64(int64(v)) {
		return fmt.Sprintf("%.0f %siB", v, prefix)
	}
	return fmt.Sprintf("%.1f %siB", v, prefix)
}

func cmpOr(s, def string) string {
	if s == "" {
		return def
	}
	return s
}
