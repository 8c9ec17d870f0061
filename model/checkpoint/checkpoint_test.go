package checkpoint

import (
	"bytes"
	"encoding/binary"
	"errors"
	"math"
	"os"
	"path/filepath"
	"testing"

	"github.com/wsgrpo/wsgrpo/model/ort"
	"github.com/wsgrpo/wsgrpo/model/ort/orttest"
	"github.com/wsgrpo/wsgrpo/model/policy"
	"github.com/wsgrpo/wsgrpo/model/tokenizer"
)

// testCheckpoint returns a small random checkpoint over the default
// character tokenizer.
func testCheckpoint(t testing.TB) *Checkpoint {
	t.Helper()
	tok := tokenizer.Default()
	cfg := policy.Config{VocabSize: tok.VocabSize(), DModel: 16, NLayers: 2, NHeads: 2, DFF: 32, MaxSeq: 16}
	w, err := policy.Init(cfg, 3)
	if err != nil {
		t.Fatal(err)
	}
	return &Checkpoint{Config: cfg, Tokenizer: tok, Weights: w, Metadata: map[string]string{"step": "7"}}
}

// logitsOf runs the full graph of c on a fixed batch.
func logitsOf(t testing.TB, rt *ort.Runtime, c *Checkpoint) []float32 {
	t.Helper()
	data, err := c.FullModel()
	if err != nil {
		t.Fatal(err)
	}
	s, err := rt.NewSession(data, nil, []string{policy.OutputLogits})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	b, err := policy.NewBatch([][]int32{c.Tokenizer.Encode("12+30=42"), c.Tokenizer.Encode("7*6=")}, c.Tokenizer.PAD(), true, c.Config.MaxSeq)
	if err != nil {
		t.Fatal(err)
	}
	shape := []int64{int64(b.Rows), int64(b.Len)}
	out, err := s.Run(map[string]*ort.Tensor{
		policy.InputIDs:  ort.I64Tensor(b.IDs, shape...),
		policy.InputMask: ort.I64Tensor(b.Mask, shape...),
	})
	if err != nil {
		t.Fatal(err)
	}
	return out[policy.OutputLogits].F32
}

// sameLogits fails unless a and b are bit-identical.
func sameLogits(t testing.TB, a, b []float32) {
	t.Helper()
	if len(a) != len(b) {
		t.Fatalf("%d logits vs %d", len(a), len(b))
	}
	for i := range a {
		if math.Float32bits(a[i]) != math.Float32bits(b[i]) {
			t.Fatalf("logit %d: %v vs %v", i, a[i], b[i])
		}
	}
}

func TestSaveLoadSameLogits(t *testing.T) {
	rt := orttest.Runtime(t)
	c := testCheckpoint(t)
	dir := filepath.Join(t.TempDir(), "ckpt")
	if err := Save(dir, c); err != nil {
		t.Fatal(err)
	}
	back, err := Load(dir)
	if err != nil {
		t.Fatal(err)
	}
	if back.Config != c.Config || back.Metadata["step"] != "7" || back.Tokenizer.VocabSize() != c.Tokenizer.VocabSize() {
		t.Fatalf("loaded %+v %v", back.Config, back.Metadata)
	}
	sameLogits(t, logitsOf(t, rt, c), logitsOf(t, rt, back))
}

func TestBlobSameLogits(t *testing.T) {
	rt := orttest.Runtime(t)
	c := testCheckpoint(t)
	blob, err := Marshal(c)
	if err != nil {
		t.Fatal(err)
	}
	back, err := Unmarshal(blob)
	if err != nil {
		t.Fatal(err)
	}
	sameLogits(t, logitsOf(t, rt, c), logitsOf(t, rt, back))
}

func TestSaveRejectsInvalid(t *testing.T) {
	tests := []struct {
		name string
		mod  func(*Checkpoint)
		want error
	}{
		{"bad config", func(c *Checkpoint) { c.Config.NHeads = 3 }, ErrConfig},
		{"no tokenizer", func(c *Checkpoint) { c.Tokenizer = nil }, ErrConfig},
		{"vocab mismatch", func(c *Checkpoint) {
			tok, _ := tokenizer.NewChar("ab")
			c.Tokenizer = tok
		}, ErrMismatch},
		{"missing weight", func(c *Checkpoint) { delete(c.Weights, policy.ParamLMHead) }, ErrMismatch},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := testCheckpoint(t)
			tt.mod(c)
			if err := Save(t.TempDir(), c); !errors.Is(err, tt.want) {
				t.Fatalf("Save = %v, want %v", err, tt.want)
			}
			if _, err := Marshal(c); !errors.Is(err, tt.want) {
				t.Fatalf("Marshal = %v, want %v", err, tt.want)
			}
		})
	}
}

func TestLoadCorrupt(t *testing.T) {
	c := testCheckpoint(t)
	dir := t.TempDir()
	if err := Save(dir, c); err != nil {
		t.Fatal(err)
	}
	cfg, _ := os.ReadFile(filepath.Join(dir, ConfigFile))
	st, _ := os.ReadFile(filepath.Join(dir, WeightsFile))
	other := testCheckpoint(t)
	other.Config.DModel, other.Config.DFF = 8, 16
	otherW, _ := policy.Init(other.Config, 1)
	otherST, _ := WriteSafetensors(otherW, nil)
	tests := []struct {
		name    string
		cfg, st []byte
		want    error
	}{
		{"config not json", []byte("{"), st, ErrConfig},
		{"config other format", bytes.Replace(cfg, []byte(Format), []byte("other"), 1), st, ErrConfig},
		{"config bad policy", bytes.Replace(cfg, []byte(`"n_heads": 2`), []byte(`"n_heads": 3`), 1), st, ErrConfig},
		{"config bad tokenizer", bytes.Replace(cfg, []byte(`"type": "char"`), []byte(`"type": "bpe"`), 1), st, ErrConfig},
		{"weights truncated", cfg, st[:len(st)-5], ErrSafetensors},
		{"weights header only", cfg, st[:4], ErrSafetensors},
		{"weights of another shape", cfg, otherST, ErrMismatch},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			d := t.TempDir()
			if err := os.WriteFile(filepath.Join(d, ConfigFile), tt.cfg, 0o644); err != nil {
				t.Fatal(err)
			}
			if err := os.WriteFile(filepath.Join(d, WeightsFile), tt.st, 0o644); err != nil {
				t.Fatal(err)
			}
			if _, err := Load(d); !errors.Is(err, tt.want) {
				t.Fatalf("Load = %v, want %v", err, tt.want)
			}
		})
	}
	if _, err := Load(t.TempDir()); !errors.Is(err, os.ErrNotExist) {
		t.Fatalf("Load(empty dir) = %v, want ErrNotExist", err)
	}
}

func TestUnmarshalCorrupt(t *testing.T) {
	blob, err := Marshal(testCheckpoint(t))
	if err != nil {
		t.Fatal(err)
	}
	mod := func(f func(b []byte) []byte) []byte { return f(append([]byte(nil), blob...)) }
	tests := []struct {
		name string
		blob []byte
		want error
	}{
		{"empty", nil, ErrBlob},
		{"short", blob[:10], ErrBlob},
		{"magic", mod(func(b []byte) []byte { b[0] = 'X'; return b }), ErrBlob},
		{"version", mod(func(b []byte) []byte { b[len(BlobMagic)] = 9; return b }), ErrBlob},
		{"config length", mod(func(b []byte) []byte {
			binary.LittleEndian.PutUint32(b[len(BlobMagic)+4:], 1<<31)
			return b
		}), ErrBlob},
		{"config cut", mod(func(b []byte) []byte {
			binary.LittleEndian.PutUint32(b[len(BlobMagic)+4:], 5)
			return b
		}), ErrConfig},
		{"weights truncated", blob[:len(blob)-1], ErrSafetensors},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if _, err := Unmarshal(tt.blob); !errors.Is(err, tt.want) {
				t.Fatalf("Unmarshal = %v, want %v", err, tt.want)
			}
		})
	}
}

func FuzzUnmarshal(f *testing.F) {
	blob, err := Marshal(testCheckpoint(f))
	if err != nil {
		f.Fatal(err)
	}
	f.Add(blob)
	f.Add(blob[:100])
	f.Add([]byte(BlobMagic))
	f.Fuzz(func(t *testing.T, data []byte) {
		c, err := Unmarshal(data)
		if err != nil {
			return
		}
		if err := c.Validate(); err != nil {
			t.Fatalf("Unmarshal accepted an invalid checkpoint: %v", err)
		}
	})
}

func TestNew(t *testing.T) {
	tok := tokenizer.Default()
	c, err := New(policy.DefaultConfig(tok.VocabSize()), tok, 1)
	if err != nil {
		t.Fatal(err)
	}
	if err := c.Validate(); err != nil {
		t.Fatal(err)
	}
	if _, err := New(policy.DefaultConfig(tok.VocabSize()+1), tok, 1); !errors.Is(err, ErrMismatch) {
		t.Fatalf("vocab mismatch: %v", err)
	}
	bad := policy.DefaultConfig(tok.VocabSize())
	bad.NHeads = 0
	if _, err := New(bad, tok, 1); !errors.Is(err, ErrConfig) {
		t.Fatalf("bad config: %v", err)
	}
}

func FuzzDecodeConfig(f *testing.F) {
	data, err := testCheckpoint(f).encodeConfig()
	if err != nil {
		f.Fatal(err)
	}
	f.Add(data)
	f.Add([]byte(`{"format":"wsgrpo-checkpoint","version":1}`))
	f.Fuzz(func(t *testing.T, data []byte) {
		c, err := decodeConfig(data)
		if err != nil {
			return
		}
		if err := c.Config.Validate(); err != nil || c.Tokenizer.VocabSize() != c.Config.VocabSize {
			t.Fatalf("accepted an invalid config: %v", err)
		}
	})
}
