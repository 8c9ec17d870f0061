package checkpoint

import (
	"bytes"
	"encoding/binary"
	"errors"
	"strings"
	"testing"

	"github.com/wsgrpo/wsgrpo/model/policy"
)

// rawSafetensors assembles a file from a header and data bytes.
func rawSafetensors(header string, data []byte) []byte {
	out := binary.LittleEndian.AppendUint64(nil, uint64(len(header)))
	return append(append(out, header...), data...)
}

func TestSafetensorsRoundTrip(t *testing.T) {
	w := policy.Weights{
		"a":      {Shape: []int64{2, 3}, Data: []float32{1, 2, 3, 4, 5, -6.5}},
		"b.bias": {Shape: []int64{1}, Data: []float32{0.25}},
		"empty":  {Shape: []int64{0, 4}, Data: []float32{}},
	}
	data, err := WriteSafetensors(w, map[string]string{"format": "pt"})
	if err != nil {
		t.Fatal(err)
	}
	if n := binary.LittleEndian.Uint64(data); n%8 != 0 {
		t.Fatalf("header length %d not a multiple of 8", n)
	}
	back, meta, err := ReadSafetensors(data)
	if err != nil {
		t.Fatal(err)
	}
	if meta["format"] != "pt" || len(back) != len(w) {
		t.Fatalf("meta %v, %d tensors", meta, len(back))
	}
	for name, p := range w {
		q := back[name]
		if len(q.Shape) != len(p.Shape) || len(q.Data) != len(p.Data) {
			t.Fatalf("%s: %v %v", name, q.Shape, q.Data)
		}
		for i := range p.Data {
			if q.Data[i] != p.Data[i] {
				t.Fatalf("%s[%d] = %v, want %v", name, i, q.Data[i], p.Data[i])
			}
		}
	}
}

func TestReadSafetensorsErrors(t *testing.T) {
	eight := make([]byte, 8)
	tests := []struct {
		name string
		data []byte
		want error
	}{
		{"empty", nil, ErrSafetensors},
		{"short", []byte{1, 2, 3}, ErrSafetensors},
		{"header past end", binary.LittleEndian.AppendUint64(nil, 100), ErrSafetensors},
		{"huge header", binary.LittleEndian.AppendUint64(nil, 1<<62), ErrSafetensors},
		{"not json", rawSafetensors("{x", nil), ErrSafetensors},
		{"json array", rawSafetensors("[1]", nil), ErrSafetensors},
		{"json null", rawSafetensors("null", nil), ErrSafetensors},
		{"dtype", rawSafetensors(`{"a":{"dtype":"F16","shape":[4],"data_offsets":[0,8]}}`, eight), ErrDType},
		{"negative dim", rawSafetensors(`{"a":{"dtype":"F32","shape":[-2],"data_offsets":[0,8]}}`, eight), ErrSafetensors},
		{"size mismatch", rawSafetensors(`{"a":{"dtype":"F32","shape":[3],"data_offsets":[0,8]}}`, eight), ErrSafetensors},
		{"offsets reversed", rawSafetensors(`{"a":{"dtype":"F32","shape":[0],"data_offsets":[8,0]}}`, eight), ErrSafetensors},
		{"offsets past end", rawSafetensors(`{"a":{"dtype":"F32","shape":[4],"data_offsets":[0,16]}}`, eight), ErrSafetensors},
		{"one offset", rawSafetensors(`{"a":{"dtype":"F32","shape":[2],"data_offsets":[8]}}`, eight), ErrSafetensors},
		{"gap", rawSafetensors(`{"a":{"dtype":"F32","shape":[1],"data_offsets":[4,8]}}`, eight), ErrSafetensors},
		{"overlap", rawSafetensors(`{"a":{"dtype":"F32","shape":[2],"data_offsets":[0,8]},"b":{"dtype":"F32","shape":[1],"data_offsets":[4,8]}}`, eight), ErrSafetensors},
		{"trailing data", rawSafetensors(`{"a":{"dtype":"F32","shape":[1],"data_offsets":[0,4]}}`, eight), ErrSafetensors},
		{"huge shape", rawSafetensors(`{"a":{"dtype":"F32","shape":[4294967296,4294967296],"data_offsets":[0,8]}}`, eight), ErrSafetensors},
		{"bad metadata", rawSafetensors(`{"__metadata__":{"k":1}}`, nil), ErrSafetensors},
		{"rank", rawSafetensors(`{"a":{"dtype":"F32","shape":[1,1,1,1,1,1,1,1,1],"data_offsets":[0,4]}}`, eight[:4]), ErrSafetensors},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if _, _, err := ReadSafetensors(tt.data); !errors.Is(err, tt.want) {
				t.Fatalf("got %v, want %v", err, tt.want)
			}
		})
	}
}

// TestDecodeSafetensorsHeaderRules checks the rules a caller passes: the
// accepted dtypes and their sizes, and the sentinels failures wrap.
func TestDecodeSafetensorsHeaderRules(t *testing.T) {
	errOwn := errors.New("own sentinel")
	half := map[string]int{"BF16": 2, "F16": 2, "F32": 4}
	file := rawSafetensors(`{"__metadata__":{"k":"v"},"a":{"dtype":"BF16","shape":[2],"data_offsets":[0,4]},"b":{"dtype":"F32","shape":[1],"data_offsets":[4,8]}}`, make([]byte, 8))
	h, err := DecodeSafetensorsHeader(bytes.NewReader(file), int64(len(file)), SafetensorsRules{DTypes: half, MaxElements: 16})
	if err != nil {
		t.Fatal(err)
	}
	if len(h.Tensors) != 2 || h.Metadata["k"] != "v" || h.DataStart != int64(len(file)-8) {
		t.Fatalf("header = %+v", h)
	}
	tests := []struct {
		name  string
		file  []byte
		rules SafetensorsRules
		want  error
		msg   string
	}{
		{"default sentinel", file, SafetensorsRules{DTypes: map[string]int{"F32": 4}, MaxElements: 16}, ErrSafetensors, `want F32`},
		{"dtype sentinel", file, SafetensorsRules{DTypes: map[string]int{"F32": 4}, MaxElements: 16, Err: errOwn, DTypeErr: ErrDType}, ErrDType, `dtype "BF16"`},
		{"own sentinel", file, SafetensorsRules{DTypes: map[string]int{"F16": 2, "F32": 4}, MaxElements: 16, Err: errOwn}, errOwn, "want F16 or F32"},
		{"element limit", file, SafetensorsRules{DTypes: half, MaxElements: 1, Err: errOwn}, errOwn, "too large"},
		{"trailing", append(file, 0, 0), SafetensorsRules{DTypes: half, MaxElements: 16, Err: errOwn}, errOwn, "2 trailing"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := DecodeSafetensorsHeader(bytes.NewReader(tt.file), int64(len(tt.file)), tt.rules)
			if !errors.Is(err, tt.want) || !strings.Contains(err.Error(), tt.msg) {
				t.Fatalf("got %v, want %v mentioning %q", err, tt.want, tt.msg)
			}
		})
	}
}

func FuzzReadSafetensors(f *testing.F) {
	good, err := WriteSafetensors(policy.Weights{
		"x": {Shape: []int64{2, 2}, Data: []float32{1, 2, 3, 4}},
		"y": {Shape: []int64{1}, Data: []float32{5}},
	}, map[string]string{"k": "v"})
	if err != nil {
		f.Fatal(err)
	}
	f.Add(good)
	f.Add(good[:20])
	f.Add(rawSafetensors(`{"a":{"dtype":"F32","shape":[2],"data_offsets":[0,8]}}`, make([]byte, 8)))
	f.Fuzz(func(t *testing.T, data []byte) {
		w, _, err := ReadSafetensors(data)
		if err != nil {
			return
		}
		again, err := WriteSafetensors(w, nil)
		if err != nil {
			t.Fatalf("accepted tensors cannot be rewritten: %v", err)
		}
		if _, _, err := ReadSafetensors(again); err != nil {
			t.Fatalf("rewritten file rejected: %v", err)
		}
	})
}
