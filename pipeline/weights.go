package pipeline

import (
	"context"
	"errors"
	"fmt"
	"strconv"

	"github.com/nats-io/nats.go/jetstream"
)

// PolicyVersionKey is the run-state key announcing the current policy
// version.
const PolicyVersionKey = "policy.version"

// WeightStore distributes versioned policy weights: the blobs live in the
// run's Object Store bucket, the current version is announced in the
// run-state KV bucket, and samplers watch it to swap weights between
// batches.
type WeightStore struct {
	obj jetstream.ObjectStore
	kv  jetstream.KeyValue
}

// OpenWeightStore opens the buckets created by Topology.Ensure. Lookups
// that time out (a server restarting while a stage starts) are tried
// again, as Ensure's are.
func OpenWeightStore(ctx context.Context, js jetstream.JetStream, t Topology) (*WeightStore, error) {
	var obj jetstream.ObjectStore
	err := retryTimeout(ctx, js.Conn(), func(ctx context.Context) (err error) {
		obj, err = js.ObjectStore(ctx, t.WeightsBucket())
		return err
	})
	if err != nil {
		return nil, fmt.Errorf("weights bucket %s: %w", t.WeightsBucket(), err)
	}
	kv, err := stateBucket(ctx, js, t)
	if err != nil {
		return nil, err
	}
	return &WeightStore{obj: obj, kv: kv}, nil
}

func weightsName(version int64) string { return "policy/v" + strconv.FormatInt(version, 10) }

// Put stores the weights of version and then announces it as current,
// unless a newer version is already announced. Versions are >= 0.
func (w *WeightStore) Put(ctx context.Context, version int64, data []byte) error {
	if version < 0 {
		return fmt.Errorf("%w: negative policy version %d", ErrInvalidConfig, version)
	}
	if _, err := w.obj.PutBytes(ctx, weightsName(version), data); err != nil {
		return fmt.Errorf("put weights v%d: %w", version, err)
	}
	// Compare-and-set so that concurrent announcers never move the version
	// backwards.
	for {
		e, err := w.kv.Get(ctx, PolicyVersionKey)
		val := []byte(strconv.FormatInt(version, 10))
		switch {
		case errors.Is(err, jetstream.ErrKeyNotFound):
			_, err = w.kv.Create(ctx, PolicyVersionKey, val)
		case err != nil:
			return fmt.Errorf("announce weights v%d: %w", version, err)
		default:
			cur, perr := strconv.ParseInt(string(e.Value()), 10, 64)
			if perr == nil && cur >= version {
				return nil
			}
			_, err = w.kv.Update(ctx, PolicyVersionKey, val, e.Revision())
		}
		if err == nil {
			return nil
		}
		if !errors.Is(err, jetstream.ErrKeyExists) && !isWrongSequence(err) {
			return fmt.Errorf("announce weights v%d: %w", version, err)
		}
		if ctx.Err() != nil {
			return fmt.Errorf("announce weights v%d: %w", version, ctx.Err())
		}
	}
}

func isWrongSequence(err error) bool {
	var apiErr *jetstream.APIError
	return errors.As(err, &apiErr) && apiErr.ErrorCode == jetstream.JSErrCodeStreamWrongLastSequence
}

// Latest returns the announced policy version, or ErrNotFound when none is.
func (w *WeightStore) Latest(ctx context.Context) (int64, error) {
	e, err := w.kv.Get(ctx, PolicyVersionKey)
	if errors.Is(err, jetstream.ErrKeyNotFound) {
		return 0, fmt.Errorf("policy version: %w", ErrNotFound)
	}
	if err != nil {
		return 0, fmt.Errorf("policy version: %w", err)
	}
	return parseVersion(e.Value())
}

func parseVersion(b []byte) (int64, error) {
	v, err := strconv.ParseInt(string(b), 10, 64)
	if err != nil || v < 0 {
		return 0, fmt.Errorf("%w: policy version %q", ErrInvalidConfig, b)
	}
	return v, nil
}

// Get returns the weights of version, or ErrNotFound.
func (w *WeightStore) Get(ctx context.Context, version int64) ([]byte, error) {
	b, err := w.obj.GetBytes(ctx, weightsName(version))
	if errors.Is(err, jetstream.ErrObjectNotFound) {
		return nil, fmt.Errorf("weights v%d: %w", version, ErrNotFound)
	}
	if err != nil {
		return nil, fmt.Errorf("weights v%d: %w", version, err)
	}
	return b, nil
}

// Delete removes the weights of version (old versions, to bound storage).
func (w *WeightStore) Delete(ctx context.Context, version int64) error {
	if err := w.obj.Delete(ctx, weightsName(version)); err != nil {
		if errors.Is(err, jetstream.ErrObjectNotFound) {
			return fmt.Errorf("weights v%d: %w", version, ErrNotFound)
		}
		return fmt.Errorf("delete weights v%d: %w", version, err)
	}
	return nil
}

// Watch sends the announced version now (if any) and every newer one
// afterwards, until ctx is done; then it closes the channel. A slow reader
// only misses intermediate versions: it always gets the newest.
func (w *WeightStore) Watch(ctx context.Context) (<-chan int64, error) {
	kw, err := watchKV(ctx, w.kv, PolicyVersionKey)
	if err != nil {
		return nil, fmt.Errorf("watch policy version: %w", err)
	}
	out := make(chan int64, 1)
	go func() {
		defer close(out)
		defer func() { _ = kw.Stop() }()
		last := int64(-1)
		for {
			select {
			case <-ctx.Done():
				return
			case e, ok := <-kw.Updates():
				if !ok {
					return
				}
				if e == nil || e.Operation() != jetstream.KeyValuePut {
					continue // nil marks the end of the initial values
				}
				v, err := parseVersion(e.Value())
				if err != nil || v <= last {
					continue
				}
				last = v
				// Replace an unread older version with the newer one.
				select {
				case <-out:
				default:
				}
				out <- v
			}
		}
	}()
	return out, nil
}
