package peak

import (
	"fmt"
	"log/slog"
	"runtime"

	"github.com/wsgrpo/wsgrpo/model/ort"
)

// Defaults for Config's zero fields.
const (
	DefaultN      = 1024
	DefaultReps   = 20
	DefaultWarmup = 3
	// DefaultClockRuns and DefaultClockIters size the clock measurement:
	// many short runs (about 0.5 ms each at 4 GHz), so that on a busy
	// machine some run fits between two preemptions.
	DefaultClockRuns  = 200
	DefaultClockIters = 250_000
)

// Config says how to measure. Zero fields take the defaults.
type Config struct {
	// CPUInfoPath is the cpuinfo file (default /proc/cpuinfo).
	CPUInfoPath string
	// FMAUnits is the FMA pipes per core (default DefaultFMAUnits).
	FMAUnits int
	// N is the GEMM size (default 1024).
	N int
	// Threads is ONNX Runtime's intra-op thread count for the GEMM
	// (default runtime.NumCPU(), the CPUs this process may use).
	Threads int
	// Warmup and Reps are the untimed and timed GEMM runs (defaults 3, 20).
	// Warmup < 0 means none.
	Warmup, Reps int
	// ClockRuns and ClockIters size MeasureClock (defaults 200, 250,000).
	ClockRuns, ClockIters int
	// ORT selects the ONNX Runtime library and provider; its thread counts
	// are replaced by Threads and 1.
	ORT ort.Config
}

// withDefaults fills zero fields.
func (c Config) withDefaults() Config {
	if c.FMAUnits == 0 {
		c.FMAUnits = DefaultFMAUnits
	}
	if c.N == 0 {
		c.N = DefaultN
	}
	if c.Threads == 0 {
		c.Threads = runtime.NumCPU()
	}
	switch {
	case c.Warmup == 0:
		c.Warmup = DefaultWarmup
	case c.Warmup < 0:
		c.Warmup = 0
	}
	if c.Reps == 0 {
		c.Reps = DefaultReps
	}
	if c.ClockRuns == 0 {
		c.ClockRuns = DefaultClockRuns
	}
	if c.ClockIters == 0 {
		c.ClockIters = DefaultClockIters
	}
	return c
}

// validate reports impossible settings (after defaults).
func (c Config) validate() error {
	if c.FMAUnits < 0 || c.N < 0 || c.Threads < 0 || c.Reps < 0 || c.ClockRuns < 0 || c.ClockIters < 0 {
		return fmt.Errorf("%w: negative FMAUnits %d, N %d, Threads %d, Reps %d, ClockRuns %d or ClockIters %d",
			ErrBadConfig, c.FMAUnits, c.N, c.Threads, c.Reps, c.ClockRuns, c.ClockIters)
	}
	return nil
}

// Result is the machine's fp32 yardstick.
type Result struct {
	CPU CPUInfo `json:"cpu"`
	// UsableCPUs is runtime.NumCPU() for this process.
	UsableCPUs int `json:"usable_cpus"`
	// Clock is the measured single-core clock (see MeasureClock).
	Clock Clock `json:"clock"`
	// AVX2 is the peak at the cpuinfo clock with 8 fp32 lanes; Widest uses
	// the widest vector the flags advertise (see WidestLanes; equal to AVX2
	// without avx512f); Boost is Widest at the measured clock, which on
	// virtual machines and boosting CPUs exceeds the cpuinfo "cpu MHz".
	AVX2   Theoretical `json:"theoretical_avx2"`
	Widest Theoretical `json:"theoretical_widest"`
	Boost  Theoretical `json:"theoretical_boost"`
	// GEMM is the measured ONNX Runtime MatMul.
	GEMM GEMM `json:"gemm"`
	// Provider is the ONNX Runtime execution provider that ran the GEMM.
	Provider string `json:"provider"`
}

// Peak reads the CPU description, derives the theoretical peaks and
// measures the ONNX Runtime GEMM. A nil log discards logging.
func Peak(c Config, log *slog.Logger) (Result, error) {
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	if err := c.validate(); err != nil {
		return Result{}, err
	}
	c = c.withDefaults()
	cpu, err := ReadCPUInfo(c.CPUInfoPath)
	if err != nil {
		return Result{}, err
	}
	clock, err := MeasureClock(c.ClockRuns, c.ClockIters)
	if err != nil {
		return Result{}, err
	}
	boosted := cpu
	boosted.MHz = clock.GHz * 1000
	res := Result{
		CPU:        cpu,
		UsableCPUs: runtime.NumCPU(),
		Clock:      clock,
		AVX2:       Derive(cpu, c.FMAUnits, LanesAVX2),
		Widest:     Derive(cpu, c.FMAUnits, WidestLanes(cpu)),
		Boost:      Derive(boosted, c.FMAUnits, WidestLanes(cpu)),
	}
	oc := c.ORT
	oc.IntraOpThreads, oc.InterOpThreads = c.Threads, 1
	rt, err := ort.Init(oc, log)
	if err != nil {
		return Result{}, fmt.Errorf("%w: %w", ErrGEMM, err)
	}
	res.Provider = rt.Provider()
	res.GEMM, err = MeasureGEMM(rt, c.N, c.Warmup, c.Reps)
	if err != nil {
		return Result{}, err
	}
	log.Info("fp32 peak", "cpu", cpu.Model, "avx2", res.AVX2.String(), "widest", res.Widest.String(),
		"boost", res.Boost.String(), "peak_gflops", res.PeakGFLOPs(),
		"gemm_n", res.GEMM.N, "gemm_threads", res.GEMM.Threads, "gemm_gflops", res.GEMM.GFLOPs,
		"gemm_median_gflops", res.GEMM.MedianGFLOPs)
	return res, nil
}

// PeakGFLOPs is the fp32 peak to compare achieved rates against: the
// largest theoretical figure (an upper bound, so a rate can never reach
// more than 100% of it).
func (r Result) PeakGFLOPs() float64 {
	return max(r.AVX2.GFLOPs, r.Widest.GFLOPs, r.Boost.GFLOPs)
}
