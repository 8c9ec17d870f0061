package policy

import (
	"errors"
	"math"
	"testing"

	"github.com/wsgrpo/wsgrpo/model/ort"
	"github.com/wsgrpo/wsgrpo/model/ort/orttest"
)

// gqaConfig is a small policy whose head size (16) GroupQueryAttention
// accepts.
func gqaConfig() Config {
	return Config{VocabSize: 23, DModel: 32, NLayers: 2, NHeads: 2, DFF: 64, MaxSeq: 24}
}

func TestInPlaceSupported(t *testing.T) {
	tests := []struct {
		name string
		cfg  Config
		want bool
	}{
		{"head 16", gqaConfig(), true},
		{"head 32", Config{VocabSize: 5, DModel: 128, NLayers: 1, NHeads: 4, DFF: 8, MaxSeq: 8}, true},
		{"head 4", smallConfig(), false},
		{"head 24", Config{VocabSize: 5, DModel: 48, NLayers: 1, NHeads: 2, DFF: 8, MaxSeq: 8}, false},
		{"invalid", Config{}, false},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			if got := InPlaceSupported(tc.cfg); got != tc.want {
				t.Fatalf("InPlaceSupported = %v, want %v", got, tc.want)
			}
		})
	}
	cfg := smallConfig()
	w := testWeights(t, cfg, 1)
	if _, err := InPlaceKVGraph(cfg, w); !errors.Is(err, ErrConfig) {
		t.Fatalf("InPlaceKVGraph with head size 4: %v, want ErrConfig", err)
	}
}

// TestInPlaceKVGraphMatchesFull runs the in-place KV graph over a
// left-padded batch (a prefill, then one token per step) with each present
// output bound to its past input's buffer, and compares every step's logits
// with the full graph's.
func TestInPlaceKVGraphMatchesFull(t *testing.T) {
	rt := orttest.Runtime(t)
	cfg := gqaConfig()
	w := testWeights(t, cfg, 11)
	fs, ks := fullAndKVSessions(t, rt, cfg, w, InPlaceKVGraph)

	seqs := [][]int32{{3, 7, 1, 9, 12, 5, 6, 20, 8, 4}, {15, 2, 11, 19, 22, 10, 14}, {4}}
	b, _ := NewBatch(seqs, 0, true, cfg.MaxSeq)
	fl, _ := runFull(t, fs, b)

	rows, n, v := b.Rows, b.Len, cfg.VocabSize
	h, dh := int64(cfg.NHeads), int64(cfg.HeadDim())
	const capacity = 16 // more than n: positions past the cache stay untouched
	bufs := map[string][]float32{}
	for l := 0; l < cfg.NLayers; l++ {
		k := make([]float32, int64(rows)*h*capacity*dh)
		val := make([]float32, len(k))
		bufs[PastKeyName(l)], bufs[PresentKeyName(l)] = k, k
		bufs[PastValueName(l)], bufs[PresentValueName(l)] = val, val
	}
	const sentinel = 12345
	for _, buf := range bufs {
		for i := range buf {
			buf[i] = sentinel
		}
	}
	start := b.Offset[0] + 4
	for lo := 0; lo < n; {
		hi := start
		if lo > 0 {
			hi = lo + 1
		}
		s := hi - lo
		ids, pos := make([]int64, rows*s), make([]int64, rows*s)
		mask := make([]int64, rows*hi)
		for r := 0; r < rows; r++ {
			copy(ids[r*s:], b.IDs[r*n+lo:r*n+hi])
			copy(pos[r*s:], b.Positions[r*n+lo:r*n+hi])
			copy(mask[r*hi:], b.Mask[r*n:r*n+hi])
		}
		in := map[string]*ort.Tensor{
			InputIDs:       ort.I64Tensor(ids, int64(rows), int64(s)),
			InputPositions: ort.I64Tensor(pos, int64(rows), int64(s)),
			InputMask:      ort.I64Tensor(mask, int64(rows), int64(hi)),
		}
		bound := map[string]*ort.Tensor{}
		for l := 0; l < cfg.NLayers; l++ {
			for _, name := range []string{PastKeyName(l), PastValueName(l)} {
				in[name] = ort.F32Tensor(bufs[name], int64(rows), h, capacity, dh)
			}
			for _, name := range []string{PresentKeyName(l), PresentValueName(l)} {
				bound[name] = ort.F32Tensor(bufs[name], int64(rows), h, capacity, dh)
			}
		}
		out, err := ks.RunInto(in, bound)
		if err != nil {
			t.Fatalf("in-place step at %d: %v", lo, err)
		}
		for r := 0; r < rows; r++ {
			for j := 0; j < s; j++ {
				if b.Mask[r*n+lo+j] == 0 {
					continue // logits at padding are not used
				}
				for k := 0; k < v; k++ {
					got := out[OutputLogits].F32[(r*s+j)*v+k]
					want := fl.F32[(r*n+lo+j)*v+k]
					if math.Abs(float64(got-want)) > 1e-4 {
						t.Fatalf("row %d col %d logit %d: in-place %v full %v", r, lo+j, k, got, want)
					}
				}
			}
		}
		// Positions hi.. of every row and head are still the sentinel.
		for name, buf := range bufs {
			for bh := int64(0); bh < int64(rows)*h; bh++ {
				for p := int64(0); p < capacity; p++ {
					written := buf[(bh*capacity+p)*dh] != sentinel
					if written != (p < int64(hi)) {
						t.Fatalf("%s after step to %d: position %d written = %v", name, hi, p, written)
					}
				}
			}
		}
		lo = hi
	}
}
