package onnx

import (
	"fmt"
	"math"
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
	switch {
	case used > 1:
		return fmt.Errorf("%w: tensor %q: more than one data field set", ErrInvalidTensor, t.Name)
	case used == 0 && n != 0:
		return fmt.Errorf("%w: tensor %q: no data for %d elements", ErrInvalidTensor, t.Name, n)
	}
	return nil
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
