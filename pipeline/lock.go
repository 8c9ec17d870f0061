package pipeline

import (
	"context"
	"crypto/rand"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"sync"
	"time"

	"github.com/nats-io/nats.go/jetstream"
)

// Errors of Lock. Callers test them with errors.Is.
var (
	// ErrLocked is returned by AcquireLock while another holder's lock is
	// fresh; the error's text names the holder and says what to do.
	ErrLocked = errors.New("locked")
)

// minLockTTL is the shortest ttl AcquireLock accepts.
const minLockTTL = 3 * time.Millisecond

// lockAttempts bounds AcquireLock's compare-and-set races with other
// acquirers before it gives up.
const lockAttempts = 5

// LockInfo is the value of a lock's key: who holds it, and when it last
// said so.
type LockInfo struct {
	Holder    string    `json:"holder"`
	Host      string    `json:"host"`
	PID       int       `json:"pid"`
	Heartbeat time.Time `json:"heartbeat"`
	// Token is random and the same in every value one Lock writes: an
	// acquirer whose create timed out although the server applied it (a
	// stalled server) recognizes the lock as its own instead of as
	// another holder's.
	Token string `json:"token,omitempty"`
}

// LockOption configures AcquireLock.
type LockOption func(*lockOptions)

type lockOptions struct {
	log *slog.Logger
}

// LockLogger makes the lock log to log (a stale lock taken over, a lost
// lock, failed refreshes). The default discards.
func LockLogger(log *slog.Logger) LockOption {
	return func(o *lockOptions) { o.log = log }
}

// Lock is a lease on key "lock.<name>" of the run's state bucket, so that
// one process of a kind (the learner) runs per run. While held, a
// goroutine refreshes it every ttl/3 with a compare-and-set update; a lock
// whose refreshes stop (its holder crashed) goes stale after ttl and the
// next AcquireLock takes it over.
type Lock struct {
	kv     jetstream.KeyValue
	key    string
	run    string
	ttl    time.Duration
	info   LockInfo
	log    *slog.Logger
	cancel context.CancelFunc
	done   chan struct{}
	lost   chan struct{}

	mu  sync.Mutex
	rev uint64 // revision of our last write; 0 once lost
}

// AcquireLock takes lock name of the run for holder (a free-form label,
// e.g. "learner"), to be refreshed within ttl (at least 3 ms). A lock's age
// is the time since the server stored its last refresh, read on this
// host's clock: keep the hosts' clocks within a fraction of ttl. A fresh lock of another
// holder (or of another Lock of this process) refuses it with an error
// wrapping ErrLocked; a stale one is taken over with a warning. Errors
// reaching the server are returned wrapped.
func AcquireLock(ctx context.Context, js jetstream.JetStream, t Topology, name, holder string, ttl time.Duration, opts ...LockOption) (*Lock, error) {
	if err := ValidateName(name); err != nil {
		return nil, fmt.Errorf("lock name: %w", err)
	}
	if ttl < minLockTTL {
		return nil, fmt.Errorf("%w: lock %s ttl %s is under %s", ErrInvalidConfig, name, ttl, minLockTTL)
	}
	o := lockOptions{log: slog.New(slog.DiscardHandler)}
	for _, opt := range opts {
		opt(&o)
	}
	kv, err := stateBucket(ctx, js, t)
	if err != nil {
		return nil, fmt.Errorf("lock %s: %w", name, err)
	}
	host, _ := os.Hostname()
	l := &Lock{
		kv: kv, key: lockKey(name), run: t.Run, ttl: ttl,
		info: LockInfo{Holder: holder, Host: host, PID: os.Getpid(), Token: rand.Text()},
		log:  o.log.With("lock", name, "run", t.Run),
		done: make(chan struct{}), lost: make(chan struct{}),
	}
	if err := l.acquire(ctx); err != nil {
		return nil, err
	}
	rctx, cancel := context.WithCancel(context.WithoutCancel(ctx))
	l.cancel = cancel
	go l.refresh(rctx)
	return l, nil
}

// lockKey is the run-state key of lock name.
func lockKey(name string) string { return "lock." + name }

// value returns our lock value with a fresh heartbeat.
func (l *Lock) value() []byte {
	info := l.info
	info.Heartbeat = time.Now().UTC()
	b, _ := json.Marshal(info) // cannot fail: strings, an int and a time
	return b
}

// acquire creates the key, or takes it over when stale. Calls that time
// out (a stalled or restarting server) are tried again; a create or
// take-over that the server applied although its reply was lost shows up
// as a lock with our Token, which is ours.
func (l *Lock) acquire(ctx context.Context) error {
	for range lockAttempts {
		var rev uint64
		err := retryTimeout(ctx, nil, func(ctx context.Context) (err error) {
			rev, err = l.kv.Create(ctx, l.key, l.value())
			return err
		})
		if err == nil {
			l.rev = rev
			return nil
		}
		if !errors.Is(err, jetstream.ErrKeyExists) {
			return fmt.Errorf("lock %s of run %s: %w", l.key, l.run, err)
		}
		var e jetstream.KeyValueEntry
		err = retryTimeout(ctx, nil, func(ctx context.Context) (err error) {
			e, err = l.kv.Get(ctx, l.key)
			return err
		})
		if errors.Is(err, jetstream.ErrKeyNotFound) {
			continue // released meanwhile
		}
		if err != nil {
			return fmt.Errorf("lock %s of run %s: %w", l.key, l.run, err)
		}
		var other LockInfo
		if err := json.Unmarshal(e.Value(), &other); err != nil {
			l.log.Warn("lock value is not JSON; treating it as stale", "err", err)
		}
		if other.Token != "" && other.Token == l.info.Token {
			l.rev = e.Revision() // our own write, whose reply was lost
			return nil
		}
		// The server's time of the last write, not the holder's clock.
		age := time.Since(e.Created())
		if age < l.ttl {
			return fmt.Errorf("%w: a %s is already running for run %s (holder %q, pid %d on host %q, heartbeat %s ago); stop it, or wait %s if it crashed",
				ErrLocked, l.key[len("lock."):], l.run, other.Holder, other.PID, other.Host, age.Round(time.Millisecond), l.ttl)
		}
		err = retryTimeout(ctx, nil, func(ctx context.Context) (err error) {
			rev, err = l.kv.Update(ctx, l.key, l.value(), e.Revision())
			return err
		})
		if errors.Is(err, jetstream.ErrKeyRevisionMismatch) {
			continue // another acquirer was faster; look again
		}
		if err != nil {
			return fmt.Errorf("lock %s of run %s: take over: %w", l.key, l.run, err)
		}
		l.log.Warn("took over a stale lock; its holder stopped refreshing it",
			"holder", other.Holder, "pid", other.PID, "host", other.Host, "heartbeat_age", age)
		l.rev = rev
		return nil
	}
	return fmt.Errorf("%w: lock %s of run %s: lost %d races with other acquirers", ErrLocked, l.key, l.run, lockAttempts)
}

// refresh rewrites the lock every ttl/3 until stopped or lost. The lock is
// lost when a compare-and-set fails (someone else wrote the key) or when
// no refresh succeeded for ttl (another process may have taken it over).
func (l *Lock) refresh(ctx context.Context) {
	defer close(l.done)
	t := time.NewTicker(l.ttl / 3)
	defer t.Stop()
	last := time.Now()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		l.mu.Lock()
		rev := l.rev
		l.mu.Unlock()
		uctx, cancel := context.WithTimeout(ctx, l.ttl/3)
		next, err := l.kv.Update(uctx, l.key, l.value(), rev)
		cancel()
		switch {
		case err == nil:
			l.mu.Lock()
			l.rev = next
			l.mu.Unlock()
			last = time.Now()
			continue
		case ctx.Err() != nil:
			return
		case errors.Is(err, jetstream.ErrKeyRevisionMismatch):
			l.markLost("another process wrote the lock", err)
			return
		case time.Since(last) >= l.ttl:
			l.markLost("no refresh succeeded for the lock's ttl", err)
			return
		default:
			l.log.Warn("lock refresh failed; retrying", "err", err)
		}
	}
}

func (l *Lock) markLost(why string, err error) {
	l.mu.Lock()
	l.rev = 0
	l.mu.Unlock()
	l.log.Error("lock lost: "+why, "err", err)
	close(l.lost)
}

// Lost is closed when the lock is lost: another process took it over or
// refreshes failed for ttl. The holder should stop what the lock guards.
// Release does not close it.
func (l *Lock) Lost() <-chan struct{} { return l.lost }

// Release stops refreshing and deletes the key if it is still ours. It is
// safe to call more than once; after a loss it only stops the refresh.
func (l *Lock) Release(ctx context.Context) error {
	l.cancel()
	<-l.done
	l.mu.Lock()
	rev := l.rev
	l.rev = 0
	l.mu.Unlock()
	if rev == 0 {
		return nil
	}
	// A delete that timed out (a stalled or restarting server) is tried
	// again: if the first one was applied after all, the next finds a newer
	// revision (the delete marker) and the lock counts as released.
	err := retryTimeout(ctx, nil, func(ctx context.Context) error {
		return l.kv.Delete(ctx, l.key, jetstream.LastRevision(rev))
	})
	if errors.Is(err, jetstream.ErrKeyRevisionMismatch) {
		l.log.Warn("lock was taken over before its release; left to the new holder")
		return nil
	}
	if err != nil {
		return fmt.Errorf("release lock %s of run %s: %w", l.key, l.run, err)
	}
	return nil
}
