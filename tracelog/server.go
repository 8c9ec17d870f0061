package tracelog

import (
	"context"
	"errors"
	"fmt"
	"reflect"
	"strings"
	"sync"
	"time"

	"github.com/ClickHouse/clickhouse-go/v2"
	"github.com/ClickHouse/clickhouse-go/v2/lib/driver"

	"github.com/wsgrpo/wsgrpo/schemas/ddl"
)

// serverStore is the Store over a ClickHouse server (native protocol).
type serverStore struct {
	conn    driver.Conn
	cfg     Config
	migMu   sync.Mutex
	insertQ string
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
	if opts.DialTimeout == 0 || opts.DialTimeout > 5*time.Second {
		opts.DialTimeout = 5 * time.Second
	}
	conn, err := clickhouse.Open(opts)
	if err != nil {
		return nil, fmt.Errorf("%w: %v", ErrConfig, err)
	}
	s := &serverStore{conn: conn, cfg: cfg,
		insertQ: "INSERT INTO " + ddl.Table + " (" + strings.Join(Columns, ", ") + ")"}
	if err := conn.Ping(ctx); err != nil {
		_ = conn.Close()
		return nil, classifyServer(err)
	}
	return s, nil
}

// classifyServer wraps a driver error: an exception the server raised is
// ErrQuery, anything else (network, timeouts, a closed pool) ErrUnavailable.
func classifyServer(err error) error {
	var ex *clickhouse.Exception
	if errors.As(err, &ex) {
		return fmt.Errorf("%w: %w", ErrQuery, err)
	}
	return fmt.Errorf("%w: %w", ErrUnavailable, err)
}

func (s *serverStore) exec(ctx context.Context, q string) error {
	if err := s.conn.Exec(ctx, q); err != nil {
		return classifyServer(err)
	}
	return nil
}

func (s *serverStore) query(ctx context.Context, q string) (*Result, error) {
	rows, err := s.conn.Query(ctx, q)
	if err != nil {
		return nil, classifyServer(err)
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
			return nil, classifyServer(err)
		}
		row := make([]any, len(dest))
		for i, d := range dest {
			row[i] = goValue(reflect.ValueOf(d).Elem())
		}
		res.Rows = append(res.Rows, row)
	}
	if err := rows.Err(); err != nil {
		return nil, classifyServer(err)
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

// Insert implements Store.
func (s *serverStore) Insert(ctx context.Context, rows []Row) error {
	if len(rows) == 0 {
		return nil
	}
	version := uint64(time.Now().UnixNano())
	batch, err := s.conn.PrepareBatch(ctx, s.insertQ)
	if err != nil {
		return classifyServer(err)
	}
	defer func() { _ = batch.Close() }()
	if err := appendColumns(batch, rows, version); err != nil {
		return fmt.Errorf("%w: %w", ErrInsert, err)
	}
	if batch.Rows() != len(rows) {
		return fmt.Errorf("%w: batch holds %d rows, want %d", ErrInsert, batch.Rows(), len(rows))
	}
	if err := batch.Send(); err != nil {
		return classifyServer(err)
	}
	return nil
}

// appendColumns fills batch column by column, in Columns order.
func appendColumns(batch driver.Batch, rows []Row, version uint64) error {
	n := len(rows)
	strs := func(f func(r *Row) string) []string {
		out := make([]string, n)
		for i := range rows {
			out[i] = f(&rows[i])
		}
		return out
	}
	i64s := func(f func(r *Row) int64) []int64 {
		out := make([]int64, n)
		for i := range rows {
			out[i] = f(&rows[i])
		}
		return out
	}
	u32s := func(f func(r *Row) uint32) []uint32 {
		out := make([]uint32, n)
		for i := range rows {
			out[i] = f(&rows[i])
		}
		return out
	}
	u8s := func(f func(r *Row) bool) []uint8 {
		out := make([]uint8, n)
		for i := range rows {
			if f(&rows[i]) {
				out[i] = 1
			}
		}
		return out
	}
	f32s := func(f func(r *Row) float32) []float32 {
		out := make([]float32, n)
		for i := range rows {
			out[i] = f(&rows[i])
		}
		return out
	}
	f64s := func(f func(r *Row) float64) []float64 {
		out := make([]float64, n)
		for i := range rows {
			out[i] = f(&rows[i])
		}
		return out
	}
	i32arr := func(f func(r *Row) []int32) [][]int32 {
		out := make([][]int32, n)
		for i := range rows {
			if out[i] = f(&rows[i]); out[i] == nil {
				out[i] = []int32{}
			}
		}
		return out
	}
	f32arr := func(f func(r *Row) []float32) [][]float32 {
		out := make([][]float32, n)
		for i := range rows {
			if out[i] = f(&rows[i]); out[i] == nil {
				out[i] = []float32{}
			}
		}
		return out
	}
	created := make([]time.Time, n)
	inserted := make([]uint64, n)
	for i := range rows {
		created[i] = time.Unix(int64(dateTimeSeconds(rows[i].Created)), 0).UTC()
		inserted[i] = rows[i].Inserted
		if inserted[i] == 0 {
			inserted[i] = version
		}
	}
	sampleIdx := make([]int32, n)
	for i := range rows {
		sampleIdx[i] = rows[i].SampleIndex
	}
	values := []any{
		strs(func(r *Row) string { return r.RunID }),
		i64s(func(r *Row) int64 { return r.Step }),
		i64s(func(r *Row) int64 { return r.PolicyVersion }),
		strs(func(r *Row) string { return r.TrajectoryID }),
		strs(func(r *Row) string { return r.GroupID }),
		strs(func(r *Row) string { return r.PromptID }),
		sampleIdx,
		strs(func(r *Row) string { return r.Task }),
		strs(func(r *Row) string { return r.Prompt }),
		strs(func(r *Row) string { return r.Completion }),
		i32arr(func(r *Row) []int32 { return r.CompletionTokenIDs }),
		u32s(func(r *Row) uint32 { return r.CompletionTokens }),
		u32s(func(r *Row) uint32 { return r.Steps }),
		strs(func(r *Row) string { return r.FinishReason }),
		strs(func(r *Row) string { return r.ExtractedAnswer }),
		u8s(func(r *Row) bool { return r.Correct }),
		f32s(func(r *Row) float32 { return r.TerminalReward }),
		f32arr(func(r *Row) []float32 { return r.StepRewards }),
		f32s(func(r *Row) float32 { return r.ShapedReward }),
		f32s(func(r *Row) float32 { return r.Advantage }),
		strs(func(r *Row) string { return r.Shaper }),
		f64s(func(r *Row) float64 { return r.SamplerLogprobSum }),
		f64s(func(r *Row) float64 { return r.SampleMs }),
		f64s(func(r *Row) float64 { return r.VerifyMs }),
		f64s(func(r *Row) float64 { return r.LabelMs }),
		u8s(func(r *Row) bool { return r.Replayed }),
		created,
		inserted,
		u8s(func(r *Row) bool { return r.Labeled }),
		strs(func(r *Row) string { return r.ReferenceAnswer }),
		i32arr(func(r *Row) []int32 { return r.PromptTokenIDs }),
		f32arr(func(r *Row) []float32 { return r.TokenLogprobs }),
		i32arr(func(r *Row) []int32 { return r.StepEnds }),
		f32arr(func(r *Row) []float32 { return r.StepScores }),
		f32arr(func(r *Row) []float32 { return r.StepAdvantages }),
		i64s(func(r *Row) int64 { return r.CreatedMs }),
	}
	if len(values) != len(Columns) {
		return fmt.Errorf("%d column values for %d columns", len(values), len(Columns))
	}
	for i, v := range values {
		col := batch.Column(i)
		var err error
		// The driver appends a whole [][]T column by reflection, element
		// by element; one row at a time takes its typed path.
		switch vs := v.(type) {
		case [][]int32:
			for _, r := range vs {
				if err = col.AppendRow(r); err != nil {
					break
				}
			}
		case [][]float32:
			for _, r := range vs {
				if err = col.AppendRow(r); err != nil {
					break
				}
			}
		default:
			err = col.Append(v)
		}
		if err != nil {
			return fmt.Errorf("column %s: %w", Columns[i], err)
		}
	}
	return nil
}

// Close implements Store.
func (s *serverStore) Close() error {
	var err error
	s.closed.Do(func() { err = s.conn.Close() })
	return err
}
