package checkpoint

import (
	"bytes"
	"encoding/binary"
	"encoding/json"
	"fmt"
	"io"
	"math"
	"sort"
	"strings"

	"github.com/wsgrpo/wsgrpo/model/policy"
)

// Safetensors limits: the header must be JSON of at most maxHeaderLen bytes
// (the reference implementation's limit), each tensor at most maxRank dims;
// this package's F32 tensors hold at most maxF32Elements values.
const (
	maxHeaderLen   = 100 << 20
	maxRank        = 8
	maxF32Elements = math.MaxInt32 * 4
	dtypeF32       = "F32"
)

// SafetensorsMetadataKey is the reserved header key of a safetensors file's
// string-to-string metadata; no tensor may have this name.
const SafetensorsMetadataKey = "__metadata__"

// SafetensorsEntry is one tensor's record in a safetensors header: its
// dtype, shape and [begin, end) byte range within the data region.
type SafetensorsEntry struct {
	DType       string   `json:"dtype"`
	Shape       []int64  `json:"shape"`
	DataOffsets []uint64 `json:"data_offsets"`
}

// SafetensorsHeader is a decoded and checked safetensors header.
type SafetensorsHeader struct {
	// Tensors maps each tensor name to its entry.
	Tensors map[string]SafetensorsEntry
	// Metadata is the __metadata__ object, nil when the file has none.
	Metadata map[string]string
	// DataStart is the file offset of the data region (8 + header length);
	// a tensor's bytes are at DataStart + DataOffsets[0].
	DataStart int64
}

// SafetensorsRules says which tensors DecodeSafetensorsHeader accepts and
// which sentinel errors its failures wrap.
type SafetensorsRules struct {
	// DTypes maps each accepted dtype ("F32", "BF16", ...) to its size in
	// bytes per element.
	DTypes map[string]int
	// MaxElements bounds the number of values of one tensor.
	MaxElements uint64
	// Err is wrapped by every failure; nil means ErrSafetensors.
	Err error
	// DTypeErr is wrapped, instead of Err, by the failure for a dtype not in
	// DTypes; nil means Err.
	DTypeErr error
}

// f32Rules are the rules of this package's own files: F32 tensors only.
var f32Rules = SafetensorsRules{
	DTypes:      map[string]int{dtypeF32: 4},
	MaxElements: maxF32Elements,
	Err:         ErrSafetensors,
	DTypeErr:    ErrDType,
}

// DecodeSafetensorsHeader reads and checks the header of the safetensors
// file r of size bytes: the 8-byte little-endian header length (against the
// file and a 100 MiB limit), the JSON object, the optional __metadata__,
// and for every tensor a non-empty name, a dtype in rules.DTypes, at most 8
// non-negative dimensions of at most rules.MaxElements values, and a
// data_offsets range of exactly that many bytes inside the data region.
// The tensors must tile the data region exactly: no gap, overlap or
// trailing byte. Failures wrap rules.Err (rules.DTypeErr for a dtype); it
// never panics on bad input and reads no tensor data.
func DecodeSafetensorsHeader(r io.ReaderAt, size int64, rules SafetensorsRules) (*SafetensorsHeader, error) {
	errKind := rules.Err
	if errKind == nil {
		errKind = ErrSafetensors
	}
	dtypeErr := rules.DTypeErr
	if dtypeErr == nil {
		dtypeErr = errKind
	}
	if size < 8 {
		return nil, fmt.Errorf("%w: %d bytes, shorter than the 8-byte header length", errKind, size)
	}
	var lenBuf [8]byte
	if _, err := io.ReadFull(io.NewSectionReader(r, 0, 8), lenBuf[:]); err != nil {
		return nil, fmt.Errorf("%w: %v", errKind, err)
	}
	hlen := binary.LittleEndian.Uint64(lenBuf[:])
	if hlen > maxHeaderLen || hlen > uint64(size-8) {
		return nil, fmt.Errorf("%w: header length %d exceeds the file (%d bytes) or the limit", errKind, hlen, size)
	}
	h := make([]byte, hlen)
	if _, err := io.ReadFull(io.NewSectionReader(r, 8, int64(hlen)), h); err != nil {
		return nil, fmt.Errorf("%w: header: %v", errKind, err)
	}
	start := 8 + int64(hlen)
	dataLen := uint64(size - start)

	var raw map[string]json.RawMessage
	dec := json.NewDecoder(bytes.NewReader(h))
	if err := dec.Decode(&raw); err != nil {
		return nil, fmt.Errorf("%w: header JSON: %v", errKind, err)
	}
	if raw == nil {
		return nil, fmt.Errorf("%w: header is not a JSON object", errKind)
	}
	hdr := &SafetensorsHeader{Tensors: make(map[string]SafetensorsEntry, len(raw)), DataStart: start}
	type span struct {
		name       string
		begin, end uint64
	}
	spans := make([]span, 0, len(raw))
	for name, msg := range raw {
		if name == SafetensorsMetadataKey {
			if err := json.Unmarshal(msg, &hdr.Metadata); err != nil {
				return nil, fmt.Errorf("%w: metadata: %v", errKind, err)
			}
			continue
		}
		if name == "" {
			return nil, fmt.Errorf("%w: empty tensor name", errKind)
		}
		var e SafetensorsEntry
		if err := json.Unmarshal(msg, &e); err != nil {
			return nil, fmt.Errorf("%w: tensor %q: %v", errKind, name, err)
		}
		elem := rules.DTypes[e.DType]
		if elem <= 0 {
			return nil, fmt.Errorf("%w: tensor %q has dtype %q, want %s", dtypeErr, name, e.DType, dtypeList(rules.DTypes))
		}
		if len(e.Shape) > maxRank {
			return nil, fmt.Errorf("%w: tensor %q has rank %d", errKind, name, len(e.Shape))
		}
		n, err := shapeElements(e.Shape, rules.MaxElements, errKind)
		if err != nil {
			return nil, fmt.Errorf("tensor %q: %w", name, err)
		}
		if len(e.DataOffsets) != 2 {
			return nil, fmt.Errorf("%w: tensor %q: data_offsets must have 2 entries", errKind, name)
		}
		b, end := e.DataOffsets[0], e.DataOffsets[1]
		if b > end || end > dataLen {
			return nil, fmt.Errorf("%w: tensor %q: offsets [%d,%d] outside data of %d bytes", errKind, name, b, end, dataLen)
		}
		if end-b != uint64(elem)*n {
			return nil, fmt.Errorf("%w: tensor %q: %d bytes for %s shape %v", errKind, name, end-b, e.DType, e.Shape)
		}
		hdr.Tensors[name] = e
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
			return nil, fmt.Errorf("%w: tensor %q starts at %d, expected %d (gap or overlap)", errKind, s.name, s.begin, at)
		}
		at = s.end
	}
	if at != dataLen {
		return nil, fmt.Errorf("%w: %d data bytes, tensors cover %d (%d trailing)", errKind, dataLen, at, dataLen-at)
	}
	return hdr, nil
}

// WriteSafetensors encodes tensors in the safetensors format: an 8-byte
// little-endian header length, a JSON header (names sorted, space-padded to
// a multiple of 8 bytes) mapping each name to its dtype (F32), shape and
// data_offsets, then the raw little-endian data. metadata may be nil.
func WriteSafetensors(tensors policy.Weights, metadata map[string]string) ([]byte, error) {
	names := tensors.Names()
	header := make(map[string]any, len(names)+1)
	if len(metadata) > 0 {
		header[SafetensorsMetadataKey] = metadata
	}
	var off uint64
	for _, name := range names {
		if name == SafetensorsMetadataKey || name == "" {
			return nil, fmt.Errorf("%w: reserved tensor name %q", ErrSafetensors, name)
		}
		p := tensors[name]
		n, err := shapeElements(p.Shape, maxF32Elements, ErrSafetensors)
		if err != nil {
			return nil, fmt.Errorf("tensor %q: %w", name, err)
		}
		if n != uint64(len(p.Data)) {
			return nil, fmt.Errorf("%w: tensor %q has %d values for shape %v", ErrSafetensors, name, len(p.Data), p.Shape)
		}
		shape := append([]int64{}, p.Shape...)
		header[name] = SafetensorsEntry{DType: dtypeF32, Shape: shape, DataOffsets: []uint64{off, off + 4*n}}
		off += 4 * n
	}
	h, err := json.Marshal(header)
	if err != nil {
		return nil, fmt.Errorf("%w: header: %w", ErrSafetensors, err)
	}
	for len(h)%8 != 0 {
		h = append(h, ' ')
	}
	out := make([]byte, 8, 8+len(h)+int(off))
	binary.LittleEndian.PutUint64(out, uint64(len(h)))
	out = append(out, h...)
	for _, name := range names {
		for _, v := range tensors[name].Data {
			out = binary.LittleEndian.AppendUint32(out, math.Float32bits(v))
		}
	}
	return out, nil
}

// ReadSafetensors decodes a safetensors file holding F32 tensors. It checks
// the header as DecodeSafetensorsHeader does (the header length against the
// data, the JSON, every dtype, shape and offset range, and that the tensors
// tile the data region exactly); failures wrap ErrSafetensors or ErrDType.
// It never panics on bad input.
func ReadSafetensors(data []byte) (policy.Weights, map[string]string, error) {
	h, err := DecodeSafetensorsHeader(bytes.NewReader(data), int64(len(data)), f32Rules)
	if err != nil {
		return nil, nil, err
	}
	body := data[h.DataStart:]
	w := make(policy.Weights, len(h.Tensors))
	for name, e := range h.Tensors {
		src := body[e.DataOffsets[0]:e.DataOffsets[1]]
		vals := make([]float32, len(src)/4)
		for i := range vals {
			vals[i] = math.Float32frombits(binary.LittleEndian.Uint32(src[4*i:]))
		}
		w[name] = policy.Param{Shape: e.Shape, Data: vals}
	}
	return w, h.Metadata, nil
}

// dtypeList names the dtypes of m in sorted order: "F32", "F16 or F32",
// "BF16, F16 or F32".
func dtypeList(m map[string]int) string {
	names := make([]string, 0, len(m))
	for dt := range m {
		names = append(names, dt)
	}
	sort.Strings(names)
	if len(names) < 2 {
		return strings.Join(names, "")
	}
	return strings.Join(names[:len(names)-1], ", ") + " or " + names[len(names)-1]
}

// shapeElements returns the product of shape, failing (with errKind) on
// negative dimensions or more than limit values.
func shapeElements(shape []int64, limit uint64, errKind error) (uint64, error) {
	n := uint64(1)
	for _, d := range shape {
		if d < 0 {
			return 0, fmt.Errorf("%w: negative dimension %d", errKind, d)
		}
		if d != 0 && n > limit/uint64(d) {
			return 0, fmt.Errorf("%w: shape %v too large", errKind, shape)
		}
		n *= uint64(d)
	}
	return n, nil
}
