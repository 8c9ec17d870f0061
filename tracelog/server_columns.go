package tracelog

import (
	"bytes"
	"encoding/binary"
	"fmt"
	"math"
	"slices"
	"strings"
	"sync"
	"time"
	"unsafe"

	"github.com/ClickHouse/ch-go/proto"
	"github.com/ClickHouse/clickhouse-go/v2/lib/column"
)

// appendColumns fills the empty columns of an INSERT block (in Columns
// order) with rows, a whole column at a time, and checks that every column
// then holds len(rows) rows.
//
// Scalar columns take a typed slice (the driver copies it without boxing).
// Array columns are written in ClickHouse's native layout and decoded by the
// driver's column in bulk (see appendArray): appending a [][]T, or one []T
// per row, makes the driver box every element into an interface (about
// 20 µs per 512-token row, most of the client's insert time).
func appendColumns(cols []column.Interface, rows []Row, version uint64) error {
	if len(cols) != len(Columns) {
		return fmt.Errorf("block has %d columns, want %d", len(cols), len(Columns))
	}
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
	created := make([]time.Time, n)
	inserted := make([]uint64, n)
	sampleIdx := make([]int32, n)
	groupSize := make([]int32, n)
	for i := range rows {
		created[i] = time.Unix(int64(dateTimeSeconds(rows[i].Created)), 0).UTC()
		inserted[i] = rows[i].Inserted
		if inserted[i] == 0 {
			inserted[i] = version
		}
		sampleIdx[i] = rows[i].SampleIndex
		groupSize[i] = rows[i].GroupSize
	}
	i32arr := func(f func(r *Row) []int32) arrayColumn {
		return array32[int32]{rows, f, func(v int32) uint32 { return uint32(v) }}
	}
	f32arr := func(f func(r *Row) []float32) arrayColumn { return array32[float32]{rows, f, math.Float32bits} }
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
		groupSize,
		strs(func(r *Row) string { return r.Labeler }),
	}
	if len(values) != len(Columns) {
		return fmt.Errorf("%d column values for %d columns", len(values), len(Columns))
	}
	for i, v := range values {
		col := cols[i]
		if col.Rows() != 0 {
			return fmt.Errorf("column %s: holds %d rows before the append", Columns[i], col.Rows())
		}
		var err error
		if a, ok := v.(arrayColumn); ok {
			err = appendArray(col, a)
		} else {
			_, err = col.Append(v)
		}
		if err != nil {
			return fmt.Errorf("column %s: %w", Columns[i], err)
		}
		if col.Rows() != n {
			return fmt.Errorf("column %s: holds %d rows, want %d", Columns[i], col.Rows(), n)
		}
	}
	return nil
}

// arrayColumn is one Array column of a block, before encoding.
type arrayColumn interface {
	// rows is the number of arrays.
	rows() int
	// elems is the number of elements of all arrays.
	elems() int
	// encode appends the column in ClickHouse's native layout: each row's end
	// offset as a little-endian UInt64, then every element, little-endian.
	encode(b []byte) []byte
}

// appendArray appends a to col, which must be empty, by decoding a's
// native encoding. The driver's fixed-width column decoders copy the bytes
// in bulk, but write from the column's first row, so the column must start
// empty (appendColumns checks that).
func appendArray(col column.Interface, a arrayColumn) error {
	bp := arrayBufs.Get().(*[]byte)
	defer arrayBufs.Put(bp)
	buf := a.encode(slices.Grow((*bp)[:0], 8*a.rows()+4*a.elems()))
	*bp = buf
	return col.Decode(proto.NewReader(bytes.NewReader(buf)), a.rows())
}

// arrayBufs recycles the scratch buffers appendArray encodes into (the
// driver's column copies the bytes out, so a buffer is free again once
// Decode returns).
var arrayBufs = sync.Pool{New: func() any { return new([]byte) }}

// array32 is an Array(Int32) or Array(Float32) column; float values keep
// their exact bits.
type array32[T int32 | float32] struct {
	rs   []Row
	get  func(*Row) []T
	bits func(T) uint32
}

func (a array32[T]) rows() int { return len(a.rs) }

func (a array32[T]) elems() int {
	n := 0
	for i := range a.rs {
		n += len(a.get(&a.rs[i]))
	}
	return n
}

func (a array32[T]) encode(b []byte) []byte {
	var end uint64
	for i := range a.rs {
		end += uint64(len(a.get(&a.rs[i])))
		b = binary.LittleEndian.AppendUint64(b, end)
	}
	b = slices.Grow(b, 4*int(end))
	for i := range a.rs {
		vs := a.get(&a.rs[i])
		if nativeLittleEndian {
			// The elements' memory already is the wire layout: one copy.
			b = append(b, unsafe.Slice((*byte)(unsafe.Pointer(unsafe.SliceData(vs))), 4*len(vs))...)
			continue
		}
		for _, v := range vs {
			b = binary.LittleEndian.AppendUint32(b, a.bits(v))
		}
	}
	return b
}

// nativeLittleEndian tells whether this machine stores a uint32 in
// ClickHouse's wire order, so that a []int32 or []float32 can be copied
// to the wire as it is.
var nativeLittleEndian = binary.NativeEndian.Uint16([]byte{1, 0}) == 1

// sortedByKey returns rows in the table's ORDER BY order (run_id,
// trajectory_id; bytewise, as ClickHouse compares strings): rows itself
// when already sorted, else a sorted shallow copy. The server checks whether
// an inserted block is already sorted and then skips computing and applying
// a permutation to every column, which for 512-token rows is a copy of
// about 5 KB per row.
func sortedByKey(rows []Row) []Row {
	less := func(a, b *Row) int {
		if c := strings.Compare(a.RunID, b.RunID); c != 0 {
			return c
		}
		return strings.Compare(a.TrajectoryID, b.TrajectoryID)
	}
	if slices.IsSortedFunc(rows, func(a, b Row) int { return less(&a, &b) }) {
		return rows
	}
	out := slices.Clone(rows)
	slices.SortStableFunc(out, func(a, b Row) int { return less(&a, &b) })
	return out
}
