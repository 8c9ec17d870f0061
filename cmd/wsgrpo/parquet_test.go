package main

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"

	"github.com/wsgrpo/wsgrpo/bench/logstore"
	"github.com/wsgrpo/wsgrpo/tracelog"
	"github.com/wsgrpo/wsgrpo/tracelog/chtest"
)

// logFlags returns the flags that select the log of cfg (a configuration
// from chtest.Backends): the server's DSN, or the run directory whose
// embedded log cfg.Dir is.
func logFlags(tb testing.TB, cfg tracelog.Config) []string {
	tb.Helper()
	if cfg.DSN != "" {
		return []string{"--clickhouse-dsn", cfg.DSN}
	}
	runDir := filepath.Dir(cfg.Dir)
	if tracelog.EmbeddedDir(runDir) != cfg.Dir {
		tb.Fatalf("embedded log %s is not the log of a run directory", cfg.Dir)
	}
	return []string{"--dir", runDir}
}

// readRun returns the de-duplicated rows of run in the log cfg selects and
// their count, closing the log again (one embedded log per process).
func readRun(tb testing.TB, cfg tracelog.Config, run string) ([]tracelog.Row, int64) {
	tb.Helper()
	s, err := tracelog.Open(testCtx(tb), cfg)
	if err != nil {
		tb.Fatal(err)
	}
	defer s.Close()
	rows, err := tracelog.ReadRun(testCtx(tb), s, run)
	if err != nil {
		tb.Fatal(err)
	}
	n, err := s.Count(testCtx(tb), run)
	if err != nil {
		tb.Fatal(err)
	}
	return rows, n
}

// dirNames lists the names in dir.
func dirNames(tb testing.TB, dir string) []string {
	tb.Helper()
	es, err := os.ReadDir(dir)
	if err != nil {
		tb.Fatal(err)
	}
	names := make([]string, len(es))
	for i, e := range es {
		names[i] = e.Name()
	}
	return names
}

func TestExportImportRoundTrip(t *testing.T) {
	rows := logstore.SyntheticRows("pq", 300, 6, 5)
	rows[7].Completion = "bytes \x00\xff;'"
	rows[8].StepRewards = nil
	for _, b := range chtest.Backends() {
		t.Run(b.Name, func(t *testing.T) {
			src, _ := b.Open(t)
			fillStore(t, src, rows)
			fillStore(t, src, rows[:50]) // a redelivery: export de-duplicates
			fillStore(t, src, logstore.SyntheticRows("other", 20, 2, 1))
			want, _ := readRun(t, src, "pq")

			outDir := t.TempDir()
			file := filepath.Join(outDir, "pq.parquet")
			stdout, err := execute(t, newExportCmd(), append([]string{"--run", "pq", "--out", file}, logFlags(t, src)...)...)
			if err != nil {
				t.Fatal(err)
			}
			st, err := os.Stat(file)
			if err != nil {
				t.Fatal(err)
			}
			if wantOut := fmt.Sprintf("exported %d rows of run \"pq\" to %s (%d bytes)\n", len(rows), file, st.Size()); stdout != wantOut {
				t.Fatalf("export printed %q, want %q", stdout, wantOut)
			}
			if names := dirNames(t, outDir); !reflect.DeepEqual(names, []string{"pq.parquet"}) {
				t.Fatalf("output directory holds %v, want only pq.parquet (no temporary file left)", names)
			}

			dst, _ := b.Open(t)
			for i := range 2 { // importing again must not duplicate
				stdout, err := execute(t, newImportCmd(), append([]string{file, "--run", "pq"}, logFlags(t, dst)...)...)
				if err != nil {
					t.Fatalf("import %d: %v", i+1, err)
				}
				if wantOut := fmt.Sprintf("imported %d rows of run \"pq\" from %s", len(rows), file); !strings.HasPrefix(stdout, wantOut) ||
					!strings.HasSuffix(stdout, fmt.Sprintf("the log holds %d trajectories of run \"pq\"\n", len(rows))) {
					t.Fatalf("import %d printed %q", i+1, stdout)
				}
			}
			got, n := readRun(t, dst, "pq")
			if n != int64(len(rows)) {
				t.Fatalf("count after importing twice = %d, want %d", n, len(rows))
			}
			if !reflect.DeepEqual(got, want) {
				t.Fatalf("imported rows differ from the exported run (got %d rows, want %d)", len(got), len(want))
			}
			if _, n := readRun(t, dst, "other"); n != 0 {
				t.Fatalf("the import brought %d rows of another run", n)
			}
		})
	}
}

// embeddedRun creates root/<run> with an embedded log holding rows and
// returns the run directory.
func embeddedRun(t *testing.T, root, run string, rows []tracelog.Row) string {
	t.Helper()
	dir := markedRunDir(t, filepath.Join(root, run))
	fillStore(t, tracelog.Config{Dir: tracelog.EmbeddedDir(dir), Lib: chtest.Library(t)}, rows)
	return dir
}

func TestImportIntoFileRun(t *testing.T) {
	root := t.TempDir()
	src := embeddedRun(t, root, "pq", logstore.SyntheticRows("pq", 64, 4, 2))
	file := filepath.Join(root, "pq.parquet")
	if _, err := execute(t, newExportCmd(), "--run", src, "--out", file); err != nil {
		t.Fatal(err)
	}
	// Without --run the rows go to the file's run, runs/pq.
	t.Chdir(t.TempDir())
	stdout, err := execute(t, newImportCmd(), file)
	if err != nil {
		t.Fatal(err)
	}
	logDir := tracelog.EmbeddedDir(filepath.Join("runs", "pq"))
	if !strings.Contains(stdout, "into "+logDir+";") {
		t.Fatalf("import printed %q, want the log %s", stdout, logDir)
	}
	if _, n := readRun(t, tracelog.Config{Dir: logDir, Lib: chtest.Library(t)}, "pq"); n != 64 {
		t.Fatalf("runs/pq holds %d trajectories, want 64", n)
	}
	// A run directory named after the file's run is accepted as --run.
	if _, err := execute(t, newImportCmd(), file, "--run", filepath.Join("runs", "pq")); err != nil {
		t.Fatal(err)
	}
}

func TestExportErrors(t *testing.T) {
	root := t.TempDir()
	src := embeddedRun(t, root, "pq", logstore.SyntheticRows("pq", 64, 4, 2))
	existing := filepath.Join(root, "existing.parquet")
	if err := os.WriteFile(existing, []byte("keep me"), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.Mkdir(filepath.Join(root, "dir.parquet"), 0o755); err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name string
		args []string
		want error
		says string
	}{
		{"no out", []string{"--run", src}, ErrConfig, "--out FILE.parquet is required"},
		{"not parquet", []string{"--run", src, "--out", filepath.Join(root, "pq.csv")}, ErrConfig, "must end in .parquet"},
		{"no such directory", []string{"--run", src, "--out", filepath.Join(root, "nope", "pq.parquet")}, ErrConfig, "does not exist"},
		{"out is a directory", []string{"--run", src, "--out", filepath.Join(root, "dir.parquet")}, ErrConfig, "is a directory"},
		{"existing file", []string{"--run", src, "--out", existing}, fs.ErrExist, "--force"},
		{"unknown run", []string{"--run", "ghost", "--dir", src, "--out", filepath.Join(root, "ghost.parquet")}, ErrEmptyRun, "runs in it: pq (64)"},
		{"run without a log", []string{"--run", "ghost", "--dir", filepath.Join(root, "ghost"), "--out", filepath.Join(root, "ghost.parquet")}, ErrNoLog, "has not logged trajectories"},
		{"bad run", []string{"--run", "a b", "--out", filepath.Join(root, "x.parquet")}, ErrConfig, "run"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			_, err := execute(t, newExportCmd(), tc.args...)
			if !errors.Is(err, tc.want) || !strings.Contains(err.Error(), tc.says) {
				t.Fatalf("err = %v, want %v saying %q", err, tc.want, tc.says)
			}
		})
	}
	t.Run("positional argument", func(t *testing.T) {
		if _, err := execute(t, newExportCmd(), "--run", src, "--out", filepath.Join(root, "x.parquet"), "extra"); err == nil {
			t.Fatal("export accepted a positional argument")
		}
	})
	t.Run("unknown flag", func(t *testing.T) {
		if _, err := execute(t, newExportCmd(), "--run", src, "--output", filepath.Join(root, "x.parquet")); err == nil || !strings.Contains(err.Error(), "unknown flag") {
			t.Fatalf("err = %v, want unknown flag", err)
		}
	})
	if b, err := os.ReadFile(existing); err != nil || string(b) != "keep me" {
		t.Fatalf("existing file changed without --force: %q, %v", b, err)
	}

	t.Run("force", func(t *testing.T) {
		if _, err := execute(t, newExportCmd(), "--run", src, "--out", existing, "--force"); err != nil {
			t.Fatal(err)
		}
		dst := t.TempDir()
		if _, err := execute(t, newImportCmd(), existing, "--dir", dst); err != nil {
			t.Fatalf("the overwritten file does not import: %v", err)
		}
	})

	t.Run("failure leaves no file", func(t *testing.T) {
		dir := t.TempDir()
		boom := errors.New("disk full")
		orig := exportParquet
		t.Cleanup(func() { exportParquet = orig })
		exportParquet = func(_ context.Context, _ tracelog.Store, _, path string) (int64, error) {
			if err := os.WriteFile(path, []byte("PAR1 half a file"), 0o644); err != nil {
				t.Fatal(err)
			}
			return 10, boom
		}
		_, err := execute(t, newExportCmd(), "--run", src, "--out", filepath.Join(dir, "pq.parquet"))
		if !errors.Is(err, boom) {
			t.Fatalf("err = %v, want the export's error", err)
		}
		if names := dirNames(t, dir); len(names) != 0 {
			t.Fatalf("a failed export left %v", names)
		}
	})
}

func TestPublishNeverReplaces(t *testing.T) {
	dir := t.TempDir()
	tmp, err := createTemp(filepath.Join(dir, "pq.parquet"))
	if err != nil {
		t.Fatal(err)
	}
	if !strings.HasPrefix(filepath.Base(tmp), ".pq.parquet.") || strings.HasSuffix(tmp, parquetExt) {
		t.Fatalf("temporary name %s could pass for an export", tmp)
	}
	// The file appeared while the export ran.
	path := filepath.Join(dir, "pq.parquet")
	if err := os.WriteFile(path, []byte("someone else's"), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := publish(tmp, path, false); !errors.Is(err, fs.ErrExist) {
		t.Fatalf("publish without force: err = %v, want fs.ErrExist", err)
	}
	if b, _ := os.ReadFile(path); string(b) != "someone else's" {
		t.Fatalf("publish without force replaced the file: %q", b)
	}
	if err := publish(tmp, path, true); err != nil {
		t.Fatal(err)
	}
	if b, _ := os.ReadFile(path); len(b) != 0 {
		t.Fatalf("publish with force kept the old file: %q", b)
	}
	if names := dirNames(t, dir); !reflect.DeepEqual(names, []string{"pq.parquet"}) {
		t.Fatalf("directory holds %v, want only pq.parquet", names)
	}
}

func TestImportErrors(t *testing.T) {
	root := t.TempDir()
	src := embeddedRun(t, root, "pq", logstore.SyntheticRows("pq", 64, 4, 2))
	file := filepath.Join(root, "pq.parquet")
	if _, err := execute(t, newExportCmd(), "--run", src, "--out", file); err != nil {
		t.Fatal(err)
	}
	whole, err := os.ReadFile(file)
	if err != nil {
		t.Fatal(err)
	}
	write := func(name string, b []byte) string {
		t.Helper()
		p := filepath.Join(root, name)
		if err := os.WriteFile(p, b, 0o644); err != nil {
			t.Fatal(err)
		}
		return p
	}
	junk := write("junk.parquet", []byte("PAR1 not really PAR1"))
	truncated := write("truncated.parquet", whole[:len(whole)/2])
	// An export of a run without rows: a valid file with none.
	empty := filepath.Join(root, "empty.parquet")
	escaped := filepath.Join(root, "escaped.parquet")
	func() {
		s, err := tracelog.Open(testCtx(t), tracelog.Config{Dir: tracelog.EmbeddedDir(src), Lib: chtest.Library(t)})
		if err != nil {
			t.Fatal(err)
		}
		defer s.Close()
		if _, err := tracelog.ExportParquet(testCtx(t), s, "nobody", empty); err != nil {
			t.Fatal(err)
		}
		// A file whose run id would name a directory outside runs/.
		if err := s.Insert(testCtx(t), logstore.SyntheticRows("../../escaped", 8, 4, 3)); err != nil {
			t.Fatal(err)
		}
		if _, err := tracelog.ExportParquet(testCtx(t), s, "../../escaped", escaped); err != nil {
			t.Fatal(err)
		}
	}()
	other := markedRunDir(t, filepath.Join(root, "other"))
	plain := filepath.Join(root, "plain")
	if err := os.Mkdir(plain, 0o755); err != nil {
		t.Fatal(err)
	}

	tests := []struct {
		name string
		args []string
		want error
		says string
	}{
		{"no file", nil, ErrConfig, "one FILE.parquet, got 0"},
		{"two files", []string{file, file}, ErrConfig, "one FILE.parquet, got 2"},
		{"missing file", []string{filepath.Join(root, "nope.parquet")}, fs.ErrNotExist, "nope.parquet"},
		{"directory", []string{root}, ErrConfig, "is a directory"},
		{"junk", []string{junk}, tracelog.ErrParquet, "written by wsgrpo export"},
		{"truncated", []string{truncated}, tracelog.ErrParquet, "truncated.parquet"},
		{"no rows", []string{empty}, ErrEmptyRun, "nothing to import"},
		{"other run id", []string{file, "--run", "ws-grpo"}, ErrRunMismatch, `its rows are run "pq", --run says "ws-grpo"`},
		{"other run directory", []string{file, "--run", other}, ErrRunMismatch, "omit --run"},
		{"not a run directory", []string{file, "--run", plain}, ErrNotRunDir, "did not make a run directory"},
		{"bad run", []string{file, "--run", "a b"}, ErrConfig, "run"},
		{"run id not a name", []string{escaped}, ErrConfig, `the file's run id "../../escaped"`},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			dst := filepath.Join(t.TempDir(), "dst")
			_, err := execute(t, newImportCmd(), append(tc.args, "--dir", dst)...)
			if !errors.Is(err, tc.want) || !strings.Contains(err.Error(), tc.says) {
				t.Fatalf("err = %v, want %v saying %q", err, tc.want, tc.says)
			}
			if _, err := os.Stat(dst); !errors.Is(err, fs.ErrNotExist) {
				t.Fatalf("a refused import created %s (%v)", dst, err)
			}
		})
	}
}

func TestParquetCommandsRegistered(t *testing.T) {
	for _, name := range []string{"export", "import"} {
		c, _, err := newRootCmd().Find([]string{name})
		if err != nil || c.Name() != name {
			t.Fatalf("wsgrpo %s: %v, found %v", name, err, c)
		}
	}
}
