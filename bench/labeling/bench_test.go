package labeling

import (
	"testing"

	"github.com/wsgrpo/wsgrpo/model/ort/orttest"
)

// BenchmarkLabeler is `wsgrpo bench labeler` as a Go benchmark, on the
// same harness (Run): 64-row verified batches through the labeler stage
// with the ws-grpo shaper (featurize, score, shape) and with grpo, each in
// alternation with the raw forward pass over the same rows, b.N batches
// each. It reports rows/s of both shapers and ws-grpo's ratio to the raw
// forward pass.
func BenchmarkLabeler(b *testing.B) {
	rt := orttest.Runtime(b)
	res, err := Run(b.Context(), rt, Options{Batches: b.N, FitPairs: 200, FitEpochs: 1})
	if err != nil {
		b.Fatal(err)
	}
	for _, st := range res.Stages {
		b.ReportMetric(st.RowsPerSec, st.Shaper+"-rows/s")
		if st.Shaper == "ws-grpo" {
			b.ReportMetric(st.RawRowsPerSec, "raw-rows/s")
			b.ReportMetric(st.Ratio(), "ratio")
		}
	}
}
