package tracelog

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/wsgrpo/wsgrpo/internal/diskfull"
	"github.com/wsgrpo/wsgrpo/schemas/ddl"
	"github.com/wsgrpo/wsgrpo/tracelog/internal/chdb"
)

// embeddedStore is the Store over chDB, the ClickHouse engine in-process.
type embeddedStore struct {
	conn    *chdb.Conn
	cfg     Config
	migMu   sync.Mutex
	insertQ string
	mu      sync.RWMutex // guards closed
	closed  bool
}

// embeddedSettings are the session settings every embedded connection
// runs with: UTC times, and JSON numbers the result decoder reads exactly.
var embeddedSettings = []string{
	"--session_timezone=UTC",
	"--output_format_json_quote_64bit_integers=0",
	"--output_format_json_quote_denormals=1",
}

// readOnlySetting makes an embedded session read-only (Config.ReadOnly).
const readOnlySetting = "--readonly=1"

func openEmbedded(ctx context.Context, cfg Config) (*embeddedStore, error) {
	args := embeddedSettings
	if cfg.ReadOnly {
		args = append(slices.Clone(embeddedSettings), readOnlySetting)
	}
	conn, err := chdb.Connect(cfg.Lib, cfg.Dir, args...)
	switch {
	case errors.Is(err, chdb.ErrLibrary):
		return nil, fmt.Errorf("%w: %v. Run `make setup` (or scripts/setup.sh) to fetch it, set WSGRPO_CHDB_LIB to its path, or give a ClickHouse server DSN", ErrNoLibrary, err)
	case errors.Is(err, chdb.ErrBusy):
		return nil, fmt.Errorf("%w: %v (one embedded trajectory log per process; close the other store first)", ErrConfig, err)
	case err != nil:
		return nil, fmt.Errorf("%w: %v", ErrUnavailable, err)
	}
	s := &embeddedStore{conn: conn, cfg: cfg,
		insertQ: "INSERT INTO " + ddl.Table + " (" + strings.Join(Columns, ", ") + ")"}
	if cfg.ReadOnly {
		if err := s.checkReadOnly(ctx); err != nil {
			conn.Close() // not s.Close: OnClose is not called when Open fails
			return nil, err
		}
	}
	cfg.Logger.Debug("embedded trajectory log open", "dir", cfg.Dir, "lib", cfg.Lib, "read_only", cfg.ReadOnly)
	return s, nil
}

// checkReadOnly makes sure the engine applied the read-only setting to
// this connection's session (a library that shared one session between
// the connections to a path would not).
func (s *embeddedStore) checkReadOnly(ctx context.Context) error {
	res, err := s.run(ctx, []byte("SELECT getSetting('readonly')"), "TSV")
	if err != nil {
		return err
	}
	if got := strings.TrimSpace(string(res.Data)); got != "1" {
		return fmt.Errorf("%w: cannot open %s read-only: the engine's session has readonly = %s", ErrConfig, s.cfg.Dir, got)
	}
	return nil
}

// full returns err, an engine error, as the trajectory log's out-of-space
// error (naming the data directory and the space free there) when it says
// the disk is full; other errors come back as they are.
func (s *embeddedStore) full(err error) error {
	if !diskfull.Match(err) {
		return err
	}
	return diskfull.NewAt(logWhat, s.cfg.Dir, -1, err)
}

// run executes one statement, honouring ctx before it starts (the engine
// call itself cannot be interrupted).
func (s *embeddedStore) run(ctx context.Context, q []byte, format string) (chdb.Result, error) {
	s.mu.RLock()
	defer s.mu.RUnlock()
	if s.closed {
		return chdb.Result{}, ErrClosed
	}
	if err := ctx.Err(); err != nil {
		return chdb.Result{}, fmt.Errorf("%w: %w", ErrUnavailable, err)
	}
	res, err := s.conn.Query(q, format)
	if err != nil {
		return res, fmt.Errorf("%w: %w", ErrQuery, s.full(err))
	}
	return res, nil
}

func (s *embeddedStore) exec(ctx context.Context, q string) error {
	_, err := s.run(ctx, []byte(q), "")
	return err
}

func (s *embeddedStore) query(ctx context.Context, q string) (*Result, error) {
	res, err := s.run(ctx, []byte(q), jsonFormat)
	if err != nil {
		return nil, err
	}
	out, err := decodeJSONResult(res.Data)
	if err != nil {
		return nil, fmt.Errorf("%w: %w", ErrQuery, err)
	}
	return out, nil
}

// Migrate implements Store.
func (s *embeddedStore) Migrate(ctx context.Context) error { return s.migrateTo(ctx, 0) }

func (s *embeddedStore) migrateTo(ctx context.Context, upTo int) error {
	s.migMu.Lock()
	defer s.migMu.Unlock()
	return migrate(ctx, s, upTo, s.cfg.Logger)
}

// Query implements Store.
func (s *embeddedStore) Query(ctx context.Context, q string, args ...any) (*Result, error) {
	bound, err := Bind(q, args...)
	if err != nil {
		return nil, err
	}
	return s.query(ctx, bound)
}

// Count implements Store.
func (s *embeddedStore) Count(ctx context.Context, run string) (int64, error) {
	return countRun(ctx, s, run)
}

// insertChunkBytes bounds the RowBinary of one engine INSERT. Parts below
// the engine's 10 MB min_bytes_for_wide_part are written as compact parts
// (one file instead of two per column); measured here, 4 MB chunks
// inserted 4,096 512-token rows in about half the time of one INSERT.
const insertChunkBytes = 4 << 20

// Insert streams the rows in RowBinary to INSERT statements of at most
// insertChunkBytes each and checks the engine's count of written rows. A
// failure part-way leaves earlier chunks stored: a retry rewrites them,
// which the log de-duplicates.
func (s *embeddedStore) Insert(ctx context.Context, rows []Row) error {
	if len(rows) == 0 {
		return nil
	}
	s.mu.RLock()
	defer s.mu.RUnlock()
	if s.closed {
		return ErrClosed
	}
	version := uint64(time.Now().UnixNano())
	buf := make([]byte, 0, min(insertChunkBytes+insertChunkBytes/4, len(rows)*estimateRowSize(&rows[0])))
	n := 0
	flush := func() error {
		if n == 0 {
			return nil
		}
		if err := ctx.Err(); err != nil {
			return fmt.Errorf("%w: %w", ErrUnavailable, err)
		}
		res, err := s.conn.Insert(s.insertQ, "RowBinary", buf)
		if err != nil {
			return fmt.Errorf("%w: %w: %w", ErrInsert, ErrQuery, s.full(err))
		}
		if res.RowsWritten != uint64(n) {
			return fmt.Errorf("%w: engine wrote %d rows, want %d", ErrInsert, res.RowsWritten, n)
		}
		buf, n = buf[:0], 0
		return nil
	}
	for i := range rows {
		r := &rows[i]
		if r.Inserted == 0 {
			c := *r
			c.Inserted = version
			r = &c
		}
		buf = appendRowBinary(buf, r)
		n++
		if len(buf) >= insertChunkBytes {
			if err := flush(); err != nil {
				return err
			}
		}
	}
	return flush()
}

// estimateRowSize guesses the RowBinary size of rows like r.
func estimateRowSize(r *Row) int {
	return 256 + len(r.Prompt) + len(r.Completion) + 4*(len(r.CompletionTokenIDs)+len(r.TokenLogprobs)+len(r.PromptTokenIDs))
}

// Close closes the connection. Waits for running statements.
func (s *embeddedStore) Close() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if !s.closed {
		s.closed = true
		s.conn.Close()
		if s.cfg.OnClose != nil {
			s.cfg.OnClose()
		}
	}
	return nil
}
