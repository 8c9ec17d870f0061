package schemas

import (
	"testing"

	"github.com/apache/arrow-go/v18/arrow/memory"
)

// benchRollouts builds rows like the pipeline benchmark's: 64-token prompts
// and 512 completion tokens with logprobs.
func benchRollouts(n int) []Rollout {
	rows := make([]Rollout, n)
	for i := range rows {
		r := sampleLabeled(1)[0].Rollout
		r.PromptTokenIDs = make([]int32, 64)
		r.CompletionTokenIDs = make([]int32, 512)
		r.TokenLogprobs = make([]float32, 512)
		rows[i] = r
	}
	return rows
}

func BenchmarkEncode64(b *testing.B) {
	rec := NewRolloutBatch(memory.DefaultAllocator, benchRollouts(64))
	defer rec.Release()
	b.ReportAllocs()
	for b.Loop() {
		p, err := Encode(rec)
		if err != nil {
			b.Fatal(err)
		}
		b.SetBytes(int64(len(p)))
	}
}

func BenchmarkDecode64(b *testing.B) {
	rec := NewRolloutBatch(memory.DefaultAllocator, benchRollouts(64))
	p, err := Encode(rec)
	rec.Release()
	if err != nil {
		b.Fatal(err)
	}
	b.SetBytes(int64(len(p)))
	b.ReportAllocs()
	for b.Loop() {
		r, err := Decode(KindRollout, p, memory.DefaultAllocator)
		if err != nil {
			b.Fatal(err)
		}
		r.Release()
	}
}
