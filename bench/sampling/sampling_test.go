package sampling_test

import (
	"errors"
	"testing"
	"time"

	"github.com/wsgrpo/wsgrpo/bench/sampling"
	"github.com/wsgrpo/wsgrpo/model/ort/orttest"
)

func TestRun(t *testing.T) {
	rt := orttest.Runtime(t)
	res, err := sampling.Run(t.Context(), rt, sampling.Options{DModel: 16, Layers: 1, Prompts: 2, Samples: 2, NewTokens: 8, Batches: 3, Workers: 2, SwapEvery: time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	if res.Rollouts != 3*2*2 || res.Tokens == 0 || res.RawTokens == 0 || res.TokensPerSec <= 0 || res.RawTokensPerSec <= 0 {
		t.Fatalf("%+v", res)
	}
	if res.Versions < 1 || res.Ratio() <= 0 {
		t.Fatalf("versions %d, ratio %v", res.Versions, res.Ratio())
	}
	if _, err := sampling.Run(t.Context(), rt, sampling.Options{Workers: -1}); !errors.Is(err, sampling.ErrOptions) {
		t.Fatalf("bad options: %v", err)
	}
}

// BenchmarkSampler reports the sampler's tokens/s and rollouts/s beside
// raw decoding of the same model (d_model 128, 4 layers, 8 prompts x G 8,
// 256 new tokens), with 1 and 2 workers and a new version every second.
func BenchmarkSampler(b *testing.B) {
	rt := orttest.Runtime(b)
	for _, workers := range []int{1, 2} {
		b.Run(map[int]string{1: "workers=1", 2: "workers=2"}[workers], func(b *testing.B) {
			for b.Loop() {
				res, err := sampling.Run(b.Context(), rt, sampling.Options{Workers: workers, Batches: 2 * workers, SwapEvery: time.Second})
				if err != nil {
					b.Fatal(err)
				}
				b.ReportMetric(res.TokensPerSec, "tokens/s")
				b.ReportMetric(res.RolloutsPS, "rollouts/s")
				b.ReportMetric(res.RawTokensPerSec, "raw-tokens/s")
				b.ReportMetric(res.Ratio(), "of-raw")
				b.ReportMetric(0, "ns/op")
			}
		})
	}
}
