package generate

import (
	"context"
	"errors"
	"testing"

	"github.com/wsgrpo/wsgrpo/model/checkpoint"
	"github.com/wsgrpo/wsgrpo/model/ort/orttest"
	"github.com/wsgrpo/wsgrpo/model/policy"
	"github.com/wsgrpo/wsgrpo/model/tokenizer"
)

func TestFromCheckpointGraph(t *testing.T) {
	rt := orttest.Runtime(t)
	tok := tokenizer.Default()
	newCheckpoint := func(heads int) *checkpoint.Checkpoint {
		cfg := policy.Config{VocabSize: tok.VocabSize(), DModel: 32, NLayers: 1, NHeads: heads, DFF: 64, MaxSeq: 32}
		c, err := checkpoint.New(cfg, tok, 1)
		if err != nil {
			t.Fatal(err)
		}
		return c
	}
	tests := []struct {
		name        string
		heads       int
		kind        CacheGraph
		wantInPlace bool
		wantErr     error
	}{
		{"auto, head 16", 2, CacheAuto, true, nil},
		{"auto, head 8", 4, CacheAuto, false, nil},
		{"in place", 2, CacheInPlace, true, nil},
		{"concat", 2, CacheConcat, false, nil},
		{"in place, head 8", 4, CacheInPlace, false, policy.ErrConfig},
		{"unknown", 2, CacheGraph(9), false, ErrOptions},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			m, err := FromCheckpointGraph(rt, newCheckpoint(tc.heads), tc.kind, nil)
			if tc.wantErr != nil {
				if !errors.Is(err, tc.wantErr) {
					t.Fatalf("err = %v, want %v", err, tc.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			t.Cleanup(func() { _ = m.Close() })
			if m.InPlace() != tc.wantInPlace || !m.HasCache() || m.MaxSeq != 32 {
				t.Fatalf("InPlace %v HasCache %v MaxSeq %d", m.InPlace(), m.HasCache(), m.MaxSeq)
			}
			out, err := m.Generate(context.Background(), [][]int32{{tok.BOS()}, {tok.BOS(), 5}}, Options{MaxNewTokens: 4, EOS: -1, PAD: tok.PAD()})
			if err != nil || len(out[0].Tokens) != 4 {
				t.Fatalf("Generate: %v, %+v", err, out)
			}
		})
	}
}

func TestCacheGraphString(t *testing.T) {
	tests := []struct {
		g    CacheGraph
		want string
	}{{CacheAuto, "auto"}, {CacheInPlace, "inplace"}, {CacheConcat, "concat"}, {CacheGraph(7), "CacheGraph(7)"}}
	for _, tc := range tests {
		t.Run(tc.want, func(t *testing.T) {
			if got := tc.g.String(); got != tc.want {
				t.Fatalf("String() = %q", got)
			}
		})
	}
}
