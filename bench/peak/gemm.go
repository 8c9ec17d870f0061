package peak

import (
	"fmt"
	"math"
	"math/rand/v2"
	"slices"
	"time"

	"github.com/wsgrpo/wsgrpo/model/onnx"
	"github.com/wsgrpo/wsgrpo/model/ort"
)

// gemmOpset is the ONNX opset of the one-node MatMul graph.
const gemmOpset = 17

// GEMM is one measured float32 matrix product C[N,N] = A[N,N]·B[N,N] run by
// ONNX Runtime. Times are wall-clock per Session.Run call, including the
// binding's input and output copies.
type GEMM struct {
	N       int     `json:"n"`
	Threads int     `json:"threads"`
	Reps    int     `json:"reps"`
	FLOPs   float64 `json:"flops"` // 2·N³ per product
	// BestSeconds and MedianSeconds are over the timed repetitions.
	BestSeconds   float64 `json:"best_seconds"`
	MedianSeconds float64 `json:"median_seconds"`
	// GFLOPs is FLOPs / BestSeconds (the achievable figure); MedianGFLOPs
	// is FLOPs / MedianSeconds.
	GFLOPs       float64 `json:"gflops"`
	MedianGFLOPs float64 `json:"median_gflops"`
}

// GEMMModel returns an encoded ONNX model with float32 inputs "a" [n,n] and
// "b" [n,n] and output "c" = MatMul(a, b).
func GEMMModel(n int) ([]byte, error) {
	if n <= 0 {
		return nil, fmt.Errorf("%w: GEMM size must be positive, got %d", ErrBadConfig, n)
	}
	b := onnx.NewBuilder("gemm")
	dims := onnx.Dims(int64(n), int64(n))
	a := b.Input("a", onnx.Float, dims...)
	bb := b.Input("b", onnx.Float, dims...)
	b.Named("MatMul", []string{a, bb}, []string{"c"})
	b.Output("c", onnx.Float, dims...)
	m, err := onnx.NewModel(b.Graph(), gemmOpset).Marshal()
	if err != nil {
		return nil, fmt.Errorf("%w: encode model: %w", ErrGEMM, err)
	}
	return m, nil
}

// gemmInputs returns seeded random n×n matrices with entries in [-1, 1).
func gemmInputs(n int, seed uint64) (a, b []float32) {
	r := rand.New(rand.NewPCG(seed, seed^0x5851f42d4c957f2d))
	a = make([]float32, n*n)
	b = make([]float32, n*n)
	for i := range a {
		a[i] = 2*r.Float32() - 1
		b[i] = 2*r.Float32() - 1
	}
	return a, b
}

// MeasureGEMM times the n×n×n float32 MatMul on a session of rt: warmup
// untimed runs, then reps timed ones. It checks a sample of the product
// against a float64 reference first, so a wrong graph cannot report a rate.
// rt's IntraOpThreads is the thread count reported.
func MeasureGEMM(rt *ort.Runtime, n, warmup, reps int) (GEMM, error) {
	if reps <= 0 || warmup < 0 {
		return GEMM{}, fmt.Errorf("%w: need reps > 0 and warmup >= 0, got %d and %d", ErrBadConfig, reps, warmup)
	}
	model, err := GEMMModel(n)
	if err != nil {
		return GEMM{}, err
	}
	s, err := rt.NewSession(model, []string{"a", "b"}, []string{"c"})
	if err != nil {
		return GEMM{}, fmt.Errorf("%w: %w", ErrGEMM, err)
	}
	defer s.Close()
	a, b := gemmInputs(n, uint64(n))
	in := map[string]*ort.Tensor{
		"a": ort.F32Tensor(a, int64(n), int64(n)),
		"b": ort.F32Tensor(b, int64(n), int64(n)),
	}
	out, err := s.Run(in)
	if err != nil {
		return GEMM{}, fmt.Errorf("%w: %w", ErrGEMM, err)
	}
	if err := checkProduct(a, b, out["c"], n); err != nil {
		return GEMM{}, err
	}
	for range warmup {
		if _, err := s.Run(in); err != nil {
			return GEMM{}, fmt.Errorf("%w: %w", ErrGEMM, err)
		}
	}
	times := make([]float64, reps)
	for i := range times {
		start := time.Now()
		if _, err := s.Run(in); err != nil {
			return GEMM{}, fmt.Errorf("%w: %w", ErrGEMM, err)
		}
		times[i] = time.Since(start).Seconds()
	}
	slices.Sort(times)
	g := GEMM{
		N:             n,
		Threads:       rt.Config().IntraOpThreads,
		Reps:          reps,
		FLOPs:         2 * float64(n) * float64(n) * float64(n),
		BestSeconds:   times[0],
		MedianSeconds: median(times),
	}
	g.GFLOPs = g.FLOPs / g.BestSeconds / 1e9
	g.MedianGFLOPs = g.FLOPs / g.MedianSeconds / 1e9
	return g, nil
}

// median returns the median of sorted xs (not empty).
func median(xs []float64) float64 {
	m := len(xs) / 2
	if len(xs)%2 == 1 {
		return xs[m]
	}
	return (xs[m-1] + xs[m]) / 2
}

// checkSamples is how many entries of the product checkProduct verifies.
const checkSamples = 64

// checkProduct compares up to checkSamples entries of c (spread over the
// matrix, corners included) with float64 dot products of a's rows and b's
// columns, to a tolerance scaled by sqrt(n).
func checkProduct(a, b []float32, c *ort.Tensor, n int) error {
	if c == nil || len(c.F32) != n*n {
		return fmt.Errorf("%w: product missing or of the wrong size", ErrGEMM)
	}
	total := n * n
	step := max(1, (total-1)/(checkSamples-1))
	for idx := 0; idx < total; idx += step {
		i, j := idx/n, idx%n
		var want float64
		for k := range n {
			want += float64(a[i*n+k]) * float64(b[k*n+j])
		}
		if got := float64(c.F32[idx]); math.Abs(got-want) > 1e-4*math.Sqrt(float64(n))*max(1, math.Abs(want)) {
			return fmt.Errorf("%w: c[%d,%d] = %g, want %g", ErrGEMM, i, j, got, want)
		}
	}
	return nil
}
