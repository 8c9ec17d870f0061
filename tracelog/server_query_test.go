package tracelog_test

import (
	"testing"

	"github.com/wsgrpo/wsgrpo/bench/logstore"
	"github.com/wsgrpo/wsgrpo/tracelog"
	"github.com/wsgrpo/wsgrpo/tracelog/chtest"
)

// Statements that return no result set (OPTIMIZE, ALTER, DDL, INSERT ...
// SELECT) run through Query on every backend and give an empty result.
func TestQueryStatementsWithoutResult(t *testing.T) {
	stmts := []struct{ name, sql string }{
		{"optimize", "OPTIMIZE TABLE trajectories"},
		{"optimize final", "OPTIMIZE TABLE trajectories FINAL"},
		{"create", "CREATE TABLE IF NOT EXISTS scratch (x UInt64) ENGINE = MergeTree ORDER BY x"},
		{"insert select", "INSERT INTO scratch SELECT number FROM system.numbers LIMIT 5"},
		{"alter", "ALTER TABLE scratch ADD COLUMN y UInt8"},
		{"drop", "DROP TABLE scratch"},
	}
	forEachBackend(t, true, func(t *testing.T, s tracelog.Store, _ tracelog.Config, _ *chtest.Server) {
		if err := s.Insert(ctx(t), logstore.SyntheticRows("opt", 8, 4, 1)); err != nil {
			t.Fatal(err)
		}
		for _, st := range stmts {
			t.Run(st.name, func(t *testing.T) {
				res, err := s.Query(ctx(t), st.sql)
				if err != nil {
					t.Fatalf("%s: %v", st.sql, err)
				}
				if len(res.Rows) != 0 {
					t.Fatalf("%s returned rows: %v", st.sql, res.Rows)
				}
			})
		}
		if n := count(t, s, "opt"); n != 8 {
			t.Fatalf("count after OPTIMIZE = %d, want 8", n)
		}
	})
}
