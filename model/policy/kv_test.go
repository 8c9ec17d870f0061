package policy

import (
	"math"
	"testing"

	"github.com/wsgrpo/wsgrpo/model/onnx"
	"github.com/wsgrpo/wsgrpo/model/ort"
	"github.com/wsgrpo/wsgrpo/model/ort/orttest"
)

// TestKVGraphMatchesFull feeds a left-padded batch to the KV graph as a
// prefill followed by one token per step and compares every step's logits
// with the full graph's logits over the whole sequence.
func TestKVGraphMatchesFull(t *testing.T) {
	rt := orttest.Runtime(t)
	cfg := smallConfig()
	w := testWeights(t, cfg, 11)
	fs, ks := fullAndKVSessions(t, rt, cfg, w, KVGraph)

	seqs := [][]int32{{3, 7, 1, 9, 12, 5, 6, 20, 8, 4}, {15, 2, 11, 19, 22, 10, 14}}
	prompt := 4 // tokens of each sequence given in the prefill
	b, _ := NewBatch(seqs, 0, true, cfg.MaxSeq)
	fl, _ := runFull(t, fs, b)

	rows, n, v := b.Rows, b.Len, cfg.VocabSize
	h, dh := int64(cfg.NHeads), int64(cfg.HeadDim())
	// The prefill covers columns [0, start): padding plus the first prompt
	// tokens of the longer row.
	start := b.Offset[0] + prompt
	past := map[string]*ort.Tensor{}
	for l := 0; l < cfg.NLayers; l++ {
		past[PastKeyName(l)] = ort.F32Tensor([]float32{}, int64(rows), h, 0, dh)
		past[PastValueName(l)] = ort.F32Tensor([]float32{}, int64(rows), h, 0, dh)
	}
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
		for k, t := range past {
			in[k] = t
		}
		out, err := ks.Run(in)
		if err != nil {
			t.Fatalf("KV step at %d: %v", lo, err)
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
						t.Fatalf("row %d col %d logit %d: KV %v full %v", r, lo+j, k, got, want)
					}
				}
			}
		}
		for l := 0; l < cfg.NLayers; l++ {
			pk := out[PresentKeyName(l)]
			if pk.Shape[2] != int64(hi) {
				t.Fatalf("present key length %d, want %d", pk.Shape[2], hi)
			}
			past[PastKeyName(l)] = pk
			past[PastValueName(l)] = out[PresentValueName(l)]
		}
		lo = hi
	}
}

// fullAndKVSessions opens the full graph of w (logits) and the KV graph
// build makes of it (logits and every present output), for comparing the
// two step by step.
func fullAndKVSessions(t *testing.T, rt *ort.Runtime, cfg Config, w Weights, build func(Config, Weights) (*onnx.Model, error)) (*ort.Session, *ort.Session) {
	t.Helper()
	full, err := FullGraph(cfg, w, onnx.Float)
	if err != nil {
		t.Fatal(err)
	}
	kv, err := build(cfg, w)
	if err != nil {
		t.Fatal(err)
	}
	outs := []string{OutputLogits}
	for l := 0; l < cfg.NLayers; l++ {
		outs = append(outs, PresentKeyName(l), PresentValueName(l))
	}
	return newSession(t, rt, full, OutputLogits), newSession(t, rt, kv, outs...)
}
