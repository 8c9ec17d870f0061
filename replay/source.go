package replay

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"strings"

	"github.com/wsgrpo/wsgrpo/tracelog"
)

// SourceConfig says where the trajectories of a replay come from when no
// --from is given, and how to open the embedded backend.
type SourceConfig struct {
	// DSN is the run's ClickHouse server, if it logs to one.
	DSN string
	// RunDir is the run directory, whose embedded log is the default source
	// when DSN is empty.
	RunDir string
	// Lib is the path of libchdb.so ("" : tracelog.LibraryPath()).
	Lib string
	// TempDir holds the scratch log a Parquet file is loaded into ("" : the
	// system temp directory).
	TempDir string
	// Logger receives store events (nil: discarded).
	Logger *slog.Logger
}

// Source is an open trajectory log to replay from.
type Source struct {
	// Store is the open, migrated log.
	Store tracelog.Store
	// Name says where it is, for messages.
	Name string

	cleanup func()
}

// Close closes the store and removes any scratch data.
func (s *Source) Close() error {
	err := s.Store.Close()
	if s.cleanup != nil {
		s.cleanup()
	}
	return err
}

// IsDSN reports whether from names a ClickHouse server.
func IsDSN(from string) bool {
	return strings.HasPrefix(from, "clickhouse://") || strings.HasPrefix(from, "tcp://")
}

// OpenSource opens the trajectory log named by from: a ClickHouse DSN
// (clickhouse://...), a Parquet file written by tracelog.ExportParquet
// (*.parquet, loaded into a scratch embedded log that Close removes), a run
// directory (its embedded log) or an embedded log directory. An empty from
// is the run's own log: cfg.DSN, else the embedded log in cfg.RunDir. A
// path that does not exist, or a directory that holds no log, is ErrSource.
func OpenSource(ctx context.Context, from string, cfg SourceConfig) (*Source, error) {
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	switch {
	case from == "" && cfg.DSN != "":
		return openStore(ctx, tracelog.Config{DSN: cfg.DSN, Logger: cfg.Logger}, redactDSN(cfg.DSN), nil)
	case from == "":
		dir := tracelog.EmbeddedDir(cfg.RunDir)
		if !isDir(dir) {
			return nil, fmt.Errorf("%w: run directory %s holds no embedded trajectory log (%s missing); give --from DSN|DIR|FILE.parquet",
				ErrSource, cfg.RunDir, dir)
		}
		return openEmbedded(ctx, dir, cfg, nil)
	case IsDSN(from):
		return openStore(ctx, tracelog.Config{DSN: from, Logger: cfg.Logger}, redactDSN(from), nil)
	case strings.HasSuffix(strings.ToLower(from), ".parquet"):
		return openParquet(ctx, from, cfg)
	}
	st, err := os.Stat(from)
	if err != nil {
		return nil, fmt.Errorf("%w: %s: %w", ErrSource, from, err)
	}
	if !st.IsDir() {
		return nil, fmt.Errorf("%w: %s is neither a directory, a .parquet file nor a clickhouse:// DSN", ErrSource, from)
	}
	if dir := tracelog.EmbeddedDir(from); isDir(dir) {
		return openEmbedded(ctx, dir, cfg, nil)
	}
	// An embedded log directory itself: chDB keeps its catalog in metadata/.
	if isDir(filepath.Join(from, "metadata")) {
		return openEmbedded(ctx, from, cfg, nil)
	}
	return nil, fmt.Errorf("%w: %s is neither a run directory with a trajectory log nor an embedded log directory", ErrSource, from)
}

func openEmbedded(ctx context.Context, dir string, cfg SourceConfig, cleanup func()) (*Source, error) {
	return openStore(ctx, tracelog.Config{Dir: dir, Lib: cfg.Lib, Logger: cfg.Logger}, dir, cleanup)
}

// openStore opens and migrates a store: migrating an older log adds the
// columns replay reads, and is a no-op on a current one.
func openStore(ctx context.Context, c tracelog.Config, name string, cleanup func()) (*Source, error) {
	s, err := tracelog.Open(ctx, c)
	if err != nil {
		if cleanup != nil {
			cleanup()
		}
		return nil, fmt.Errorf("open trajectory log %s: %w", name, err)
	}
	if err := s.Migrate(ctx); err != nil {
		_ = s.Close()
		if cleanup != nil {
			cleanup()
		}
		return nil, fmt.Errorf("trajectory log %s: %w", name, err)
	}
	return &Source{Store: s, Name: name, cleanup: cleanup}, nil
}

// openParquet loads a Parquet export into a scratch embedded log.
func openParquet(ctx context.Context, path string, cfg SourceConfig) (*Source, error) {
	st, err := os.Stat(path)
	if err != nil {
		return nil, fmt.Errorf("%w: %s: %w", ErrSource, path, err)
	}
	if st.IsDir() {
		return nil, fmt.Errorf("%w: %s is a directory, not a Parquet file", ErrSource, path)
	}
	tmp, err := os.MkdirTemp(cfg.TempDir, "wsgrpo-replay-")
	if err != nil {
		return nil, fmt.Errorf("replay: scratch log for %s: %w", path, err)
	}
	cleanup := func() { _ = os.RemoveAll(tmp) }
	src, err := openEmbedded(ctx, filepath.Join(tmp, "tracelog"), cfg, cleanup)
	if err != nil {
		return nil, err
	}
	n, err := tracelog.ImportParquet(ctx, src.Store, path)
	if err != nil {
		_ = src.Close()
		if errors.Is(err, tracelog.ErrParquet) {
			return nil, fmt.Errorf("%w: %s: %w", ErrSource, path, err)
		}
		return nil, fmt.Errorf("replay: load %s: %w", path, err)
	}
	cfg.Logger.Info("loaded Parquet export into a scratch log", "file", path, "rows", n)
	src.Name = path
	return src, nil
}

func isDir(p string) bool {
	st, err := os.Stat(p)
	return err == nil && st.IsDir()
}

// redactDSN hides the password of a DSN for messages.
func redactDSN(dsn string) string {
	at := strings.LastIndex(dsn, "@")
	scheme := strings.Index(dsn, "://")
	if at < 0 || scheme < 0 || at < scheme {
		return dsn
	}
	userinfo := dsn[scheme+3 : at]
	if user, _, ok := strings.Cut(userinfo, ":"); ok {
		return dsn[:scheme+3] + user + ":***" + dsn[at:]
	}
	return dsn
}
