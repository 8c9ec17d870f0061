package hf

import (
	"encoding/binary"
	"fmt"
	"io"
	"math"
	"os"

	"github.com/wsgrpo/wsgrpo/model/checkpoint"
)

// Safetensors dtypes this package reads and writes.
const (
	DTypeBF16 = "BF16"
	DTypeF16  = "F16"
	DTypeF32  = "F32"
)

// maxTensorElements bounds the values of one tensor.
const maxTensorElements = 1 << 34

// stDTypes maps each dtype this package reads and writes to its size in
// bytes per element.
var stDTypes = map[string]int{DTypeBF16: 2, DTypeF16: 2, DTypeF32: 4}

// stRules are the header rules of a Hugging Face safetensors file: BF16, F16
// or F32 tensors; every failure wraps ErrSafetensors.
var stRules = checkpoint.SafetensorsRules{DTypes: stDTypes, MaxElements: maxTensorElements, Err: ErrSafetensors}

// dtypeSize returns the bytes per element of a supported dtype, 0 otherwise.
func dtypeSize(dt string) int { return stDTypes[dt] }

// readHeader reads and decodes the header of the safetensors file f of the
// given size (see checkpoint.DecodeSafetensorsHeader); failures wrap
// ErrSafetensors.
func readHeader(f io.ReaderAt, size int64) (*checkpoint.SafetensorsHeader, error) {
	return checkpoint.DecodeSafetensorsHeader(f, size, stRules)
}

// stFile is an open safetensors file.
type stFile struct {
	f    *os.File
	path string
	hdr  *checkpoint.SafetensorsHeader
}

// openSafetensors opens path and reads its header.
func openSafetensors(path string) (*stFile, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, fmt.Errorf("%w: %w", ErrSafetensors, err)
	}
	fi, err := f.Stat()
	if err != nil {
		_ = f.Close()
		return nil, fmt.Errorf("%w: %w", ErrSafetensors, err)
	}
	hdr, err := readHeader(f, fi.Size())
	if err != nil {
		_ = f.Close()
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	return &stFile{f: f, path: path, hdr: hdr}, nil
}

// read returns tensor name converted to float32.
func (s *stFile) read(name string) ([]float32, error) {
	e := s.hdr.Tensors[name]
	buf := make([]byte, e.DataOffsets[1]-e.DataOffsets[0])
	if _, err := s.f.ReadAt(buf, s.hdr.DataStart+int64(e.DataOffsets[0])); err != nil {
		return nil, fmt.Errorf("%w: %s: tensor %q: %v", ErrSafetensors, s.path, name, err)
	}
	return decodeFloats(buf, e.DType), nil
}

// close closes the file.
func (s *stFile) close() { _ = s.f.Close() }

// decodeFloats converts little-endian values of dtype dt to float32.
func decodeFloats(b []byte, dt string) []float32 {
	size := dtypeSize(dt)
	out := make([]float32, len(b)/size)
	for i := range out {
		switch dt {
		case DTypeBF16:
			out[i] = math.Float32frombits(uint32(binary.LittleEndian.Uint16(b[2*i:])) << 16)
		case DTypeF16:
			out[i] = f16ToF32(binary.LittleEndian.Uint16(b[2*i:]))
		default:
			out[i] = math.Float32frombits(binary.LittleEndian.Uint32(b[4*i:]))
		}
	}
	return out
}

// appendFloats appends v encoded as dtype dt (rounded to nearest even for
// BF16 and F16) to out.
func appendFloats(out []byte, v []float32, dt string) []byte {
	for _, x := range v {
		switch dt {
		case DTypeBF16:
			out = binary.LittleEndian.AppendUint16(out, f32ToBF16(x))
		case DTypeF16:
			out = binary.LittleEndian.AppendUint16(out, f32ToF16(x))
		default:
			out = binary.LittleEndian.AppendUint32(out, math.Float32bits(x))
		}
	}
	return out
}

// f16ToF32 converts an IEEE half-precision value.
func f16ToF32(h uint16) float32 {
	sign := uint32(h>>15) << 31
	exp := uint32(h>>10) & 0x1f
	mant := uint32(h) & 0x3ff
	switch {
	case exp == 0x1f: // Inf or NaN
		return math.Float32frombits(sign | 0xff<<23 | mant<<13)
	case exp == 0 && mant == 0:
		return math.Float32frombits(sign)
	case exp == 0: // subnormal: mant·2^-24
		v := float32(mant) * (1.0 / (1 << 24))
		if sign != 0 {
			return -v
		}
		return v
	}
	return math.Float32frombits(sign | (exp+112)<<23 | mant<<13)
}

// f32ToBF16 rounds x to bfloat16, to nearest even; NaN stays NaN.
func f32ToBF16(x float32) uint16 {
	b := math.Float32bits(x)
	if x != x {
		return uint16(b>>16) | 0x40
	}
	b += 0x7fff + (b>>16)&1
	return uint16(b >> 16)
}

// f32ToF16 rounds x to IEEE half precision, to nearest even; values beyond
// the half range become ±Inf, NaN stays NaN.
func f32ToF16(x float32) uint16 {
	b := math.Float32bits(x)
	sign := uint16(b>>16) & 0x8000
	exp := int32(b>>23) & 0xff
	mant := b & 0x7fffff
	if exp == 0xff {
		if mant != 0 {
			return sign | 0x7e00
		}
		return sign | 0x7c00
	}
	e := exp - 127 + 15
	switch {
	case e >= 0x1f:
		return sign | 0x7c00
	case e <= 0:
		if e < -10 {
			return sign
		}
		// Subnormal half: shift the mantissa (with its implicit 1) right.
		m := mant | 0x800000
		shift := uint32(14 - e)
		half := m >> shift
		rem := m & (1<<shift - 1)
		mid := uint32(1) << (shift - 1)
		if rem > mid || (rem == mid && half&1 == 1) {
			half++
		}
		return sign | uint16(half)
	}
	half := uint32(e)<<10 | mant>>13
	rem := mant & 0x1fff
	if rem > 0x1000 || (rem == 0x1000 && half&1 == 1) {
		half++ // may carry into the exponent, up to Inf: still correct
	}
	return sign | uint16(half)
}
