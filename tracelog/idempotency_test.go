package tracelog_test

import (
	"errors"
	"sync"
	"testing"
	"time"

	"github.com/wsgrpo/wsgrpo/bench/logstore"
	"github.com/wsgrpo/wsgrpo/tracelog"
	"github.com/wsgrpo/wsgrpo/tracelog/chtest"
)

// dedupCounts returns the run's count from Count, from the dedup view and
// from an argMax-free GROUP BY on the raw table: all must agree.
func dedupCounts(t *testing.T, s tracelog.Store, run string) (count, view, distinct int64) {
	t.Helper()
	count = countOf(t, s, run)
	res, err := s.Query(ctx(t), "SELECT count() FROM trajectories_dedup WHERE run_id = ?", run)
	if err != nil {
		t.Fatal(err)
	}
	view = int64(res.Rows[0][0].(uint64))
	res, err = s.Query(ctx(t), "SELECT uniqExact(trajectory_id) FROM trajectories WHERE run_id = ?", run)
	if err != nil {
		t.Fatal(err)
	}
	distinct = int64(res.Rows[0][0].(uint64))
	return count, view, distinct
}

func countOf(t *testing.T, s tracelog.Store, run string) int64 { t.Helper(); return count(t, s, run) }

func TestRedeliveredBatchesNeverDuplicate(t *testing.T) {
	forEachBackend(t, true, func(t *testing.T, s tracelog.Store, _ tracelog.Config, _ *chtest.Server) {
		rows := logstore.SyntheticRows("dup", 300, 8, 3)
		batches := [][]tracelog.Row{
			rows[0:100],
			rows[0:100],   // redelivered as is
			rows[100:200], //
			rows[50:150],  // re-split differently
			rows[100:200], // again
			rows[200:300],
			append(append([]tracelog.Row{}, rows[250:300]...), rows[250:300]...), // duplicates inside one batch
		}
		for i, b := range batches {
			if err := s.Insert(ctx(t), b); err != nil {
				t.Fatalf("batch %d: %v", i, err)
			}
		}
		c, v, d := dedupCounts(t, s, "dup")
		if c != 300 || v != 300 || d != 300 {
			t.Fatalf("Count %d, view %d, distinct ids %d: want 300 each", c, v, d)
		}
		// The raw table does hold the copies until a merge: the view is
		// what makes counting exact.
		res, err := s.Query(ctx(t), "SELECT count() FROM trajectories WHERE run_id = ?", "dup")
		if err != nil {
			t.Fatal(err)
		}
		t.Logf("raw rows before merge: %v (distinct 300)", res.Rows[0][0])
		// After a forced merge the table itself holds one row per id.
		// OPTIMIZE does nothing while a background merge holds the parts,
		// so poll.
		var raw any
		for range 50 {
			if err := tracelog.Exec(ctx(t), s, "OPTIMIZE TABLE trajectories FINAL"); err != nil {
				t.Fatal(err)
			}
			res, err = s.Query(ctx(t), "SELECT count() FROM trajectories WHERE run_id = ?", "dup")
			if err != nil {
				t.Fatal(err)
			}
			if raw = res.Rows[0][0]; raw == uint64(300) {
				break
			}
			time.Sleep(100 * time.Millisecond)
		}
		if raw != uint64(300) {
			t.Fatalf("after OPTIMIZE FINAL the table holds %v rows, want 300", raw)
		}
		got, err := tracelog.ReadRun(ctx(t), s, "dup")
		if err != nil || len(got) != 300 {
			t.Fatalf("ReadRun: %d rows, %v", len(got), err)
		}
	})
}

func TestMigrationOnExistingTableWithRows(t *testing.T) {
	forEachBackend(t, false, func(t *testing.T, s tracelog.Store, _ tracelog.Config, _ *chtest.Server) {
		if err := tracelog.MigrateTo(ctx(t), s, 2); err != nil {
			t.Fatal(err)
		}
		// Rows written by a build that knew schema version 2 only.
		old := `INSERT INTO trajectories (run_id, step, trajectory_id, completion, completion_tokens, correct, created, inserted)
			SELECT 'old', number, concat('old/', toString(number)), 'x', 3, number % 2, toDateTime(1767225600), 1 FROM system.numbers LIMIT 40`
		if err := tracelog.Exec(ctx(t), s, old); err != nil {
			t.Fatal(err)
		}
		if err := tracelog.Exec(ctx(t), s, old); err != nil { // and a redelivery of them
			t.Fatal(err)
		}
		if _, err := s.Query(ctx(t), "SELECT token_logprobs FROM trajectories"); !errors.Is(err, tracelog.ErrQuery) {
			t.Fatalf("version 2 table already has token_logprobs: %v", err)
		}
		// Half-applied migration 3: one of its columns already exists.
		if err := tracelog.Exec(ctx(t), s, "ALTER TABLE trajectories ADD COLUMN labeled UInt8"); err != nil {
			t.Fatal(err)
		}
		if err := tracelog.MigrateTo(ctx(t), s, 3); err != nil {
			t.Fatal(err)
		}
		// Half-applied migration 4 likewise.
		if err := tracelog.Exec(ctx(t), s, "ALTER TABLE trajectories ADD COLUMN group_size Int32"); err != nil {
			t.Fatal(err)
		}
		for range 2 {
			if err := s.Migrate(ctx(t)); err != nil {
				t.Fatal(err)
			}
		}
		if c, v, d := dedupCounts(t, s, "old"); c != 40 || v != 40 || d != 40 {
			t.Fatalf("after migration: Count %d, view %d, distinct %d; want 40", c, v, d)
		}
		res, err := s.Query(ctx(t), "SELECT sum(correct), sum(length(token_logprobs)), max(labeled), any(created_ms) FROM trajectories_dedup WHERE run_id = ?", "old")
		if err != nil {
			t.Fatal(err)
		}
		if r := res.Rows[0]; r[0] != uint64(20) || r[1] != uint64(0) || r[2] != uint64(0) || r[3] != int64(0) {
			t.Fatalf("old rows after migration: %v", r)
		}
		oldRows, err := tracelog.ReadRun(ctx(t), s, "old")
		if err != nil || len(oldRows) != 40 {
			t.Fatalf("old rows: %d, %v", len(oldRows), err)
		}
		for _, r := range oldRows {
			if r.GroupSize != 0 || r.Labeler != "" || r.Labeled {
				t.Fatalf("old row %s: group_size %d, labeler %q, labeled %v; want zero values", r.TrajectoryID, r.GroupSize, r.Labeler, r.Labeled)
			}
		}
		res, err = s.Query(ctx(t), "SELECT count() FROM steps_dedup")
		if err != nil || res.Rows[0][0] != uint64(0) {
			t.Fatalf("steps_dedup after migration: %v, %v", res, err)
		}
		rows := logstore.SyntheticRows("new", 5, 4, 1)
		if err := s.Insert(ctx(t), rows); err != nil {
			t.Fatal(err)
		}
		got, err := tracelog.ReadRun(ctx(t), s, "new")
		if err != nil || len(got) != 5 || len(got[0].TokenLogprobs) != 4 || got[0].GroupSize != rows[0].GroupSize || got[0].Labeler != rows[0].Labeler {
			t.Fatalf("new rows: %d, %v", len(got), err)
		}
	})
}

func TestServerOutage(t *testing.T) {
	b := chtest.Backends()[0]
	cfg, srv := b.Open(t)
	if srv.External() {
		t.Skip("outage test needs a server this test starts (" + chtest.EnvDSN + " is set)")
	}
	s := open(t, cfg)
	if err := s.Migrate(ctx(t)); err != nil {
		t.Fatal(err)
	}
	rows := logstore.SyntheticRows("outage", 400, 8, 4)
	if err := s.Insert(ctx(t), rows[:200]); err != nil {
		t.Fatal(err)
	}
	srv.Stop(t)
	err := s.Insert(ctx(t), rows[200:300])
	if !errors.Is(err, tracelog.ErrUnavailable) {
		t.Fatalf("insert while down: err = %v, want ErrUnavailable", err)
	}
	if _, err := s.Count(ctx(t), "outage"); !errors.Is(err, tracelog.ErrUnavailable) {
		t.Fatalf("count while down: err = %v, want ErrUnavailable", err)
	}
	srv.Restart(t)
	// The runner retries the failed batch; the earlier one is redelivered
	// too (its ack may have been lost with the outage).
	for _, b := range [][]tracelog.Row{rows[200:300], rows[100:200], rows[300:400]} {
		if err := s.Insert(ctx(t), b); err != nil {
			t.Fatalf("insert after restart: %v", err)
		}
	}
	if c, v, d := dedupCounts(t, s, "outage"); c != 400 || v != 400 || d != 400 {
		t.Fatalf("after outage: Count %d, view %d, distinct %d; want 400", c, v, d)
	}
}

// TestConcurrentMigrations migrates one fresh server database from several
// stores at once, as the stage processes of a run that share a ClickHouse
// server do when they start together (the logger and the learner both
// open the log for writing): every one succeeds, and the table and its
// dedup view end with every migration's columns.
func TestConcurrentMigrations(t *testing.T) {
	const stores = 4
	for round := range 3 {
		cfg, _ := chtest.Backends()[0].Open(t)
		var wg sync.WaitGroup
		errs := make([]error, stores)
		start := make(chan struct{})
		for i := range stores {
			s := open(t, cfg)
			wg.Go(func() {
				<-start
				errs[i] = s.Migrate(ctx(t))
			})
		}
		close(start)
		wg.Wait()
		for i, err := range errs {
			if err != nil {
				t.Fatalf("round %d, store %d: %v", round, i, err)
			}
		}
		s := open(t, cfg)
		for _, q := range []string{
			"SELECT labeled, created_ms, group_size, labeler FROM trajectories_dedup",
			"SELECT count() FROM steps_dedup",
		} {
			if _, err := s.Query(ctx(t), q); err != nil {
				t.Fatalf("round %d: %s: %v", round, q, err)
			}
		}
	}
}
