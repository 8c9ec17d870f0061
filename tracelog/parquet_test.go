package tracelog_test

import (
	"errors"
	"os"
	"path/filepath"
	"reflect"
	"testing"

	"github.com/wsgrpo/wsgrpo/bench/logstore"
	"github.com/wsgrpo/wsgrpo/tracelog"
	"github.com/wsgrpo/wsgrpo/tracelog/chtest"
)

func TestParquetRoundTrip(t *testing.T) {
	for _, b := range chtest.Backends() {
		t.Run(b.Name, func(t *testing.T) {
			path := filepath.Join(t.TempDir(), "run.parquet")
			rows := logstore.SyntheticRows("pq", 4096+300, 6, 5) // more than one page
			rows[7].Completion = "bytes \x00\xff;'"
			rows[8].StepRewards = nil
			var want []tracelog.Row
			func() {
				cfg, _ := b.Open(t)
				s := open(t, cfg)
				defer s.Close()
				if err := s.Migrate(ctx(t)); err != nil {
					t.Fatal(err)
				}
				if err := s.Insert(ctx(t), rows); err != nil {
					t.Fatal(err)
				}
				if err := s.Insert(ctx(t), rows[:100]); err != nil { // a redelivery
					t.Fatal(err)
				}
				if err := s.Insert(ctx(t), logstore.SyntheticRows("other", 10, 2, 1)); err != nil {
					t.Fatal(err)
				}
				n, err := tracelog.ExportParquet(ctx(t), s, "pq", path)
				if err != nil || n != int64(len(rows)) {
					t.Fatalf("export: %d rows, %v", n, err)
				}
				if want, err = tracelog.ReadRun(ctx(t), s, "pq"); err != nil {
					t.Fatal(err)
				}
				if len(want) == 0 || want[0].GroupSize != 8 || want[0].Labeler == "" {
					t.Fatal("rows to export lack group_size or labeler: the round trip would not test them")
				}
			}()
			// A fresh store on another directory or database.
			cfg, _ := b.Open(t)
			s := open(t, cfg)
			if err := s.Migrate(ctx(t)); err != nil {
				t.Fatal(err)
			}
			for range 2 { // importing twice must not duplicate
				n, err := tracelog.ImportParquet(ctx(t), s, path)
				if err != nil || n != int64(len(rows)) {
					t.Fatalf("import: %d rows, %v", n, err)
				}
			}
			if c := count(t, s, "pq"); c != int64(len(rows)) {
				t.Fatalf("count after import = %d, want %d", c, len(rows))
			}
			got, err := tracelog.ReadRun(ctx(t), s, "pq")
			if err != nil {
				t.Fatal(err)
			}
			if !reflect.DeepEqual(got, want) {
				t.Fatalf("imported rows differ from exported (got %d, want %d)", len(got), len(want))
			}
		})
	}
}

func TestImportParquetRefusesOtherFiles(t *testing.T) {
	dir := t.TempDir()
	junk := filepath.Join(dir, "junk.parquet")
	if err := os.WriteFile(junk, []byte("PAR1 not really PAR1"), 0o644); err != nil {
		t.Fatal(err)
	}
	cfg, _ := chtest.Backends()[1].Open(t)
	s := open(t, cfg)
	if _, err := tracelog.ImportParquet(ctx(t), s, junk); !errors.Is(err, tracelog.ErrParquet) {
		t.Fatalf("junk: err = %v", err)
	}
	if _, err := tracelog.ImportParquet(ctx(t), s, filepath.Join(dir, "missing.parquet")); !errors.Is(err, os.ErrNotExist) {
		t.Fatalf("missing: err = %v", err)
	}
}
