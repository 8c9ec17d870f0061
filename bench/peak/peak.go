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
	return c
}

// validate reports impossible settings (after defaults).
func (c Config) validate() error {
	if c.FMAUnits < 0 || c.N < 0 || c.Threads < 0 || c.Reps < 0 {
		return fmt.Errorf("%w: negative FMAUnits %d, N %d, Threads %d or Reps %d",
			ErrBadConfig, c.FMAUnits, c.N, c.Threads, c.Reps)
	}
	return nil
}

// Result is the machine's fp32 yardstick.
type Result struct {
	CPU CPUInfo `json:"cpu"`
	// UsableCPUs is runtime.NumCPU() for this process.
	UsableCPUs int `json:"usable_cpus"`
	// AVX2 is the peak with 8 fp32 lanes; Widest uses the widest vector
	// the flags advertise (see WidestLanes). They are equal without
	// avx512f.
	AVX2   Theoretical `json:"theoretical_avx2"`
	Widest Theoretical `json:"theoretical_widest"`
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
	res := Result{
		CPU:        cpu,
		UsableCPUs: runtime.NumCPU(),
		AVX2:       Derive(cpu, c.FMAUnits, LanesAVX2),
		Widest:     Derive(cpu, c.FMAUnits, WidestLanes(cpu)),
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
		"gemm_n", res.GEMM.N, "gemm_threads", res.GEMM.Threads, "gemm_gflops", res.GEMM.GFLOPs,
		"gemm_median_gflops", res.GEMM.MedianGFLOPs)
	return res, nil
}
