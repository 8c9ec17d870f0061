package tracelog

import (
	"context"
	"errors"
	"fmt"
	"io"
	"reflect"
	"strings"
	"sync"
	"time"

	"github.com/ClickHouse/clickhouse-go/v2"
	"github.com/ClickHouse/clickhouse-go/v2/lib/driver"

	"github.com/wsgrpo/wsgrpo/internal/diskfull"
	"github.com/wsgrpo/wsgrpo/schemas/ddl"
)

// serverStore is the Store over a ClickHouse server (native protocol).
type serverStore struct {
	conn    driver.Conn
	cfg     Config
	addr    string // the server's host:port, for messages
	migMu   sync.Mutex
	insertQ string
	inserts *insertQueue
	closed  sync.Once
}

func openServer(ctx context.Context, cfg Config) (*serverStore, error) {
	opts, err := clickhouse.ParseDSN(cfg.DSN)
	if err != nil {
		return nil, fmt.Errorf("%w: DSN: %v", ErrConfig, err)
	}
	if opts.Protocol != clickhouse.Native {
		return nil, fmt.Errorf("%w: only the native protocol (clickhouse://, port 9000) is supported", ErrConfig)
	}
	if cfg.ReadOnly {
		// Sent with every statement: the server refuses writes, DDL,
		// table functions and setting changes.
		if opts.Settings == nil {
			opts.Settings = clickhouse.Settings{}
		}
		opts.Settings["readonly"] = 1
	}
	if opts.DialTimeout == 0 || opts.DialTimeout > 5*time.Second {
		opts.DialTimeout = 5 * time.Second
	}
	conn, err := clickhouse.Open(opts)
	if err != nil {
		return nil, fmt.Errorf("%w: %v", ErrConfig, err)
	}
	s := &serverStore{conn: conn, cfg: cfg, addr: strings.Join(opts.Addr, ","),
		insertQ: "INSERT INTO " + ddl.Table + " (" + strings.Join(Columns, ", ") + ")"}
	if err := conn.Ping(ctx); err != nil {
		_ = conn.Close()
		return nil, s.classify(err)
	}
	s.inserts = newInsertQueue(insertWriters, s.insertNow)
	return s, nil
}

// classify wraps a driver error: an exception the server raised is
// ErrQuery, anything else (network, timeouts, a closed pool)
// ErrUnavailable. An exception that says the server is out of space also
// wraps ErrStorageFull (a *diskfull.Error naming the server).
func (s *serverStore) classify(err error) error {
	var ex *clickhouse.Exception
	if errors.As(err, &ex) {
		if diskfull.Match(err) {
			err = diskfull.New(logWhat, "the ClickHouse server "+s.addr, -1, err)
		}
		return fmt.Errorf("%w: %w", ErrQuery, err)
	}
	return fmt.Errorf("%w: %w", ErrUnavailable, err)
}

func (s *serverStore) exec(ctx context.Context, q string) error {
	if err := s.conn.Exec(ctx, q); err != nil {
		return s.classify(err)
	}
	return nil
}

// query runs q and reads its result. Statements that return no result
// set (returnsNoResult) run with Exec and give an empty Result; any other
// statement that turns out to have none (INSERT ... SELECT) ends with the
// driver's bare io.EOF (its end-of-stream; a broken connection is reported
// wrapped), also an empty Result.
func (s *serverStore) query(ctx context.Context, q string) (*Result, error) {
	if returnsNoResult(q) {
		if err := s.exec(ctx, q); err != nil {
			return nil, err
		}
		return &Result{}, nil
	}
	rows, err := s.conn.Query(ctx, q)
	if err == io.EOF { //nolint:errorlint // only the driver's unwrapped end-of-stream means "no result set"
		return &Result{}, nil
	}
	if err != nil {
		return nil, s.classify(err)
	}
	defer rows.Close()
	cts := rows.ColumnTypes()
	res := &Result{Columns: rows.Columns(), Types: make([]string, len(cts))}
	dest := make([]any, len(cts))
	for i, ct := range cts {
		res.Types[i] = ct.DatabaseTypeName()
		dest[i] = reflect.New(ct.ScanType()).Interface()
	}
	for rows.Next() {
		if err := rows.Scan(dest...); err != nil {
			return nil, s.classify(err)
		}
		row := make([]any, len(dest))
		for i, d := range dest {
			row[i] = goValue(reflect.ValueOf(d).Elem())
		}
		res.Rows = append(res.Rows, row)
	}
	if err := rows.Err(); err != nil {
		return nil, s.classify(err)
	}
	return res, nil
}

// goValue maps a scanned driver value to the Go type Result documents.
func goValue(v reflect.Value) any {
	switch v.Kind() {
	case reflect.Pointer, reflect.Interface:
		if v.IsNil() {
			return nil
		}
		return goValue(v.Elem())
	case reflect.Int, reflect.Int8, reflect.Int16, reflect.Int32, reflect.Int64:
		return v.Int()
	case reflect.Uint, reflect.Uint8, reflect.Uint16, reflect.Uint32, reflect.Uint64:
		return v.Uint()
	case reflect.Float32, reflect.Float64:
		return v.Float()
	case reflect.Bool:
		if v.Bool() {
			return uint64(1)
		}
		return uint64(0)
	case reflect.String:
		return v.String()
	case reflect.Slice, reflect.Array:
		if v.Kind() == reflect.Slice && v.IsNil() {
			return []any{}
		}
		out := make([]any, v.Len())
		for i := range out {
			out[i] = goValue(v.Index(i))
		}
		return out
	}
	if t, ok := v.Interface().(time.Time); ok {
		return t.UTC()
	}
	if s, ok := v.Interface().(fmt.Stringer); ok {
		return s.String()
	}
	return fmt.Sprint(v.Interface())
}

// Migrate implements Store.
func (s *serverStore) Migrate(ctx context.Context) error { return s.migrateTo(ctx, 0) }

func (s *serverStore) migrateTo(ctx context.Context, upTo int) error {
	s.migMu.Lock()
	defer s.migMu.Unlock()
	return migrate(ctx, s, upTo, s.cfg.Logger)
}

// Query implements Store.
func (s *serverStore) Query(ctx context.Context, q string, args ...any) (*Result, error) {
	bound, err := Bind(q, args...)
	if err != nil {
		return nil, err
	}
	return s.query(ctx, bound)
}

// Count implements Store.
func (s *serverStore) Count(ctx context.Context, run string) (int64, error) {
	return countRun(ctx, s, run)
}

// countRun counts the distinct trajectories of run through FINAL.
func countRun(ctx context.Context, s Store, run string) (int64, error) {
	res, err := s.Query(ctx, "SELECT count() FROM "+ddl.Table+" FINAL WHERE run_id = ?", run)
	if err != nil {
		return 0, err
	}
	if len(res.Rows) != 1 || len(res.Rows[0]) != 1 {
		return 0, fmt.Errorf("%w: count returned %d rows", ErrQuery, len(res.Rows))
	}
	n, ok := res.Rows[0][0].(uint64)
	if !ok {
		return 0, fmt.Errorf("%w: count returned %T", ErrQuery, res.Rows[0][0])
	}
	return int64(n), nil
}

// Insert implements Store. Concurrent calls are grouped into fewer INSERTs
// (see insertQueue).
func (s *serverStore) Insert(ctx context.Context, rows []Row) error {
	if len(rows) == 0 {
		return nil
	}
	return s.inserts.insert(ctx, rows)
}

// insertNow writes rows in one INSERT, sorted by the table's key, and checks
// that the block holds every row.
func (s *serverStore) insertNow(ctx context.Context, rows []Row) error {
	version := uint64(time.Now().UnixNano())
	rows = sortedByKey(rows)
	batch, err := s.conn.PrepareBatch(ctx, s.insertQ)
	if err != nil {
		return s.classify(err)
	}
	defer func() { _ = batch.Close() }()
	if err := appendColumns(batch.Columns(), rows, version); err != nil {
		return fmt.Errorf("%w: %w", ErrInsert, err)
	}
	if batch.Rows() != len(rows) {
		return fmt.Errorf("%w: batch holds %d rows, want %d", ErrInsert, batch.Rows(), len(rows))
	}
	if err := batch.Send(); err != nil {
		return s.classify(err)
	}
	return nil
}

// Close implements Store.
func (s *serverStore) Close() error {
	var err error
	s.closed.Do(func() {
		s.inserts.close()
		err = s.conn.Close()
		if s.cfg.OnClose != nil {
			s.cfg.OnClose()
		}
	})
	return err
}
