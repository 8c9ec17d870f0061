package pipeline

import (
	"context"
	"encoding/json"
	"errors"
	"log/slog"
	"os"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats.go/jetstream"
)

// lockRun starts a server with a run and returns its JetStream, topology
// and run state.
func lockRun(t testing.TB, run string) (jetstream.JetStream, Topology, *RunState) {
	t.Helper()
	srv := startServer(t, false)
	js := connectJS(t, srv)
	top := ensureRun(t, js, run, jetstream.MemoryStorage)
	st, err := OpenRunState(t.Context(), js, top)
	if err != nil {
		t.Fatal(err)
	}
	return js, top, st
}

// acquire takes the lock or fails the test; the lock is released at cleanup.
func acquire(t testing.TB, js jetstream.JetStream, top Topology, holder string, ttl time.Duration) *Lock {
	t.Helper()
	l, err := AcquireLock(t.Context(), js, top, StageLearner, holder, ttl)
	if err != nil {
		t.Fatalf("acquire for %s: %v", holder, err)
	}
	t.Cleanup(func() { _ = l.Release(context.Background()) })
	return l
}

// lockHolder returns the holder named in the lock's key.
func lockHolder(t testing.TB, st *RunState) string {
	t.Helper()
	var info LockInfo
	if err := st.GetJSON(t.Context(), "lock."+StageLearner, &info); err != nil {
		t.Fatal(err)
	}
	return info.Holder
}

// TestLockRefusesSecond checks that a held lock refuses a second acquirer
// with ErrLocked and a message that names the holder and what to do, and
// that after Release the next acquirer gets it.
func TestLockRefusesSecond(t *testing.T) {
	js, top, st := lockRun(t, "lockrun")
	first := acquire(t, js, top, "learner-a", time.Minute)
	_, err := AcquireLock(t.Context(), js, top, StageLearner, "learner-b", time.Minute)
	if !errors.Is(err, ErrLocked) {
		t.Fatalf("second acquire = %v, want ErrLocked", err)
	}
	host, _ := os.Hostname()
	for _, want := range []string{"a learner is already running for run lockrun", `"learner-a"`, "pid " + strconv.Itoa(os.Getpid()), host, "heartbeat", "stop it, or wait 1m0s if it crashed"} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("refusal %q does not contain %q", err, want)
		}
	}
	if err := first.Release(t.Context()); err != nil {
		t.Fatal(err)
	}
	if err := first.Release(t.Context()); err != nil {
		t.Errorf("second Release: %v", err)
	}
	acquire(t, js, top, "learner-b", time.Minute)
	if got := lockHolder(t, st); got != "learner-b" {
		t.Errorf("holder %q after release and acquire, want learner-b", got)
	}
}

// TestLockStaleTakenOver writes a lock whose holder never refreshes it (a
// crashed learner): it refuses acquirers until it is older than the ttl,
// then the next acquirer takes it over.
func TestLockStaleTakenOver(t *testing.T) {
	const ttl = 300 * time.Millisecond
	js, top, st := lockRun(t, "lockstale")
	crashed, _ := json.Marshal(LockInfo{Holder: "crashed", Host: "elsewhere", PID: 1, Heartbeat: time.Now()})
	if _, err := st.Put(t.Context(), "lock."+StageLearner, crashed); err != nil {
		t.Fatal(err)
	}
	var l *Lock
	waitFor(t, 30*time.Second, "the stale lock taken over", func() bool {
		var err error
		l, err = AcquireLock(t.Context(), js, top, StageLearner, "new", ttl)
		if err != nil && !errors.Is(err, ErrLocked) {
			t.Fatalf("acquire: %v", err)
		}
		return err == nil
	})
	defer func() { _ = l.Release(context.Background()) }()
	if got := lockHolder(t, st); got != "new" {
		t.Errorf("holder %q after the takeover, want new", got)
	}
}

// TestLockRefreshKeepsItFresh holds a lock for well past its ttl: its
// refreshes keep a second acquirer out.
func TestLockRefreshKeepsItFresh(t *testing.T) {
	const ttl = 3 * time.Second
	js, top, st := lockRun(t, "lockfresh")
	start := time.Now()
	acquire(t, js, top, "holder", ttl)
	_, rev0, err := st.Get(t.Context(), "lock."+StageLearner)
	if err != nil {
		t.Fatal(err)
	}
	waitFor(t, 60*time.Second, "three refreshes and more than the ttl", func() bool {
		_, rev, err := st.Get(t.Context(), "lock."+StageLearner)
		return err == nil && rev >= rev0+3 && time.Since(start) > ttl
	})
	if _, err := AcquireLock(t.Context(), js, top, StageLearner, "other", ttl); !errors.Is(err, ErrLocked) {
		t.Errorf("acquire past the ttl of a refreshed lock = %v, want ErrLocked", err)
	}
}

// TestLockLost overwrites a held lock's key (another process took it):
// the holder's next refresh fails, Lost closes, and Release leaves the
// other process's value alone.
func TestLockLost(t *testing.T) {
	js, top, st := lockRun(t, "locklost")
	l := acquire(t, js, top, "holder", 300*time.Millisecond)
	usurper, _ := json.Marshal(LockInfo{Holder: "usurper"})
	if _, err := st.Put(t.Context(), "lock."+StageLearner, usurper); err != nil {
		t.Fatal(err)
	}
	select {
	case <-l.Lost():
	case <-time.After(30 * time.Second):
		t.Fatal("Lost did not close after another process wrote the lock")
	}
	if err := l.Release(t.Context()); err != nil {
		t.Fatal(err)
	}
	if got := lockHolder(t, st); got != "usurper" {
		t.Errorf("holder %q after Release of a lost lock, want usurper", got)
	}
}

// TestAcquireLockRejects checks the arguments AcquireLock refuses.
func TestAcquireLockRejects(t *testing.T) {
	js, top, _ := lockRun(t, "lockargs")
	for _, tc := range []struct {
		name, lock string
		ttl        time.Duration
		want       error
	}{
		{"bad name", "a.b", time.Second, ErrInvalidName},
		{"zero ttl", StageLearner, 0, ErrInvalidConfig},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if _, err := AcquireLock(t.Context(), js, top, tc.lock, "h", tc.ttl); !errors.Is(err, tc.want) {
				t.Errorf("AcquireLock = %v, want %v", err, tc.want)
			}
		})
	}
}

// TestLockOwnWriteWhoseReplyWasLost: a lock value carrying the acquirer's
// own token (its create reached the server, the reply did not, and the
// retry found the key) is taken as the acquirer's lock, at that
// revision; the same value with another token is another holder's.
func TestLockOwnWriteWhoseReplyWasLost(t *testing.T) {
	js, top, _ := lockRun(t, "lostreply")
	kv, err := stateBucket(t.Context(), js, top)
	if err != nil {
		t.Fatal(err)
	}
	mine := LockInfo{Holder: "learner", Host: "h", PID: 1, Token: "tok-mine"}
	l := &Lock{kv: kv, key: lockKey(StageLearner), run: top.Run, ttl: time.Minute, info: mine, log: slog.New(slog.DiscardHandler)}
	rev, err := kv.Create(t.Context(), l.key, l.value())
	if err != nil {
		t.Fatal(err)
	}
	if err := l.acquire(t.Context()); err != nil || l.rev != rev {
		t.Fatalf("acquire with our own value in place = %v (rev %d, want %d)", err, l.rev, rev)
	}
	other := &Lock{kv: kv, key: l.key, run: top.Run, ttl: time.Minute, info: LockInfo{Holder: "learner", Host: "h", PID: 1, Token: "tok-other"}, log: slog.New(slog.DiscardHandler)}
	if err := other.acquire(t.Context()); !errors.Is(err, ErrLocked) {
		t.Fatalf("acquire with another token = %v, want ErrLocked", err)
	}
}
