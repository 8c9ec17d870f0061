package peak

import (
	"runtime"
	"strconv"
	"testing"

	"github.com/wsgrpo/wsgrpo/model/ort"
)

// BenchmarkGEMM runs the float32 MatMul through ONNX Runtime with one
// intra-op thread per usable CPU and reports GFLOP/s (2·N³ per run).
func BenchmarkGEMM(b *testing.B) {
	rt := testRuntime(b, runtime.NumCPU())
	for _, n := range []int{256, DefaultN} {
		b.Run("n="+strconv.Itoa(n), func(b *testing.B) {
			model, err := GEMMModel(n)
			if err != nil {
				b.Fatal(err)
			}
			s, err := rt.NewSession(model, nil, nil)
			if err != nil {
				b.Fatal(err)
			}
			b.Cleanup(func() { _ = s.Close() })
			x, y := gemmInputs(n, 1)
			in := map[string]*ort.Tensor{
				"a": ort.F32Tensor(x, int64(n), int64(n)),
				"b": ort.F32Tensor(y, int64(n), int64(n)),
			}
			for b.Loop() {
				if _, err := s.Run(in); err != nil {
					b.Fatal(err)
				}
			}
			flops := 2 * float64(n) * float64(n) * float64(n)
			b.ReportMetric(flops*float64(b.N)/b.Elapsed().Seconds()/1e9, "GFLOP/s")
		})
	}
}
