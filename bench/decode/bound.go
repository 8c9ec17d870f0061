package decode

import (
	"fmt"
	"sync"
	"time"

	"github.com/wsgrpo/wsgrpo/model/generate"
	"github.com/wsgrpo/wsgrpo/model/policy"
)

// Traffic is the memory traffic of one Generate call of a KV-cache variant:
// the least that its graph must read and write, counted per token step
// (one run of the graph over the batch) and summed over the call's steps.
type Traffic struct {
	// Steps is the number of graph runs: the prefill plus one per new token
	// but the last.
	Steps int
	// WeightBytes is what every step reads of the weights: every matrix,
	// bias and layer-norm vector once, and the embedding rows it gathers.
	WeightBytes float64
	// CacheBytes is the keys and values read and written over the call.
	CacheBytes float64
}

// Total returns the bytes moved over the call.
func (t Traffic) Total() float64 { return float64(t.Steps)*t.WeightBytes + t.CacheBytes }

// Bound returns the memory-bound tokens/s for tokens generated tokens over
// the call at bandwidth bytes per second: tokens / (Total / bandwidth).
func (t Traffic) Bound(tokens int, bandwidth float64) float64 {
	return float64(tokens) * bandwidth / t.Total()
}

// TrafficOf counts the traffic of sampling batch completions of newTokens
// tokens after prompts of promptLen tokens with variant g (InPlace or
// Concat), in float32. A step over S new positions after P cached ones
// reads and writes, per layer and for keys and values each, B·H·Dh·4 bytes
// per position times:
//
//	InPlace: (P+S) read by attention + S written
//	Concat:  P read + (P+S) written by Concat(past, new), (P+S) read by attention
//
// Anything a kernel adds (GEMM packing, temporaries) is not counted, so the
// bound is optimistic.
func TrafficOf(cfg policy.Config, batch, promptLen, newTokens int, g Graph) (Traffic, error) {
	if g != InPlace && g != Concat {
		return Traffic{}, fmt.Errorf("%w: no traffic model for %v", generate.ErrOptions, g)
	}
	if batch < 1 || promptLen < 1 || newTokens < 1 {
		return Traffic{}, fmt.Errorf("%w: batch %d, prompt %d, new tokens %d", generate.ErrOptions, batch, promptLen, newTokens)
	}
	if err := cfg.Validate(); err != nil {
		return Traffic{}, err
	}
	const f32 = 4
	d := int64(cfg.DModel)
	embed := int64(cfg.VocabSize)*d + int64(cfg.MaxSeq)*d
	t := Traffic{Steps: newTokens}
	// The weights are read once per step; the embedding tables only at the
	// gathered rows (counted for one new position per row).
	t.WeightBytes = float64(f32 * (cfg.NumParams() - embed + 2*int64(batch)*d))
	perPos := float64(2 * cfg.NLayers * batch * cfg.DModel * f32) // keys and values, all layers
	past, s := 0, promptLen
	for range t.Steps {
		switch g {
		case InPlace:
			t.CacheBytes += perPos * float64(past+s+s)
		case Concat:
			t.CacheBytes += perPos * float64(past+2*(past+s))
		}
		past, s = past+s, 1
	}
	return t, nil
}

// Bandwidth measures the machine's memory bandwidth in bytes per second
// with a STREAM-style copy: threads goroutines each copy their share of a
// buffer of size bytes into another (Go's copy, which uses non-temporal
// stores for large moves); a copy counts as 2·size bytes (read and write).
// It returns the best of rounds copies. size should be several times the
// last-level cache.
func Bandwidth(size, rounds, threads int) (float64, error) {
	if size < threads || rounds < 1 || threads < 1 {
		return 0, fmt.Errorf("%w: size %d, rounds %d, threads %d", generate.ErrOptions, size, rounds, threads)
	}
	src, dst := make([]byte, size), make([]byte, size)
	for i := range src {
		src[i] = byte(i)
	}
	copy(dst, src) // fault in every page
	var best time.Duration
	for range rounds {
		start := time.Now()
		var wg sync.WaitGroup
		chunk := size / threads
		for i := range threads {
			lo, hi := i*chunk, (i+1)*chunk
			if i == threads-1 {
				hi = size
			}
			wg.Go(func() { copy(dst[lo:hi], src[lo:hi]) })
		}
		wg.Wait()
		if d := time.Since(start); best == 0 || d < best {
			best = d
		}
	}
	return 2 * float64(size) / best.Seconds(), nil
}

// ReadBandwidth measures read-only bandwidth in bytes per second: threads
// goroutines each sum their share of a buffer of size bytes as uint64
// words (8 independent sums, so the loop issues loads faster than one core
// can add them up serially). It returns the best of rounds passes.
func ReadBandwidth(size, rounds, threads int) (float64, error) {
	words := size / 8
	if words < 8*threads || rounds < 1 || threads < 1 {
		return 0, fmt.Errorf("%w: size %d, rounds %d, threads %d", generate.ErrOptions, size, rounds, threads)
	}
	buf := make([]uint64, words)
	for i := range buf {
		buf[i] = uint64(i)
	}
	var best time.Duration
	sums := make([]uint64, threads)
	for range rounds {
		start := time.Now()
		var wg sync.WaitGroup
		chunk := words / threads &^ 7
		for i := range threads {
			part := buf[i*chunk : (i+1)*chunk]
			wg.Go(func() { sums[i] = sum8(part) })
		}
		wg.Wait()
		if d := time.Since(start); best == 0 || d < best {
			best = d
		}
	}
	return float64(words/threads&^7*threads*8) / best.Seconds(), nil
}

// sum8 adds up x (a multiple of 8 long) with eight accumulators.
func sum8(x []uint64) uint64 {
	var s0, s1, s2, s3, s4, s5, s6, s7 uint64
	for i := 0; i+8 <= len(x); i += 8 {
		c := x[i : i+8 : i+8]
		s0 += c[0]
		s1 += c[1]
		s2 += c[2]
		s3 += c[3]
		s4 += c[4]
		s5 += c[5]
		s6 += c[6]
		s7 += c[7]
	}
	return s0 + s1 + s2 + s3 + s4 + s5 + s6 + s7
}
