// Package peak measures this machine's single-precision (fp32) throughput,
// the yardstick for the training benchmarks of issue 3.
//
// It reports two figures:
//
//   - a theoretical peak, derived from /proc/cpuinfo as
//     cores × clock × FMA units per core × fp32 lanes per vector × 2
//     (an FMA is two floating-point operations), given for AVX2 (8 lanes)
//     and for the widest vector width the CPU flags advertise;
//   - an achievable figure: the throughput of a large float32 GEMM
//     (one ONNX MatMul node, 1024×1024 by 1024×1024 by default) run by ONNX
//     Runtime with one intra-op thread per usable CPU, i.e. the best this
//     machine does on a matmul through the project's math engine.
//
// Peak runs both; `wsgrpo bench` prints its Result.
package peak
