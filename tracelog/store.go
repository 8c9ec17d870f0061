package tracelog

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"

	"github.com/wsgrpo/wsgrpo/internal/diskfull"
)

// Errors of this package, tested with errors.Is.
var (
	// ErrNoLibrary is returned by Open when the embedded backend is chosen
	// and libchdb.so cannot be loaded. Only trajectory-log features are
	// unavailable then.
	ErrNoLibrary = errors.New("tracelog: embedded ClickHouse (libchdb.so) unavailable")
	// ErrConfig is returned by Open for a configuration that cannot work.
	ErrConfig = errors.New("tracelog: invalid configuration")
	// ErrUnavailable wraps a failure to reach the store (server down,
	// connection lost): retrying later can succeed.
	ErrUnavailable = errors.New("tracelog: store unavailable")
	// ErrQuery wraps an error the engine reports for a statement.
	ErrQuery = errors.New("tracelog: query failed")
	// ErrInsert wraps an insert that did not store exactly the rows given.
	ErrInsert = errors.New("tracelog: insert failed")
	// ErrMigration wraps a failed schema migration.
	ErrMigration = errors.New("tracelog: migration failed")
	// ErrBind is returned when the arguments of a query do not match its
	// placeholders or have an unsupported type.
	ErrBind = errors.New("tracelog: bad query arguments")
	// ErrClosed is returned for an operation on a closed store.
	ErrClosed = errors.New("tracelog: store closed")
	// ErrStorageFull wraps a write the engine refused because the log's
	// disk is full (chDB's or ClickHouse's NOT_ENOUGH_SPACE, "no space
	// left on device"): the error is a *diskfull.Error naming the data
	// directory, or the server, and the space free. It is the same error
	// value as pipeline.ErrStorageFull and stage.ErrStorageFull, so the
	// logger stage's runner stops on it instead of retrying.
	ErrStorageFull = diskfull.ErrFull
)

// logWhat names the trajectory log in out-of-space errors.
const logWhat = "the trajectory log"

// Store is the trajectory log and the learner's step log. Implementations are safe for concurrent use.
type Store interface {
	// Migrate creates or upgrades the schema; running it again is a no-op.
	Migrate(ctx context.Context) error
	// Insert writes rows. Inserting the same trajectories again (a
	// redelivered batch) does not change what counting queries see.
	Insert(ctx context.Context, rows []Row) error
	// Query runs one SQL statement with ? placeholders bound to args.
	Query(ctx context.Context, sql string, args ...any) (*Result, error)
	// Count returns the number of distinct trajectories of run.
	Count(ctx context.Context, run string) (int64, error)
	// InsertSteps writes learner step rows to the steps table. Writing a
	// step of a run again (a learner restarted from a checkpoint) does not
	// add a row to what Steps returns.
	InsertSteps(ctx context.Context, rows []StepRow) error
	// Steps returns the de-duplicated step rows of run, ordered by step;
	// of two rows of one step, the one with the larger Inserted.
	Steps(ctx context.Context, run string) ([]StepRow, error)
	// Close releases the store.
	Close() error
}

// Config selects and configures a backend.
type Config struct {
	// DSN of a ClickHouse server (clickhouse://user:pass@host:9000/db?...).
	// Empty selects the embedded backend.
	DSN string
	// Dir is the embedded backend's data directory (see EmbeddedDir).
	Dir string
	// Lib is the path of libchdb.so; empty: LibraryPath().
	Lib string
	// Logger receives migration and connection events; nil discards them.
	Logger *slog.Logger
	// ReadOnly opens the store for reading only, with ClickHouse's
	// readonly = 1 setting: sent with every statement to a server, the
	// embedded engine's session setting otherwise. Statements that write
	// (INSERT, ALTER, DROP, CREATE, ...), table functions such as file()
	// and changes of settings fail with the engine's READONLY error;
	// Migrate and Insert fail too.
	ReadOnly bool
	// OnClose, when set, is called once, after the store's first Close
	// has closed it: the caller's hold on the data directory ends there,
	// say. Open does not call it when it fails.
	OnClose func()
}

// Backend names, as returned by BackendName.
const (
	BackendServer   = "server"
	BackendEmbedded = "embedded"
)

// BackendName says which backend c selects.
func (c Config) BackendName() string {
	if c.DSN != "" {
		return BackendServer
	}
	return BackendEmbedded
}

// EmbeddedDir is the embedded backend's data directory inside a run
// directory.
func EmbeddedDir(runDir string) string { return filepath.Join(runDir, "tracelog") }

// LibraryPath returns where libchdb.so is looked for: $WSGRPO_CHDB_LIB,
// else $WSGRPO_HOME/lib/libchdb.so, else ~/.cache/wsgrpo/lib/libchdb.so.
func LibraryPath() string {
	if p := os.Getenv("WSGRPO_CHDB_LIB"); p != "" {
		return p
	}
	home := os.Getenv("WSGRPO_HOME")
	if home == "" {
		if h, err := os.UserHomeDir(); err == nil {
			home = filepath.Join(h, ".cache", "wsgrpo")
		}
	}
	return filepath.Join(home, "lib", "libchdb.so")
}

// Open connects to the backend cfg selects. It does not migrate: call
// Migrate before the first Insert.
func Open(ctx context.Context, cfg Config) (Store, error) {
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	if cfg.DSN != "" {
		s, err := openServer(ctx, cfg)
		if err != nil {
			return nil, err
		}
		return s, nil
	}
	if cfg.Dir == "" {
		return nil, fmt.Errorf("%w: the embedded backend needs a data directory (Dir) or a server DSN", ErrConfig)
	}
	if cfg.Lib == "" {
		cfg.Lib = LibraryPath()
	}
	s, err := openEmbedded(ctx, cfg)
	if err != nil {
		return nil, err
	}
	return s, nil
}
