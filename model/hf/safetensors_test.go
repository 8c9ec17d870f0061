package hf

import (
	"encoding/binary"
	"encoding/json"
	"errors"
	"math"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/wsgrpo/wsgrpo/model/policy"
)

func TestHalfConversions(t *testing.T) {
	tests := []struct {
		name string
		in   float32
		bf16 uint16
		f16  uint16
	}{
		{"one", 1, 0x3f80, 0x3c00},
		{"minus two", -2, 0xc000, 0xc000},
		{"zero", 0, 0, 0},
		{"bf16 half ulp ties to even", 1 + 1.0/256, 0x3f80, 0x3c04},
		{"bf16 tie rounds up to even", 1 + 3.0/256, 0x3f82, 0x3c0c},
		{"f16 max", 65504, 0x4780, 0x7bff},
		{"f16 overflow", 70000, 0x4789, 0x7c00},
		{"f16 subnormal", 1.0 / (1 << 24), 0x3380, 0x0001},
		{"f16 underflow", 1e-10, 0x2edc, 0},
		{"f16 tie to even", 1 + 1.0/2048, 0x3f80, 0x3c00},
		{"f16 tie rounds up to even", 1 + 1.5/1024, 0x3f80, 0x3c02},
		{"inf", float32(math.Inf(1)), 0x7f80, 0x7c00},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := f32ToBF16(tt.in); got != tt.bf16 {
				t.Fatalf("f32ToBF16(%v) = %#x, want %#x", tt.in, got, tt.bf16)
			}
			if got := f32ToF16(tt.in); got != tt.f16 {
				t.Fatalf("f32ToF16(%v) = %#x, want %#x", tt.in, got, tt.f16)
			}
		})
	}
	if v := f16ToF32(f32ToF16(float32(math.NaN()))); v == v {
		t.Fatal("f16 NaN did not survive")
	}
	if v := math.Float32frombits(uint32(f32ToBF16(float32(math.NaN()))) << 16); v == v {
		t.Fatal("bf16 NaN did not survive")
	}
	// Every finite half value converts to float32 and back unchanged.
	for h := 0; h < 1<<16; h++ {
		if h&0x7c00 == 0x7c00 && h&0x3ff != 0 {
			continue // NaN payloads
		}
		if back := f32ToF16(f16ToF32(uint16(h))); back != uint16(h) {
			t.Fatalf("half %#x -> %v -> %#x", h, f16ToF32(uint16(h)), back)
		}
	}
}

// header encodes a safetensors header object followed by dataLen zero bytes.
func header(t testing.TB, h map[string]any, dataLen int) []byte {
	t.Helper()
	j, err := json.Marshal(h)
	if err != nil {
		t.Fatal(err)
	}
	out := binary.LittleEndian.AppendUint64(nil, uint64(len(j)))
	return append(append(out, j...), make([]byte, dataLen)...)
}

func TestReadHeaderRejects(t *testing.T) {
	entry := func(dt string, shape []int, begin, end int) map[string]any {
		return map[string]any{"dtype": dt, "shape": shape, "data_offsets": []int{begin, end}}
	}
	tests := []struct {
		name string
		file []byte
		msg  string
	}{
		{"short", []byte{1, 2}, "shorter"},
		{"header past end", binary.LittleEndian.AppendUint64(nil, 1<<40), "exceeds"},
		{"not json", append(binary.LittleEndian.AppendUint64(nil, 1), '{'), "JSON"},
		{"dtype", header(t, map[string]any{"a": entry("I64", []int{1}, 0, 8)}, 8), `dtype "I64"`},
		{"size", header(t, map[string]any{"a": entry("BF16", []int{3}, 0, 4)}, 4), "4 bytes"},
		{"outside", header(t, map[string]any{"a": entry("F32", []int{1}, 0, 4)}, 2), "outside"},
		{"gap", header(t, map[string]any{"a": entry("F32", []int{1}, 4, 8)}, 8), "gap"},
		{"overlap", header(t, map[string]any{"a": entry("F16", []int{2}, 0, 4), "b": entry("F16", []int{2}, 2, 6)}, 6), "overlap"},
		{"trailing", header(t, map[string]any{"a": entry("F32", []int{1}, 0, 4)}, 8), "cover"},
		{"negative dim", header(t, map[string]any{"a": entry("F32", []int{-1}, 0, 0)}, 0), "negative"},
		{"huge", header(t, map[string]any{"a": entry("F32", []int{1 << 30, 1 << 30}, 0, 0)}, 0), "too large"},
		{"rank", header(t, map[string]any{"a": entry("F32", []int{1, 1, 1, 1, 1, 1, 1, 1, 1}, 0, 4)}, 4), "rank"},
		{"empty name", header(t, map[string]any{"": entry("F32", []int{1}, 0, 4)}, 4), "empty"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := readHeader(strings.NewReader(string(tt.file)), int64(len(tt.file)))
			if !errors.Is(err, ErrSafetensors) || !strings.Contains(err.Error(), tt.msg) {
				t.Fatalf("readHeader = %v, want ErrSafetensors mentioning %q", err, tt.msg)
			}
		})
	}
}

// FuzzReadHeader feeds arbitrary files to the safetensors header decoder: it
// must not panic, and an accepted header's tensors must lie in the data.
func FuzzReadHeader(f *testing.F) {
	w := policy.Weights{"a": {Shape: []int64{2, 3}, Data: make([]float32, 6)}, "b": {Shape: []int64{1}, Data: []float32{1}}}
	for _, dt := range []string{DTypeF32, DTypeBF16, DTypeF16} {
		data, err := encodeSafetensors(w, []string{"a", "b"}, dt)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(data)
	}
	f.Add([]byte{})
	f.Fuzz(func(t *testing.T, data []byte) {
		h, err := readHeader(strings.NewReader(string(data)), int64(len(data)))
		if err != nil {
			if !errors.Is(err, ErrSafetensors) {
				t.Fatalf("error %v does not wrap ErrSafetensors", err)
			}
			return
		}
		for name, e := range h.Tensors {
			if h.DataStart+int64(e.DataOffsets[1]) > int64(len(data)) {
				t.Fatalf("tensor %q past the end", name)
			}
		}
	})
}

// TestLoadRejects damages a valid checkpoint in the ways a download or a
// hand edit can, and checks Load names the problem.
func TestLoadRejects(t *testing.T) {
	a := tinyArchs[ArchQwen2]
	tests := []struct {
		name    string
		sharded bool
		damage  func(t *testing.T, dir string, ts map[string]refTensor)
		is      error
		msg     string
	}{
		{"missing tensor", false, func(t *testing.T, dir string, ts map[string]refTensor) {
			delete(ts, "model.layers.1.mlp.up_proj.weight")
			rewrite(t, dir, ts)
		}, ErrWeights, `missing tensor "model.layers.1.mlp.up_proj.weight"`},
		{"extra tensor", false, func(t *testing.T, dir string, ts map[string]refTensor) {
			ts["model.layers.0.self_attn.o_proj.bias"] = refTensor{shape: []int64{32}, data: make([]float32, 32)}
			rewrite(t, dir, ts)
		}, ErrWeights, `unexpected tensor "model.layers.0.self_attn.o_proj.bias"`},
		{"wrong shape", false, func(t *testing.T, dir string, ts map[string]refTensor) {
			p := ts["model.norm.weight"]
			ts["model.norm.weight"] = refTensor{shape: []int64{2, 16}, data: p.data}
			rewrite(t, dir, ts)
		}, ErrWeights, "shape [2 16]"},
		{"no weights", false, func(t *testing.T, dir string, _ map[string]refTensor) {
			if err := os.Remove(filepath.Join(dir, WeightsFile)); err != nil {
				t.Fatal(err)
			}
		}, ErrSafetensors, WeightsFile},
		{"no config", false, func(t *testing.T, dir string, _ map[string]refTensor) {
			if err := os.Remove(filepath.Join(dir, ConfigFile)); err != nil {
				t.Fatal(err)
			}
		}, ErrConfig, ConfigFile},
		{"truncated", false, func(t *testing.T, dir string, _ map[string]refTensor) {
			path := filepath.Join(dir, WeightsFile)
			fi, err := os.Stat(path)
			if err != nil {
				t.Fatal(err)
			}
			if err := os.Truncate(path, fi.Size()-3); err != nil {
				t.Fatal(err)
			}
		}, ErrSafetensors, "outside"},
		{"index escapes directory", true, func(t *testing.T, dir string, _ map[string]refTensor) {
			writeIndex(t, dir, map[string]string{ParamEmbed: "../model-00001-of-00003.safetensors"})
		}, ErrSafetensors, "file name in the directory"},
		{"index points at wrong shard", true, func(t *testing.T, dir string, _ map[string]refTensor) {
			ix := readIndex(t, dir)
			ix[ParamEmbed] = "model-00003-of-00003.safetensors"
			if ix[ParamEmbed] == readIndex(t, dir)[ParamEmbed] {
				ix[ParamEmbed] = "model-00002-of-00003.safetensors"
			}
			writeIndex(t, dir, ix)
		}, ErrSafetensors, ParamEmbed},
		{"index names a missing shard", true, func(t *testing.T, dir string, _ map[string]refTensor) {
			ix := readIndex(t, dir)
			ix["extra.weight"] = "model-00009-of-00009.safetensors"
			writeIndex(t, dir, ix)
		}, ErrSafetensors, "model-00009-of-00009.safetensors"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			dir, ts := writeTestCheckpoint(t, a, "F32", tt.sharded, 9)
			tt.damage(t, dir, ts)
			_, err := Load(dir)
			if !errors.Is(err, tt.is) || !strings.Contains(err.Error(), tt.msg) {
				t.Fatalf("Load = %v, want %v mentioning %q", err, tt.is, tt.msg)
			}
		})
	}
}

// rewrite replaces dir/model.safetensors with ts.
func rewrite(t *testing.T, dir string, ts map[string]refTensor) {
	t.Helper()
	names := make([]string, 0, len(ts))
	for n := range ts {
		names = append(names, n)
	}
	slices.Sort(names)
	writeTestSafetensors(t, filepath.Join(dir, WeightsFile), ts, names, "F32")
}

// readIndex returns the weight_map of dir's index.
func readIndex(t *testing.T, dir string) map[string]string {
	t.Helper()
	data, err := os.ReadFile(filepath.Join(dir, IndexFile))
	if err != nil {
		t.Fatal(err)
	}
	var ix struct {
		WeightMap map[string]string `json:"weight_map"`
	}
	if err := json.Unmarshal(data, &ix); err != nil {
		t.Fatal(err)
	}
	return ix.WeightMap
}

// writeIndex replaces dir's index with weight map m.
func writeIndex(t *testing.T, dir string, m map[string]string) {
	t.Helper()
	data, err := json.Marshal(map[string]any{"weight_map": m})
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, IndexFile), data, 0o644); err != nil {
		t.Fatal(err)
	}
}

// FuzzParseIndex feeds arbitrary bytes to the shard-index decoder: it must
// not panic, and every shard it accepts is a plain .safetensors file name.
func FuzzParseIndex(f *testing.F) {
	f.Add([]byte(`{"metadata":{"total_size":8},"weight_map":{"a":"model-00001-of-00002.safetensors"}}`))
	f.Add([]byte(`{"weight_map":{"a":"../x.safetensors"}}`))
	f.Fuzz(func(t *testing.T, data []byte) {
		m, err := parseIndex(data)
		if err != nil {
			if !errors.Is(err, ErrSafetensors) {
				t.Fatalf("error %v does not wrap ErrSafetensors", err)
			}
			return
		}
		for _, file := range m {
			if filepath.Base(file) != file || strings.ContainsAny(file, `/\`) || !strings.HasSuffix(file, ".safetensors") {
				t.Fatalf("accepted shard %q", file)
			}
		}
	})
}
