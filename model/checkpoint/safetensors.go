package checkpoint

import (
	"bytes"
	"encoding/binary"
	"encoding/json"
	"fmt"
	"math"
	"sort"

	"github.com/wsgrpo/wsgrpo/model/policy"
)

// Safetensors limits: the header must be JSON of at most maxHeaderLen bytes
// (the reference implementation's limit), each tensor at most maxRank dims.
const (
	maxHeaderLen = 100 << 20
	maxRank      = 8
	metadataKey  = "__metadata__"
	dtypeF32     = "F32"
)

// stEntry is one tensor's record in a safetensors header.
type stEntry struct {
	DType       string   `json:"dtype"`
	Shape       []int64  `json:"shape"`
	DataOffsets []uint64 `json:"data_offsets"`
}

// WriteSafetensors encodes tensors in the safetensors format: an 8-byte
// little-endian header length, a JSON header (names sorted, space-padded to
// a multiple of 8 bytes) mapping each name to its dtype (F32), shape and
// data_offsets, then the raw little-endian data. metadata may be nil.
func WriteSafetensors(tensors policy.Weights, metadata map[string]string) ([]byte, error) {
	names := tensors.Names()
	header := make(map[string]any, len(names)+1)
	if len(metadata) > 0 {
		header[metadataKey] = metadata
	}
	var off uint64
	for _, name := range names {
		if name == metadataKey || name == "" {
			return nil, fmt.Errorf("%w: reserved tensor name %q", ErrSafetensors, name)
		}
		p := tensors[name]
		n, err := numElements(p.Shape)
		if err != nil {
			return nil, fmt.Errorf("tensor %q: %w", name, err)
		}
		if n != uint64(len(p.Data)) {
			return nil, fmt.Errorf("%w: tensor %q has %d values for shape %v", ErrSafetensors, name, len(p.Data), p.Shape)
		}
		shape := append([]int64{}, p.Shape...)
		header[name] = stEntry{DType: dtypeF32, Shape: shape, DataOffsets: []uint64{off, off + 4*n}}
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
// the header length against the data, the JSON, every dtype, shape and
// offset range, and that the tensors tile the data region exactly; failures
// wrap ErrSafetensors or ErrDType. It never panics on bad input.
func ReadSafetensors(data []byte) (policy.Weights, map[string]string, error) {
	if len(data) < 8 {
		return nil, nil, fmt.Errorf("%w: %d bytes, shorter than the 8-byte header length", ErrSafetensors, len(data))
	}
	hlen := binary.LittleEndian.Uint64(data)
	if hlen > maxHeaderLen || hlen > uint64(len(data)-8) {
		return nil, nil, fmt.Errorf("%w: header length %d exceeds file (%d bytes) or limit", ErrSafetensors, hlen, len(data))
	}
	body := data[8+hlen:]
	var raw map[string]json.RawMessage
	dec := json.NewDecoder(bytes.NewReader(data[8 : 8+hlen]))
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
	entries := make(map[string]stEntry, len(raw))
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
		var e stEntry
		if err := json.Unmarshal(msg, &e); err != nil {
			return nil, nil, fmt.Errorf("%w: tensor %q: %v", ErrSafetensors, name, err)
		}
		if e.DType != dtypeF32 {
			return nil, nil, fmt.Errorf("%w: tensor %q has dtype %q, want %s", ErrDType, name, e.DType, dtypeF32)
		}
		if len(e.Shape) > maxRank {
			return nil, nil, fmt.Errorf("%w: tensor %q has rank %d", ErrSafetensors, name, len(e.Shape))
		}
		n, err := numElements(e.Shape)
		if err != nil {
			return nil, nil, fmt.Errorf("tensor %q: %w", name, err)
		}
		if len(e.DataOffsets) != 2 {
			return nil, nil, fmt.Errorf("%w: tensor %q: data_offsets must have 2 entries", ErrSafetensors, name)
		}
		b, end := e.DataOffsets[0], e.DataOffsets[1]
		if b > end || end > uint64(len(body)) {
			return nil, nil, fmt.Errorf("%w: tensor %q: offsets [%d,%d] outside data of %d bytes", ErrSafetensors, name, b, end, len(body))
		}
		if end-b != 4*n {
			return nil, nil, fmt.Errorf("%w: tensor %q: %d bytes for shape %v", ErrSafetensors, name, end-b, e.Shape)
		}
		entries[name] = e
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
	if at != uint64(len(body)) {
		return nil, nil, fmt.Errorf("%w: %d trailing data bytes", ErrSafetensors, uint64(len(body))-at)
	}
	w := make(policy.Weights, len(entries))
	for name, e := range entries {
		src := body[e.DataOffsets[0]:e.DataOffsets[1]]
		vals := make([]float32, len(src)/4)
		for i := range vals {
			vals[i] = math.Float32frombits(binary.LittleEndian.Uint32(src[4*i:]))
		}
		w[name] = policy.Param{Shape: e.Shape, Data: vals}
	}
	return w, meta, nil
}

// numElements returns the product of shape, failing on negative dimensions
// or a product too large to address.
func numElements(shape []int64) (uint64, error) {
	n := uint64(1)
	for _, d := range shape {
		if d < 0 {
			return 0, fmt.Errorf("%w: negative dimension %d", ErrSafetensors, d)
		}
		if d != 0 && n > (math.MaxInt32*4)/uint64(d) {
			return 0, fmt.Errorf("%w: shape %v too large", ErrSafetensors, shape)
		}
		n *= uint64(d)
	}
	return n, nil
}
