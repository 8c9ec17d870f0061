// Command gomlx-train-bench times full training steps (forward, backward and
// AdamW update) of a small decoder-only transformer on GoMLX v0.26.0's
// pure-Go ("simplego") backend, as the baseline the project's ONNX Runtime
// trainer is compared against. It prints one JSON object per run.
//
// It lives in its own Go module so that GoMLX stays out of the project's
// go.mod; build it with `cd bench/gomlx && go build`.
package main

import (
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"os"
	"runtime/pprof"
	"slices"
	"syscall"
	"time"

	"github.com/gomlx/gomlx/backends"
	_ "github.com/gomlx/gomlx/backends/simplego" // registers the "go" backend
	"github.com/gomlx/gomlx/pkg/core/tensors"
	"github.com/gomlx/gomlx/pkg/ml/context"
	"github.com/gomlx/gomlx/pkg/ml/train"
	"github.com/gomlx/gomlx/pkg/ml/train/losses"
	"github.com/gomlx/gomlx/pkg/ml/train/optimizers"
)

// Sentinel errors; test with errors.Is.
var (
	// ErrBadFlags means the command line asks for an impossible run.
	ErrBadFlags = errors.New("gomlx bench: bad flags")
	// ErrGoMLX means GoMLX failed (it reports most failures by panicking).
	ErrGoMLX = errors.New("gomlx bench: gomlx failed")
)

// Options are the run's settings, from the command line.
type Options struct {
	Arch
	Batch, Steps, Warmup int
	Backend              string
	LR, WeightDecay      float64
	Seed                 uint64
	// CPUProfile, when set, is a file for a pprof CPU profile of the timed
	// steps.
	CPUProfile string
}

// Result is the JSON line the program prints.
type Result struct {
	Backend     string    `json:"backend"`
	Layers      int       `json:"layers"`
	DModel      int       `json:"d_model"`
	Heads       int       `json:"heads"`
	DFF         int       `json:"d_ff"`
	Vocab       int       `json:"vocab"`
	Batch       int       `json:"batch"`
	Seq         int       `json:"seq"`
	Warmup      int       `json:"warmup"`
	Steps       int       `json:"steps"`
	StepSeconds float64   `json:"step_seconds"` // mean of StepTimes
	MinStep     float64   `json:"min_step_seconds"`
	MedianStep  float64   `json:"median_step_seconds"`
	StepTimes   []float64 `json:"step_times"`
	// CPUSecondsPerStep is the process's user+system CPU time over the
	// timed steps, per step: on a shared machine, wall time exceeds it when
	// other processes take the cores.
	CPUSecondsPerStep float64   `json:"cpu_seconds_per_step"`
	FirstStep         float64   `json:"first_step_seconds"`
	TrainFLOPs        float64   `json:"train_flops"`
	GFLOPs            float64   `json:"gflops"`
	Losses            []float32 `json:"losses"`
}

func main() {
	log := slog.New(slog.NewTextHandler(os.Stderr, nil))
	o, err := parseFlags(os.Args[1:])
	if err != nil {
		log.Error("flags", "err", err)
		os.Exit(2)
	}
	res, err := Run(o, log)
	if err != nil {
		log.Error("benchmark failed", "err", err)
		os.Exit(1)
	}
	if err := json.NewEncoder(os.Stdout).Encode(res); err != nil {
		log.Error("write result", "err", err)
		os.Exit(1)
	}
}

// parseFlags reads Options from args.
func parseFlags(args []string) (Options, error) {
	fs := flag.NewFlagSet("gomlx-train-bench", flag.ContinueOnError)
	var o Options
	fs.IntVar(&o.Layers, "layers", 2, "transformer layers")
	fs.IntVar(&o.DModel, "d-model", 128, "model width")
	fs.IntVar(&o.Heads, "heads", 4, "attention heads")
	fs.IntVar(&o.DFF, "d-ff", 512, "MLP hidden width")
	fs.IntVar(&o.Vocab, "vocab", 64, "vocabulary size")
	fs.IntVar(&o.Seq, "seq", 128, "sequence length")
	fs.IntVar(&o.Batch, "batch", 32, "batch size")
	fs.IntVar(&o.Steps, "steps", 2, "timed training steps")
	fs.IntVar(&o.Warmup, "warmup", 1, "untimed steps first (the first one compiles the graph)")
	def := os.Getenv(backends.ConfigEnvVar)
	if def == "" {
		def = "go"
	}
	fs.StringVar(&o.Backend, "backend", def, "GoMLX backend config (default $GOMLX_BACKEND, else \"go\" = simplego)")
	fs.Float64Var(&o.LR, "lr", 1e-3, "AdamW learning rate")
	fs.Float64Var(&o.WeightDecay, "weight-decay", 0.01, "AdamW weight decay")
	fs.Uint64Var(&o.Seed, "seed", 1, "seed for weights and data")
	fs.StringVar(&o.CPUProfile, "cpuprofile", "", "write a pprof CPU profile of the timed steps to this file")
	if err := fs.Parse(args); err != nil {
		return o, fmt.Errorf("%w: %w", ErrBadFlags, err)
	}
	return o, o.validate()
}

// validate reports impossible settings.
func (o Options) validate() error {
	for name, v := range map[string]int{
		"layers": o.Layers, "d-model": o.DModel, "heads": o.Heads, "d-ff": o.DFF,
		"vocab": o.Vocab, "seq": o.Seq, "batch": o.Batch, "steps": o.Steps,
	} {
		if v <= 0 {
			return fmt.Errorf("%w: --%s must be positive, got %d", ErrBadFlags, name, v)
		}
	}
	if o.Warmup < 0 {
		return fmt.Errorf("%w: --warmup must not be negative, got %d", ErrBadFlags, o.Warmup)
	}
	if o.DModel%o.Heads != 0 {
		return fmt.Errorf("%w: d-model %d is not a multiple of heads %d", ErrBadFlags, o.DModel, o.Heads)
	}
	return nil
}

// batch returns next-token training data: random token rows of length
// seq+1, inputs the first seq tokens, labels the last seq ([B, T, 1]).
func batch(o Options) (inputs, labels *tensors.Tensor) {
	r := rand.New(rand.NewPCG(o.Seed, 0x9e3779b97f4a7c15))
	in := make([]int32, o.Batch*o.Seq)
	lb := make([]int32, o.Batch*o.Seq)
	for b := range o.Batch {
		row := make([]int32, o.Seq+1)
		for i := range row {
			row[i] = int32(r.IntN(o.Vocab))
		}
		copy(in[b*o.Seq:], row[:o.Seq])
		copy(lb[b*o.Seq:], row[1:])
	}
	return tensors.FromFlatDataAndDimensions(in, o.Batch, o.Seq),
		tensors.FromFlatDataAndDimensions(lb, o.Batch, o.Seq, 1)
}

// cpuSeconds returns the process's user plus system CPU time so far, or 0
// when the platform cannot tell.
func cpuSeconds() float64 {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano()).Seconds()
}

// startProfile starts a CPU profile into path and returns its stop function.
func startProfile(path string) (stop func(), err error) {
	f, err := os.Create(path)
	if err != nil {
		return nil, fmt.Errorf("%w: cpu profile: %w", ErrBadFlags, err)
	}
	if err := pprof.StartCPUProfile(f); err != nil {
		f.Close()
		return nil, fmt.Errorf("%w: cpu profile: %w", ErrBadFlags, err)
	}
	return func() {
		pprof.StopCPUProfile()
		f.Close()
	}, nil
}

// Run builds the model and trainer on the configured backend, runs the
// warm-up steps and times the others.
func Run(o Options, log *slog.Logger) (res *Result, err error) {
	defer func() {
		if p := recover(); p != nil {
			res, err = nil, fmt.Errorf("%w: %v", ErrGoMLX, p)
		}
	}()
	backend, err := backends.NewWithConfig(o.Backend)
	if err != nil {
		return nil, fmt.Errorf("%w: backend %q: %w", ErrGoMLX, o.Backend, err)
	}
	defer backend.Finalize()
	ctx := context.New()
	ctx.SetParam(context.ParamInitialSeed, int64(o.Seed))
	opt := optimizers.Adam().LearningRate(o.LR).WeightDecay(o.WeightDecay).Done()
	trainer := train.NewTrainer(backend, ctx, o.modelFn(), losses.SparseCategoricalCrossEntropyLogits, opt, nil, nil)
	inputs, labels := batch(o)

	res = &Result{
		Backend: backend.Name(), Layers: o.Layers, DModel: o.DModel, Heads: o.Heads, DFF: o.DFF,
		Vocab: o.Vocab, Batch: o.Batch, Seq: o.Seq, Warmup: o.Warmup, Steps: o.Steps,
		TrainFLOPs: TrainFLOPs(o.Batch, o.Seq, o.DModel, o.DFF, o.Vocab, o.Layers),
	}
	log.Info("benchmark", "backend", backend.Name(), "description", backend.Description(),
		"layers", o.Layers, "warmup", o.Warmup, "steps", o.Steps)
	var timed time.Duration
	var cpuStart float64
	for i := range o.Warmup + o.Steps {
		if i == o.Warmup {
			cpuStart = cpuSeconds()
		}
		if i == o.Warmup && o.CPUProfile != "" {
			stop, err := startProfile(o.CPUProfile)
			if err != nil {
				return nil, err
			}
			defer stop()
		}
		start := time.Now()
		metrics, err := trainer.TrainStep(nil, []*tensors.Tensor{inputs}, []*tensors.Tensor{labels})
		if err != nil {
			return nil, fmt.Errorf("%w: step %d: %w", ErrGoMLX, i, err)
		}
		loss := tensors.ToScalar[float32](metrics[0]) // waits for the step's results
		d := time.Since(start)
		for _, m := range metrics {
			_ = m.FinalizeAll()
		}
		res.Losses = append(res.Losses, loss)
		if i == 0 {
			res.FirstStep = d.Seconds()
		}
		if i >= o.Warmup {
			timed += d
			res.StepTimes = append(res.StepTimes, d.Seconds())
		}
		log.Info("step", "i", i, "timed", i >= o.Warmup, "seconds", d.Seconds(), "loss", loss)
	}
	res.CPUSecondsPerStep = (cpuSeconds() - cpuStart) / float64(o.Steps)
	res.StepSeconds = timed.Seconds() / float64(o.Steps)
	res.GFLOPs = res.TrainFLOPs / res.StepSeconds / 1e9
	sorted := slices.Sorted(slices.Values(res.StepTimes))
	res.MinStep = sorted[0]
	res.MedianStep = (sorted[(len(sorted)-1)/2] + sorted[len(sorted)/2]) / 2
	return res, nil
}
