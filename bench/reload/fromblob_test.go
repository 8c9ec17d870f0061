package reload_test

import (
	"fmt"
	"testing"

	"github.com/wsgrpo/wsgrpo/bench/reload"
	"github.com/wsgrpo/wsgrpo/model/checkpoint"
	"github.com/wsgrpo/wsgrpo/model/ort/orttest"
	"github.com/wsgrpo/wsgrpo/model/policy"
	"github.com/wsgrpo/wsgrpo/model/tokenizer"
)

func TestFromBlob(t *testing.T) {
	rt := orttest.Runtime(t)
	tok := tokenizer.Default()
	cfg := policy.Config{VocabSize: tok.VocabSize(), DModel: 16, NLayers: 1, NHeads: 2, DFF: 32, MaxSeq: 16}
	c, err := checkpoint.New(cfg, tok, 1)
	if err != nil {
		t.Fatal(err)
	}
	blob, err := checkpoint.Marshal(c)
	if err != nil {
		t.Fatal(err)
	}
	mean, fastest, err := reload.FromBlob(rt, blob, 2)
	if err != nil || mean <= 0 || fastest <= 0 || fastest > mean {
		t.Fatalf("mean %v, fastest %v, err %v", mean, fastest, err)
	}
	for _, tc := range []struct {
		name string
		blob []byte
		n    int
	}{
		{"no repetitions", blob, 0},
		{"junk blob", []byte("junk"), 1},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if _, _, err := reload.FromBlob(rt, tc.blob, tc.n); err == nil {
				t.Fatal("no error")
			}
		})
	}
}

// BenchmarkReadySampler measures turning a checkpoint blob into a ready
// sampler (generate.FromBlob + Prepare, reload.FromBlob) for the decode benchmark's
// model sizes.
func BenchmarkReadySampler(b *testing.B) {
	rt := orttest.Runtime(b)
	tok := tokenizer.Default()
	for _, d := range []int{128, 256} {
		b.Run(fmt.Sprintf("d%d_l4", d), func(b *testing.B) {
			cfg := policy.Config{VocabSize: tok.VocabSize(), DModel: d, NLayers: 4, NHeads: 4, DFF: 4 * d, MaxSeq: 264}
			c, err := checkpoint.New(cfg, tok, 1)
			if err != nil {
				b.Fatal(err)
			}
			blob, err := checkpoint.Marshal(c)
			if err != nil {
				b.Fatal(err)
			}
			mean, fastest, err := reload.FromBlob(rt, blob, b.N)
			if err != nil {
				b.Fatal(err)
			}
			b.ReportMetric(mean.Seconds()*1e3, "ms/ready")
			b.ReportMetric(fastest.Seconds()*1e3, "min-ms/ready")
			b.ReportMetric(float64(len(blob))/(1<<20), "blob-MiB")
			b.ReportMetric(0, "ns/op")
		})
	}
}
