package pipeline

import (
	"cmp"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"math"
	"slices"
	"strconv"
	"time"

	"github.com/apache/arrow-go/v18/arrow/memory"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/wsgrpo/wsgrpo/schemas"
	"github.com/wsgrpo/wsgrpo/stages/stage"
)

// DefaultGroupMaxAge is how long a pending group's rows stay in the
// groups bucket when OpenGroupStore is given no max age.
const DefaultGroupMaxAge = time.Hour

// Errors of GroupStore. Callers test them with errors.Is.
var (
	// ErrGroupStoreUnavailable wraps every failure to reach the groups
	// bucket (server down, timeout, cancelled context). It wraps
	// stage.ErrUnavailable, so a processor that returns it has the runner
	// hold its batch until the server is back.
	ErrGroupStoreUnavailable = fmt.Errorf("group store: %w", stage.ErrUnavailable)
	// ErrGroupCorrupt is returned when a stored row cannot be decoded as a
	// one-row verified batch: retrying cannot fix it.
	ErrGroupCorrupt = fmt.Errorf("group store: corrupt row: %w", stage.ErrPermanent)
)

// GroupStore keeps the verified rows of groups whose samples are still
// arriving (the labeler scores a group once all GroupSize samples are in,
// and they may come in different batches, to different workers or
// processes). It is a KV bucket per run (Topology.GroupsBucket) holding one
// key per row, "g.<group hash>.<sample index>", so concurrent writers never
// overwrite each other; the bucket's max age drops groups that are never
// completed.
type GroupStore struct {
	kv  jetstream.KeyValue
	mem memory.Allocator
}

// OpenGroupStore creates or updates the run's groups bucket with maxAge as
// the age after which a stored row expires (0: DefaultGroupMaxAge) and
// returns the store. Topology.Ensure does not create the bucket (only the
// labeler needs it); Topology.Delete removes it.
func OpenGroupStore(ctx context.Context, js jetstream.JetStream, t Topology, maxAge time.Duration) (*GroupStore, error) {
	if maxAge < 0 {
		return nil, fmt.Errorf("%w: group store max age %s", ErrInvalidConfig, maxAge)
	}
	if maxAge == 0 {
		maxAge = DefaultGroupMaxAge
	}
	var kv jetstream.KeyValue
	err := retryTimeout(ctx, js.Conn(), func(ctx context.Context) (err error) {
		kv, err = ensureKeyValue(ctx, js, jetstream.KeyValueConfig{
			Bucket:      t.GroupsBucket(),
			Description: fmt.Sprintf("wsgrpo run %s: verified rows of groups still arriving", t.Run),
			History:     1,
			TTL:         maxAge,
			Storage:     t.Storage,
			Replicas:    max(t.Replicas, 1),
		})
		return err
	})
	if err != nil {
		return nil, fmt.Errorf("%w: open %s: %w", ErrGroupStoreUnavailable, t.GroupsBucket(), err)
	}
	return &GroupStore{kv: kv, mem: memory.DefaultAllocator}, nil
}

// groupToken maps a group id to a KV-safe key token: the first 128 bits of
// its SHA-256, in hex.
func groupToken(group string) string {
	h := sha256.Sum256([]byte(group))
	return hex.EncodeToString(h[:16])
}

// groupKey is the key of one row of a group.
func groupKey(group string, sample int32) string {
	return "g." + groupToken(group) + "." + strconv.FormatInt(int64(sample), 10)
}

// groupFilter matches every key of a group.
func groupFilter(group string) string { return "g." + groupToken(group) + ".*" }

// Add stores rows (all of group group, each under its SampleIndex) and
// returns the rows of the group stored up to its own last write, its own
// included, sorted by SampleIndex. Storing a row again (a redelivered
// batch) replaces it. Writes are ordered (each gets the bucket's next
// revision) and a caller sees only the rows written no later than its own
// last one, so of callers adding the last rows of a group concurrently
// exactly one sees the group complete: the one whose write came last. (A
// redelivered batch that writes again sees the group complete again; its
// consumers de-duplicate by trajectory id.) A row whose GroupID is not group is refused with an
// error wrapping ErrInvalidConfig.
func (s *GroupStore) Add(ctx context.Context, group string, rows []schemas.Verified) ([]schemas.Verified, error) {
	if group == "" {
		return nil, fmt.Errorf("%w: empty group id", ErrInvalidConfig)
	}
	var last uint64
	for i := range rows {
		if rows[i].GroupID != group {
			return nil, fmt.Errorf("%w: row %s belongs to group %q, not %q", ErrInvalidConfig, rows[i].TrajectoryID, rows[i].GroupID, group)
		}
		rec := schemas.NewVerifiedBatch(s.mem, rows[i:i+1])
		b, err := schemas.Encode(rec)
		rec.Release()
		if err != nil {
			return nil, fmt.Errorf("group store: encode row %s: %w", rows[i].TrajectoryID, err)
		}
		key := groupKey(group, rows[i].SampleIndex)
		rev, err := s.kv.Put(ctx, key, b)
		if err != nil {
			return nil, fmt.Errorf("%w: put %s of group %s: %w", ErrGroupStoreUnavailable, key, group, err)
		}
		last = max(last, rev)
	}
	return s.rowsUpTo(ctx, group, last)
}

// Rows returns every stored row of group, sorted by SampleIndex (none:
// an empty slice).
func (s *GroupStore) Rows(ctx context.Context, group string) ([]schemas.Verified, error) {
	return s.rowsUpTo(ctx, group, math.MaxUint64)
}

// rowsUpTo reads the current value of every key of group whose revision
// is at most last.
func (s *GroupStore) rowsUpTo(ctx context.Context, group string, last uint64) ([]schemas.Verified, error) {
	entries, err := s.entries(ctx, group)
	if err != nil {
		return nil, err
	}
	out := make([]schemas.Verified, 0, len(entries))
	for _, e := range entries {
		if e.Revision() > last {
			continue
		}
		v, err := s.decode(e)
		if err != nil {
			return nil, err
		}
		out = append(out, v...)
	}
	slices.SortFunc(out, func(a, b schemas.Verified) int { return cmp.Compare(a.SampleIndex, b.SampleIndex) })
	return out, nil
}

// entries returns the current entry of every key of group (opts: e.g.
// jetstream.MetaOnly for the keys alone).
func (s *GroupStore) entries(ctx context.Context, group string, opts ...jetstream.WatchOpt) ([]jetstream.KeyValueEntry, error) {
	w, err := watchKV(ctx, s.kv, groupFilter(group), append(opts, jetstream.IgnoreDeletes())...)
	if err != nil {
		return nil, fmt.Errorf("%w: read group %s: %w", ErrGroupStoreUnavailable, group, err)
	}
	defer func() { _ = w.Stop() }()
	var out []jetstream.KeyValueEntry
	for {
		select {
		case <-ctx.Done():
			return nil, fmt.Errorf("%w: read group %s: %w", ErrGroupStoreUnavailable, group, ctx.Err())
		case e, ok := <-w.Updates():
			if !ok {
				return nil, fmt.Errorf("%w: read group %s: the watch ended early", ErrGroupStoreUnavailable, group)
			}
			if e == nil { // the end of the current values
				return out, nil
			}
			out = append(out, e)
		}
	}
}

// decode reads the one-row verified batch of e. Its error does not wrap
// the codec's (schemas.ErrInvalid): the input batch of the caller is
// valid, so the class is permanent, not invalid.
func (s *GroupStore) decode(e jetstream.KeyValueEntry) ([]schemas.Verified, error) {
	rec, err := schemas.Decode(schemas.KindVerified, e.Value(), s.mem)
	if err != nil {
		return nil, fmt.Errorf("%w: key %s: %v", ErrGroupCorrupt, e.Key(), err)
	}
	defer rec.Release()
	rows, err := schemas.ReadVerified(rec)
	if err != nil {
		return nil, fmt.Errorf("%w: key %s: %v", ErrGroupCorrupt, e.Key(), err)
	}
	return rows, nil
}

// Forget deletes every stored row of group (once it is labeled). Rows of
// a group that is never forgotten expire after the store's max age.
func (s *GroupStore) Forget(ctx context.Context, group string) error {
	entries, err := s.entries(ctx, group, jetstream.MetaOnly())
	if err != nil {
		return err
	}
	for _, e := range entries {
		k := e.Key()
		// Purge drops the row, leaving one small marker per key that
		// expires with the bucket's max age.
		if err := s.kv.Purge(ctx, k); err != nil {
			return fmt.Errorf("%w: forget %s of group %s: %w", ErrGroupStoreUnavailable, k, group, err)
		}
	}
	return nil
}
