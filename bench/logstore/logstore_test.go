package logstore_test

import (
	"context"
	"errors"
	"fmt"
	"testing"
	"time"

	"github.com/wsgrpo/wsgrpo/bench/logstore"
	"github.com/wsgrpo/wsgrpo/tracelog"
	"github.com/wsgrpo/wsgrpo/tracelog/chtest"
)

// openMigrated opens a migrated store, closed when tb ends.
func openMigrated(tb testing.TB, cfg tracelog.Config) tracelog.Store {
	tb.Helper()
	s, err := tracelog.Open(tb.Context(), cfg)
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(func() { _ = s.Close() })
	if err := s.Migrate(tb.Context()); err != nil {
		tb.Fatal(err)
	}
	return s
}

// forEachBackend runs f on a fresh migrated store of each backend.
func forEachBackend(t *testing.T, f func(t *testing.T, s tracelog.Store)) {
	for _, be := range chtest.Backends() {
		t.Run(be.Name, func(t *testing.T) {
			cfg, _ := be.Open(t)
			f(t, openMigrated(t, cfg))
		})
	}
}

// TestInsert checks the figures Insert and InsertParallel report, and that
// every row arrives.
func TestInsert(t *testing.T) {
	forEachBackend(t, func(t *testing.T, s tracelog.Store) {
		for _, workers := range []int{1, 3} {
			run := fmt.Sprint("insert-", workers)
			st, err := logstore.InsertParallel(t.Context(), s, logstore.SyntheticRows(run, 100, 8, 1), 32, workers)
			if err != nil {
				t.Fatal(err)
			}
			if st.Rows != 100 || st.BatchSize != 32 || st.Batches != 4 || st.Elapsed <= 0 || st.RowsPerSecond() <= 0 {
				t.Fatalf("workers %d: result %+v", workers, st)
			}
			res, err := s.Query(t.Context(), "SELECT count() FROM trajectories_dedup WHERE run_id = ?", run)
			if err != nil {
				t.Fatal(err)
			}
			if n, _ := res.Rows[0][0].(uint64); n != 100 {
				t.Fatalf("workers %d: %d rows stored, want 100", workers, n)
			}
		}
		if _, err := logstore.Insert(t.Context(), s, logstore.SyntheticRows("zero", 1, 1, 1), 0); !errors.Is(err, tracelog.ErrConfig) {
			t.Fatalf("batch size 0: %v, want ErrConfig", err)
		}
	})
}

// TestWaitMerges checks the wait insert measurements start with, on both
// backends: it returns once no merge runs, and a cancelled context ends it
// with the context's error.
func TestWaitMerges(t *testing.T) {
	forEachBackend(t, func(t *testing.T, s tracelog.Store) {
		for i := range 3 {
			if err := s.Insert(t.Context(), logstore.SyntheticRows(fmt.Sprint("merge-", i), 256, 16, uint64(i))); err != nil {
				t.Fatal(err)
			}
		}
		if err := logstore.WaitMerges(t.Context(), s, time.Minute); err != nil {
			t.Fatalf("wait: %v", err)
		}
		ctx, cancel := context.WithCancel(t.Context())
		cancel()
		if err := logstore.WaitMerges(ctx, s, time.Minute); !errors.Is(err, context.Canceled) {
			t.Fatalf("cancelled wait: err = %v, want context.Canceled", err)
		}
	})
}

// BenchmarkInsert runs Insert (what `wsgrpo bench tracelog` calls) over
// 16,384 trajectories per backend and batch size.
func BenchmarkInsert(b *testing.B) {
	rows := logstore.SyntheticRows("measure", 16384, 512, 2)
	for _, be := range chtest.Backends() {
		b.Run(be.Name, func(b *testing.B) {
			cfg, _ := be.Open(b)
			s := openMigrated(b, cfg)
			for _, size := range []int{64, 256, 1024, 4096} {
				b.Run(fmt.Sprintf("batch=%d", size), func(b *testing.B) {
					var st logstore.Result
					var err error
					for b.Loop() {
						if st, err = logstore.Insert(b.Context(), s, rows, size); err != nil {
							b.Fatal(err)
						}
					}
					b.ReportMetric(st.RowsPerSecond(), "rows/s")
				})
			}
		})
	}
}
