package pipeline

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"github.com/nats-io/nats.go/jetstream"
)

// RunState is the run's KV bucket: small values every process of a run can
// read (its configuration, the current policy version, progress markers).
type RunState struct {
	kv jetstream.KeyValue
}

// OpenRunState opens the run-state bucket created by Topology.Ensure.
func OpenRunState(ctx context.Context, js jetstream.JetStream, t Topology) (*RunState, error) {
	kv, err := stateBucket(ctx, js, t)
	if err != nil {
		return nil, err
	}
	return &RunState{kv: kv}, nil
}

// stateBucket looks the run-state bucket up, trying again when the lookup
// times out (a server restarting while a stage starts), as Ensure does.
func stateBucket(ctx context.Context, js jetstream.JetStream, t Topology) (jetstream.KeyValue, error) {
	var kv jetstream.KeyValue
	err := retryTimeout(ctx, js.Conn(), func(ctx context.Context) (err error) {
		kv, err = js.KeyValue(ctx, t.StateBucket())
		return err
	})
	if err != nil {
		return nil, fmt.Errorf("run state %s: %w", t.StateBucket(), err)
	}
	return kv, nil
}

// validKey accepts KV keys made of [A-Za-z0-9_-] tokens separated by dots.
func validKey(key string) error {
	if key == "" || key[0] == '.' || key[len(key)-1] == '.' {
		return fmt.Errorf("%w: state key %q", ErrInvalidName, key)
	}
	for _, c := range key {
		ok := c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '_' || c == '-' || c == '.'
		if !ok {
			return fmt.Errorf("%w: state key %q may only hold the characters A-Z a-z 0-9 _ - and dot", ErrInvalidName, key)
		}
	}
	return nil
}

// Put stores value under key and returns its revision.
func (s *RunState) Put(ctx context.Context, key string, value []byte) (uint64, error) {
	if err := validKey(key); err != nil {
		return 0, err
	}
	rev, err := s.kv.Put(ctx, key, value)
	if err != nil {
		return 0, fmt.Errorf("run state put %s: %w", key, err)
	}
	return rev, nil
}

// Get returns the value under key and its revision, or ErrNotFound.
func (s *RunState) Get(ctx context.Context, key string) ([]byte, uint64, error) {
	if err := validKey(key); err != nil {
		return nil, 0, err
	}
	e, err := s.kv.Get(ctx, key)
	if errors.Is(err, jetstream.ErrKeyNotFound) {
		return nil, 0, fmt.Errorf("run state %s: %w", key, ErrNotFound)
	}
	if err != nil {
		return nil, 0, fmt.Errorf("run state get %s: %w", key, err)
	}
	return e.Value(), e.Revision(), nil
}

// PutJSON stores v as JSON under key.
func (s *RunState) PutJSON(ctx context.Context, key string, v any) (uint64, error) {
	b, err := json.Marshal(v)
	if err != nil {
		return 0, fmt.Errorf("run state %s: %w", key, err)
	}
	return s.Put(ctx, key, b)
}

// GetJSON decodes the JSON value under key into v, or returns ErrNotFound.
func (s *RunState) GetJSON(ctx context.Context, key string, v any) error {
	b, _, err := s.Get(ctx, key)
	if err != nil {
		return err
	}
	if err := json.Unmarshal(b, v); err != nil {
		return fmt.Errorf("run state %s: %w", key, err)
	}
	return nil
}

// Update stores value under key only if the key is still at revision
// (0: only if the key does not exist), for compare-and-set updates.
func (s *RunState) Update(ctx context.Context, key string, value []byte, revision uint64) (uint64, error) {
	if err := validKey(key); err != nil {
		return 0, err
	}
	var rev uint64
	var err error
	if revision == 0 {
		rev, err = s.kv.Create(ctx, key, value)
	} else {
		rev, err = s.kv.Update(ctx, key, value, revision)
	}
	if err != nil {
		return 0, fmt.Errorf("run state update %s: %w", key, err)
	}
	return rev, nil
}

// watchPoll is how often Watch also reads its key directly. The KV watch
// is an ordered consumer: when a server restart takes that consumer away,
// the client only recreates it once it has missed heartbeats for 10 to 20
// seconds, and changes made meanwhile would wait that long.
const watchPoll = time.Second

// watchKV starts a watch of key in kv that lives until ctx ends or it is
// stopped, and whose creation gives up after the client's default API
// timeout (5 s) even if ctx has a later deadline. The KV client ties both
// to the one context it is given: the watch ends with it, and the request
// that creates the watch (its ordered consumer) waits for its reply until
// the context's deadline, falling back to the default only when there is
// none. A request the server never answers (it went down, or was shutting
// down, as the request reached it) thus waited as long as the caller's
// deadline: the prompt source of the scale-out test, whose context had
// the test's deadline, stalled a run across a NATS restart that way.
func watchKV(ctx context.Context, kv jetstream.KeyValue, key string, opts ...jetstream.WatchOpt) (jetstream.KeyWatcher, error) {
	// ctx's cancellation without its deadline.
	lctx, cancel := context.WithCancel(context.WithoutCancel(ctx))
	stop := context.AfterFunc(ctx, cancel)
	w, err := kv.Watch(lctx, key, opts...)
	if err != nil {
		stop()
		cancel()
		return nil, err
	}
	return ctxWatcher{KeyWatcher: w, cancel: cancel, stop: stop}, nil
}

// ctxWatcher is a KeyWatcher whose Stop also releases watchKV's context.
type ctxWatcher struct {
	jetstream.KeyWatcher
	cancel context.CancelFunc
	stop   func() bool
}

// Stop stops the watch.
func (w ctxWatcher) Stop() error {
	err := w.KeyWatcher.Stop()
	w.stop()
	w.cancel()
	return err
}

// Watch sends the value under key each time it changes, starting with the
// current value if there is one, until ctx ends (then the channel closes).
// A deleted key sends nil. Slow readers see the latest value: values sent
// while the reader is busy are replaced, not queued. Besides watching, it
// reads the key every watchPoll, so that a change reaches the reader
// within about that long even while the watch recovers from a server
// restart, and a watch that ends under it, or that could not be created
// (the server was down or restarting: the request timed out), is started
// again; each revision is sent at most once. It returns an error only for
// an invalid key or a watch the server refused.
func (s *RunState) Watch(ctx context.Context, key string) (<-chan []byte, error) {
	if err := validKey(key); err != nil {
		return nil, err
	}
	w, err := watchKV(ctx, s.kv, key)
	if err != nil && !IsTransient(err) {
		return nil, fmt.Errorf("run state watch %s: %w", key, err)
	}
	var updates <-chan jetstream.KeyValueEntry
	if err == nil {
		updates = w.Updates()
	}
	out := make(chan []byte, 1)
	go func() {
		defer close(out)
		defer func() {
			if w != nil {
				_ = w.Stop()
			}
		}()
		tick := time.NewTicker(watchPoll)
		defer tick.Stop()
		var sent uint64 // the newest revision sent
		send := func(v []byte, rev uint64) {
			if rev <= sent {
				return
			}
			sent = rev
			select { // keep only the newest value
			case <-out:
			default:
			}
			out <- v
		}
		poll := func() {
			gctx, cancel := context.WithTimeout(ctx, watchPoll)
			e, err := s.kv.Get(gctx, key)
			cancel()
			if err == nil { // a deleted key is left to the watch
				send(e.Value(), e.Revision())
			}
		}
		if updates == nil {
			poll()
		}
		for {
			select {
			case <-ctx.Done():
				return
			case e, ok := <-updates:
				if !ok {
					// The watch ended under us (the server restarted):
					// poll, and watch again on the next tick.
					updates = nil
					continue
				}
				if e == nil {
					continue // the end of the initial values
				}
				var v []byte
				if e.Operation() == jetstream.KeyValuePut {
					v = e.Value()
				}
				send(v, e.Revision())
			case <-tick.C:
				poll()
				if updates == nil {
					// Bounded (watchKV): a request lost in a restart
					// delays the next poll by a few seconds at most.
					if nw, err := watchKV(ctx, s.kv, key); err == nil {
						if w != nil {
							_ = w.Stop()
						}
						w, updates = nw, nw.Updates()
					}
				}
			}
		}
	}()
	return out, nil
}
