package peak

import (
	"errors"
	"math"
	"os"
	"path/filepath"
	"runtime"
	"testing"

	"github.com/wsgrpo/wsgrpo/model/ort"
	"github.com/wsgrpo/wsgrpo/model/ort/orttest"
)

// testRuntime returns an ONNX Runtime with the given intra-op thread count,
// skipping the test (through orttest.Runtime) when the library is missing.
func testRuntime(tb testing.TB, threads int) *ort.Runtime {
	tb.Helper()
	orttest.Runtime(tb)
	c := ort.DefaultConfig()
	c.IntraOpThreads = threads
	rt, err := ort.Init(c, nil)
	if err != nil {
		tb.Fatalf("ort.Init: %v", err)
	}
	return rt
}

func TestGEMMModelRejectsBadSize(t *testing.T) {
	for _, n := range []int{0, -3} {
		if _, err := GEMMModel(n); !errors.Is(err, ErrBadConfig) {
			t.Fatalf("GEMMModel(%d) error = %v, want ErrBadConfig", n, err)
		}
	}
}

func TestMeasureGEMM(t *testing.T) {
	rt := testRuntime(t, 1)
	tests := []struct {
		name           string
		n, warmup, rep int
		wantErr        error
	}{
		{"1x1", 1, 0, 1, nil},
		{"odd size", 7, 1, 3, nil},
		{"64", 64, 1, 2, nil},
		{"no reps", 8, 0, 0, ErrBadConfig},
		{"negative warmup", 8, -1, 1, ErrBadConfig},
		{"zero size", 0, 0, 1, ErrBadConfig},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			g, err := MeasureGEMM(rt, tc.n, tc.warmup, tc.rep)
			if !errors.Is(err, tc.wantErr) {
				t.Fatalf("error = %v, want %v", err, tc.wantErr)
			}
			if err != nil {
				return
			}
			n := float64(tc.n)
			if g.N != tc.n || g.Reps != tc.rep || g.Threads != 1 || g.FLOPs != 2*n*n*n {
				t.Fatalf("bad bookkeeping: %+v", g)
			}
			if !(g.BestSeconds > 0) || g.BestSeconds > g.MedianSeconds {
				t.Fatalf("bad times: best %v, median %v", g.BestSeconds, g.MedianSeconds)
			}
			if g.GFLOPs != g.FLOPs/g.BestSeconds/1e9 || g.MedianGFLOPs != g.FLOPs/g.MedianSeconds/1e9 {
				t.Fatalf("rates disagree with times: %+v", g)
			}
		})
	}
}

func TestCheckProduct(t *testing.T) {
	const n = 5
	a, b := gemmInputs(n, 3)
	c := make([]float32, n*n)
	for i := range n {
		for j := range n {
			var s float32
			for k := range n {
				s += a[i*n+k] * b[k*n+j]
			}
			c[i*n+j] = s
		}
	}
	corrupt := func(idx int) []float32 {
		d := append([]float32(nil), c...)
		d[idx] += 0.5
		return d
	}
	tests := []struct {
		name    string
		c       *ort.Tensor
		wantErr error
	}{
		{"correct", ort.F32Tensor(c, n, n), nil},
		{"first entry wrong", ort.F32Tensor(corrupt(0), n, n), ErrGEMM},
		{"last entry wrong", ort.F32Tensor(corrupt(n*n-1), n, n), ErrGEMM},
		{"middle entry wrong", ort.F32Tensor(corrupt(12), n, n), ErrGEMM},
		{"short", ort.F32Tensor(c[:n], n), ErrGEMM},
		{"missing", nil, ErrGEMM},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			if err := checkProduct(a, b, tc.c, n); !errors.Is(err, tc.wantErr) {
				t.Fatalf("error = %v, want %v", err, tc.wantErr)
			}
		})
	}
}

func TestMedian(t *testing.T) {
	tests := []struct {
		xs   []float64
		want float64
	}{{[]float64{3}, 3}, {[]float64{1, 2}, 1.5}, {[]float64{1, 2, 10}, 2}}
	for _, tc := range tests {
		if got := median(tc.xs); got != tc.want {
			t.Fatalf("median(%v) = %v, want %v", tc.xs, got, tc.want)
		}
	}
}

// writeCPUInfo writes a cpuinfo fixture and returns its path.
func writeCPUInfo(tb testing.TB, text string) string {
	tb.Helper()
	p := filepath.Join(tb.TempDir(), "cpuinfo")
	if err := os.WriteFile(p, []byte(text), 0o600); err != nil {
		tb.Fatal(err)
	}
	return p
}

func TestPeak(t *testing.T) {
	orttest.Runtime(t)
	fixture := writeCPUInfo(t, block(0, 0, 0, "2500", zen5Flags)+block(1, 0, 1, "2500", zen5Flags))
	tests := []struct {
		name    string
		cfg     Config
		wantFMA int
		wantErr error
	}{
		{"small GEMM", Config{CPUInfoPath: fixture, N: 32, Reps: 2, Warmup: -1, Threads: 1, ClockRuns: 2, ClockIters: 1000, FMARuns: 2, FMAIters: 10_000}, DefaultFMAUnits, nil},
		{"default threads, three FMA pipes", Config{CPUInfoPath: fixture, N: 16, Reps: 1, FMAUnits: 3, ClockIters: 1000, FMAIters: 10_000}, 3, nil},
		{"negative size", Config{CPUInfoPath: fixture, N: -1}, 0, ErrBadConfig},
		{"negative clock runs", Config{CPUInfoPath: fixture, ClockRuns: -1}, 0, ErrBadConfig},
		{"negative FMA iterations", Config{CPUInfoPath: fixture, FMAIters: -1}, 0, ErrBadConfig},
		{"missing cpuinfo", Config{CPUInfoPath: filepath.Join(t.TempDir(), "none"), N: 8}, 0, ErrCPUInfo},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			res, err := Peak(tc.cfg, nil)
			if !errors.Is(err, tc.wantErr) {
				t.Fatalf("error = %v, want %v", err, tc.wantErr)
			}
			if err != nil {
				return
			}
			fma := float64(tc.wantFMA)
			if res.AVX2.GFLOPs != 2*2.5*fma*8*2 || res.Widest.GFLOPs != 2*2.5*fma*16*2 {
				t.Fatalf("theoretical peaks %v / %v, want for %v FMA pipes", res.AVX2, res.Widest, fma)
			}
			// Boost goes through MHz (GHz*1000/1000), which need not give
			// back the same float64.
			if math.Abs(res.Boost.GHz-res.Clock.GHz) > 1e-9*res.Clock.GHz || res.Boost.Lanes != LanesAVX512 || res.Boost.FMAUnits != tc.wantFMA {
				t.Fatalf("boost peak %+v does not use the measured clock %+v", res.Boost, res.Clock)
			}
			if p := res.TheoreticalPeakGFLOPs(); p < res.AVX2.GFLOPs || p < res.Widest.GFLOPs || p < res.Boost.GFLOPs {
				t.Fatalf("TheoreticalPeakGFLOPs %v is below a theoretical figure", p)
			}
			if res.Microarch != Zen5 {
				t.Fatalf("Microarch = %q, want %q (the fixture's family 26)", res.Microarch, Zen5)
			}
			if len(res.FMA) != len(FMAWidths) {
				t.Fatalf("FMA = %+v, want one entry per width", res.FMA)
			}
			// The measured peak is what rates are compared against,
			// wherever a kernel could run.
			if m := res.MeasuredPeakGFLOPs(); m > 0 && res.PeakGFLOPs() != m {
				t.Fatalf("PeakGFLOPs %v, want the measured %v", res.PeakGFLOPs(), m)
			}
			threads := tc.cfg.Threads
			if threads == 0 {
				threads = runtime.NumCPU()
			}
			if res.GEMM.N != tc.cfg.N || res.GEMM.Threads != threads || res.GEMM.Reps != tc.cfg.Reps {
				t.Fatalf("GEMM %+v does not follow config %+v", res.GEMM, tc.cfg)
			}
			if res.Provider != ort.ProviderCPU || res.UsableCPUs != runtime.NumCPU() {
				t.Fatalf("provider %q, usable CPUs %d", res.Provider, res.UsableCPUs)
			}
		})
	}
}
