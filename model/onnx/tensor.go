package onnx

import (
	"encoding/binary"
	"fmt"
	"math"
	"unsafe"
)

// maxElements bounds the element count of one tensor (2^40), far above any
// model wsgrpo trains and far below int overflow.
const maxElements = 1 << 40

// ElemSize returns the width in bytes of one element of dt in raw_data, or 0
// for types this package does not know.
func (dt DataType) ElemSize() int {
	switch dt {
	case Uint8, Int8, Bool:
		return 1
	case Float16:
		return 2
	case Float, Int32:
		return 4
	case Int64, Double:
		return 8
	}
	return 0
}

// String returns the ONNX name of dt.
func (dt DataType) String() string {
	switch dt {
	case Undefined:
		return "undefined"
	case Float:
		return "float"
	case Uint8:
		return "uint8"
	case Int8:
		return "int8"
	case Int32:
		return "int32"
	case Int64:
		return "int64"
	case Bool:
		return "bool"
	case Float16:
		return "float16"
	case Double:
		return "double"
	}
	return fmt.Sprintf("DataType(%d)", int32(dt))
}

// NumElements returns the number of elements a tensor of the given dims
// holds (1 for a scalar). It fails for negative dims or absurd sizes.
func NumElements(dims []int64) (int, error) {
	n := int64(1)
	for _, d := range dims {
		if d < 0 {
			return 0, fmt.Errorf("%w: negative dimension %d", ErrInvalidTensor, d)
		}
		if d != 0 && n > maxElements/d {
			return 0, fmt.Errorf("%w: more than %d elements", ErrInvalidTensor, int64(maxElements))
		}
		n *= d
	}
	return int(n), nil
}

// check verifies that exactly one data field is used, that it suits the data
// type, and that it holds as many elements as the dims say.
func (t *Tensor) check() error {
	n, err := NumElements(t.Dims)
	if err != nil {
		return fmt.Errorf("tensor %q: %w", t.Name, err)
	}
	type field struct {
		name string
		len  int
		ok   bool
	}
	fields := []field{
		{"float", len(t.Float), t.DataType == Float},
		{"double", len(t.Double), t.DataType == Double},
		{"int64", len(t.Int64), t.DataType == Int64},
		{"int32", len(t.Int32), t.DataType == Int32 || t.DataType == Bool || t.DataType == Uint8 ||
			t.DataType == Int8 || t.DataType == Float16},
	}
	used := 0
	if len(t.Raw) > 0 {
		used++
		if sz := t.DataType.ElemSize(); sz > 0 && len(t.Raw) != n*sz {
			return fmt.Errorf("%w: tensor %q: %d raw bytes, want %d for %d %s elements",
				ErrInvalidTensor, t.Name, len(t.Raw), n*sz, n, t.DataType)
		}
	}
	for _, f := range fields {
		if f.len == 0 {
			continue
		}
		used++
		if !f.ok {
			return fmt.Errorf("%w: tensor %q: %s data for type %s", ErrInvalidTensor, t.Name, f.name, t.DataType)
		}
		if f.len != n {
			return fmt.Errorf("%w: tensor %q: %d elements, dims %v want %d", ErrInvalidTensor, t.Name, f.len, t.Dims, n)
		}
	}
	if t.External != nil {
		return t.checkExternal(n, used)
	}
	switch {
	case used > 1:
		return fmt.Errorf("%w: tensor %q: more than one data field set", ErrInvalidTensor, t.Name)
	case used == 0 && n != 0:
		return fmt.Errorf("%w: tensor %q: no data for %d elements", ErrInvalidTensor, t.Name, n)
	}
	return nil
}

// checkExternal verifies an external tensor: no data of its own (used data
// fields), a relative location, and a length that fits the dims.
func (t *Tensor) checkExternal(n, used int) error {
	e := t.External
	switch {
	case used > 0:
		return fmt.Errorf("%w: tensor %q: external and in-model data", ErrInvalidTensor, t.Name)
	case e.Location == "":
		return fmt.Errorf("%w: tensor %q: external data without a location", ErrInvalidTensor, t.Name)
	case e.Offset < 0 || e.Length < 0:
		return fmt.Errorf("%w: tensor %q: external offset %d, length %d", ErrInvalidTensor, t.Name, e.Offset, e.Length)
	}
	if sz := t.DataType.ElemSize(); sz > 0 && e.Length != int64(n)*int64(sz) {
		return fmt.Errorf("%w: tensor %q: %d external bytes, want %d for %d %s elements",
			ErrInvalidTensor, t.Name, e.Length, int64(n)*int64(sz), n, t.DataType)
	}
	return nil
}

// DataSize returns the bytes t's data takes as raw_data: 0 for an external
// tensor and for data held in int32_data for narrower types (bool, 8-bit
// integers, float16), which are written as they are.
func (t *Tensor) DataSize() int64 {
	switch {
	case t.External != nil:
		return 0
	case len(t.Raw) > 0:
		return int64(len(t.Raw))
	case len(t.Int32) > 0 && t.DataType != Int32:
		return 0
	}
	return 4*int64(len(t.Float)) + 8*int64(len(t.Double)) + 8*int64(len(t.Int64)) + 4*int64(len(t.Int32))
}

// RawData returns t's data in the raw_data (and external data) layout:
// little-endian, ElemSize bytes an element. On a little-endian machine the
// typed slice is viewed in place, not copied, so the result shares t's
// memory: a multi-gigabyte weight costs nothing extra. It returns nil for
// an external tensor, an empty one, and data kept in int32_data for
// narrower types.
func (t *Tensor) RawData() []byte {
	if t.External != nil {
		return nil
	}
	switch {
	case len(t.Raw) > 0:
		return t.Raw
	case len(t.Float) > 0:
		return leView(t.Float, 4, func(b []byte, i int) { binary.LittleEndian.PutUint32(b, math.Float32bits(t.Float[i])) })
	case len(t.Double) > 0:
		return leView(t.Double, 8, func(b []byte, i int) { binary.LittleEndian.PutUint64(b, math.Float64bits(t.Double[i])) })
	case len(t.Int64) > 0:
		return leView(t.Int64, 8, func(b []byte, i int) { binary.LittleEndian.PutUint64(b, uint64(t.Int64[i])) })
	case len(t.Int32) > 0 && t.DataType == Int32:
		return leView(t.Int32, 4, func(b []byte, i int) { binary.LittleEndian.PutUint32(b, uint32(t.Int32[i])) })
	}
	return nil
}

// littleEndian reports whether this machine stores integers little-endian,
// the raw_data layout.
var littleEndian = func() bool {
	x := uint16(1)
	return *(*byte)(unsafe.Pointer(&x)) == 1
}()

// leView returns v's bytes in little-endian order: v's own memory on a
// little-endian machine, else a copy that put fills element by element.
func leView[T any](v []T, size int, put func(b []byte, i int)) []byte {
	if littleEndian {
		return unsafe.Slice((*byte)(unsafe.Pointer(unsafe.SliceData(v))), len(v)*size)
	}
	b := make([]byte, len(v)*size)
	for i := range v {
		put(b[i*size:], i)
	}
	return b
}

// float32sFromLE decodes little-endian float32s.
func float32sFromLE(b []byte) []float32 {
	out := make([]float32, len(b)/4)
	for i := range out {
		out[i] = math.Float32frombits(le32(b[4*i:]))
	}
	return out
}

// float64sFromLE decodes little-endian float64s.
func float64sFromLE(b []byte) []float64 {
	out := make([]float64, len(b)/8)
	for i := range out {
		out[i] = math.Float64frombits(le64(b[8*i:]))
	}
	return out
}

// int64sFromLE decodes little-endian int64s.
func int64sFromLE(b []byte) []int64 {
	out := make([]int64, len(b)/8)
	for i := range out {
		out[i] = int64(le64(b[8*i:]))
	}
	return out
}

// int32sFromLE decodes little-endian int32s.
func int32sFromLE(b []byte) []int32 {
	out := make([]int32, len(b)/4)
	for i := range out {
		out[i] = int32(le32(b[4*i:]))
	}
	return out
}

func le32(b []byte) uint32 {
	return uint32(b[0]) | uint32(b[1])<<8 | uint32(b[2])<<16 | uint32(b[3])<<24
}

func le64(b []byte) uint64 {
	return uint64(le32(b)) | uint64(le32(b[4:]))<<32
}
