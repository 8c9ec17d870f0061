package replay_test

import (
	"errors"
	"os"
	"path/filepath"
	"testing"

	"github.com/wsgrpo/wsgrpo/bench/logstore"
	"github.com/wsgrpo/wsgrpo/replay"
	"github.com/wsgrpo/wsgrpo/tracelog"
	"github.com/wsgrpo/wsgrpo/tracelog/chtest"
)

// writeRunLog creates runDir/tracelog holding n rows of run, exports them
// to runDir/export.parquet, and closes the log.
func writeRunLog(t *testing.T, lib, runDir, run string, n int) string {
	t.Helper()
	s, err := tracelog.Open(testCtx(t), tracelog.Config{Dir: tracelog.EmbeddedDir(runDir), Lib: lib})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	if err := s.Migrate(testCtx(t)); err != nil {
		t.Fatal(err)
	}
	insertRows(t, s, logstore.SyntheticRows(run, n, 4, 7))
	pq := filepath.Join(runDir, "export.parquet")
	if _, err := tracelog.ExportParquet(testCtx(t), s, run, pq); err != nil {
		t.Fatal(err)
	}
	return pq
}

func TestOpenSource(t *testing.T) {
	lib := chtest.Library(t)
	runDir := filepath.Join(t.TempDir(), "r1")
	pq := writeRunLog(t, lib, runDir, "r1", 40)
	scratch := t.TempDir()
	cfg := replay.SourceConfig{RunDir: runDir, Lib: lib, TempDir: scratch}
	t.Run("opens", func(t *testing.T) {
		tests := []struct{ name, from string }{
			{"default: the run's embedded log", ""},
			{"run directory", runDir},
			{"embedded log directory", tracelog.EmbeddedDir(runDir)},
			{"parquet export", pq},
		}
		for _, tc := range tests {
			t.Run(tc.name, func(t *testing.T) {
				src, err := replay.OpenSource(testCtx(t), tc.from, cfg)
				if err != nil {
					t.Fatal(err)
				}
				n, err := src.Store.Count(testCtx(t), "r1")
				if cerr := src.Close(); cerr != nil {
					t.Fatal(cerr)
				}
				if err != nil || n != 40 {
					t.Fatalf("count = %d, %v; want 40", n, err)
				}
				if left, _ := os.ReadDir(scratch); len(left) != 0 {
					t.Fatalf("scratch data left behind: %v", left)
				}
			})
		}
	})
	notParquet := filepath.Join(t.TempDir(), "bad.parquet")
	if err := os.WriteFile(notParquet, []byte("not parquet at all"), 0o644); err != nil {
		t.Fatal(err)
	}
	plainFile := filepath.Join(t.TempDir(), "rows.csv")
	if err := os.WriteFile(plainFile, []byte("a,b\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	t.Run("missing", func(t *testing.T) {
		tests := []struct {
			name, from string
			cfg        replay.SourceConfig
		}{
			{"run directory without a log", "", replay.SourceConfig{RunDir: t.TempDir(), Lib: lib}},
			{"missing directory", filepath.Join(t.TempDir(), "nope"), cfg},
			{"empty directory", t.TempDir(), cfg},
			{"missing parquet file", filepath.Join(t.TempDir(), "nope.parquet"), cfg},
			{"not a parquet file", notParquet, cfg},
			{"not a log at all", plainFile, cfg},
		}
		for _, tc := range tests {
			t.Run(tc.name, func(t *testing.T) {
				src, err := replay.OpenSource(testCtx(t), tc.from, tc.cfg)
				if src != nil {
					_ = src.Close()
				}
				if !errors.Is(err, replay.ErrSource) {
					t.Fatalf("err = %v, want ErrSource", err)
				}
				if left, _ := os.ReadDir(scratch); len(left) != 0 {
					t.Fatalf("scratch data left behind: %v", left)
				}
			})
		}
	})
	t.Run("server down", func(t *testing.T) {
		_, err := replay.OpenSource(testCtx(t), "clickhouse://127.0.0.1:1/default?dial_timeout=200ms", cfg)
		if !errors.Is(err, tracelog.ErrUnavailable) {
			t.Fatalf("err = %v, want ErrUnavailable", err)
		}
	})
}
