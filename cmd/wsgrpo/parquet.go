package main

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"math/rand/v2"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"

	"github.com/spf13/cobra"

	"github.com/wsgrpo/wsgrpo/pipeline"
	"github.com/wsgrpo/wsgrpo/tracelog"
	"github.com/wsgrpo/wsgrpo/tracelog/report"
)

// Errors of `wsgrpo export` and `wsgrpo import`, tested with errors.Is.
var (
	// ErrEmptyRun is returned by export for a run without trajectories in
	// the selected log, and by import for a file without rows.
	ErrEmptyRun = errors.New("no trajectories")
	// ErrRunMismatch is returned by import when --run names another run
	// than the one the file's rows belong to.
	ErrRunMismatch = errors.New("the file holds another run")
	// ErrParquetRuns is returned by import for a file holding rows of more
	// than one run.
	ErrParquetRuns = errors.New("not a one-run export")
)

// exportParquet writes the file; tests replace it to make an export fail
// half-way.
var exportParquet = tracelog.ExportParquet

// parquetExt is the file name ending `wsgrpo replay --from` recognizes a
// Parquet export by.
const parquetExt = ".parquet"

func newExportCmd() *cobra.Command {
	var (
		outPath string
		force   bool
	)
	cmd := &cobra.Command{
		Use:   "export --run ID|DIR --out FILE.parquet [--force]",
		Short: "Write a run's trajectory log to a Parquet file",
		Long: `Write every trajectory of a run to one zstd-compressed Parquet file, to move
the run's log to another machine (wsgrpo import) or to read it with other
tools. The rows come de-duplicated, one per trajectory, ordered by
trajectory id, with every column of the trajectories table.

The log is the ClickHouse server when clickhouse_dsn is set
(--clickhouse-dsn, config, WSGRPO_CLICKHOUSE_DSN), else the embedded chDB log
in the run directory (--run takes a run id or a run directory). The log is
migrated first, so an older log gains the columns the file carries.

The file is written next to --out under a temporary name and renamed when
complete: a failed export leaves no partial file. An existing --out is kept
unless --force is given. The file name must end in .parquet (wsgrpo replay
--from recognizes Parquet exports by it).`,
		Example: `  wsgrpo export --run grpo-1 --out grpo-1.parquet
  wsgrpo export --run runs/grpo-1 --out /mnt/share/grpo-1.parquet --force`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if err := checkExportOut(outPath, force); err != nil {
				return err
			}
			cfg, log, err := setup(cmd)
			if err != nil {
				return err
			}
			return runExport(cmd, cfg, log, outPath, force)
		},
	}
	addConfigFlags(cmd.Flags())
	cmd.Flags().StringVar(&outPath, "out", "", "Parquet file to write, FILE.parquet (required)")
	cmd.Flags().BoolVar(&force, "force", false, "overwrite --out if it exists")
	return cmd
}

// checkExportOut checks --out before any log is opened.
func checkExportOut(path string, force bool) error {
	if path == "" {
		return fmt.Errorf("%w: --out FILE.parquet is required", ErrConfig)
	}
	if !strings.HasSuffix(strings.ToLower(path), parquetExt) {
		return fmt.Errorf("%w: --out %q must end in %s (wsgrpo replay --from recognizes Parquet exports by it)", ErrConfig, path, parquetExt)
	}
	if st, err := os.Stat(filepath.Dir(path)); err != nil || !st.IsDir() {
		return fmt.Errorf("%w: --out %s: directory %s does not exist (create it first)", ErrConfig, path, filepath.Dir(path))
	}
	st, err := os.Stat(path)
	switch {
	case err == nil && st.IsDir():
		return fmt.Errorf("%w: --out %s is a directory; give a file name ending in %s", ErrConfig, path, parquetExt)
	case err == nil && !force:
		return fmt.Errorf("--out %s: %w (pass --force to overwrite it, or choose another file)", path, fs.ErrExist)
	}
	return nil
}

func runExport(cmd *cobra.Command, cfg Config, log *slog.Logger, outPath string, force bool) error {
	ctx := cmd.Context()
	s, err := openLog(ctx, cfg, log)
	if err != nil {
		return err
	}
	defer s.Close()
	// As replay does: migrating an older log adds the columns the file
	// carries, and is a no-op on a current one.
	if err := s.Migrate(ctx); err != nil {
		return logError(cfg, err)
	}
	n, err := s.Count(ctx, cfg.Run)
	if err != nil {
		return logError(cfg, err)
	}
	if n == 0 {
		return fmt.Errorf("export: run %q: %w in this log; runs in it: %s (give --run the run id or its directory)", cfg.Run, ErrEmptyRun, listRuns(ctx, s))
	}
	log.Info("exporting trajectories", "run", cfg.Run, "trajectories", n, "out", outPath)
	tmp, err := createTemp(outPath)
	if err != nil {
		return fmt.Errorf("export: %w", err)
	}
	done := false
	defer func() {
		if !done {
			_ = os.Remove(tmp)
		}
	}()
	rows, err := exportParquet(ctx, s, cfg.Run, tmp)
	if err != nil {
		return fmt.Errorf("export run %q: %w", cfg.Run, logError(cfg, err))
	}
	st, err := os.Stat(tmp)
	if err != nil {
		return fmt.Errorf("export: %w", err)
	}
	if err := publish(tmp, outPath, force); err != nil {
		return err
	}
	done = true
	out(cmd, "exported %d rows of run %q to %s (%d bytes)\n", rows, cfg.Run, outPath, st.Size())
	return nil
}

// createTemp creates an empty file for path's contents in path's directory,
// with a name wsgrpo replay will not take for an export, and returns its
// name. The file gets the usual permissions (0666 less the umask), unlike
// os.CreateTemp's 0600: the export is meant to be copied and shared.
func createTemp(path string) (string, error) {
	dir, base := filepath.Split(path)
	for range 100 {
		name := filepath.Join(dir, "."+base+"."+strconv.FormatUint(rand.Uint64(), 36)+".tmp")
		f, err := os.OpenFile(name, os.O_RDWR|os.O_CREATE|os.O_EXCL, 0o666)
		if errors.Is(err, fs.ErrExist) {
			continue
		}
		if err != nil {
			return "", err
		}
		return name, f.Close()
	}
	return "", fmt.Errorf("no free temporary name next to %s", path)
}

// publish moves the finished tmp to path. Without force it never replaces
// a file: a hard link fails if path appeared meanwhile; where the file
// system has no hard links it checks, then renames.
func publish(tmp, path string, force bool) error {
	if force {
		if err := os.Rename(tmp, path); err != nil {
			return fmt.Errorf("export: %w", err)
		}
		return nil
	}
	err := os.Link(tmp, path)
	switch {
	case err == nil:
		return os.Remove(tmp)
	case errors.Is(err, fs.ErrExist):
		return fmt.Errorf("--out %s: %w (it appeared during the export; pass --force to overwrite it)", path, fs.ErrExist)
	}
	if _, err := os.Lstat(path); err == nil {
		return fmt.Errorf("--out %s: %w (it appeared during the export; pass --force to overwrite it)", path, fs.ErrExist)
	}
	if err := os.Rename(tmp, path); err != nil {
		return fmt.Errorf("export: %w", err)
	}
	return nil
}

// listRuns names the runs of a log with their trajectory counts, for
// messages.
func listRuns(ctx context.Context, s tracelog.Store) string {
	runs, err := report.Runs(ctx, s)
	if err != nil {
		return "(cannot list them: " + err.Error() + ")"
	}
	if len(runs) == 0 {
		return "none"
	}
	names := make([]string, len(runs))
	for i, ri := range runs {
		names[i] = fmt.Sprintf("%s (%d)", ri.Run, ri.Trajectories)
	}
	return strings.Join(names, ", ")
}

func newImportCmd() *cobra.Command {
	cmd := &cobra.Command{
		Use:   "import FILE.parquet [--run ID|DIR]",
		Short: "Load a Parquet export into the trajectory log",
		Long: `Insert the rows of a Parquet file written by wsgrpo export into the
trajectory log: the ClickHouse server when clickhouse_dsn is set
(--clickhouse-dsn, config, WSGRPO_CLICKHOUSE_DSN), else the embedded chDB log
in the run directory, created if missing. The log is migrated first.

Rows keep their run id: without --run the run is the file's, and its
directory runs/<run> (or --dir). A --run (an id, or an existing run
directory whose name is the id) that names another run than the file's is
refused; to import into a directory named otherwise, give --dir DIR.

The whole file is read and checked (one run, every row readable) before
anything is inserted, so a corrupt file changes nothing. Importing the same
file again adds no trajectories: rows are keyed by run and trajectory id and
the log keeps one of each (counts read the de-duplicated view).`,
		Example: `  wsgrpo import grpo-1.parquet
  wsgrpo import grpo-1.parquet --dir /data/runs/grpo-1
  wsgrpo import grpo-1.parquet --clickhouse-dsn clickhouse://localhost:9000/default`,
		Args: func(cmd *cobra.Command, args []string) error {
			if len(args) != 1 {
				return fmt.Errorf("%w: import takes one FILE.parquet, got %d arguments", ErrConfig, len(args))
			}
			return nil
		},
		RunE: func(cmd *cobra.Command, args []string) error {
			cfg, log, err := setup(cmd)
			if err != nil {
				return err
			}
			return runImport(cmd, cfg, log, args[0])
		},
	}
	addConfigFlags(cmd.Flags())
	return cmd
}

// runScan is the Store a first pass of tracelog.ImportParquet reads a file
// into: it only counts rows by run. ImportParquet calls nothing but Insert.
type runScan struct {
	tracelog.Store // nil: never called
	runs           map[string]int64
}

// Insert counts rows by run and stores nothing.
func (r *runScan) Insert(_ context.Context, rows []tracelog.Row) error {
	for i := range rows {
		r.runs[rows[i].RunID]++
	}
	return nil
}

// fileRun reads the whole file and returns its one run and row count.
func fileRun(ctx context.Context, path string) (string, int64, error) {
	st, err := os.Stat(path)
	if err != nil {
		return "", 0, fmt.Errorf("import: %w (give a file written by wsgrpo export)", err)
	}
	if st.IsDir() {
		return "", 0, fmt.Errorf("%w: import: %s is a directory; give a file written by wsgrpo export", ErrConfig, path)
	}
	scan := &runScan{runs: map[string]int64{}}
	n, err := tracelog.ImportParquet(ctx, scan, path)
	if err != nil {
		return "", 0, fmt.Errorf("import %s: %w (give a file written by wsgrpo export)", path, err)
	}
	switch len(scan.runs) {
	case 0:
		return "", 0, fmt.Errorf("import %s: %w in the file, nothing to import", path, ErrEmptyRun)
	case 1:
		for run := range scan.runs {
			// The run id comes from the file and names a directory:
			// refuse ids the rest of wsgrpo would (e.g. "../x").
			if err := pipeline.ValidateName(run); err != nil {
				return "", 0, fmt.Errorf("%w: import %s: the file's run id %q: %w", ErrConfig, path, run, err)
			}
			return run, n, nil
		}
	}
	runs := make([]string, 0, len(scan.runs))
	for run, c := range scan.runs {
		runs = append(runs, fmt.Sprintf("%q (%d)", run, c))
	}
	slices.Sort(runs)
	return "", 0, fmt.Errorf("import %s: %w: rows of %d runs, %s; wsgrpo export writes one run per file", path, ErrParquetRuns, len(runs), strings.Join(runs, ", "))
}

// runExplicit reports whether the user chose the run (flag, config file or
// environment) rather than leaving the default.
func runExplicit(cmd *cobra.Command, cfg Config) bool {
	return cmd.Flags().Changed("run") || cfg.Run != DefaultConfig().Run
}

func runImport(cmd *cobra.Command, cfg Config, log *slog.Logger, path string) error {
	ctx := cmd.Context()
	run, rows, err := fileRun(ctx, path)
	if err != nil {
		return err
	}
	if run != cfg.Run {
		if runExplicit(cmd, cfg) {
			return fmt.Errorf("import %s: %w: its rows are run %q, --run says %q. Rows keep their run id (import does not rename runs): omit --run to import into run %q (directory %s, or --dir DIR)",
				path, ErrRunMismatch, run, cfg.Run, run, filepath.Join("runs", run))
		}
		cfg.Run = run
		if cfg.Dir == "" {
			// runs/<the file's run> must not be a directory of something else.
			if err := checkRunDirFree(cfg.RunDir()); err != nil {
				return err
			}
		}
	}
	tc := cfg.logConfig(log)
	dest := tc.Dir
	if tc.DSN != "" {
		dest = redactDSN(tc.DSN)
	}
	s, err := openLogForWrite(ctx, cfg, log)
	if err != nil {
		return err
	}
	defer s.Close()
	log.Info("importing trajectories", "file", path, "run", run, "rows", rows, "log", dest)
	n, err := tracelog.ImportParquet(ctx, s, path)
	if err != nil {
		return fmt.Errorf("import %s into %s: %w (after %d rows; importing the file again is safe)", path, dest, logError(cfg, err), n)
	}
	total, err := s.Count(ctx, run)
	if err != nil {
		return logError(cfg, err)
	}
	out(cmd, "imported %d rows of run %q from %s into %s; the log holds %d trajectories of run %q\n", n, run, path, dest, total, run)
	return nil
}
