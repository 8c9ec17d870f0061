package pretrain

import (
	"context"
	"fmt"
	"iter"
	"log/slog"
	"math"
	"math/rand/v2"
	"slices"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/wsgrpo/wsgrpo/model/checkpoint"
	"github.com/wsgrpo/wsgrpo/model/onnx"
	"github.com/wsgrpo/wsgrpo/model/optim"
	"github.com/wsgrpo/wsgrpo/model/ort"
	"github.com/wsgrpo/wsgrpo/model/policy"
	"github.com/wsgrpo/wsgrpo/model/tokenizer"
	"github.com/wsgrpo/wsgrpo/model/train"
	"github.com/wsgrpo/wsgrpo/stages/sampler"
	"github.com/wsgrpo/wsgrpo/tasks"
	"github.com/wsgrpo/wsgrpo/tasks/arith"
)

// Progress reports one step of a run.
type Progress struct {
	Step, Steps int
	Loss, LR    float64
	// Tokens is the number of real (unpadded) tokens trained so far;
	// TokensPerSec their rate over the whole run. PaddedTokens counts the
	// padded batch positions too (what the training graph computes).
	Tokens       int64
	PaddedTokens int64
	TokensPerSec float64
	Elapsed      time.Duration
	// Eval is set on the steps that evaluated, with the Checkpoint it
	// evaluated.
	Eval       *Eval
	Checkpoint *checkpoint.Checkpoint
}

// Result is what a run produced.
type Result struct {
	// Checkpoint is the trained policy.
	Checkpoint *checkpoint.Checkpoint
	// Eval is the final evaluation.
	Eval Eval
	// Steps is the number of steps taken (fewer than Config.Steps when
	// MaxDuration stopped the run); Tokens the real tokens trained.
	Steps        int
	Tokens       int64
	PaddedTokens int64
	Elapsed      time.Duration
	// Skipped counts traces left out for not fitting Policy.MaxSeq.
	Skipped int
}

// Run pretrains a policy from scratch with cfg on rt, calling progress (if
// not nil) after every step. Cancelling ctx stops it with ctx's error.
func Run(ctx context.Context, rt *ort.Runtime, cfg Config, progress func(Progress), log *slog.Logger) (Result, error) {
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	if err := cfg.Validate(); err != nil {
		return Result{}, err
	}
	task, err := arith.New(cfg.Task)
	if err != nil {
		return Result{}, fmt.Errorf("%w: %w", ErrConfig, err)
	}
	tok := tokenizer.Default()
	w, err := initialWeights(cfg)
	if err != nil {
		return Result{}, err
	}
	m, err := policy.FullGraph(cfg.Policy, w, onnx.Float)
	if err != nil {
		return Result{}, err
	}
	loss, err := train.AppendCrossEntropy(m.Graph, onnx.Float, policy.OutputLogits)
	if err != nil {
		return Result{}, err
	}
	oc := optim.DefaultConfig()
	oc.LR, oc.WeightDecay, oc.ClipNorm = cfg.LR, cfg.WeightDecay, cfg.ClipNorm
	tr, err := train.New(rt, m.Graph, loss, train.Config{Optim: oc}, log)
	if err != nil {
		return Result{}, err
	}
	defer func() { _ = tr.Close() }()
	var res Result

	// Batches are prepared (traces written, tokenized, padded) in the
	// background while ONNX Runtime trains on the previous one.
	var skipped atomic.Int64
	feedCh, stopFeeds := prefetch(bucketed(task.Examples(tasks.Train, cfg.Seed), tok, cfg, &skipped), m.Graph, tok.PAD(), cfg.Policy.MaxSeq)
	defer stopFeeds()
	start := time.Now()
	for step := 1; step <= cfg.Steps; step++ {
		if err := ctx.Err(); err != nil {
			return Result{}, err
		}
		f := <-feedCh
		if f.err != nil {
			return Result{}, f.err
		}
		feeds, n, padded := f.feeds, f.tokens, f.padded
		lr := schedule(cfg, step)
		tr.Optimizer().SetLR(lr)
		r, err := tr.Step(feeds)
		if err != nil {
			return Result{}, fmt.Errorf("step %d: %w", step, err)
		}
		res.Steps, res.Tokens, res.PaddedTokens = step, res.Tokens+n, res.PaddedTokens+padded
		elapsed := time.Since(start)
		p := Progress{Step: step, Steps: cfg.Steps, Loss: r.Loss, LR: lr, Tokens: res.Tokens, PaddedTokens: res.PaddedTokens,
			TokensPerSec: float64(res.Tokens) / elapsed.Seconds(), Elapsed: elapsed}
		last := step == cfg.Steps || (cfg.MaxDuration > 0 && elapsed >= cfg.MaxDuration)
		if last || (cfg.EvalEvery > 0 && step%cfg.EvalEvery == 0) {
			ck, err := snapshot(cfg, tr, tok, step)
			if err != nil {
				return Result{}, err
			}
			ev, err := Evaluate(ctx, rt, ck, cfg.Task, cfg.EvalPrompts, cfg.EvalOps, cfg.Seed)
			if err != nil {
				return Result{}, fmt.Errorf("evaluate at step %d: %w", step, err)
			}
			p.Eval, p.Checkpoint = &ev, ck
			log.Info("pretrain evaluation", "step", step, "eval", ev.String())
			res.Checkpoint, res.Eval = ck, ev
		}
		if progress != nil {
			progress(p)
		}
		if last {
			break
		}
	}
	res.Elapsed = time.Since(start)
	res.Skipped = int(skipped.Load()) // of the batches prepared so far
	return res, nil
}

// schedule is the learning rate at step: linear warm-up to cfg.LR, then a
// cosine down to cfg.MinLR at cfg.Steps.
func schedule(cfg Config, step int) float64 {
	if step <= cfg.Warmup {
		return cfg.LR * float64(step) / float64(cfg.Warmup)
	}
	span := max(cfg.Steps-cfg.Warmup, 1)
	frac := min(float64(step-cfg.Warmup)/float64(span), 1)
	return cfg.MinLR + (cfg.LR-cfg.MinLR)*0.5*(1+math.Cos(math.Pi*frac))
}

// batchFeeds builds the training inputs of seqs (each BOS, prompt, trace,
// EOS; prompts[i] tokens of prompt): inputs are every token but the last,
// targets every token but the first, and only trace and EOS targets count.
// It returns the number of real input tokens and of batch positions too.
func batchFeeds(g *onnx.Graph, seqs [][]int32, prompts []int, pad int32, maxSeq int) (map[string]*ort.Tensor, int64, int64, error) {
	inputs := make([][]int32, len(seqs))
	for i, s := range seqs {
		inputs[i] = s[:len(s)-1]
	}
	b, err := policy.NewBatch(inputs, pad, false, maxSeq)
	if err != nil {
		return nil, 0, 0, err
	}
	targets := make([]int64, b.Rows*b.Len)
	mask := make([]float32, b.Rows*b.Len)
	var n int64
	for i, s := range seqs {
		n += int64(len(s) - 1)
		for j := prompts[i] - 1; j < len(s)-1; j++ {
			targets[i*b.Len+j] = int64(s[j+1])
			mask[i*b.Len+j] = 1
		}
	}
	shape := []int64{int64(b.Rows), int64(b.Len)}
	feeds := map[string]*ort.Tensor{
		policy.InputIDs:       ort.I64Tensor(b.IDs, shape...),
		policy.InputMask:      ort.I64Tensor(b.Mask, shape...),
		policy.InputPositions: ort.I64Tensor(b.Positions, shape...),
		train.InputTargets:    ort.I64Tensor(targets, shape...),
		train.InputTokenMask:  ort.F32Tensor(mask, shape...),
	}
	return train.GraphInputs(g, feeds), n, int64(b.Rows * b.Len), nil
}

// snapshot copies the trainer's weights into a checkpoint.
func snapshot(cfg Config, tr *train.Trainer, tok *tokenizer.Char, step int) (*checkpoint.Checkpoint, error) {
	w := policy.Weights{}
	for _, p := range tr.Params() {
		w[p.Name] = policy.Param{Shape: append([]int64(nil), p.Dims...), Data: append([]float32(nil), p.Data...)}
	}
	ck := &checkpoint.Checkpoint{Config: cfg.Policy, Tokenizer: tok, Weights: w, Metadata: map[string]string{
		"source": "wsgrpo pretrain", "task": arith.Name, "steps": strconv.Itoa(step),
		"reverse_results": strconv.FormatBool(cfg.Task.ReverseResults), "prompt_template": sampler.DefaultPromptTemplate,
	}}
	if err := ck.Validate(); err != nil {
		return nil, err
	}
	return ck, nil
}

// bucketPool is how many batches of examples are drawn, sorted by length
// and cut into batches together: traces of similar length share a batch,
// so little of a step is padding (overthinking traces vary from tens to
// hundreds of tokens).
const bucketPool = 16

// batch is one step's sequences (BOS, prompt, trace, EOS) and the length of
// each one's prompt part (BOS included).
type batch struct {
	seqs    [][]int32
	prompts []int
}

// bucketed yields training batches from examples: it draws bucketPool
// batches' worth, sorts them by length, cuts them into batches and yields
// those in a shuffled order (deterministic from the seed). Traces longer
// than the context are skipped and counted in skipped.
func bucketed(examples iter.Seq[arith.Example], tok tokenizer.Tokenizer, cfg Config, skipped *atomic.Int64) iter.Seq[batch] {
	return func(yield func(batch) bool) {
		rng := rand.New(rand.NewPCG(cfg.Seed, 0x627563)) //nolint:gosec // a training order, not a secret
		type seq struct {
			ids    []int32
			prompt int
		}
		pool := make([]seq, 0, bucketPool*cfg.Batch)
		for ex := range examples {
			p := promptIDs(tok, ex.Text)
			s := append(append(p, tok.Encode(ex.Trace.Text)...), tok.EOS())
			if len(s) > cfg.Policy.MaxSeq+1 {
				skipped.Add(1)
				continue
			}
			pool = append(pool, seq{s, len(p)})
			if len(pool) < cap(pool) {
				continue
			}
			slices.SortStableFunc(pool, func(a, b seq) int { return len(a.ids) - len(b.ids) })
			order := rng.Perm(bucketPool)
			for _, k := range order {
				b := batch{}
				for _, s := range pool[k*cfg.Batch : (k+1)*cfg.Batch] {
					b.seqs = append(b.seqs, s.ids)
					b.prompts = append(b.prompts, s.prompt)
				}
				if !yield(b) {
					return
				}
			}
			pool = pool[:0]
		}
	}
}

// initialWeights are random (Config.Seed) or the weights of Config.Init.
func initialWeights(cfg Config) (policy.Weights, error) {
	if cfg.Init == "" {
		return policy.Init(cfg.Policy, cfg.Seed)
	}
	ck, err := checkpoint.Load(cfg.Init)
	if err != nil {
		return nil, fmt.Errorf("%w: init %s: %w", ErrConfig, cfg.Init, err)
	}
	if ck.Config != cfg.Policy {
		return nil, fmt.Errorf("%w: init %s has architecture %+v, the config asks for %+v", ErrConfig, cfg.Init, ck.Config, cfg.Policy)
	}
	if _, ok := ck.Tokenizer.(*tokenizer.Char); !ok || ck.Tokenizer.VocabSize() != tokenizer.Default().VocabSize() {
		return nil, fmt.Errorf("%w: init %s does not use the character tokenizer", ErrConfig, cfg.Init)
	}
	return ck.Weights, nil
}

// feed is one prepared training batch.
type feed struct {
	feeds          map[string]*ort.Tensor
	tokens, padded int64
	err            error
}

// prefetch prepares the feeds of batches in a goroutine, two ahead; stop
// ends it. The channel never closes: batches never run out.
func prefetch(batches iter.Seq[batch], g *onnx.Graph, pad int32, maxSeq int) (<-chan feed, func()) {
	ch := make(chan feed, 2)
	done := make(chan struct{})
	go func() {
		for b := range batches {
			f, n, p, err := batchFeeds(g, b.seqs, b.prompts, pad, maxSeq)
			select {
			case ch <- feed{feeds: f, tokens: n, padded: p, err: err}:
			case <-done:
				return
			}
			if err != nil {
				return
			}
		}
	}()
	var once sync.Once
	return ch, func() { once.Do(func() { close(done) }) }
}
