package decode_test

import (
	"errors"
	"testing"

	"github.com/wsgrpo/wsgrpo/bench/decode"
	"github.com/wsgrpo/wsgrpo/model/generate"
	"github.com/wsgrpo/wsgrpo/model/ort/orttest"
	"github.com/wsgrpo/wsgrpo/model/policy"
)

func TestThroughput(t *testing.T) {
	rt := orttest.Runtime(t)
	cfg := policy.Config{VocabSize: 20, DModel: 32, NLayers: 1, NHeads: 2, DFF: 32, MaxSeq: 8}
	for _, g := range decode.Graphs {
		t.Run(g.String(), func(t *testing.T) {
			tps, err := decode.Throughput(rt, cfg, 2, 5, g)
			if err != nil || tps <= 0 {
				t.Fatalf("%v tokens/s, %v", tps, err)
			}
		})
	}
	bad := cfg
	bad.NHeads = 3
	tests := []struct {
		name  string
		cfg   policy.Config
		batch int
		g     decode.Graph
		want  error
	}{
		{"batch 0", cfg, 0, decode.InPlace, generate.ErrOptions},
		{"bad config", bad, 1, decode.Concat, policy.ErrConfig},
		{"unknown graph", cfg, 1, decode.Graph(7), generate.ErrOptions},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			if _, err := decode.Throughput(rt, tc.cfg, tc.batch, 5, tc.g); !errors.Is(err, tc.want) {
				t.Fatalf("err = %v, want %v", err, tc.want)
			}
		})
	}
}

func TestCompare(t *testing.T) {
	rt := orttest.Runtime(t)
	cfg := policy.Config{VocabSize: 20, DModel: 32, NLayers: 1, NHeads: 2, DFF: 32, MaxSeq: 8}
	res, err := decode.Compare(rt, cfg, 2, 4, decode.Graphs, 2)
	if err != nil {
		t.Fatal(err)
	}
	for _, g := range decode.Graphs {
		if len(res[g]) != 2 || res[g][0] <= 0 || res[g][1] <= 0 {
			t.Fatalf("%v: %v", g, res[g])
		}
	}
	if _, err := decode.Compare(rt, cfg, 2, 4, decode.Graphs, 0); !errors.Is(err, generate.ErrOptions) {
		t.Fatalf("0 rounds: %v", err)
	}
}

func TestTrafficOf(t *testing.T) {
	// 1 layer, d 16, 2 heads: 2·1·B·16·4 = 128·B bytes per cached position.
	cfg := policy.Config{VocabSize: 10, DModel: 16, NLayers: 1, NHeads: 2, DFF: 32, MaxSeq: 16}
	weights := float64(4 * (cfg.NumParams() - 10*16 - 16*16 + 2*2*16))
	tests := []struct {
		name      string
		g         decode.Graph
		wantCache float64
		wantErr   error
	}{
		// Prompt 3, 3 new tokens: steps (P,S) = (0,3), (3,1), (4,1).
		{"in place", decode.InPlace, 256 * float64((3+3)+(4+1)+(5+1)), nil},
		{"concat", decode.Concat, 256 * float64((0+6)+(3+8)+(4+10)), nil},
		{"full", decode.Full, 0, generate.ErrOptions},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			tr, err := decode.TrafficOf(cfg, 2, 3, 3, tc.g)
			if tc.wantErr != nil {
				if !errors.Is(err, tc.wantErr) {
					t.Fatalf("err = %v, want %v", err, tc.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if tr.Steps != 3 || tr.WeightBytes != weights || tr.CacheBytes != tc.wantCache {
				t.Fatalf("traffic %+v, want 3 steps, %v weight bytes, %v cache bytes", tr, weights, tc.wantCache)
			}
			if got, want := tr.Bound(6, tr.Total()), 6.0; got != want {
				t.Fatalf("Bound at one call per second = %v, want %v", got, want)
			}
		})
	}
}

func TestBandwidth(t *testing.T) {
	tests := []struct {
		name string
		f    func(size, rounds, threads int) (float64, error)
	}{{"copy", decode.Bandwidth}, {"read", decode.ReadBandwidth}}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			bw, err := tc.f(1<<20, 2, 2)
			if err != nil || bw <= 0 {
				t.Fatalf("%v B/s, %v", bw, err)
			}
			if _, err := tc.f(1<<20, 0, 1); !errors.Is(err, generate.ErrOptions) {
				t.Fatalf("0 rounds: %v", err)
			}
		})
	}
}
