package main

import (
	"errors"
	"os"
	"path/filepath"
	"slices"
	"testing"
)

// runTree builds, in a temporary directory, a repository-like working
// directory and chdirs into it: <root>/etc (a system directory two levels
// up), docs/ (the repository's), and runs/ holding a run directory wsgrpo
// made, one an older wsgrpo made (no marker, run data), a directory of
// something else and an empty one; setup/ is a directory a user made a
// run directory with run.yaml. It returns <root>.
func runTree(t *testing.T) string {
	t.Helper()
	root := t.TempDir()
	repo := filepath.Join(root, "src", "repo")
	files := map[string]string{
		"etc/hosts":                   "127.0.0.1 localhost\n",
		"src/repo/docs/README.md":     "docs\n",
		"src/repo/runs/foreign/a.jpg": "not a run\n",
		"src/repo/setup/run.yaml":     "runner:\n  max_deliver: 7\n",
	}
	for name, text := range files {
		p := filepath.Join(root, name)
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, []byte(text), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	for _, d := range []string{"src/repo/runs/legacy/nats", "src/repo/runs/empty"} {
		if err := os.MkdirAll(filepath.Join(root, d), 0o755); err != nil {
			t.Fatal(err)
		}
	}
	markedRunDir(t, filepath.Join(repo, "runs", "marked"))
	t.Chdir(repo)
	return root
}

// listTree returns every path under dir, for checking that nothing was
// written there.
func listTree(t *testing.T, dir string) []string {
	t.Helper()
	var out []string
	err := filepath.WalkDir(dir, func(p string, _ os.DirEntry, err error) error {
		out = append(out, p)
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
	return out
}

// TestRunFlagConfined: a --run that is not a run id is a path only when it
// names a run directory (wsgrpo's marker, or run.yaml); a run id lives in
// runs/<run> even where a directory of that name exists, and runs/<run>
// must not be a directory of something else; --dir puts a run anywhere.
func TestRunFlagConfined(t *testing.T) {
	root := runTree(t)
	etc := filepath.Join(root, "etc")
	for _, tc := range []struct {
		name    string
		args    []string
		run     string
		dir     string
		wantErr error
	}{
		{name: "relative path to a system directory", args: []string{"--run", "../../etc"}, wantErr: ErrNotRunDir},
		{name: "absolute path to a system directory", args: []string{"--run", etc}, wantErr: ErrNotRunDir},
		{name: "system directory, with --dir", args: []string{"--run", "../../etc", "--dir", "runs/x"}, wantErr: ErrNotRunDir},
		{name: "path to nothing", args: []string{"--run", "../../nowhere"}, wantErr: ErrConfig},
		{name: "run id naming a repository directory", args: []string{"--run", "docs"}, run: "docs", dir: filepath.Join("runs", "docs")},
		{name: "run directory wsgrpo made", args: []string{"--run", "runs/marked"}, run: "marked", dir: "runs/marked"},
		{name: "run directory with run.yaml", args: []string{"--run", "setup"}, run: "setup", dir: "setup"},
		{name: "run id of a run directory", args: []string{"--run", "marked"}, run: "marked", dir: filepath.Join("runs", "marked")},
		{name: "run directory of an older wsgrpo", args: []string{"--run", "legacy"}, run: "legacy", dir: filepath.Join("runs", "legacy")},
		{name: "empty run directory", args: []string{"--run", "empty"}, run: "empty", dir: filepath.Join("runs", "empty")},
		{name: "runs/<run> holds something else", args: []string{"--run", "foreign"}, wantErr: ErrNotRunDir},
		{name: "runs/<run> holds something else, with --dir", args: []string{"--run", "foreign", "--dir", "runs/foreign"}, run: "foreign", dir: "runs/foreign"},
		{name: "--dir anywhere", args: []string{"--run", "x", "--dir", "../../etc"}, run: "x", dir: "../../etc"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c, err := loadWith(t, tc.args)
			if tc.wantErr != nil {
				if !errors.Is(err, tc.wantErr) || !errors.Is(err, ErrConfig) {
					t.Fatalf("err = %v, want %v", err, tc.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if c.Run != tc.run || c.RunDir() != tc.dir {
				t.Fatalf("run %q in %q, want %q in %q", c.Run, c.RunDir(), tc.run, tc.dir)
			}
		})
	}

	t.Run("compare and into", func(t *testing.T) {
		cfg, err := loadWith(t, []string{"--run", "runs/marked"})
		if err != nil {
			t.Fatal(err)
		}
		if _, err := otherRun(cfg, "../../etc"); !errors.Is(err, ErrNotRunDir) {
			t.Errorf("--compare ../../etc: err = %v, want ErrNotRunDir", err)
		}
		if o, err := otherRun(cfg, "docs"); err != nil || o.RunDir() != filepath.Join("runs", "docs") {
			t.Errorf("--compare docs: %q, %v; want runs/docs", o.RunDir(), err)
		}
		if _, _, err := replayOptions(cfg, replayFlags{To: "sampler", Into: "foreign", Batch: 1}); !errors.Is(err, ErrNotRunDir) {
			t.Errorf("replay --into foreign: err = %v, want ErrNotRunDir", err)
		}
	})

	t.Run("commands write nowhere else", func(t *testing.T) {
		etcBefore, docsBefore := listTree(t, etc), listTree(t, "docs")
		if _, err := execute(t, newTrainCmd(), "--wiring", "--run", "../../etc", "--batches", "1", "--rows", "2", "--no-log"); !errors.Is(err, ErrNotRunDir) {
			t.Fatalf("train --run ../../etc: err = %v, want ErrNotRunDir", err)
		}
		if _, err := execute(t, newSQLCmd(), "--run", "../../etc", "SELECT 1"); !errors.Is(err, ErrNotRunDir) {
			t.Fatalf("sql --run ../../etc: err = %v, want ErrNotRunDir", err)
		}
		if _, err := execute(t, newTrainCmd(), "--wiring", "--run", "docs", "--batches", "1", "--rows", "2", "--no-log", "--timeout", "30s"); err != nil {
			t.Fatalf("train --run docs: %v", err)
		}
		if got := listTree(t, etc); !slices.Equal(got, etcBefore) {
			t.Errorf("etc changed: %v, was %v", got, etcBefore)
		}
		if got := listTree(t, "docs"); !slices.Equal(got, docsBefore) {
			t.Errorf("docs changed: %v, was %v", got, docsBefore)
		}
		if !isRunDir(filepath.Join("runs", "docs")) {
			t.Error("the run docs did not go to runs/docs, marked a run directory")
		}
		// The run directory wsgrpo made is now a --run path.
		if c, err := loadWith(t, []string{"--run", filepath.Join("runs", "docs")}); err != nil || c.Run != "docs" {
			t.Errorf("--run runs/docs: %+v, %v", c.Run, err)
		}
	})
}
