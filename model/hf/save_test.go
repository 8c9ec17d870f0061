package hf

import (
	"bytes"
	"math/rand/v2"
	"os"
	"path/filepath"
	"reflect"
	"testing"
)

// TestSaveRoundTrip loads a checkpoint, changes every weight (as training
// does), saves it in Hugging Face layout and loads it back: the config is
// unchanged and the weights are the changed ones, exactly in fp32, rounded
// to the nearest bf16 in bf16.
func TestSaveRoundTrip(t *testing.T) {
	tests := []struct {
		name, arch, from string
		opt              SaveOptions
		wantDType        string
	}{
		{"bf16 as loaded", ArchQwen2, "BF16", SaveOptions{}, DTypeBF16},
		{"bf16 to fp32 sharded", ArchQwen3, "BF16", SaveOptions{DType: DTypeF32, ShardBytes: 20000}, DTypeF32},
		{"fp32 as loaded", ArchLlama, "F32", SaveOptions{}, DTypeF32},
		{"fp32 to fp16", ArchLlama, "F32", SaveOptions{DType: DTypeF16}, DTypeF16},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			src, _ := writeTestCheckpoint(t, tinyArchs[tt.arch], tt.from, false, 12)
			ck, err := Load(src)
			if err != nil {
				t.Fatal(err)
			}
			rng := rand.New(rand.NewPCG(1, 2))
			for _, p := range ck.Weights {
				for i := range p.Data {
					p.Data[i] += float32(rng.NormFloat64() * 0.01)
				}
			}
			dst := filepath.Join(t.TempDir(), "out")
			if err := Save(dst, ck, tt.opt); err != nil {
				t.Fatalf("Save: %v", err)
			}
			back, err := Load(dst)
			if err != nil {
				t.Fatalf("Load saved: %v", err)
			}
			if back.DType != tt.wantDType || !reflect.DeepEqual(back.Config, ck.Config) || !bytes.Equal(back.RawConfig, ck.RawConfig) {
				t.Fatalf("saved dtype %s config %+v, want %s %+v", back.DType, back.Config, tt.wantDType, ck.Config)
			}
			_, err = os.Stat(filepath.Join(dst, IndexFile))
			if sharded := err == nil; sharded != (tt.opt.ShardBytes > 0) {
				t.Fatalf("index written = %v", sharded)
			}
			if shards, _ := filepath.Glob(filepath.Join(dst, "model-*.safetensors")); tt.opt.ShardBytes > 0 && len(shards) < 2 {
				t.Fatalf("%d shards written", len(shards))
			}
			for name, p := range ck.Weights {
				got := back.Weights[name]
				for i, v := range p.Data {
					want := v
					switch tt.wantDType {
					case DTypeBF16:
						want = roundBF16(v)
					case DTypeF16:
						want = f16ToF32(f32ToF16(v))
					}
					if got.Data[i] != want {
						t.Fatalf("%s[%d] = %v after the round trip, want %v", name, i, got.Data[i], want)
					}
				}
			}
		})
	}
}

// TestSaveMadeInMemory saves a checkpoint without a raw config.json: Save
// writes one from Config that parses back to it.
func TestSaveMadeInMemory(t *testing.T) {
	src, _ := writeTestCheckpoint(t, tinyArchs[ArchLlama], "F32", false, 3)
	ck, err := Load(src)
	if err != nil {
		t.Fatal(err)
	}
	ck.RawConfig, ck.DType = nil, ""
	dst := t.TempDir()
	if err := Save(dst, ck, SaveOptions{}); err != nil {
		t.Fatal(err)
	}
	back, err := Load(dst)
	if err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(back.Config, ck.Config) || back.DType != DTypeF32 {
		t.Fatalf("config %+v dtype %s, want %+v F32", back.Config, back.DType, ck.Config)
	}
	delete(ck.Weights, ParamNorm)
	if err := Save(t.TempDir(), ck, SaveOptions{}); err == nil {
		t.Fatal("Save accepted weights with a tensor missing")
	}
	if err := Save(t.TempDir(), back, SaveOptions{DType: "F64"}); err == nil {
		t.Fatal("Save accepted dtype F64")
	}
}
