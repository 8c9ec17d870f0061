package hf

import (
	"bytes"
	"encoding/binary"
	"encoding/json"
	"fmt"
	"io"
	"math"
	"os"
	"sort"
)

// Safetensors dtypes this package reads and writes.
const (
	DTypeBF16 = "BF16"
	DTypeF16  = "F16"
	DTypeF32  = "F32"
)

// Safetensors limits: the header is JSON of at most maxHeaderLen bytes (the
// reference implementation's limit); each tensor has at most maxRank dims
// and maxTensorElements values.
const (
	maxHeaderLen      = 100 << 20
	maxRank           = 8
	maxTensorElements = 1 << 34
	metadataKey       = "__metadata__"
)

// dtypeSize returns the bytes per element of a supported dtype, 0 otherwise.
func dtypeSize(dt string) int {
	switch dt {
	case DTypeBF16, DTypeF16:
		return 2
	case DTypeF32:
		return 4
	}
	return 0
}

// stTensor is one tensor's record in a safetensors header.
type stTensor struct {
	DType       string   `json:"dtype"`
	Shape       []int64  `json:"shape"`
	DataOffsets []uint64 `json:"data_offsets"`
}

// stHeader is a decoded safetensors header.
type stHeader struct {
	tensors  map[string]stTensor
	metadata map[string]string
	// dataStart is the file offset of the data region.
	dataStart int64
}

// decodeHeader parses the JSON header of a safetensors file whose data
// region holds dataLen bytes. It checks every dtype (BF16, F16 or F32),
// shape and offset range, and that the tensors tile the data region
// exactly; failures wrap ErrSafetensors. It never panics on bad input.
func decodeHeader(h []byte, dataLen uint64) (map[string]stTensor, map[string]string, error) {
	var raw map[string]json.RawMessage
	dec := json.NewDecoder(bytes.NewReader(h))
	if err := dec.Decode(&raw); err != nil {
		return nil, nil, fmt.Errorf("%w: header JSON: %v", ErrSafetensors, err)
	}
	if raw == nil {
		return nil, nil, fmt.Errorf("%w: header is not a JSON object", ErrSafetensors)
	}
	var meta map[string]string
	type span struct {
		name       string
		begin, end uint64
	}
	spans := make([]span, 0, len(raw))
	tensors := make(map[string]stTensor, len(raw))
	for name, msg := range raw {
		if name == metadataKey {
			if err := json.Unmarshal(msg, &meta); err != nil {
				return nil, nil, fmt.Errorf("%w: metadata: %v", ErrSafetensors, err)
			}
			continue
		}
		if name == "" {
			return nil, nil, fmt.Errorf("%w: empty tensor name", ErrSafetensors)
		}
		var e stTensor
		if err := json.Unmarshal(msg, &e); err != nil {
			return nil, nil, fmt.Errorf("%w: tensor %q: %v", ErrSafetensors, name, err)
		}
		size := dtypeSize(e.DType)
		if size == 0 {
			return nil, nil, fmt.Errorf("%w: tensor %q has dtype %q, want BF16, F16 or F32", ErrSafetensors, name, e.DType)
		}
		if len(e.Shape) > maxRank {
			return nil, nil, fmt.Errorf("%w: tensor %q has rank %d", ErrSafetensors, name, len(e.Shape))
		}
		n, err := shapeElements(e.Shape)
		if err != nil {
			return nil, nil, fmt.Errorf("tensor %q: %w", name, err)
		}
		if len(e.DataOffsets) != 2 {
			return nil, nil, fmt.Errorf("%w: tensor %q: data_offsets must have 2 entries", ErrSafetensors, name)
		}
		b, end := e.DataOffsets[0], e.DataOffsets[1]
		if b > end || end > dataLen {
			return nil, nil, fmt.Errorf("%w: tensor %q: offsets [%d,%d] outside data of %d bytes", ErrSafetensors, name, b, end, dataLen)
		}
		if end-b != uint64(size)*n {
			return nil, nil, fmt.Errorf("%w: tensor %q: %d bytes for %s shape %v", ErrSafetensors, name, end-b, e.DType, e.Shape)
		}
		tensors[name] = e
		spans = append(spans, span{name, b, end})
	}
	sort.Slice(spans, func(i, j int) bool {
		if spans[i].begin != spans[j].begin {
			return spans[i].begin < spans[j].begin
		}
		return spans[i].end < spans[j].end
	})
	var at uint64
	for _, s := range spans {
		if s.begin != at {
			return nil, nil, fmt.Errorf("%w: tensor %q starts at %d, expected %d (gap or overlap)", ErrSafetensors, s.name, s.begin, at)
		}
		at = s.end
	}
	if at != dataLen {
		return nil, nil, fmt.Errorf("%w: %d data bytes, tensors cover %d", ErrSafetensors, dataLen, at)
	}
	return tensors, meta, nil
}

// shapeElements returns the product of shape, failing on negative
// dimensions or more than maxTensorElements values.
func shapeElements(shape []int64) (uint64, error) {
	n := uint64(1)
	for _, d := range shape {
		if d < 0 {
			return 0, fmt.Errorf("%w: negative dimension %d", ErrSafetensors, d)
		}
		if d != 0 && n > maxTensorElements/uint64(d) {
			return 0, fmt.Errorf("%w: shape %v too large", ErrSafetensors, shape)
		}
		n *= uint64(d)
	}
	return n, nil
}

// readHeader reads and decodes the header of the safetensors file f of the
// given size.
func readHeader(f io.ReaderAt, size int64) (*stHeader, error) {
	var lenBuf [8]byte
	if size < 8 {
		return nil, fmt.Errorf("%w: %d bytes, shorter than the 8-byte header length", ErrSafetensors, size)
	}
	if _, err := f.ReadAt(lenBuf[:], 0); err != nil {
		return nil, fmt.Errorf("%w: %v", ErrSafetensors, err)
	}
	hlen := binary.LittleEndian.Uint64(lenBuf[:])
	if hlen > maxHeaderLen || hlen > uint64(size-8) {
		return nil, fmt.Errorf("%w: header length %d exceeds the file (%d bytes) or the limit", ErrSafetensors, hlen, size)
	}
	h := make([]byte, hlen)
	if _, err := f.ReadAt(h, 8); err != nil {
		return nil, fmt.Errorf("%w: header: %v", ErrSafetensors, err)
	}
	start := 8 + int64(hlen)
	tensors, meta, err := decodeHeader(h, uint64(size-start))
	if err != nil {
		return nil, err
	}
	return &stHeader{tensors: tensors, metadata: meta, dataStart: start}, nil
}

// stFile is an open safetensors file.
type stFile struct {
	f    *os.File
	path string
	hdr  *stHeader
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
	e := s.hdr.tensors[name]
	buf := make([]byte, e.DataOffsets[1]-e.DataOffsets[0])
	if _, err := s.f.ReadAt(buf, s.hdr.dataStart+int64(e.DataOffsets[0])); err != nil {
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
