package main

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"

	"github.com/wsgrpo/wsgrpo/pipeline"
)

// ErrNotRunDir is returned (with ErrConfig) for a directory named as a
// run directory that wsgrpo did not make one: --run ../../etc, or a
// runs/<run> that holds something else.
var ErrNotRunDir = errors.New("not a wsgrpo run directory")

// Names in a run directory.
const (
	// runMarker marks a directory wsgrpo made a run directory: written when
	// a command first writes into it. A --run that is a path must name a
	// directory holding it (or runConfigFile).
	runMarker = ".wsgrpo-run"
	// runConfigFile is a run's own configuration, which `--run DIR` loads;
	// a directory a user set up with one is a run directory too.
	runConfigFile = "run.yaml"
	// runLockFile is the run directory's lock (one owning process at a
	// time); it holds its holder's pid and command line.
	runLockFile = ".lock"
)

// runDirEntries are names only wsgrpo puts into a run directory: a
// runs/<run> holding one was made by a wsgrpo from before runMarker, and
// is a run directory.
var runDirEntries = map[string]bool{
	"nats": true, "tracelog": true, "learner": true, "labeler": true, "policy": true,
	"report": true, trainStateFile: true, runLockFile: true, runMarker: true, runConfigFile: true,
}

// isRunDir reports whether dir is a run directory: a directory holding
// runMarker or runConfigFile.
func isRunDir(dir string) bool {
	for _, name := range []string{runMarker, runConfigFile} {
		if st, err := os.Stat(filepath.Join(dir, name)); err == nil && st.Mode().IsRegular() {
			return true
		}
	}
	return false
}

// resolveRun turns c.Run (given as flag), which may name a run directory,
// into the run id and the run directory:
//
//   - a run directory (isRunDir): its base name is the run id, and it is
//     the run directory unless c.Dir is set;
//   - a valid run id otherwise, even where a directory of that name
//     exists: the run directory is c.Dir, or runs/<run>, which must not be
//     a directory of something else;
//   - anything else is refused: a path is a run only when wsgrpo made it
//     one, and c.Dir (--dir) is the way to put a run anywhere.
func resolveRun(c *Config, flag string) error {
	ref := c.Run
	if ref != "" && isRunDir(ref) {
		abs, err := filepath.Abs(ref)
		if err != nil {
			return fmt.Errorf("%w: %s %q: %w", ErrConfig, flag, ref, err)
		}
		if c.Dir == "" {
			c.Dir = ref
		}
		c.Run = filepath.Base(abs)
		return nil
	}
	if err := pipeline.ValidateName(ref); err != nil {
		if st, serr := os.Stat(ref); serr == nil && st.IsDir() {
			return fmt.Errorf("%w: %w: %s %q is a directory that wsgrpo did not make a run directory (it has no %s or %s): give a run id (the run then lives in runs/<run>), or --dir %s --run ID to put a run there",
				ErrConfig, ErrNotRunDir, flag, ref, runMarker, runConfigFile, ref)
		}
		if strings.ContainsRune(ref, os.PathSeparator) || strings.HasPrefix(ref, ".") {
			return fmt.Errorf("%w: %s %q is a path, but no such run directory exists (give an existing run directory, or a run id)", ErrConfig, flag, ref)
		}
		return nil // Validate says what a run id may hold
	}
	if c.Dir == "" {
		return checkRunDirFree(c.RunDir())
	}
	return nil
}

// checkRunDirFree refuses a run's default directory (runs/<run>) when it
// exists and is not a run directory: a directory of something else, which
// the run would write into.
func checkRunDirFree(dir string) error {
	entries, err := os.ReadDir(dir)
	switch {
	case errors.Is(err, fs.ErrNotExist):
		return nil
	case err != nil:
		return fmt.Errorf("%w: %w: run directory %s: %w", ErrConfig, ErrNotRunDir, dir, err)
	case len(entries) == 0 || isRunDir(dir):
		return nil
	}
	for _, e := range entries {
		if runDirEntries[e.Name()] {
			return nil
		}
	}
	return fmt.Errorf("%w: %w: %s exists and holds something else (no %s, no run data): move it away, give another --run, or --dir %s to make it this run's directory anyway",
		ErrConfig, ErrNotRunDir, dir, runMarker, dir)
}

// markRunDir creates dir when missing and marks it as a run directory
// (runMarker), unless it is marked already.
func markRunDir(dir, run string) error {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return fmt.Errorf("run directory: %w", err)
	}
	f, err := os.OpenFile(filepath.Join(dir, runMarker), os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o644)
	if errors.Is(err, fs.ErrExist) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("mark run directory %s: %w", dir, err)
	}
	_, err = fmt.Fprintf(f, "wsgrpo run directory of run %s: `wsgrpo ... --run %s` accepts it.\n", run, dir)
	return errors.Join(err, f.Close())
}

// runDirUsed reports whether dir exists as more than a fresh run
// directory: a run directory holding more than its marker and lock file
// (which a command that failed early leaves), or any other directory.
func runDirUsed(dir string) bool {
	entries, err := os.ReadDir(dir)
	if err != nil {
		return false
	}
	if !isRunDir(dir) {
		return true
	}
	for _, e := range entries {
		if e.Name() != runMarker && e.Name() != runLockFile {
			return true
		}
	}
	return false
}

// clearRunDir removes everything in dir but the marker and the lock file
// (which the caller holds): --force starting a run over.
func clearRunDir(dir string) error {
	entries, err := os.ReadDir(dir)
	if err != nil {
		return err
	}
	for _, e := range entries {
		if e.Name() == runMarker || e.Name() == runLockFile {
			continue
		}
		if err := os.RemoveAll(filepath.Join(dir, e.Name())); err != nil {
			return err
		}
	}
	return nil
}
