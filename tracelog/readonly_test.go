package tracelog_test

import (
	"errors"
	"strings"
	"testing"

	"github.com/wsgrpo/wsgrpo/bench/reporting"
	"github.com/wsgrpo/wsgrpo/tracelog"
	"github.com/wsgrpo/wsgrpo/tracelog/chtest"
)

// TestReadOnly opens a filled log with Config.ReadOnly on every backend:
// reads work; statements that write, drop or alter, table functions,
// setting changes and Insert fail with the engine's readonly error; the
// rows are all still there afterwards.
func TestReadOnly(t *testing.T) {
	rows := reporting.SyntheticRows("ro", 0, 2, 4, 8, 1)
	for _, b := range chtest.Backends() {
		t.Run(b.Name, func(t *testing.T) {
			cfg, _ := b.Open(t)
			w := openMigrated(t, cfg)
			if err := w.Insert(ctx(t), rows); err != nil {
				t.Fatal(err)
			}
			// One embedded session per process: close the writer first.
			if err := w.Close(); err != nil {
				t.Fatal(err)
			}
			ro := cfg
			ro.ReadOnly = true
			s := open(t, ro)
			if n := count(t, s, "ro"); n != int64(len(rows)) {
				t.Fatalf("read-only count %d, want %d", n, len(rows))
			}
			for _, q := range []string{
				"INSERT INTO trajectories (run_id, trajectory_id) VALUES ('ro', 'x')",
				"DROP TABLE trajectories",
				"ALTER TABLE trajectories DELETE WHERE 1",
				"CREATE TABLE t2 (a String) ENGINE = Memory",
				"SELECT * FROM file('x.tsv', 'TSV', 'a String')",
				"SELECT 1 SETTINGS readonly = 0",
			} {
				_, err := s.Query(ctx(t), q)
				if !errors.Is(err, tracelog.ErrQuery) || !strings.Contains(strings.ToLower(err.Error()), "readonly") {
					t.Errorf("%s: err = %v, want the engine's readonly error", q, err)
				}
			}
			if err := s.Insert(ctx(t), rows[:1]); err == nil {
				t.Error("Insert on a read-only store succeeded")
			}
			if n := count(t, s, "ro"); n != int64(len(rows)) {
				t.Fatalf("after the refused writes: count %d, want %d", n, len(rows))
			}
		})
	}
}

// TestReadOnlyEmbeddedBesideWriter: each embedded connection has its own
// session, so a read-only store opened while this process writes to the
// same log stays read-only, and the writer keeps writing.
func TestReadOnlyEmbeddedBesideWriter(t *testing.T) {
	for _, b := range chtest.Backends() {
		if b.Name != tracelog.BackendEmbedded {
			continue
		}
		cfg, _ := b.Open(t)
		w := openMigrated(t, cfg)
		ro := cfg
		ro.ReadOnly = true
		s := open(t, ro)
		rows := reporting.SyntheticRows("ro", 0, 2, 4, 8, 1)
		if err := w.Insert(ctx(t), rows); err != nil {
			t.Fatalf("the writer beside a read-only store: %v", err)
		}
		if err := s.Insert(ctx(t), rows); err == nil {
			t.Fatal("the read-only store beside a writer inserted")
		}
		if n := count(t, s, "ro"); n != int64(len(rows)) {
			t.Fatalf("read-only count %d, want %d", n, len(rows))
		}
	}
}
