package tracelog

import (
	"bytes"
	"fmt"
	"math"
	"testing"
	"time"

	"github.com/ClickHouse/ch-go/proto"
	"github.com/ClickHouse/clickhouse-go/v2/lib/column"
)

// columnTypes are the types of Columns in the trajectories table (schemas/ddl).
var columnTypes = []string{
	"String", "Int64", "Int64", "String", "String", "String", "Int32",
	"String", "String", "String", "Array(Int32)", "UInt32", "UInt32",
	"String", "String", "UInt8", "Float32", "Array(Float32)",
	"Float32", "Float32", "String", "Float64", "Float64", "Float64",
	"Float64", "UInt8", "DateTime('UTC')", "UInt64",
	"UInt8", "String", "Array(Int32)", "Array(Float32)", "Array(Int32)",
	"Array(Float32)", "Array(Float32)", "Int64",
	"Int32", "String",
}

// newColumns returns empty driver columns for an INSERT of Columns.
func newColumns(tb testing.TB) []column.Interface {
	tb.Helper()
	if len(columnTypes) != len(Columns) {
		tb.Fatalf("%d column types for %d columns", len(columnTypes), len(Columns))
	}
	sc := &column.ServerContext{Timezone: time.UTC}
	cols := make([]column.Interface, len(Columns))
	for i, name := range Columns {
		c, err := column.Type(columnTypes[i]).Column(name, sc)
		if err != nil {
			tb.Fatal(err)
		}
		cols[i] = c
	}
	return cols
}

// appendRowwise fills cols through the driver's own per-row conversions:
// the reference the bulk path must match byte for byte.
func appendRowwise(tb testing.TB, cols []column.Interface, rows []Row, version uint64) {
	tb.Helper()
	for i := range rows {
		r := rows[i]
		ins := r.Inserted
		if ins == 0 {
			ins = version
		}
		nz32 := func(v []int32) []int32 {
			if v == nil {
				return []int32{}
			}
			return v
		}
		nzf := func(v []float32) []float32 {
			if v == nil {
				return []float32{}
			}
			return v
		}
		b2u := func(b bool) uint8 {
			if b {
				return 1
			}
			return 0
		}
		vals := []any{r.RunID, r.Step, r.PolicyVersion, r.TrajectoryID, r.GroupID, r.PromptID, r.SampleIndex,
			r.Task, r.Prompt, r.Completion, nz32(r.CompletionTokenIDs), r.CompletionTokens, r.Steps,
			r.FinishReason, r.ExtractedAnswer, b2u(r.Correct), r.TerminalReward, nzf(r.StepRewards),
			r.ShapedReward, r.Advantage, r.Shaper, r.SamplerLogprobSum, r.SampleMs, r.VerifyMs,
			r.LabelMs, b2u(r.Replayed), time.Unix(int64(dateTimeSeconds(r.Created)), 0).UTC(), ins,
			b2u(r.Labeled), r.ReferenceAnswer, nz32(r.PromptTokenIDs), nzf(r.TokenLogprobs), nz32(r.StepEnds),
			nzf(r.StepScores), nzf(r.StepAdvantages), r.CreatedMs,
			r.GroupSize, r.Labeler}
		for j, v := range vals {
			if err := cols[j].AppendRow(v); err != nil {
				tb.Fatalf("row %d column %s: %v", i, Columns[j], err)
			}
		}
	}
}

func encodeColumns(cols []column.Interface) []byte {
	var buf proto.Buffer
	encodeInto(&buf, cols)
	return buf.Buf
}

// encodeInto encodes cols into buf after resetting it, as the driver
// encodes a block into its connection's reused buffer.
func encodeInto(buf *proto.Buffer, cols []column.Interface) {
	buf.Reset()
	for _, c := range cols {
		c.Encode(buf)
	}
}

func TestAppendColumnsMatchesDriverEncoding(t *testing.T) {
	odd := syntheticRows("odd", 5, 8, 3)
	odd[0].StepRewards = nil
	odd[1].CompletionTokenIDs = []int32{}
	odd[1].TokenLogprobs = []float32{float32(math.NaN()), float32(math.Copysign(0, -1)), float32(math.Inf(-1)), math.SmallestNonzeroFloat32}
	odd[2].PromptTokenIDs = []int32{math.MinInt32, -1, 0, math.MaxInt32}
	odd[3].Inserted = 7
	odd[4].Completion = "nul \x00 bad utf8 \xff"
	cases := []struct {
		name string
		rows []Row
	}{
		{"one row", syntheticRows("one", 1, 512, 1)},
		{"edge values", odd},
		{"many rows", syntheticRows("many", 300, 64, 2)},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			const version = 12345
			bulk, ref := newColumns(t), newColumns(t)
			if err := appendColumns(bulk, tc.rows, version); err != nil {
				t.Fatal(err)
			}
			appendRowwise(t, ref, tc.rows, version)
			for i := range bulk {
				if bulk[i].Rows() != len(tc.rows) {
					t.Fatalf("column %s: %d rows, want %d", Columns[i], bulk[i].Rows(), len(tc.rows))
				}
				got, want := encodeColumns(bulk[i:i+1]), encodeColumns(ref[i:i+1])
				if !bytes.Equal(got, want) {
					t.Fatalf("column %s: native encoding differs from the driver's (%d vs %d bytes)", Columns[i], len(got), len(want))
				}
			}
		})
	}
}

func TestAppendColumnsRefusesFilledColumns(t *testing.T) {
	cols := newColumns(t)
	rows := syntheticRows("filled", 2, 4, 1)
	appendRowwise(t, cols, rows[:1], 1)
	for _, c := range cols[1:] {
		c.Reset()
	}
	err := appendColumns(cols, rows, 1)
	if err == nil {
		t.Fatal("appendColumns appended to a column that already held rows")
	}
	if cols[0].Rows() != 1 {
		t.Fatalf("first column changed: %d rows", cols[0].Rows())
	}
}

// BenchmarkAppendColumns measures the client's cost of building one INSERT
// block of 512-token rows (append plus native encoding), bulk against the
// driver's per-row conversions. The encoding buffer is reused, as the
// driver reuses its connection's.
//
//	go test ./tracelog/ -run XXX -bench AppendColumns
func BenchmarkAppendColumns(b *testing.B) {
	rows := syntheticRows("bench", 4096, 512, 1)
	for _, size := range []int{64, 4096} {
		for _, mode := range []string{"bulk", "rowwise"} {
			b.Run(fmt.Sprintf("%s/batch=%d", mode, size), func(b *testing.B) {
				var buf proto.Buffer
				for b.Loop() {
					cols := newColumns(b)
					if mode == "bulk" {
						if err := appendColumns(cols, rows[:size], 1); err != nil {
							b.Fatal(err)
						}
					} else {
						appendRowwise(b, cols, rows[:size], 1)
					}
					encodeInto(&buf, cols)
				}
				b.ReportMetric(float64(b.Elapsed().Nanoseconds())/1e3/float64(b.N*size), "µs/row")
			})
		}
	}
}
