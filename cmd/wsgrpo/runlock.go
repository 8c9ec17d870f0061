package main

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/url"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"time"
)

// ErrRunInUse is returned when another live process owns the run
// directory: it holds the directory's lock file (runLockFile).
var ErrRunInUse = errors.New("run directory in use")

// runLockHolder is what a lock file says about the process holding it.
type runLockHolder struct {
	PID     int       `json:"pid"`
	Host    string    `json:"host"`
	Command string    `json:"command"`
	Since   time.Time `json:"since"`
	// NATS is the URL other processes reach the holder's embedded NATS
	// server at (train --listen); empty when it does not listen.
	NATS string `json:"nats,omitempty"`
}

// runInUseError is ErrRunInUse with the directory and its holder (nil
// when the holder has not recorded itself yet).
type runInUseError struct {
	Dir    string
	Holder *runLockHolder
}

// Error names the holder.
func (e *runInUseError) Error() string {
	if e.Holder == nil {
		return fmt.Sprintf("%s: %s is held by another process (which has not recorded itself in %s yet)", ErrRunInUse, e.Dir, runLockFile)
	}
	h := e.Holder
	msg := fmt.Sprintf("%s: %s is held by pid %d on host %s since %s (%s)",
		ErrRunInUse, e.Dir, h.PID, h.Host, h.Since.Local().Format(time.DateTime), h.Command)
	if h.NATS != "" {
		msg += fmt.Sprintf(", whose embedded NATS server listens at %s: join that run with --nats %s", h.NATS, h.NATS)
	}
	return msg
}

// Unwrap makes errors.Is(err, ErrRunInUse) hold.
func (e *runInUseError) Unwrap() error { return ErrRunInUse }

// runLock is a held lock file: an exclusive flock(2) on
// <run dir>/runLockFile. The kernel releases it when its process dies, so
// a killed owner's directory is free at once; the file stays, and the next
// owner overwrites the dead one's record.
type runLock struct {
	f      *os.File
	holder runLockHolder
}

// acquireRunLock takes the lock of the run directory dir without waiting,
// and records this process in it. A lock another process holds is a
// *runInUseError (ErrRunInUse) naming it.
func acquireRunLock(dir string) (*runLock, error) {
	path := filepath.Join(dir, runLockFile)
	f, err := os.OpenFile(path, os.O_RDWR|os.O_CREATE, 0o644)
	if err != nil {
		return nil, fmt.Errorf("lock run directory %s: %w", dir, err)
	}
	ok, err := tryLock(f)
	if err != nil {
		_ = f.Close()
		return nil, fmt.Errorf("lock run directory %s: %w", dir, err)
	}
	if !ok {
		h := readHolder(f)
		_ = f.Close()
		return nil, &runInUseError{Dir: dir, Holder: h}
	}
	host, _ := os.Hostname()
	l := &runLock{f: f, holder: runLockHolder{PID: os.Getpid(), Host: host, Command: commandLine(), Since: time.Now().UTC()}}
	if err := l.record(); err != nil {
		_ = f.Close()
		return nil, fmt.Errorf("lock run directory %s: %w", dir, err)
	}
	return l, nil
}

// record writes the holder's record over the file's content.
func (l *runLock) record() error {
	rec, err := json.Marshal(l.holder)
	if err != nil {
		return err
	}
	if err := l.f.Truncate(0); err != nil {
		return fmt.Errorf("record the holder: %w", err)
	}
	if _, err := l.f.WriteAt(append(rec, '\n'), 0); err != nil {
		return fmt.Errorf("record the holder: %w", err)
	}
	return nil
}

// release empties the record and gives the lock back.
func (l *runLock) release() {
	_ = l.f.Truncate(0)
	_ = l.f.Close()
}

// readHolder reads the record of a lock file; nil when it is empty or
// being written.
func readHolder(f *os.File) *runLockHolder {
	b, err := io.ReadAll(io.NewSectionReader(f, 0, 64<<10))
	if err != nil {
		return nil
	}
	var h runLockHolder
	if json.Unmarshal(b, &h) != nil || h.PID == 0 {
		return nil
	}
	return &h
}

// commandLine is this process's command line for the lock record, with
// the password of any URL (a ClickHouse DSN) taken out.
func commandLine() string {
	args := make([]string, len(os.Args))
	for i, a := range os.Args {
		if i == 0 {
			a = filepath.Base(a)
		}
		if k, v, ok := strings.Cut(a, "="); ok && strings.HasPrefix(k, "-") {
			a = k + "=" + redactURL(v)
		} else {
			a = redactURL(a)
		}
		if a == "" || strings.ContainsAny(a, " \t\n\"'\\") {
			a = strconv.Quote(a)
		}
		args[i] = a
	}
	return strings.Join(args, " ")
}

// redactURL drops the password of s when s is a URL with one.
func redactURL(s string) string {
	if !strings.Contains(s, "://") {
		return s
	}
	if u, err := url.Parse(s); err == nil && u.User != nil {
		return redactDSN(s)
	}
	return s
}

// heldLocks are the run directories this process holds, by absolute
// path: the commands and stores of one process share a hold.
var heldLocks = struct {
	sync.Mutex
	m map[string]*heldLock
}{m: map[string]*heldLock{}}

// heldLock is one run directory's lock and how many holds share it.
type heldLock struct {
	lock *runLock
	refs int
}

// recordRunNATS adds the URL of this process's listening embedded NATS
// server to the record of the run directory dir, which it holds, so that
// a process it refuses can be told where to join the run.
func recordRunNATS(dir, url string) error {
	key, err := lockKey(dir)
	if err != nil {
		return err
	}
	heldLocks.Lock()
	defer heldLocks.Unlock()
	h := heldLocks.m[key]
	if h == nil {
		return fmt.Errorf("run directory %s: not held by this process", dir)
	}
	h.lock.holder.NATS = url
	return h.lock.record()
}

// lockKey is the key of dir in heldLocks: its absolute path, with
// symbolic links resolved.
func lockKey(dir string) (string, error) {
	key, err := filepath.Abs(dir)
	if err != nil {
		return "", err
	}
	if resolved, err := filepath.EvalSymlinks(key); err == nil {
		key = resolved
	}
	return key, nil
}

// holdRunLock holds the lock of the run directory dir (which must exist)
// for this process: it takes it (acquireRunLock), or joins the hold this
// process already has. release (safe to call twice) gives the hold back;
// the lock is released with the last one.
func holdRunLock(dir string) (release func(), err error) {
	key, err := lockKey(dir)
	if err != nil {
		return nil, err
	}
	heldLocks.Lock()
	defer heldLocks.Unlock()
	h := heldLocks.m[key]
	if h == nil {
		l, err := acquireRunLock(dir)
		if err != nil {
			return nil, err
		}
		h = &heldLock{lock: l}
		heldLocks.m[key] = h
	}
	h.refs++
	var once sync.Once
	return func() {
		once.Do(func() {
			heldLocks.Lock()
			defer heldLocks.Unlock()
			if h.refs--; h.refs == 0 {
				h.lock.release()
				delete(heldLocks.m, key)
			}
		})
	}, nil
}
