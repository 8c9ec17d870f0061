package tracelog

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"testing"
	"time"
)

// recorder is a write function for insertQueue tests: it records each
// group it is given, and holds writes until released (except writes whose
// first row belongs to run "free").
type recorder struct {
	mu      sync.Mutex
	groups  [][]Row
	hold    chan struct{}
	started chan struct{} // receives one value as each write starts
	err     error
}

func (r *recorder) write(ctx context.Context, rows []Row) error {
	r.started <- struct{}{}
	if rows[0].RunID != "free" {
		select {
		case <-r.hold:
		case <-ctx.Done():
			return ctx.Err()
		}
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	r.groups = append(r.groups, append([]Row(nil), rows...))
	return r.err
}

// heldQueue returns a queue of one writer over a recorder, and the
// function that releases held writes. Cleanup releases, then closes.
func heldQueue(t *testing.T, err error) (*insertQueue, *recorder, func()) {
	t.Helper()
	rec := &recorder{hold: make(chan struct{}), started: make(chan struct{}, 1000), err: err}
	var once sync.Once
	release := func() { once.Do(func() { close(rec.hold) }) }
	q := newInsertQueue(1, rec.write)
	t.Cleanup(func() {
		release()
		q.close()
	})
	return q, rec, release
}

// waitQueued polls until n inserts are queued (not yet taken by a writer).
func waitQueued(tb testing.TB, q *insertQueue, n int) {
	tb.Helper()
	deadline := time.Now().Add(20 * time.Second)
	for {
		q.mu.Lock()
		got := len(q.pending)
		q.mu.Unlock()
		if got == n {
			return
		}
		if time.Now().After(deadline) {
			tb.Fatalf("%d inserts queued, want %d", got, n)
		}
		time.Sleep(time.Millisecond)
	}
}

// occupy starts an insert the writer takes and holds; it returns the
// channel of that insert's outcome.
func occupy(t *testing.T, q *insertQueue, rec *recorder) chan error {
	t.Helper()
	first := make(chan error, 1)
	go func() { first <- q.insert(context.Background(), syntheticRows("first", 1, 1, 1)) }()
	<-rec.started
	return first
}

func TestInsertQueueGroupsConcurrentCalls(t *testing.T) {
	cases := []struct {
		name    string
		callers int
		rows    int
		// wantMax is the most inserts the queued callers may be written in.
		wantMax int
	}{
		{"small batches share one insert", 10, 64, 1},
		{"groups stay within the row limit", 6, groupMaxRows / 2, 3},
		{"an oversized batch goes alone", 2, groupMaxRows + 1, 2},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			q, rec, release := heldQueue(t, nil)
			first := occupy(t, q, rec)
			var wg sync.WaitGroup
			errs := make(chan error, tc.callers)
			for i := range tc.callers {
				wg.Go(func() {
					errs <- q.insert(context.Background(), syntheticRows(fmt.Sprintf("r%d", i), tc.rows, 1, 1))
				})
			}
			waitQueued(t, q, tc.callers)
			release()
			wg.Wait()
			close(errs)
			for err := range errs {
				if err != nil {
					t.Fatal(err)
				}
			}
			if err := <-first; err != nil {
				t.Fatal(err)
			}
			rec.mu.Lock()
			defer rec.mu.Unlock()
			groups := rec.groups[1:]
			if len(groups) > tc.wantMax {
				t.Fatalf("%d callers written in %d inserts, want at most %d", tc.callers, len(groups), tc.wantMax)
			}
			seen := map[string]int{}
			for _, g := range groups {
				if len(g) > groupMaxRows && len(g) != tc.rows {
					t.Fatalf("a group of %d rows exceeds %d", len(g), groupMaxRows)
				}
				for _, r := range g {
					seen[r.RunID]++
				}
			}
			for i := range tc.callers {
				if n := seen[fmt.Sprintf("r%d", i)]; n != tc.rows {
					t.Fatalf("caller %d: %d rows written, want %d", i, n, tc.rows)
				}
			}
		})
	}
}

func TestInsertQueueErrorReachesEveryCaller(t *testing.T) {
	boom := errors.New("boom")
	q, rec, release := heldQueue(t, boom)
	first := occupy(t, q, rec)
	errs := make(chan error, 3)
	for i := range 3 {
		go func() { errs <- q.insert(context.Background(), syntheticRows(fmt.Sprint(i), 2, 1, 1)) }()
	}
	waitQueued(t, q, 3)
	release()
	if err := <-first; !errors.Is(err, boom) {
		t.Fatalf("err = %v, want boom", err)
	}
	for range 3 {
		if err := <-errs; !errors.Is(err, boom) {
			t.Fatalf("err = %v, want boom", err)
		}
	}
}

func TestInsertQueueCancelledCaller(t *testing.T) {
	q, rec, release := heldQueue(t, nil)
	first := occupy(t, q, rec)

	// Queued and cancelled before a writer takes it: it returns at once
	// and its rows are never written.
	ctx, cancel := context.WithCancel(context.Background())
	gone := make(chan error, 1)
	go func() { gone <- q.insert(ctx, syntheticRows("gone", 3, 1, 1)) }()
	waitQueued(t, q, 1)
	cancel()
	if err := <-gone; !errors.Is(err, ErrUnavailable) || !errors.Is(err, context.Canceled) {
		t.Fatalf("cancelled insert: %v", err)
	}
	waitQueued(t, q, 0)
	release()
	if err := <-first; err != nil {
		t.Fatal(err)
	}
	if err := q.insert(context.Background(), syntheticRows("after", 1, 1, 1)); err != nil {
		t.Fatal(err)
	}
	rec.mu.Lock()
	defer rec.mu.Unlock()
	for _, g := range rec.groups {
		for _, r := range g {
			if r.RunID == "gone" {
				t.Fatal("rows of a cancelled, never-taken insert were written")
			}
		}
	}
}

// groupAB queues inserts of runs "a" and "b" and returns once the writer
// has taken both as one group and holds it.
func groupAB(t *testing.T, q *insertQueue, rec *recorder, ctxA, ctxB context.Context) (errA, errB chan error) { //nolint:revive // one context per queued insert
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	first := make(chan error, 1)
	go func() { first <- q.insert(ctx, syntheticRows("first", 1, 1, 1)) }()
	<-rec.started
	errA, errB = make(chan error, 1), make(chan error, 1)
	go func() { errA <- q.insert(ctxA, syntheticRows("a", 1, 1, 1)) }()
	go func() { errB <- q.insert(ctxB, syntheticRows("b", 1, 1, 1)) }()
	waitQueued(t, q, 2)
	cancel() // the writer gives up the first insert and takes a and b
	if err := <-first; !errors.Is(err, context.Canceled) {
		t.Fatalf("first: %v", err)
	}
	<-rec.started
	waitQueued(t, q, 0)
	return errA, errB
}

func TestInsertQueueGroupContext(t *testing.T) {
	t.Run("survives a caller leaving", func(t *testing.T) {
		q, rec, release := heldQueue(t, nil)
		ctxA, cancelA := context.WithCancel(context.Background())
		errA, errB := groupAB(t, q, rec, ctxA, context.Background())
		cancelA()
		if err := <-errA; !errors.Is(err, context.Canceled) {
			t.Fatalf("a: %v", err)
		}
		release()
		if err := <-errB; err != nil {
			t.Fatalf("b: %v", err)
		}
		rec.mu.Lock()
		defer rec.mu.Unlock()
		if len(rec.groups) != 1 || len(rec.groups[0]) != 2 {
			t.Fatalf("written: %v", rec.groups)
		}
	})
	t.Run("cancelled when every caller left", func(t *testing.T) {
		q, rec, _ := heldQueue(t, nil)
		ctxA, cancelA := context.WithCancel(context.Background())
		ctxB, cancelB := context.WithCancel(context.Background())
		errA, errB := groupAB(t, q, rec, ctxA, ctxB)
		cancelA()
		cancelB()
		for _, ch := range []chan error{errA, errB} {
			if err := <-ch; !errors.Is(err, context.Canceled) {
				t.Fatalf("caller: %v", err)
			}
		}
		// The held group was cancelled, so the one writer is free again.
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		if err := q.insert(ctx, syntheticRows("free", 1, 1, 1)); err != nil {
			t.Fatalf("insert after the group was abandoned: %v", err)
		}
	})
}

func TestInsertQueueClose(t *testing.T) {
	rec := &recorder{hold: make(chan struct{}), started: make(chan struct{}, 10)}
	close(rec.hold)
	q := newInsertQueue(2, rec.write)
	if err := q.insert(context.Background(), syntheticRows("x", 2, 1, 1)); err != nil {
		t.Fatal(err)
	}
	q.close()
	if err := q.insert(context.Background(), syntheticRows("y", 2, 1, 1)); !errors.Is(err, ErrClosed) {
		t.Fatalf("insert after close: %v", err)
	}
}
