package learning

import (
	"testing"

	"github.com/wsgrpo/wsgrpo/model/ort/orttest"
)

// BenchmarkStep is `wsgrpo bench learner` as a Go benchmark, on the same
// harness (Run): one learner update of 8 groups of 8 sequences of 80
// model inputs at d_model 128, 4 layers, in alternation with the raw
// training step of the same shapes, one of each per iteration. It reports
// the learner's time split, both throughputs in completion tokens/s, and
// their ratios: with the reference passes (ratio_total) and without
// (ratio_update).
func BenchmarkStep(b *testing.B) {
	rt := orttest.Runtime(b)
	res, err := Run(b.Context(), rt, Options{MicroBatch: 64, Warmup: 1, Updates: b.N})
	if err != nil {
		b.Fatal(err)
	}
	ms := func(d interface{ Seconds() float64 }) float64 { return d.Seconds() * 1e3 }
	b.ReportMetric(ms(res.Raw), "raw-ms")
	b.ReportMetric(ms(res.Update), "update-ms")
	b.ReportMetric(ms(res.ForwardBackward), "fwdbwd-ms")
	b.ReportMetric(ms(res.Optimizer), "optim-ms")
	b.ReportMetric(ms(res.Publish), "publish-ms")
	b.ReportMetric(ms(res.Ref), "ref-ms")
	b.ReportMetric(res.RawTokensPerSec, "raw-tokens/s")
	b.ReportMetric(res.TokensPerSec, "tokens/s")
	b.ReportMetric(res.Ratio(), "ratio_total")
	b.ReportMetric(res.UpdateOnlyRatio(), "ratio_update")
}
