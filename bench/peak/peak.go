package peak

import (
	"errors"
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
	// DefaultFMARuns and DefaultFMAIters size the FMA measurement: runs of
	// about 2 ms (256-bit) to 4 ms (512-bit at half rate) on a 4 GHz core,
	// long beside the threads' start skew, short beside a time slice, and
	// enough of them (about 2 s in all) that on a busy machine some round
	// finds every CPU free: with 50, one 256-bit all-CPU figure came out
	// at half the other width's while another process held a CPU.
	DefaultFMARuns  = 200
	DefaultFMAIters = 1_000_000
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
	// FMAThreads, FMARuns and FMAIters size MeasureFMA (defaults
	// runtime.NumCPU(), 200, 1,000,000).
	FMAThreads, FMARuns, FMAIters int
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
	if c.FMAThreads == 0 {
		c.FMAThreads = runtime.NumCPU()
	}
	if c.FMARuns == 0 {
		c.FMARuns = DefaultFMARuns
	}
	if c.FMAIters == 0 {
		c.FMAIters = DefaultFMAIters
	}
	return c
}

// validate reports impossible settings (after defaults).
func (c Config) validate() error {
	if c.FMAUnits < 0 || c.N < 0 || c.Threads < 0 || c.Reps < 0 || c.ClockRuns < 0 || c.ClockIters < 0 ||
		c.FMAThreads < 0 || c.FMARuns < 0 || c.FMAIters < 0 {
		return fmt.Errorf("%w: negative FMAUnits %d, N %d, Threads %d, Reps %d, ClockRuns %d, ClockIters %d, FMAThreads %d, FMARuns %d or FMAIters %d",
			ErrBadConfig, c.FMAUnits, c.N, c.Threads, c.Reps, c.ClockRuns, c.ClockIters, c.FMAThreads, c.FMARuns, c.FMAIters)
	}
	return nil
}

// Result is the machine's fp32 yardstick.
type Result struct {
	CPU CPUInfo `json:"cpu"`
	// Microarch is the core design named by CPU's vendor, family and
	// model (see DetectMicroarch).
	Microarch Microarch `json:"microarch"`
	// UsableCPUs is runtime.NumCPU() for this process.
	UsableCPUs int `json:"usable_cpus"`
	// Clock is the measured single-core clock (see MeasureClock).
	Clock Clock `json:"clock"`
	// FMA is the measured FMA kernel throughput, one entry per width of
	// FMAWidths; a width this CPU cannot run has Unsupported set.
	FMA []FMARate `json:"fma"`
	// AVX2 is the theoretical peak at the cpuinfo clock with 8 fp32 lanes;
	// Widest uses the widest vector the flags advertise (see WidestLanes;
	// equal to AVX2 without avx512f, and in GFLOP/s on AMD Zen 4, whose
	// 512-bit FMAs run at half rate); Boost is Widest at the measured
	// clock, which on virtual machines and boosting CPUs exceeds the
	// cpuinfo "cpu MHz".
	AVX2   Theoretical `json:"theoretical_avx2"`
	Widest Theoretical `json:"theoretical_widest"`
	Boost  Theoretical `json:"theoretical_boost"`
	// GEMM is the measured ONNX Runtime MatMul.
	GEMM GEMM `json:"gemm"`
	// Provider is the ONNX Runtime execution provider that ran the GEMM.
	Provider string `json:"provider"`
}

// Peak reads the CPU description, derives the theoretical peaks, measures
// the clock, the FMA kernels and the ONNX Runtime GEMM. A nil log discards
// logging.
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
	fma, err := measureFMAWidths(c)
	if err != nil {
		return Result{}, err
	}
	res := Result{
		CPU:        cpu,
		Microarch:  cpu.Microarch(),
		UsableCPUs: runtime.NumCPU(),
		Clock:      clock,
		FMA:        fma,
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
	fmaLog := make([]string, len(res.FMA))
	for i, f := range res.FMA {
		fmaLog[i] = f.String()
	}
	log.Info("fp32 peak", "cpu", cpu.Model, "microarch", res.Microarch, "fma", fmaLog,
		"measured_peak_gflops", res.MeasuredPeakGFLOPs(), "avx2", res.AVX2.String(), "widest", res.Widest.String(),
		"boost", res.Boost.String(), "theoretical_peak_gflops", res.TheoreticalPeakGFLOPs(),
		"gemm_n", res.GEMM.N, "gemm_threads", res.GEMM.Threads, "gemm_gflops", res.GEMM.GFLOPs,
		"gemm_median_gflops", res.GEMM.MedianGFLOPs)
	return res, nil
}

// measureFMAWidths runs MeasureFMA for every width of FMAWidths; a width
// the CPU cannot run is recorded with Unsupported set, not an error.
func measureFMAWidths(c Config) ([]FMARate, error) {
	rates := make([]FMARate, 0, len(FMAWidths))
	for _, bits := range FMAWidths {
		r, err := MeasureFMA(bits, c.FMAThreads, c.FMARuns, c.FMAIters)
		if errors.Is(err, ErrFMAUnsupported) {
			r = FMARate{Bits: bits, Unsupported: err.Error()}
		} else if err != nil {
			return nil, err
		}
		rates = append(rates, r)
	}
	return rates, nil
}

// BestFMA returns the measured FMA width with the highest all-threads
// rate (the zero FMARate when none was measured).
func (r Result) BestFMA() FMARate {
	var best FMARate
	for _, f := range r.FMA {
		if f.Unsupported == "" && f.TotalGFLOPs > best.TotalGFLOPs {
			best = f
		}
	}
	return best
}

// MeasuredPeakGFLOPs is the best measured FMA kernel rate on all usable
// CPUs (BestFMA's TotalGFLOPs; 0 when no width could be measured).
func (r Result) MeasuredPeakGFLOPs() float64 {
	return r.BestFMA().TotalGFLOPs
}

// TheoreticalPeakGFLOPs is the largest theoretical figure (AVX2, Widest,
// Boost): an upper bound, which the cores reach only if they all hold
// the measured single-core clock.
func (r Result) TheoreticalPeakGFLOPs() float64 {
	return max(r.AVX2.GFLOPs, r.Widest.GFLOPs, r.Boost.GFLOPs)
}

// PeakGFLOPs is the fp32 peak to compare achieved rates against: the
// measured one (MeasuredPeakGFLOPs), or the theoretical one where no FMA
// kernel could run (outside amd64, or without AVX2 and FMA).
func (r Result) PeakGFLOPs() float64 {
	if m := r.MeasuredPeakGFLOPs(); m > 0 {
		return m
	}
	return r.TheoreticalPeakGFLOPs()
}
