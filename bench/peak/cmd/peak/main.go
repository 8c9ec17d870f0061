// Command peak prints this machine's fp32 peak (measured, an FMA kernel at
// 256 and 512 bits; theoretical, from /proc/cpuinfo; and achievable, an
// ONNX Runtime float32 GEMM) as JSON.
package main

import (
	"encoding/json"
	"flag"
	"log/slog"
	"os"

	"github.com/wsgrpo/wsgrpo/bench/peak"
)

func main() {
	var c peak.Config
	flag.IntVar(&c.N, "n", peak.DefaultN, "GEMM size (N×N by N×N)")
	flag.IntVar(&c.Threads, "threads", 0, "ONNX Runtime intra-op threads (0 = number of usable CPUs)")
	flag.IntVar(&c.Reps, "reps", peak.DefaultReps, "timed GEMM runs")
	flag.IntVar(&c.Warmup, "warmup", peak.DefaultWarmup, "untimed GEMM runs (negative = none)")
	flag.IntVar(&c.FMAUnits, "fma-units", peak.DefaultFMAUnits, "vector FMA pipes per core")
	flag.IntVar(&c.ClockRuns, "clock-runs", peak.DefaultClockRuns, "clock measurement runs (fastest kept)")
	flag.IntVar(&c.ClockIters, "clock-iters", peak.DefaultClockIters, "dependency-chain iterations per clock run")
	flag.IntVar(&c.FMAThreads, "fma-threads", 0, "FMA kernel threads for the all-cores figure (0 = number of usable CPUs)")
	flag.IntVar(&c.FMARuns, "fma-runs", peak.DefaultFMARuns, "FMA kernel runs per width (fastest kept)")
	flag.IntVar(&c.FMAIters, "fma-iters", peak.DefaultFMAIters, "FMA kernel iterations (of 12 FMAs) per run")
	flag.StringVar(&c.CPUInfoPath, "cpuinfo", peak.DefaultCPUInfoPath, "cpuinfo file")
	flag.StringVar(&c.ORT.LibraryPath, "ort-lib", "", "ONNX Runtime library (default $WSGRPO_ORT_LIB or the setup cache)")
	flag.Parse()
	log := slog.New(slog.NewTextHandler(os.Stderr, nil))
	res, err := peak.Peak(c, log)
	if err != nil {
		log.Error("peak", "err", err)
		os.Exit(1)
	}
	enc := json.NewEncoder(os.Stdout)
	enc.SetIndent("", "  ")
	if err := enc.Encode(res); err != nil {
		log.Error("write result", "err", err)
		os.Exit(1)
	}
}
