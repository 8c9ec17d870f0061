package train

import (
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"time"

	"github.com/wsgrpo/wsgrpo/model/autodiff"
	"github.com/wsgrpo/wsgrpo/model/onnx"
	"github.com/wsgrpo/wsgrpo/model/optim"
	"github.com/wsgrpo/wsgrpo/model/ort"
)

// ErrTrainer means a Trainer cannot be built or fed as asked.
var ErrTrainer = errors.New("train: trainer")

// Config configures a Trainer.
type Config struct {
	// Optim holds the AdamW hyperparameters.
	Optim optim.Config
	// Params names the initializers to train; nil trains every float
	// initializer.
	Params []string
	// NoDecay reports weights exempt from weight decay; nil exempts every
	// weight of rank below 2 (biases, layer-norm scales).
	NoDecay func(name string, dims []int64) bool
	// Metrics names extra forward values to report with each step.
	Metrics []string
	// Opset is the default-domain opset of the graph (17 when zero).
	Opset int64
	// NoFuse trains the graph as written; by default New first replaces
	// float32 tanh-GELU subgraphs with ONNX Runtime's FastGelu (FuseGELU)
	// and float32 layer norms written from primitives with
	// LayerNormalization (FuseLayerNorm).
	NoFuse bool
}

// Param is one trained weight: its name, shape and float32 data.
type Param struct {
	Name string
	Dims []int64
	Data []float32
}

// Result reports one training step (averaged over its micro-batches).
type Result struct {
	// Loss is the mean loss.
	Loss float64
	// Metrics holds the mean of each Config.Metrics value.
	Metrics map[string]float64
	// Optim reports the optimizer update (zero for Evaluate).
	Optim optim.StepStats
	// RunTime is the wall time spent in ONNX Runtime (forward and backward
	// of every micro-batch), the matmul-heavy part of a step.
	RunTime time.Duration
}

// Trainer holds float32 weights, a training session and an AdamW state. It
// is not safe for concurrent use.
type Trainer struct {
	log     *slog.Logger
	sess    *ort.Session
	loss    string
	metrics []string
	params  []Param
	grads   [][]float32
	// scratch receives one micro-batch's gradients when a step has several
	// (allocated on first need).
	scratch [][]float32
	opt     *optim.AdamW
}

// New builds the training graph of g (a float32 graph whose value loss is
// already appended, e.g. by AppendGRPO) and opens one ONNX Runtime session
// for it. The initial weights are the initializers' values.
func New(rt *ort.Runtime, g *onnx.Graph, loss string, cfg Config, log *slog.Logger) (*Trainer, error) {
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	opset := cfg.Opset
	if opset == 0 {
		opset = 17
	}
	names := cfg.Params
	if names == nil {
		for _, t := range g.Initializers {
			if t.DataType == onnx.Float {
				names = append(names, t.Name)
			}
		}
	}
	byName := map[string]*onnx.Tensor{}
	for _, t := range g.Initializers {
		byName[t.Name] = t
	}
	noDecay := cfg.NoDecay
	if noDecay == nil {
		noDecay = func(_ string, dims []int64) bool { return len(dims) < 2 }
	}
	tr := &Trainer{log: log, loss: loss, metrics: slices.Clone(cfg.Metrics)}
	var specs []optim.Param
	for _, n := range names {
		t := byName[n]
		if t == nil || t.DataType != onnx.Float || (t.Float == nil && t.Raw != nil) {
			return nil, fmt.Errorf("%w: weight %q is not a float32 initializer with Float data", ErrTrainer, n)
		}
		tr.params = append(tr.params, Param{Name: n, Dims: slices.Clone(t.Dims), Data: slices.Clone(t.Float)})
		tr.grads = append(tr.grads, make([]float32, len(t.Float)))
		specs = append(specs, optim.Param{Name: n, Size: len(t.Float), Decay: !noDecay(n, t.Dims)})
	}
	opt, err := optim.NewAdamW(cfg.Optim, specs)
	if err != nil {
		return nil, err
	}
	tr.opt = opt
	fusedGELU, fusedLN := 0, 0
	if !cfg.NoFuse {
		g, fusedGELU = FuseGELU(g)
		g, fusedLN = FuseLayerNorm(g)
	}
	tg, err := autodiff.Build(g, loss, names, autodiff.WithOpset(opset), autodiff.WithOutputs(cfg.Metrics...))
	if err != nil {
		return nil, err
	}
	m := autodiff.NewModel(tg, opset)
	if err := m.Validate(); err != nil {
		return nil, err
	}
	b, err := m.Marshal()
	if err != nil {
		return nil, err
	}
	outs := append([]string{loss}, cfg.Metrics...)
	for _, n := range names {
		outs = append(outs, autodiff.GradPrefix+n)
	}
	tr.sess, err = rt.NewSession(b, nil, outs)
	if err != nil {
		return nil, err
	}
	log.Info("training session ready", "weights", len(names), "nodes", len(tg.Nodes), "fused_gelu", fusedGELU, "fused_layernorm", fusedLN, "model_bytes", len(b))
	return tr, nil
}

// Close releases the session.
func (t *Trainer) Close() error { return t.sess.Close() }

// Params returns the weights (shared, not copied: they change with Step).
func (t *Trainer) Params() []Param { return t.params }

// Optimizer returns the AdamW state (for checkpointing and LR schedules).
func (t *Trainer) Optimizer() *optim.AdamW { return t.opt }

// SetParam replaces a weight's values (when restoring a checkpoint).
func (t *Trainer) SetParam(name string, data []float32) error {
	for i := range t.params {
		if t.params[i].Name == name {
			if len(data) != len(t.params[i].Data) {
				return fmt.Errorf("%w: %s has %d values, got %d", ErrTrainer, name, len(t.params[i].Data), len(data))
			}
			copy(t.params[i].Data, data)
			return nil
		}
	}
	return fmt.Errorf("%w: no weight %q", ErrTrainer, name)
}

// Step runs the training graph on each micro-batch, averages their
// gradients, losses and metrics (each micro-batch weighs the same, so give
// them equal sizes when the loss is a mean), and applies one AdamW update.
func (t *Trainer) Step(batches ...map[string]*ort.Tensor) (Result, error) {
	res, err := t.accumulate(batches)
	if err != nil {
		return res, err
	}
	grads := t.grads
	res.Optim, err = t.opt.Step(t.weightBufs(), grads)
	if err != nil {
		return res, err
	}
	return res, nil
}

// Evaluate runs the micro-batches and reports mean loss and metrics
// without changing the weights.
func (t *Trainer) Evaluate(batches ...map[string]*ort.Tensor) (Result, error) {
	return t.accumulate(batches)
}

func (t *Trainer) weightBufs() [][]float32 {
	out := make([][]float32, len(t.params))
	for i := range t.params {
		out[i] = t.params[i].Data
	}
	return out
}

// accumulate fills t.grads with the mean gradient over batches. ONNX
// Runtime writes the gradients straight into Go buffers: t.grads itself for
// a single micro-batch, otherwise a reused scratch set that is then summed.
func (t *Trainer) accumulate(batches []map[string]*ort.Tensor) (Result, error) {
	res := Result{Metrics: map[string]float64{}}
	if len(batches) == 0 {
		return res, fmt.Errorf("%w: no batch", ErrTrainer)
	}
	dst := t.grads
	if len(batches) > 1 {
		for _, g := range t.grads {
			clear(g)
		}
		if t.scratch == nil {
			for _, g := range t.grads {
				t.scratch = append(t.scratch, make([]float32, len(g)))
			}
		}
		dst = t.scratch
	}
	outs := make(map[string]*ort.Tensor, len(t.params))
	for i, p := range t.params {
		outs[autodiff.GradPrefix+p.Name] = ort.F32Tensor(dst[i], p.Dims...)
	}
	scale := 1 / float32(len(batches))
	for _, feeds := range batches {
		in := make(map[string]*ort.Tensor, len(feeds)+len(t.params))
		for k, v := range feeds {
			in[k] = v
		}
		for _, p := range t.params {
			if _, clash := in[p.Name]; clash {
				return res, fmt.Errorf("%w: feed %q is a trained weight", ErrTrainer, p.Name)
			}
			in[p.Name] = ort.F32Tensor(p.Data, p.Dims...)
		}
		start := time.Now()
		out, err := t.sess.RunInto(in, outs)
		res.RunTime += time.Since(start)
		if err != nil {
			return res, err
		}
		res.Loss += scalarOf(out[t.loss]) / float64(len(batches))
		for _, m := range t.metrics {
			res.Metrics[m] += scalarOf(out[m]) / float64(len(batches))
		}
		if len(batches) > 1 {
			for i, acc := range t.grads {
				for j, g := range dst[i] {
					acc[j] += g * scale
				}
			}
		}
	}
	return res, nil
}

// scalarOf returns the mean of a float output.
func scalarOf(t *ort.Tensor) float64 {
	if t == nil {
		return 0
	}
	s := 0.0
	switch {
	case len(t.F32) > 0:
		for _, v := range t.F32 {
			s += float64(v)
		}
		return s / float64(len(t.F32))
	case len(t.F64) > 0:
		for _, v := range t.F64 {
			s += v
		}
		return s / float64(len(t.F64))
	}
	return 0
}
