// Package peak measures this machine's single-precision (fp32) throughput,
// the yardstick for the training benchmarks.
//
// It reports three figures:
//
//   - a measured peak: a loop of VFMADD231PS on 12 independent accumulators
//     (Go assembly, amd64), at 256 bits (AVX2+FMA) and, where the CPU has
//     AVX-512F, at 512 bits; one core alone, and one goroutine per usable
//     CPU at once (each locked to its OS thread). The best width on all
//     CPUs is the peak that achieved rates are compared against
//     (Result.PeakGFLOPs);
//   - a theoretical peak, derived from /proc/cpuinfo as
//     cores × clock × FMA units per core × fp32 lanes per vector × 2
//     (an FMA is two floating-point operations) × the rate at which the
//     core design starts FMAs of that width (0.5 for 512-bit FMAs on AMD
//     Zen 4, which splits them into two 256-bit halves; see
//     DetectMicroarch), given for AVX2 (8 lanes) and for the widest vector
//     width the CPU flags advertise, shown beside the measured one;
//   - an achievable figure: the throughput of a large float32 GEMM
//     (one ONNX MatMul node, 1024×1024 by 1024×1024 by default) run by ONNX
//     Runtime with one intra-op thread per usable CPU, i.e. the best this
//     machine does on a matmul through the project's math engine.
//
// Peak runs them all; `wsgrpo bench train` prints its Result.
package peak
