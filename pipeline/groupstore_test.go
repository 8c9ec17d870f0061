package pipeline

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/wsgrpo/wsgrpo/schemas"
	"github.com/wsgrpo/wsgrpo/stages/stage"
)

// verifiedGroup returns the g verified rows of group b of run.
func verifiedGroup(run string, b, g int) []schemas.Verified {
	out := make([]schemas.Verified, g)
	for i, r := range rolloutRows(run, b, g, 4) {
		r.GroupSize = int32(g)
		out[i] = schemas.Verified{Rollout: r, ExtractedAnswer: fmt.Sprint(i), Correct: i%2 == 0, TerminalReward: float32(i)}
	}
	return out
}

// pick returns the rows of rows at the given sample indexes.
func pick(rows []schemas.Verified, idx ...int) []schemas.Verified {
	out := make([]schemas.Verified, len(idx))
	for i, k := range idx {
		out[i] = rows[k]
	}
	return out
}

// sampleIndexes returns the SampleIndex of each row.
func sampleIndexes(rows []schemas.Verified) []int {
	out := make([]int, len(rows))
	for i, r := range rows {
		out[i] = int(r.SampleIndex)
	}
	return out
}

// openGroups starts a server with run's topology and opens its group store.
func openGroups(t testing.TB, run string, maxAge time.Duration) (*Server, jetstream.JetStream, Topology, *GroupStore) {
	t.Helper()
	srv := startServer(t, false)
	js := connectJS(t, srv)
	top := ensureRun(t, js, run, jetstream.MemoryStorage)
	gs, err := OpenGroupStore(t.Context(), js, top, maxAge)
	if err != nil {
		t.Fatal(err)
	}
	return srv, js, top, gs
}

// TestGroupStoreAdd adds a group's rows in steps and checks what each Add
// returns: every row stored so far, once, sorted by sample index, with
// its values intact.
func TestGroupStoreAdd(t *testing.T) {
	for _, tc := range []struct {
		name  string
		steps [][]int // sample indexes added by each Add
		want  [][]int // sample indexes each Add returns
	}{
		{"one batch", [][]int{{0, 1, 2, 3}}, [][]int{{0, 1, 2, 3}}},
		{"split in two", [][]int{{0, 1}, {2, 3}}, [][]int{{0, 1}, {0, 1, 2, 3}}},
		{"out of order", [][]int{{3, 1}, {2}, {0}}, [][]int{{1, 3}, {1, 2, 3}, {0, 1, 2, 3}}},
		{"redelivered", [][]int{{0, 1}, {0, 1}, {2, 3}, {2, 3}}, [][]int{{0, 1}, {0, 1}, {0, 1, 2, 3}, {0, 1, 2, 3}}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, _, top, gs := openGroups(t, "groups", 0)
			rows := verifiedGroup(top.Run, 7, 4)
			group := rows[0].GroupID
			for i, step := range tc.steps {
				got, err := gs.Add(t.Context(), group, pick(rows, step...))
				if err != nil {
					t.Fatalf("Add %v: %v", step, err)
				}
				if !slices.Equal(sampleIndexes(got), tc.want[i]) {
					t.Fatalf("Add %v returned samples %v, want %v", step, sampleIndexes(got), tc.want[i])
				}
				for _, r := range got {
					if w := rows[r.SampleIndex]; r.TrajectoryID != w.TrajectoryID || r.TerminalReward != w.TerminalReward ||
						r.ExtractedAnswer != w.ExtractedAnswer || r.GroupSize != w.GroupSize || !slices.Equal(r.CompletionTokenIDs, w.CompletionTokenIDs) {
						t.Errorf("row %d came back as %+v, want %+v", r.SampleIndex, r, w)
					}
				}
			}
			other := verifiedGroup(top.Run, 8, 2)
			if got, err := gs.Add(t.Context(), other[0].GroupID, other[:1]); err != nil || len(got) != 1 {
				t.Errorf("another group's Add returned %d rows (err %v), want its own 1", len(got), err)
			}
			if err := gs.Forget(t.Context(), group); err != nil {
				t.Fatal(err)
			}
			if got, err := gs.Rows(t.Context(), group); err != nil || len(got) != 0 {
				t.Errorf("Rows after Forget = %v, %v; want none", sampleIndexes(got), err)
			}
			if got, err := gs.Rows(t.Context(), other[0].GroupID); err != nil || len(got) != 1 {
				t.Errorf("Forget removed another group's rows: %v, %v", sampleIndexes(got), err)
			}
		})
	}
}

// TestGroupStoreAddRejects checks the arguments Add refuses.
func TestGroupStoreAddRejects(t *testing.T) {
	_, _, top, gs := openGroups(t, "groupsbad", 0)
	rows := verifiedGroup(top.Run, 1, 2)
	for _, tc := range []struct {
		name  string
		group string
	}{
		{"empty group", ""},
		{"rows of another group", "not-" + rows[0].GroupID},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if _, err := gs.Add(t.Context(), tc.group, rows); !errors.Is(err, ErrInvalidConfig) {
				t.Errorf("Add = %v, want ErrInvalidConfig", err)
			}
		})
	}
}

// TestGroupStoreConcurrentHalves adds the two halves of many groups from
// two goroutines at once: for each group, exactly one of the two sees it
// complete.
func TestGroupStoreConcurrentHalves(t *testing.T) {
	const groups, size = 20, 8
	_, _, top, gs := openGroups(t, "groupsrace", 0)
	for b := range groups {
		rows := verifiedGroup(top.Run, b, size)
		var wg sync.WaitGroup
		seen := make([][]schemas.Verified, 2)
		errs := make([]error, 2)
		for h := range 2 {
			wg.Go(func() { seen[h], errs[h] = gs.Add(t.Context(), rows[0].GroupID, rows[h*size/2:(h+1)*size/2]) })
		}
		wg.Wait()
		if err := errors.Join(errs...); err != nil {
			t.Fatal(err)
		}
		if (len(seen[0]) == size) == (len(seen[1]) == size) {
			t.Errorf("group %d: the Adds saw %v and %v: want exactly one whole group", b, sampleIndexes(seen[0]), sampleIndexes(seen[1]))
		}
	}
}

// TestGroupStoreMaxAge checks the bucket's max age: the default, a given
// one, and a negative one refused.
func TestGroupStoreMaxAge(t *testing.T) {
	srv := startServer(t, false)
	js := connectJS(t, srv)
	top := ensureRun(t, js, "groupsage", jetstream.MemoryStorage)
	for _, tc := range []struct {
		maxAge, want time.Duration
	}{
		{0, DefaultGroupMaxAge},
		{5 * time.Minute, 5 * time.Minute},
	} {
		t.Run(tc.maxAge.String(), func(t *testing.T) {
			if _, err := OpenGroupStore(t.Context(), js, top, tc.maxAge); err != nil {
				t.Fatal(err)
			}
			kv, err := js.KeyValue(t.Context(), top.GroupsBucket())
			if err != nil {
				t.Fatal(err)
			}
			st, err := kv.Status(t.Context())
			if err != nil {
				t.Fatal(err)
			}
			if st.TTL() != tc.want {
				t.Errorf("bucket max age %s, want %s", st.TTL(), tc.want)
			}
		})
	}
	if _, err := OpenGroupStore(t.Context(), js, top, -time.Second); !errors.Is(err, ErrInvalidConfig) {
		t.Errorf("negative max age: %v, want ErrInvalidConfig", err)
	}
	if err := top.Delete(t.Context(), js); err != nil {
		t.Fatal(err)
	}
	if _, err := js.KeyValue(t.Context(), top.GroupsBucket()); !errors.Is(err, jetstream.ErrBucketNotFound) {
		t.Errorf("groups bucket after Delete: %v, want ErrBucketNotFound", err)
	}
}

// TestGroupStoreErrors checks that a corrupt stored row and a stopped
// server give errors of their own, which the stage error classes see.
func TestGroupStoreErrors(t *testing.T) {
	srv, js, top, gs := openGroups(t, "groupserr", 0)
	rows := verifiedGroup(top.Run, 1, 2)
	group := rows[0].GroupID
	kv, err := js.KeyValue(t.Context(), top.GroupsBucket())
	if err != nil {
		t.Fatal(err)
	}
	if _, err := kv.Put(t.Context(), groupKey(group, 1), []byte("not arrow")); err != nil {
		t.Fatal(err)
	}
	_, err = gs.Add(t.Context(), group, rows[:1])
	if !errors.Is(err, ErrGroupCorrupt) || stage.Classify(err) != stage.ClassPermanent {
		t.Errorf("Add with a corrupt row: %v (class %q), want ErrGroupCorrupt of class permanent", err, stage.Classify(err))
	}
	srv.Shutdown()
	ctx, cancel := context.WithTimeout(t.Context(), time.Second)
	defer cancel()
	_, err = gs.Add(ctx, group, rows[:1])
	if !errors.Is(err, ErrGroupStoreUnavailable) || stage.Classify(err) != stage.ClassUnavailable {
		t.Errorf("Add with the server down: %v (class %q), want ErrGroupStoreUnavailable of class unavailable", err, stage.Classify(err))
	}
}
