// Package learning measures the learner stage: stages/learner fed labeled
// batches of complete groups through Process (no NATS; versions go to an
// in-memory Publisher), its update time split from StepMetrics and its
// trained tokens/s, beside the raw training step (model/train
// Trainer.Step on the same shapes and micro-batches) in the same run.
// `wsgrpo bench learner` prints it.
package learning

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"time"

	"github.com/apache/arrow-go/v18/arrow"

	"github.com/wsgrpo/wsgrpo/model/checkpoint"
	mlabeler "github.com/wsgrpo/wsgrpo/model/labeler"
	"github.com/wsgrpo/wsgrpo/model/onnx"
	"github.com/wsgrpo/wsgrpo/model/optim"
	"github.com/wsgrpo/wsgrpo/model/ort"
	"github.com/wsgrpo/wsgrpo/model/policy"
	"github.com/wsgrpo/wsgrpo/model/tokenizer"
	"github.com/wsgrpo/wsgrpo/model/train"
	"github.com/wsgrpo/wsgrpo/schemas"
	"github.com/wsgrpo/wsgrpo/stages/learner"
)

// ErrOptions is returned for options that cannot be measured.
var ErrOptions = errors.New("learning: invalid options")

// Options say what to measure. Zero fields take the defaults.
type Options struct {
	DModel, Layers int // policy shape (128, 4)
	Groups, G      int // an update trains Groups groups of G sequences (8 x 8)
	// Prompt and Completion are each sequence's lengths in tokens (10,
	// BOS included, and 71: 80 model inputs).
	Prompt, Completion int
	// MicroBatch is the learner's micro-batch (0: learner's default).
	MicroBatch int
	// Warmup updates run first, untimed (none); Updates are timed (5).
	Warmup, Updates int
	// NoKL turns the KL term off (learner.Options.NoKL): no reference pass.
	NoKL bool
	// LabelerRef gives every row the reference log-probabilities a ws-grpo
	// labeler with the confidence features attaches
	// (schemas.Labeled.RefLogprobs, computed with model/labeler's
	// Featurizer before the timed region, as the labeler stage does
	// upstream), so the learner runs no reference pass of its own.
	LabelerRef bool
	// NoRaw skips the raw training step (for a memory measurement of the
	// learner alone).
	NoRaw bool
	// Probe, if set, is called with "ready" once the learner is built and
	// with "update N" after each update (warm-up included).
	Probe func(point string) `json:"-"`
}

func (o *Options) defaults() error {
	def := func(v *int, d int) {
		if *v == 0 {
			*v = d
		}
	}
	def(&o.DModel, 128)
	def(&o.Layers, 4)
	def(&o.Groups, 8)
	def(&o.G, 8)
	def(&o.Prompt, 10)
	def(&o.Completion, 71)
	def(&o.MicroBatch, learner.DefaultMicroBatch)
	def(&o.Updates, 5)
	if o.DModel < 1 || o.Layers < 1 || o.Groups < 1 || o.G < 1 || o.Prompt < 1 || o.Completion < 1 ||
		o.MicroBatch < 1 || o.Warmup < 0 || o.Updates < 1 {
		return fmt.Errorf("%w: %+v", ErrOptions, *o)
	}
	return nil
}

// Result is one measurement: means per timed update.
type Result struct {
	Options Options
	// Params is the policy's number of weights; Rows and Tokens what one
	// update trains (Tokens: completion tokens); MicroBatches its ONNX
	// Runtime runs.
	Params                     int64
	Rows, Tokens, MicroBatches int
	// Update is the learner's wall time per update: Process over the
	// update's batches (ingest, reference passes, training, publishing).
	Update time.Duration
	// The split from learner.StepMetrics. Wait is the time between
	// updates, which here holds the raw step and building the batches
	// besides Ref (the reference passes, run as groups complete).
	Wait, Ref, ForwardBackward, Optimizer, Publish time.Duration
	// TokensPerSec is Tokens over Update.
	TokensPerSec float64
	// RefFromLabeler is the number of rows per update whose reference
	// log-probabilities the learner took from the row (Options.LabelerRef).
	RefFromLabeler int
	// Raw is the raw training step's time on the same shapes (0 with
	// NoRaw), RawTokensPerSec its rate.
	Raw             time.Duration
	RawTokensPerSec float64
}

// Ratio is the learner's trained tokens/s over the raw step's (goal >= 0.8).
func (r Result) Ratio() float64 { return r.TokensPerSec / r.RawTokensPerSec }

// UpdateOnlyRatio leaves the reference passes out of the learner's time.
func (r Result) UpdateOnlyRatio() float64 {
	return float64(r.Raw) / float64(r.Update-r.Ref)
}

// memPublisher is an in-memory learner.Publisher that keeps the latest
// version number.
type memPublisher struct{ latest int64 }

func (m *memPublisher) Latest(context.Context) (int64, bool, error) {
	return m.latest, m.latest > 0, nil
}

func (m *memPublisher) Publish(_ context.Context, v int64, _ []byte) error {
	m.latest = v
	return nil
}

// sink keeps the last update's metrics.
type sink struct{ last learner.StepMetrics }

func (s *sink) Step(m learner.StepMetrics) { s.last = m }

// Run measures the learner and the raw step.
func Run(ctx context.Context, rt *ort.Runtime, o Options) (Result, error) {
	if err := o.defaults(); err != nil {
		return Result{}, err
	}
	res := Result{Options: o}
	tok := tokenizer.Default()
	cfg := policy.DefaultConfig(tok.VocabSize())
	cfg.DModel, cfg.NLayers, cfg.DFF = o.DModel, o.Layers, 4*o.DModel
	cfg.MaxSeq = max(cfg.MaxSeq, o.Prompt+o.Completion)
	init, err := checkpoint.New(cfg, tok, 1)
	if err != nil {
		return res, err
	}
	res.Params = cfg.NumParams()
	res.Rows = o.Groups * o.G
	res.Tokens = res.Rows * o.Completion
	res.MicroBatches = (res.Rows + o.MicroBatch - 1) / o.MicroBatch
	var raw func() (time.Duration, error)
	if !o.NoRaw {
		tr, err := rawTrainer(rt, cfg, init.Weights, o)
		if err != nil {
			return res, err
		}
		defer func() { _ = tr.Close() }()
		feeds := rawFeeds(rand.New(rand.NewPCG(1, 1)), cfg.VocabSize, res.Rows, res.MicroBatches, o.Prompt, o.Prompt+o.Completion-1)
		raw = func() (time.Duration, error) {
			t0 := time.Now()
			_, err := tr.Step(feeds...)
			return time.Since(t0), err
		}
	}
	sk := &sink{}
	p, err := learner.New(ctx, rt, init, &memPublisher{}, learner.Options{
		GroupsPerStep: o.Groups, MicroBatch: o.MicroBatch, MaxStaleness: 1 << 40, NoKL: o.NoKL, Sink: sk,
	})
	if err != nil {
		return res, err
	}
	defer func() { _ = p.Close(context.Background()) }()
	if o.Probe != nil {
		o.Probe("ready")
	}
	var feat *mlabeler.Featurizer
	if o.LabelerRef {
		if feat, err = mlabeler.NewFeaturizer(rt, init, mlabeler.FeaturizerOptions{Features: mlabeler.FeaturesConfidence}); err != nil {
			return res, err
		}
		defer func() { _ = feat.Close() }()
	}
	rng := rand.New(rand.NewPCG(2, 2))
	next := 0
	for u := range o.Warmup + o.Updates {
		recs := make([]arrow.RecordBatch, o.Groups)
		for g := range recs {
			rows := Group(rng, tok, next, o.G, o.Prompt, o.Completion)
			if feat != nil {
				if err := withRef(feat, rows); err != nil {
					for _, r := range recs[:g] {
						r.Release()
					}
					return res, err
				}
			}
			recs[g] = schemas.NewLabeledBatch(nil, rows)
			next++
		}
		learn := func() (time.Duration, error) {
			t0 := time.Now()
			for _, rec := range recs {
				if _, err := p.Process(ctx, rec); err != nil {
					return 0, err
				}
			}
			return time.Since(t0), nil
		}
		var dl, dr time.Duration
		// Whichever runs second is slower on a loaded machine: alternate.
		if raw != nil && u%2 == 1 {
			if dr, err = raw(); err == nil {
				dl, err = learn()
			}
		} else if dl, err = learn(); err == nil && raw != nil {
			dr, err = raw()
		}
		for _, rec := range recs {
			rec.Release()
		}
		if err != nil {
			return res, err
		}
		if st := p.Stats(); st.Step != int64(u+1) || st.Skipped > 0 {
			return res, fmt.Errorf("learner stats %+v after %d updates", st, u+1)
		}
		if o.Probe != nil {
			o.Probe(fmt.Sprintf("update %d", u+1))
		}
		if u < o.Warmup {
			continue
		}
		m := sk.last
		res.Update += dl
		res.Raw += dr
		res.Wait += msDur(m.WaitMs)
		res.Ref += msDur(m.RefMs)
		res.ForwardBackward += msDur(m.ForwardBackwardMs)
		res.Optimizer += msDur(m.OptimizerMs)
		res.Publish += msDur(m.PublishMs)
		res.RefFromLabeler += m.RefFromLabeler
	}
	if o.LabelerRef && res.RefFromLabeler != res.Rows*o.Updates {
		return res, fmt.Errorf("the learner took the labeler's reference log-probs for %d of %d rows", res.RefFromLabeler, res.Rows*o.Updates)
	}
	res.RefFromLabeler /= o.Updates
	n := time.Duration(o.Updates)
	for _, d := range []*time.Duration{&res.Update, &res.Raw, &res.Wait, &res.Ref, &res.ForwardBackward, &res.Optimizer, &res.Publish} {
		*d /= n
	}
	res.TokensPerSec = float64(res.Tokens) / res.Update.Seconds()
	if res.Raw > 0 {
		res.RawTokensPerSec = float64(res.Tokens) / res.Raw.Seconds()
	}
	return res, nil
}

// withRef attaches f's reference log-probabilities to rows, as a ws-grpo
// labeler with the confidence features does.
func withRef(f *mlabeler.Featurizer, rows []schemas.Labeled) error {
	rs := make([]schemas.Rollout, len(rows))
	for i := range rows {
		rs[i] = rows[i].Rollout
	}
	feats, err := f.Rollouts(rs)
	if err != nil {
		return err
	}
	for i := range rows {
		rows[i].RefLogprobs, rows[i].Reference = feats[i].TokenLogprobs, f.Reference()
	}
	return nil
}

func msDur(ms float64) time.Duration { return time.Duration(ms * float64(time.Millisecond)) }

// rawTrainer builds the learner's training graph without the stage: the
// policy with the GRPO loss of the learner's defaults.
func rawTrainer(rt *ort.Runtime, cfg policy.Config, w policy.Weights, o Options) (*train.Trainer, error) {
	m, err := policy.FullGraph(cfg, w, onnx.Float)
	if err != nil {
		return nil, err
	}
	gc := train.GRPOConfig{EpsLow: learner.DefaultEpsLow, EpsHigh: learner.DefaultEpsHigh, Beta: learner.DefaultBeta}
	if o.NoKL {
		gc.Beta = 0
	}
	out, err := train.AppendGRPO(m.Graph, onnx.Float, policy.OutputLogits, gc)
	if err != nil {
		return nil, err
	}
	oc := optim.DefaultConfig()
	oc.LR, oc.ClipNorm = learner.DefaultLR, learner.DefaultClipNorm
	return train.New(rt, m.Graph, out.Loss, train.Config{Optim: oc, Metrics: out.Metrics()}, nil)
}

// Group returns group number i of g labeled rows of random tokens: a
// prompt of prompt tokens (BOS first) and a completion of completion
// tokens, one reasoning step, a normal advantage.
func Group(rng *rand.Rand, tok *tokenizer.Char, i, g, prompt, completion int) []schemas.Labeled {
	rows := make([]schemas.Labeled, g)
	pid := fmt.Sprintf("p%d", i)
	random := func(n int) []int32 {
		ids := make([]int32, n)
		for j := range ids {
			ids[j] = int32(4 + rng.IntN(tok.VocabSize()-4))
		}
		return ids
	}
	for k := range rows {
		l := &rows[k]
		l.RunID, l.PromptID, l.Task = "bench", pid, "arith"
		l.TrajectoryID = schemas.TrajectoryID("bench", 0, pid, int32(k))
		l.GroupID = schemas.GroupID("bench", 0, pid)
		l.SampleIndex, l.GroupSize, l.PolicyVersion = int32(k), int32(g), 1
		l.PromptTokenIDs = append([]int32{tok.BOS()}, random(prompt-1)...)
		l.CompletionTokenIDs = random(completion)
		l.TokenLogprobs = make([]float32, completion)
		for j := range l.TokenLogprobs {
			l.TokenLogprobs[j] = -4
		}
		l.StepEnds = []int32{int32(completion)}
		l.Advantage = float32(rng.NormFloat64())
	}
	return rows
}

// rawFeeds returns a GRPO step of rows sequences of seq model inputs (the
// first prompt-1 targets are prompt, masked out) cut into k micro-batches
// of sizes that differ by at most one, as the learner cuts its steps.
func rawFeeds(rng *rand.Rand, vocab, rows, k, prompt, seq int) []map[string]*ort.Tensor {
	out := make([]map[string]*ort.Tensor, k)
	for i := range k {
		b := (i+1)*rows/k - i*rows/k
		n := b * seq
		ids, ones, tg := make([]int64, n), make([]int64, n), make([]int64, n)
		tm, old, ref, adv := make([]float32, n), make([]float32, n), make([]float32, n), make([]float32, b)
		for j := range n {
			ids[j], ones[j], tg[j] = int64(rng.IntN(vocab)), 1, int64(rng.IntN(vocab))
			if j%seq >= prompt-1 {
				tm[j] = 1
			}
			old[j], ref[j] = -4, -4
		}
		for j := range adv {
			adv[j] = float32(rng.NormFloat64())
		}
		s := []int64{int64(b), int64(seq)}
		out[i] = map[string]*ort.Tensor{
			policy.InputIDs: ort.I64Tensor(ids, s...), policy.InputMask: ort.I64Tensor(ones, s...),
			train.InputTargets: ort.I64Tensor(tg, s...), train.InputTokenMask: ort.F32Tensor(tm, s...),
			train.InputOldLogprobs: ort.F32Tensor(old, s...), train.InputRefLogprobs: ort.F32Tensor(ref, s...),
			train.InputAdvantages: ort.F32Tensor(adv, int64(b)),
		}
	}
	return out
}
