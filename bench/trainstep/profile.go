package trainstep

import (
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"time"

	"github.com/wsgrpo/wsgrpo/model/onnx"
	"github.com/wsgrpo/wsgrpo/model/ort"
	"github.com/wsgrpo/wsgrpo/model/train"
)

// matmulOps are the ONNX Runtime kernels that do the matrix products of a
// training step (after its fusions).
var matmulOps = map[string]bool{"MatMul": true, "FusedMatMul": true, "Gemm": true, "FusedGemm": true}

// Profile is where ONNX Runtime spends one training step, from its
// per-node profiler.
type Profile struct {
	// Steps is the number of profiled steps.
	Steps int
	// Kernels is the mean kernel time per step over all nodes; MatMul the
	// part in matrix-product kernels (MatMul, FusedMatMul, Gemm).
	Kernels, MatMul time.Duration
	// FastestKernels and FastestMatMul sum each node's fastest call: one
	// step's kernel time with the interference of other processes removed
	// as far as N repetitions allow.
	FastestKernels, FastestMatMul time.Duration
	// ByOp is the mean kernel time per step of each operator type.
	ByOp map[string]time.Duration
}

// profileSteps runs steps profiled training steps of a fresh Trainer on
// graph g (the Trainer's own profile is read back when it closes) and
// summarises them.
func profileSteps(rt *ort.Runtime, g *onnx.Graph, loss string, cfg train.Config, feeds map[string]*ort.Tensor, steps int, log *slog.Logger) (Profile, error) {
	dir, err := os.MkdirTemp("", "wsgrpo-train-profile-")
	if err != nil {
		return Profile{}, fmt.Errorf("%w: profile dir: %w", train.ErrTrainer, err)
	}
	defer os.RemoveAll(dir)
	c := rt.Config()
	c.ProfilePrefix = filepath.Join(dir, "train")
	prt, err := ort.Init(c, log)
	if err != nil {
		return Profile{}, err
	}
	tr, err := train.New(prt, g, loss, cfg, log)
	if err != nil {
		return Profile{}, err
	}
	for range steps {
		if _, err := tr.Step(feeds); err != nil {
			_ = tr.Close()
			return Profile{}, err
		}
	}
	if err := tr.Close(); err != nil {
		return Profile{}, err
	}
	files, err := filepath.Glob(c.ProfilePrefix + "*.json")
	if err != nil || len(files) != 1 {
		return Profile{}, fmt.Errorf("%w: expected one profile in %s, found %v (%w)", train.ErrTrainer, dir, files, err)
	}
	f, err := os.Open(files[0])
	if err != nil {
		return Profile{}, fmt.Errorf("%w: %w", train.ErrTrainer, err)
	}
	defer f.Close()
	p, err := ort.ReadProfile(f)
	if err != nil {
		return Profile{}, err
	}
	kp := Profile{Steps: steps, ByOp: map[string]time.Duration{}}
	per := time.Duration(steps)
	all, fastAll := p.KernelTime(nil)
	mm, fastMM := p.KernelTime(func(op string) bool { return matmulOps[op] })
	kp.Kernels, kp.MatMul, kp.FastestKernels, kp.FastestMatMul = all/per, mm/per, fastAll, fastMM
	for _, n := range p.Nodes {
		kp.ByOp[n.Op] += n.Total / per
	}
	return kp, nil
}
