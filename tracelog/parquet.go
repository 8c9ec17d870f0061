package tracelog

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"strings"
	"time"

	"github.com/apache/arrow-go/v18/arrow"
	"github.com/apache/arrow-go/v18/arrow/array"
	"github.com/apache/arrow-go/v18/arrow/memory"
	"github.com/apache/arrow-go/v18/parquet"
	"github.com/apache/arrow-go/v18/parquet/compress"
	"github.com/apache/arrow-go/v18/parquet/file"
	"github.com/apache/arrow-go/v18/parquet/pqarrow"

	"github.com/wsgrpo/wsgrpo/schemas/ddl"
)

// ErrParquet wraps a Parquet file that is not a trajectory-log export.
var ErrParquet = errors.New("tracelog: not a trajectory-log Parquet file")

// arrowSchemaKey is the Parquet metadata key under which Arrow writers
// store a serialized Arrow schema.
const arrowSchemaKey = "ARROW:schema"

// parquetBatch is the number of rows per Arrow batch and read page.
const parquetBatch = 4096

// parquetV1Columns is the column count of files exported before migration
// 4 (without group_size and labeler): they import with those fields zero.
const parquetV1Columns = 36

// ParquetSchema is the Arrow schema of a trajectory-log Parquet file:
// the trajectories columns in Columns order.
var ParquetSchema = func() *arrow.Schema {
	str, i64, i32 := arrow.BinaryTypes.String, arrow.PrimitiveTypes.Int64, arrow.PrimitiveTypes.Int32
	u32, f32, f64 := arrow.PrimitiveTypes.Uint32, arrow.PrimitiveTypes.Float32, arrow.PrimitiveTypes.Float64
	b := arrow.FixedWidthTypes.Boolean
	i32s, f32s := arrow.ListOf(i32), arrow.ListOf(f32)
	types := []arrow.DataType{
		str, i64, i64, str, str, str, i32, str, str, str, i32s, u32, u32,
		str, str, b, f32, f32s, f32, f32, str, f64, f64, f64,
		f64, b, &arrow.TimestampType{Unit: arrow.Millisecond, TimeZone: "UTC"}, arrow.PrimitiveTypes.Uint64,
		b, str, i32s, f32s, i32s, f32s, f32s, i64,
		i32, str,
	}
	fs := make([]arrow.Field, len(Columns))
	for i, c := range Columns {
		fs[i] = arrow.Field{Name: c, Type: types[i]}
	}
	md := arrow.NewMetadata([]string{"wsgrpo.kind"}, []string{"trajectory_log"})
	return arrow.NewSchema(fs, &md)
}()

// ExportParquet writes the de-duplicated rows of run to a Parquet file at
// path (zstd-compressed) and returns how many it wrote. Rows are read in
// pages, so a run of any size fits in memory.
func ExportParquet(ctx context.Context, s Store, run, path string) (n int64, err error) {
	f, err := os.Create(path)
	if err != nil {
		return 0, fmt.Errorf("tracelog: export: %w", err)
	}
	props := parquet.NewWriterProperties(parquet.WithCompression(compress.Codecs.Zstd))
	w, err := pqarrow.NewFileWriter(ParquetSchema, f, props, pqarrow.DefaultWriterProps())
	if err != nil {
		_ = f.Close()
		return 0, fmt.Errorf("tracelog: export: %w", err)
	}
	// Closing the writer writes the footer and closes f.
	defer func() {
		if cerr := w.Close(); err == nil && cerr != nil {
			err = fmt.Errorf("tracelog: export: %w", cerr)
		}
	}()
	after := ""
	for {
		page, err := readRowsWhere(ctx, s, "run_id = ? AND trajectory_id > ?", "ORDER BY trajectory_id LIMIT ?", run, after, parquetBatch)
		if err != nil {
			return n, err
		}
		if len(page) == 0 {
			return n, nil
		}
		rec := rowsToRecord(memory.DefaultAllocator, page)
		err = w.Write(rec)
		rec.Release()
		if err != nil {
			return n, fmt.Errorf("tracelog: export: %w", err)
		}
		n += int64(len(page))
		after = page[len(page)-1].TrajectoryID
	}
}

// ImportParquet inserts every row of a Parquet file written by
// ExportParquet into s (migrated) and returns how many it read. Importing a
// file twice leaves one copy of each trajectory, as any redelivery does.
func ImportParquet(ctx context.Context, s Store, path string) (int64, error) {
	f, err := os.Open(path)
	if err != nil {
		return 0, fmt.Errorf("tracelog: import: %w", err)
	}
	defer f.Close()
	return readParquet(ctx, f, func(rows []Row) error { return s.Insert(ctx, rows) })
}

// readParquet decodes a trajectory-log Parquet file batch by batch. It
// checks the file's schema against ParquetSchema first, and turns a panic
// inside the Parquet reader (a crafted file) into ErrParquet.
func readParquet(ctx context.Context, r parquet.ReaderAtSeeker, each func([]Row) error) (n int64, err error) {
	defer func() {
		if p := recover(); p != nil {
			err = fmt.Errorf("%w: %v", ErrParquet, p)
		}
	}()
	pf, err := file.NewParquetReader(r)
	if err != nil {
		return 0, fmt.Errorf("%w: %v", ErrParquet, err)
	}
	defer pf.Close()
	// arrow-go decodes a stored Arrow schema without bounds: a crafted one
	// makes it allocate without limit. Export never stores one (the Parquet
	// logical types carry every column type), so a file that does is
	// refused before that decoder sees it.
	if pf.MetaData().KeyValueMetadata().FindValue(arrowSchemaKey) != nil {
		return 0, fmt.Errorf("%w: file carries a stored Arrow schema (%s); export it with wsgrpo, or rewrite it without one", ErrParquet, arrowSchemaKey)
	}
	fr, err := pqarrow.NewFileReader(pf, pqarrow.ArrowReadProperties{BatchSize: parquetBatch}, memory.DefaultAllocator)
	if err != nil {
		return 0, fmt.Errorf("%w: %v", ErrParquet, err)
	}
	sc, err := fr.Schema()
	if err != nil {
		return 0, fmt.Errorf("%w: %v", ErrParquet, err)
	}
	if err := checkParquetSchema(sc); err != nil {
		return 0, err
	}
	rr, err := fr.GetRecordReader(ctx, nil, nil)
	if err != nil {
		return 0, fmt.Errorf("%w: %v", ErrParquet, err)
	}
	defer rr.Release()
	for rr.Next() {
		rows, err := recordToRows(rr.RecordBatch())
		if err != nil {
			return n, err
		}
		if err := each(rows); err != nil {
			return n, err
		}
		n += int64(len(rows))
	}
	if err := rr.Err(); err != nil && !errors.Is(err, io.EOF) {
		return n, fmt.Errorf("%w: %v", ErrParquet, err)
	}
	return n, nil
}

func checkParquetSchema(sc *arrow.Schema) error {
	want := ParquetSchema
	if n := sc.NumFields(); n != want.NumFields() && n != parquetV1Columns {
		return fmt.Errorf("%w: %d columns, want the %d of %s (or the %d of an older export)", ErrParquet, n, want.NumFields(), ddl.Table, parquetV1Columns)
	}
	for i := range sc.NumFields() {
		g, w := sc.Field(i), want.Field(i)
		if g.Name != w.Name || !sameListOrType(g.Type, w.Type) {
			return fmt.Errorf("%w: column %d is %s %s, want %s %s", ErrParquet, i, g.Name, g.Type, w.Name, w.Type)
		}
	}
	return nil
}

// sameListOrType compares types, ignoring list element names and
// nullability (Parquet writers name them differently).
func sameListOrType(a, b arrow.DataType) bool {
	la, oka := a.(*arrow.ListType)
	lb, okb := b.(*arrow.ListType)
	if oka && okb {
		return arrow.TypeEqual(la.Elem(), lb.Elem())
	}
	return arrow.TypeEqual(a, b)
}

// rowsToRecord builds one record batch of ParquetSchema; the caller
// releases it.
func rowsToRecord(mem memory.Allocator, rows []Row) arrow.RecordBatch {
	b := array.NewRecordBuilder(mem, ParquetSchema)
	defer b.Release()
	b.Reserve(len(rows))
	for i := range rows {
		r := &rows[i]
		c := 0
		next := func() array.Builder { f := b.Field(c); c++; return f }
		str := func(v string) { next().(*array.StringBuilder).Append(v) }
		i64 := func(v int64) { next().(*array.Int64Builder).Append(v) }
		u32 := func(v uint32) { next().(*array.Uint32Builder).Append(v) }
		f32 := func(v float32) { next().(*array.Float32Builder).Append(v) }
		f64 := func(v float64) { next().(*array.Float64Builder).Append(v) }
		bl := func(v bool) { next().(*array.BooleanBuilder).Append(v) }
		i32s := func(v []int32) {
			lb := next().(*array.ListBuilder)
			lb.Append(true)
			lb.ValueBuilder().(*array.Int32Builder).AppendValues(v, nil)
		}
		f32s := func(v []float32) {
			lb := next().(*array.ListBuilder)
			lb.Append(true)
			lb.ValueBuilder().(*array.Float32Builder).AppendValues(v, nil)
		}
		str(r.RunID)
		i64(r.Step)
		i64(r.PolicyVersion)
		str(r.TrajectoryID)
		str(r.GroupID)
		str(r.PromptID)
		next().(*array.Int32Builder).Append(r.SampleIndex)
		str(r.Task)
		str(r.Prompt)
		str(r.Completion)
		i32s(r.CompletionTokenIDs)
		u32(r.CompletionTokens)
		u32(r.Steps)
		str(r.FinishReason)
		str(r.ExtractedAnswer)
		bl(r.Correct)
		f32(r.TerminalReward)
		f32s(r.StepRewards)
		f32(r.ShapedReward)
		f32(r.Advantage)
		str(r.Shaper)
		f64(r.SamplerLogprobSum)
		f64(r.SampleMs)
		f64(r.VerifyMs)
		f64(r.LabelMs)
		bl(r.Replayed)
		next().(*array.TimestampBuilder).Append(arrow.Timestamp(int64(dateTimeSeconds(r.Created)) * 1000))
		next().(*array.Uint64Builder).Append(r.Inserted)
		bl(r.Labeled)
		str(r.ReferenceAnswer)
		i32s(r.PromptTokenIDs)
		f32s(r.TokenLogprobs)
		i32s(r.StepEnds)
		f32s(r.StepScores)
		f32s(r.StepAdvantages)
		i64(r.CreatedMs)
		next().(*array.Int32Builder).Append(r.GroupSize)
		str(r.Labeler)
	}
	return b.NewRecordBatch()
}

// recordToRows reads a batch of ParquetSchema, or of its first
// parquetV1Columns columns (checked by the caller). Nulls, and the columns
// an older file lacks, read as zero values.
func recordToRows(rec arrow.RecordBatch) (rows []Row, err error) {
	defer func() {
		if p := recover(); p != nil {
			rows, err = nil, fmt.Errorf("%w: %v", ErrParquet, p)
		}
	}()
	for i, col := range rec.Columns() {
		if col.Len() != int(rec.NumRows()) {
			return nil, fmt.Errorf("%w: column %s has %d rows, batch %d", ErrParquet, Columns[i], col.Len(), rec.NumRows())
		}
	}
	rows = make([]Row, rec.NumRows())
	for i := range rows {
		r := &rows[i]
		c := 0
		next := func() arrow.Array { a := rec.Column(c); c++; return a }
		str := func() string { return next().(*array.String).Value(i) }
		i64 := func() int64 { return next().(*array.Int64).Value(i) }
		u32 := func() uint32 { return next().(*array.Uint32).Value(i) }
		f32 := func() float32 { return next().(*array.Float32).Value(i) }
		f64 := func() float64 { return next().(*array.Float64).Value(i) }
		bl := func() bool { a := next().(*array.Boolean); return a.IsValid(i) && a.Value(i) }
		i32s := func() []int32 {
			l := next().(*array.List)
			if l.IsNull(i) {
				return nil
			}
			s, e := l.ValueOffsets(i)
			if s == e {
				return nil
			}
			return append([]int32(nil), l.ListValues().(*array.Int32).Int32Values()[s:e]...)
		}
		f32s := func() []float32 {
			l := next().(*array.List)
			if l.IsNull(i) {
				return nil
			}
			s, e := l.ValueOffsets(i)
			if s == e {
				return nil
			}
			return append([]float32(nil), l.ListValues().(*array.Float32).Float32Values()[s:e]...)
		}
		r.RunID = str()
		r.Step = i64()
		r.PolicyVersion = i64()
		r.TrajectoryID = str()
		r.GroupID = str()
		r.PromptID = str()
		r.SampleIndex = next().(*array.Int32).Value(i)
		r.Task = str()
		r.Prompt = str()
		r.Completion = str()
		r.CompletionTokenIDs = i32s()
		r.CompletionTokens = u32()
		r.Steps = u32()
		r.FinishReason = str()
		r.ExtractedAnswer = str()
		r.Correct = bl()
		r.TerminalReward = f32()
		r.StepRewards = f32s()
		r.ShapedReward = f32()
		r.Advantage = f32()
		r.Shaper = str()
		r.SamplerLogprobSum = f64()
		r.SampleMs = f64()
		r.VerifyMs = f64()
		r.LabelMs = f64()
		r.Replayed = bl()
		r.Created = time.UnixMilli(int64(next().(*array.Timestamp).Value(i))).UTC().Truncate(time.Second)
		r.Inserted = next().(*array.Uint64).Value(i)
		r.Labeled = bl()
		r.ReferenceAnswer = str()
		r.PromptTokenIDs = i32s()
		r.TokenLogprobs = f32s()
		r.StepEnds = i32s()
		r.StepScores = f32s()
		r.StepAdvantages = f32s()
		r.CreatedMs = i64()
		if rec.NumCols() > parquetV1Columns {
			r.GroupSize = next().(*array.Int32).Value(i)
			r.Labeler = str()
		}
		if r.TrajectoryID == "" || strings.TrimSpace(r.RunID) == "" {
			return nil, fmt.Errorf("%w: row %d has no run or trajectory id", ErrParquet, i)
		}
	}
	return rows, nil
}
