package tracelog

import (
	"encoding/binary"
	"errors"
	"fmt"
	"math"
	"time"
)

// RowBinary is ClickHouse's binary row format: numbers little-endian,
// strings and arrays prefixed by a uvarint length. The embedded backend
// inserts and reads whole rows in it: it is exact for any bytes (JSON is
// not, for invalid UTF-8) and the cheapest format to produce.

// errRowBinary wraps RowBinary input that cannot be decoded.
var errRowBinary = errors.New("malformed RowBinary")

// appendRowBinary appends r in RowBinary, columns in Columns order.
func appendRowBinary(b []byte, r *Row) []byte {
	le := binary.LittleEndian
	str := func(s string) { b = binary.AppendUvarint(b, uint64(len(s))); b = append(b, s...) }
	i32s := func(v []int32) {
		b = binary.AppendUvarint(b, uint64(len(v)))
		for _, x := range v {
			b = le.AppendUint32(b, uint32(x))
		}
	}
	f32s := func(v []float32) {
		b = binary.AppendUvarint(b, uint64(len(v)))
		for _, x := range v {
			b = le.AppendUint32(b, math.Float32bits(x))
		}
	}
	u8 := func(v bool) {
		if v {
			b = append(b, 1)
		} else {
			b = append(b, 0)
		}
	}
	f64 := func(v float64) { b = le.AppendUint64(b, math.Float64bits(v)) }
	f32 := func(v float32) { b = le.AppendUint32(b, math.Float32bits(v)) }

	str(r.RunID)
	b = le.AppendUint64(b, uint64(r.Step))
	b = le.AppendUint64(b, uint64(r.PolicyVersion))
	str(r.TrajectoryID)
	str(r.GroupID)
	str(r.PromptID)
	b = le.AppendUint32(b, uint32(r.SampleIndex))
	str(r.Task)
	str(r.Prompt)
	str(r.Completion)
	i32s(r.CompletionTokenIDs)
	b = le.AppendUint32(b, r.CompletionTokens)
	b = le.AppendUint32(b, r.Steps)
	str(r.FinishReason)
	str(r.ExtractedAnswer)
	u8(r.Correct)
	f32(r.TerminalReward)
	f32s(r.StepRewards)
	f32(r.ShapedReward)
	f32(r.Advantage)
	str(r.Shaper)
	f64(r.SamplerLogprobSum)
	f64(r.SampleMs)
	f64(r.VerifyMs)
	f64(r.LabelMs)
	u8(r.Replayed)
	b = le.AppendUint32(b, dateTimeSeconds(r.Created))
	b = le.AppendUint64(b, r.Inserted)
	u8(r.Labeled)
	str(r.ReferenceAnswer)
	i32s(r.PromptTokenIDs)
	f32s(r.TokenLogprobs)
	i32s(r.StepEnds)
	f32s(r.StepScores)
	f32s(r.StepAdvantages)
	b = le.AppendUint64(b, uint64(r.CreatedMs))
	b = le.AppendUint32(b, uint32(r.GroupSize))
	str(r.Labeler)
	return b
}

// dateTimeSeconds clamps t to the range of a ClickHouse DateTime.
func dateTimeSeconds(t time.Time) uint32 {
	s := t.Unix()
	switch {
	case t.IsZero() || s < 0:
		return 0
	case s > math.MaxUint32:
		return math.MaxUint32
	}
	return uint32(s)
}

// rbReader decodes RowBinary with bounds checks: a length field can never
// make it read or allocate past the end of its input.
type rbReader struct {
	b   []byte
	err error
}

func (r *rbReader) fail(what string) {
	if r.err == nil {
		r.err = fmt.Errorf("%w: truncated %s", errRowBinary, what)
	}
	r.b = nil
}

func (r *rbReader) take(n int, what string) []byte {
	if r.err != nil || n < 0 || n > len(r.b) {
		r.fail(what)
		return nil
	}
	v := r.b[:n]
	r.b = r.b[n:]
	return v
}

func (r *rbReader) u32() uint32 {
	if v := r.take(4, "UInt32"); v != nil {
		return binary.LittleEndian.Uint32(v)
	}
	return 0
}

func (r *rbReader) u64() uint64 {
	if v := r.take(8, "UInt64"); v != nil {
		return binary.LittleEndian.Uint64(v)
	}
	return 0
}

func (r *rbReader) u8() bool {
	if v := r.take(1, "UInt8"); v != nil {
		return v[0] != 0
	}
	return false
}

func (r *rbReader) f32() float32 { return math.Float32frombits(r.u32()) }
func (r *rbReader) f64() float64 { return math.Float64frombits(r.u64()) }

// count reads an array or string length whose elements take size bytes each.
func (r *rbReader) count(size int, what string) int {
	if r.err != nil {
		return 0
	}
	n, k := binary.Uvarint(r.b)
	if k <= 0 || n > uint64(len(r.b)-k)/uint64(size) {
		r.fail(what)
		return 0
	}
	r.b = r.b[k:]
	return int(n)
}

func (r *rbReader) str() string {
	n := r.count(1, "String")
	return string(r.take(n, "String"))
}

func (r *rbReader) i32s() []int32 {
	n := r.count(4, "Array(Int32)")
	if n == 0 {
		return nil
	}
	raw := r.take(4*n, "Array(Int32)")
	if raw == nil {
		return nil
	}
	out := make([]int32, n)
	for i := range out {
		out[i] = int32(binary.LittleEndian.Uint32(raw[4*i:]))
	}
	return out
}

func (r *rbReader) f32s() []float32 {
	n := r.count(4, "Array(Float32)")
	if n == 0 {
		return nil
	}
	raw := r.take(4*n, "Array(Float32)")
	if raw == nil {
		return nil
	}
	out := make([]float32, n)
	for i := range out {
		out[i] = math.Float32frombits(binary.LittleEndian.Uint32(raw[4*i:]))
	}
	return out
}

// decodeRowBinary reads rows written in Columns order until data ends.
func decodeRowBinary(data []byte) ([]Row, error) {
	r := &rbReader{b: data}
	var rows []Row
	for len(r.b) > 0 && r.err == nil {
		var x Row
		x.RunID = r.str()
		x.Step = int64(r.u64())
		x.PolicyVersion = int64(r.u64())
		x.TrajectoryID = r.str()
		x.GroupID = r.str()
		x.PromptID = r.str()
		x.SampleIndex = int32(r.u32())
		x.Task = r.str()
		x.Prompt = r.str()
		x.Completion = r.str()
		x.CompletionTokenIDs = r.i32s()
		x.CompletionTokens = r.u32()
		x.Steps = r.u32()
		x.FinishReason = r.str()
		x.ExtractedAnswer = r.str()
		x.Correct = r.u8()
		x.TerminalReward = r.f32()
		x.StepRewards = r.f32s()
		x.ShapedReward = r.f32()
		x.Advantage = r.f32()
		x.Shaper = r.str()
		x.SamplerLogprobSum = r.f64()
		x.SampleMs = r.f64()
		x.VerifyMs = r.f64()
		x.LabelMs = r.f64()
		x.Replayed = r.u8()
		x.Created = time.Unix(int64(r.u32()), 0).UTC()
		x.Inserted = r.u64()
		x.Labeled = r.u8()
		x.ReferenceAnswer = r.str()
		x.PromptTokenIDs = r.i32s()
		x.TokenLogprobs = r.f32s()
		x.StepEnds = r.i32s()
		x.StepScores = r.f32s()
		x.StepAdvantages = r.f32s()
		x.CreatedMs = int64(r.u64())
		x.GroupSize = int32(r.u32())
		x.Labeler = r.str()
		if r.err == nil {
			rows = append(rows, x)
		}
	}
	if r.err != nil {
		return nil, r.err
	}
	return rows, nil
}
