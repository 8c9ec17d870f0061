// Package trainstep measures one GRPO training step of the learner: wall
// time, process CPU time, the ONNX Runtime run inside it, and the matmul
// GFLOP/s they amount to, optionally with ONNX Runtime's per-node profile.
// `wsgrpo bench train` prints these figures next to the machine's fp32 peak
// (docs/benchmarks/model.md).
package trainstep

import (
	"fmt"
	"log/slog"
	"math/rand/v2"
	"slices"
	"time"

	"github.com/wsgrpo/wsgrpo/model/onnx"
	"github.com/wsgrpo/wsgrpo/model/optim"
	"github.com/wsgrpo/wsgrpo/model/ort"
	"github.com/wsgrpo/wsgrpo/model/policy"
	"github.com/wsgrpo/wsgrpo/model/train"
)

// Options describes a training-step measurement.
type Options struct {
	// Policy is the model shape (weights are freshly initialised).
	Policy policy.Config
	// Batch and Seq give the tokens per step (Batch x Seq).
	Batch, Seq int
	// Warmup steps are run first and not timed; Steps are timed.
	Warmup, Steps int
	// ProfileSteps, when positive, adds that many steps of a second
	// Trainer under ONNX Runtime's per-node profiler (not timed with the
	// others) and fills Result.Profile.
	ProfileSteps int
}

// Result reports a training-step measurement.
type Result struct {
	// Params is the number of trained weights.
	Params int64
	// Tokens is Batch x Seq.
	Tokens int
	// FLOPs is the matmul work of one step (see FLOPs).
	FLOPs float64
	// StepTime is the mean wall time of one full step (ONNX Runtime
	// forward+backward and the AdamW update in Go).
	StepTime time.Duration
	// MinStepTime is the fastest step.
	MinStepTime time.Duration
	// GFLOPS is FLOPs / StepTime in 1e9 per second.
	GFLOPS float64
	// RunTime is the mean wall time of the step's ONNX Runtime run
	// (forward and backward: all the matmuls, plus the element-wise
	// work between them); the rest of StepTime is the Go side (feeds,
	// gradient buffers, AdamW). MinRunTime is the fastest run.
	RunTime, MinRunTime time.Duration
	// RunGFLOPS is FLOPs / RunTime; BestRunGFLOPS FLOPs / MinRunTime.
	RunGFLOPS, BestRunGFLOPS float64
	// BestGFLOPS is FLOPs / MinStepTime.
	BestGFLOPS float64
	// CPUPerStep is the process CPU time (all threads) per timed step;
	// unlike wall time, other processes sharing the cores do not inflate
	// it. Zero where the platform does not report it.
	CPUPerStep time.Duration
	// Profile is ONNX Runtime's per-node breakdown (Options.ProfileSteps);
	// nil when not asked for.
	Profile *Profile
	// MatMulGFLOPS is FLOPs over the mean matrix-product kernel time per
	// profiled step, BestMatMulGFLOPS over the sum of each such kernel's
	// fastest call (zero without a profile).
	MatMulGFLOPS, BestMatMulGFLOPS float64
}

// FLOPs counts the matrix-multiply floating-point operations of
// one training step of a policy of shape c on batch x seq tokens:
//
//	forward per token = L (8 d^2 + 4 d f + 4 T d) + 2 d V
//	step              = 3 x batch x seq x forward
//
// (q, k, v, o projections 4 x 2d^2; MLP 2 x 2df; scores and weighted values
// 2 x 2Td over all heads, counted in full although half is masked; the LM
// head 2dV; the backward pass costs twice the forward: a product for the
// input gradient and one for the weight gradient of every matmul).
// Element-wise work, softmax, layer norms and the embedding gather are
// not counted.
func FLOPs(c policy.Config, batch, seq int) float64 {
	d, f, v, t, l := float64(c.DModel), float64(c.DFF), float64(c.VocabSize), float64(seq), float64(c.NLayers)
	fwd := l*(8*d*d+4*d*f+4*t*d) + 2*d*v
	return 3 * float64(batch) * t * fwd
}

// Run builds a float32 policy with the GRPO loss (sequence
// mean, beta 0.04), trains it on random tokens and reports the time per
// step and the achieved matmul GFLOP/s.
func Run(rt *ort.Runtime, bc Options, log *slog.Logger) (Result, error) {
	if bc.Batch < 1 || bc.Seq < 1 || bc.Seq > bc.Policy.MaxSeq || bc.Steps < 1 || bc.Warmup < 0 {
		return Result{}, fmt.Errorf("%w: bench batch %d, seq %d (max %d), steps %d", train.ErrTrainer, bc.Batch, bc.Seq, bc.Policy.MaxSeq, bc.Steps)
	}
	w, err := policy.Init(bc.Policy, 1)
	if err != nil {
		return Result{}, err
	}
	m, err := policy.FullGraph(bc.Policy, w, onnx.Float)
	if err != nil {
		return Result{}, err
	}
	out, err := train.AppendGRPO(m.Graph, onnx.Float, policy.OutputLogits, train.GRPOConfig{EpsLow: 0.2, EpsHigh: 0.2, Beta: 0.04})
	if err != nil {
		return Result{}, err
	}
	oc := optim.DefaultConfig()
	oc.LR = 1e-5
	trainCfg := train.Config{Optim: oc, Metrics: out.Metrics()}
	tr, err := train.New(rt, m.Graph, out.Loss, trainCfg, log)
	if err != nil {
		return Result{}, err
	}
	defer tr.Close()
	feeds := train.GraphInputs(m.Graph, randomGRPOBatch(rand.New(rand.NewPCG(1, 2)), bc.Policy.VocabSize, bc.Batch, bc.Seq))
	for range bc.Warmup {
		if _, err := tr.Step(feeds); err != nil {
			return Result{}, err
		}
	}
	times, runs := make([]time.Duration, bc.Steps), make([]time.Duration, bc.Steps)
	cpu0 := processCPU()
	for i := range times {
		start := time.Now()
		r, err := tr.Step(feeds)
		if err != nil {
			return Result{}, err
		}
		times[i], runs[i] = time.Since(start), r.RunTime
	}
	cpu := processCPU() - cpu0
	n := time.Duration(bc.Steps)
	res := Result{
		Params:      bc.Policy.NumParams(),
		Tokens:      bc.Batch * bc.Seq,
		FLOPs:       FLOPs(bc.Policy, bc.Batch, bc.Seq),
		StepTime:    sum(times) / n,
		MinStepTime: slices.Min(times),
		RunTime:     sum(runs) / n,
		MinRunTime:  slices.Min(runs),
		CPUPerStep:  cpu / n,
	}
	res.GFLOPS = gflops(res.FLOPs, res.StepTime)
	res.BestGFLOPS = gflops(res.FLOPs, res.MinStepTime)
	res.RunGFLOPS = gflops(res.FLOPs, res.RunTime)
	res.BestRunGFLOPS = gflops(res.FLOPs, res.MinRunTime)
	if bc.ProfileSteps > 0 {
		kp, err := profileSteps(rt, m.Graph, out.Loss, trainCfg, feeds, bc.ProfileSteps, log)
		if err != nil {
			return Result{}, err
		}
		res.Profile = &kp
		res.MatMulGFLOPS = gflops(res.FLOPs, kp.MatMul)
		res.BestMatMulGFLOPS = gflops(res.FLOPs, kp.FastestMatMul)
	}
	return res, nil
}

// sum adds durations.
func sum(ds []time.Duration) time.Duration {
	var t time.Duration
	for _, d := range ds {
		t += d
	}
	return t
}

// gflops returns flops / d in 1e9 per second (0 for a zero d).
func gflops(flops float64, d time.Duration) float64 {
	if d <= 0 {
		return 0
	}
	return flops / d.Seconds() / 1e9
}

// randomGRPOBatch returns policy and GRPO inputs over random tokens with a
// quarter of each row as prompt.
func randomGRPOBatch(rng *rand.Rand, vocab, b, t int) map[string]*ort.Tensor {
	n := b * t
	ids, ones, pos, tg := make([]int64, n), make([]int64, n), make([]int64, n), make([]int64, n)
	tm, old, ref, adv := make([]float32, n), make([]float32, n), make([]float32, n), make([]float32, b)
	for i := range n {
		ids[i], ones[i], pos[i], tg[i] = int64(rng.IntN(vocab)), 1, int64(i%t), int64(rng.IntN(vocab))
		if i%t >= t/4 {
			tm[i] = 1
		}
		old[i] = -float32(rng.Float64() * 5)
		ref[i] = -float32(rng.Float64() * 5)
	}
	for i := range adv {
		adv[i] = float32(rng.NormFloat64())
	}
	s := []int64{int64(b), int64(t)}
	return map[string]*ort.Tensor{
		policy.InputIDs: ort.I64Tensor(ids, s...), policy.InputMask: ort.I64Tensor(ones, s...),
		policy.InputPositions: ort.I64Tensor(pos, s...), train.InputTargets: ort.I64Tensor(tg, s...),
		train.InputTokenMask: ort.F32Tensor(tm, s...), train.InputOldLogprobs: ort.F32Tensor(old, s...),
		train.InputRefLogprobs: ort.F32Tensor(ref, s...), train.InputAdvantages: ort.F32Tensor(adv, int64(b)),
	}
}
