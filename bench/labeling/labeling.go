// Package labeling measures the labeler stage: rows per second that
// stages/labeler turns from verified into labeled batches, with the
// ws-grpo shaper (a model/labeler Scorer: the reference policy's features
// of every prefix, scored by a preference model) and with grpo (no
// scorer), beside the raw featurizer forward pass of the same rows in the
// same run; and how fast labeler.FitPairs fits a preference model.
// `wsgrpo bench labeler` prints it.
package labeling

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"strings"
	"time"

	"github.com/apache/arrow-go/v18/arrow"

	"github.com/wsgrpo/wsgrpo/model/checkpoint"
	mlabeler "github.com/wsgrpo/wsgrpo/model/labeler"
	"github.com/wsgrpo/wsgrpo/model/ort"
	"github.com/wsgrpo/wsgrpo/model/policy"
	"github.com/wsgrpo/wsgrpo/model/segment"
	"github.com/wsgrpo/wsgrpo/model/shaping"
	"github.com/wsgrpo/wsgrpo/model/tokenizer"
	"github.com/wsgrpo/wsgrpo/schemas"
	"github.com/wsgrpo/wsgrpo/stages/labeler"
)

// ErrOptions is returned for options that cannot be measured.
var ErrOptions = errors.New("labeling: invalid options")

// Options say what to measure. Zero fields take the defaults.
type Options struct {
	DModel, Layers int // reference policy shape (128, 4)
	Groups, G      int // a verified batch holds Groups groups of G rows (8 x 8)
	Batches        int // batches per measurement (20)
	// FitPairs is the number of random preference pairs FitPairs fits on
	// (2000); FitEpochs its epochs (labeler.DefaultConfig's 30).
	FitPairs, FitEpochs int
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
	def(&o.Batches, 20)
	def(&o.FitPairs, 2000)
	def(&o.FitEpochs, mlabeler.DefaultConfig().Epochs)
	if o.DModel < 1 || o.Layers < 1 || o.Groups < 1 || o.G < 1 || o.Batches < 1 || o.FitPairs < 2 || o.FitEpochs < 1 {
		return fmt.Errorf("%w: %+v", ErrOptions, *o)
	}
	return nil
}

// Stage is the labeler stage with one shaper beside the raw forward pass.
type Stage struct {
	Shaper string
	// RowsPerSec is the stage's rate; RawRowsPerSec the featurizer's
	// forward pass over the same rows (every prefix position), measured
	// in alternation with it.
	RowsPerSec, RawRowsPerSec float64
	// PerBatch is the stage's mean time per verified batch.
	PerBatch time.Duration
}

// Ratio is the stage's rate over the raw forward pass's.
func (s Stage) Ratio() float64 { return s.RowsPerSec / s.RawRowsPerSec }

// Result is one measurement.
type Result struct {
	Options Options
	// Rows per batch and their mean length in tokens (prompt and
	// completion) and in reasoning steps.
	Rows                int
	TokensPerRow, Steps float64
	Stages              []Stage
	// Fit is FitPairs' report; FitPairsPerSec the pairs it trained on
	// per second of the fit, epochs counted (pairs x epochs / seconds).
	Fit            mlabeler.Report
	FitPairsPerSec float64
}

// Run measures the labeler stage with the ws-grpo and grpo shapers, and
// the fit.
func Run(ctx context.Context, rt *ort.Runtime, o Options) (Result, error) {
	if err := o.defaults(); err != nil {
		return Result{}, err
	}
	res := Result{Options: o}
	tok := tokenizer.Default()
	cfg := policy.DefaultConfig(tok.VocabSize())
	cfg.DModel, cfg.NLayers, cfg.DFF = o.DModel, o.Layers, 4*o.DModel
	ref, err := checkpoint.New(cfg, tok, 1)
	if err != nil {
		return res, err
	}
	f, err := mlabeler.NewFeaturizer(rt, ref, mlabeler.FeaturizerOptions{Features: mlabeler.DefaultFeatures})
	if err != nil {
		return res, err
	}
	defer f.Close()
	rng := rand.New(rand.NewPCG(1, 1))
	fc := mlabeler.DefaultConfig()
	fc.Epochs, fc.Reference = o.FitEpochs, f.Reference()
	m, rep, err := mlabeler.FitPairs(rt, RandomPairs(rng, o.FitPairs, f.Width()), fc, nil)
	if err != nil {
		return res, err
	}
	res.Fit = rep
	res.FitPairsPerSec = float64((rep.Pairs-rep.HeldOutPairs)*rep.Epochs) / rep.Seconds
	s, err := mlabeler.NewScorer(f, m)
	if err != nil {
		return res, err
	}
	rows := Rows(rng, tok, o.Groups, o.G)
	res.Rows = len(rows)
	for _, r := range rows {
		res.TokensPerRow += float64(len(r.PromptTokenIDs)+len(r.CompletionTokenIDs)) / float64(len(rows))
		res.Steps += float64(len(r.StepEnds)) / float64(len(rows))
	}
	seqs, pos, err := forwardInputs(rows)
	if err != nil {
		return res, err
	}
	in := schemas.NewVerifiedBatch(nil, rows)
	defer in.Release()
	for _, sh := range []string{shaping.WSGRPO, shaping.GRPO} {
		sc := shaping.DefaultConfig()
		sc.Shaper = sh
		lo := labeler.Options{Shaping: sc, StepAdvantages: true}
		if sh == shaping.WSGRPO {
			lo.Scorer = s
		}
		p, err := labeler.New(lo)
		if err != nil {
			return res, err
		}
		st, err := measure(ctx, p, in, func() error { _, err := f.Hidden(seqs, pos); return err }, o.Batches)
		if err != nil {
			return res, fmt.Errorf("%s: %w", sh, err)
		}
		st.Shaper = sh
		res.Stages = append(res.Stages, st)
	}
	return res, nil
}

// measure runs batches batches through p and as many raw forward passes,
// alternating, after one of each untimed.
func measure(ctx context.Context, p *labeler.Processor, in arrow.RecordBatch, raw func() error, batches int) (Stage, error) {
	var st Stage
	stage := func() (time.Duration, error) {
		t0 := time.Now()
		outs, err := p.Process(ctx, in)
		dt := time.Since(t0)
		if err != nil {
			return 0, err
		}
		if len(outs) != 1 || outs[0].NumRows() != in.NumRows() {
			return 0, fmt.Errorf("labeler stage returned %d batches for %d rows", len(outs), in.NumRows())
		}
		outs[0].Release()
		return dt, nil
	}
	fwd := func() (time.Duration, error) {
		t0 := time.Now()
		err := raw()
		return time.Since(t0), err
	}
	if _, err := stage(); err != nil {
		return st, err
	}
	if _, err := fwd(); err != nil {
		return st, err
	}
	var ts, tr time.Duration
	for i := range batches {
		// Whichever runs second is slower on a loaded machine: alternate.
		first, second := stage, fwd
		if i%2 == 1 {
			first, second = fwd, stage
		}
		a, err := first()
		if err != nil {
			return st, err
		}
		b, err := second()
		if err != nil {
			return st, err
		}
		if i%2 == 1 {
			a, b = b, a
		}
		ts, tr = ts+a, tr+b
	}
	n := float64(batches) * float64(in.NumRows())
	st.RowsPerSec, st.RawRowsPerSec = n/ts.Seconds(), n/tr.Seconds()
	st.PerBatch = ts / time.Duration(batches)
	return st, nil
}

// forwardInputs returns the sequences and prefix positions the ws-grpo
// scorer featurizes for rows.
func forwardInputs(rows []schemas.Verified) ([][]int32, [][]int, error) {
	seqs, pos := make([][]int32, len(rows)), make([][]int, len(rows))
	for i, r := range rows {
		p, err := mlabeler.PrefixPositions(len(r.PromptTokenIDs), len(r.CompletionTokenIDs), r.StepEnds)
		if err != nil {
			return nil, nil, err
		}
		pos[i] = append(p, len(r.PromptTokenIDs)+len(r.CompletionTokenIDs)-1)
		seqs[i] = append(append([]int32(nil), r.PromptTokenIDs...), r.CompletionTokenIDs...)
	}
	return seqs, pos, nil
}

// Rows returns groups groups of g verified arith rollouts of about 70
// tokens: a prompt a+c*3-7, three worked steps, up to two re-checks and
// the answer; even samples are correct.
func Rows(rng *rand.Rand, tok *tokenizer.Char, groups, g int) []schemas.Verified {
	var rows []schemas.Verified
	for k := range groups {
		a, c := 100+rng.IntN(900), 100+rng.IntN(900)
		prompt := fmt.Sprintf("%d+%d*3-7", a, c)
		gid := fmt.Sprintf("g%d", k)
		for i := range g {
			lines := []string{fmt.Sprintf("%d*3=%d\n", c, 3*c), fmt.Sprintf("%d+%d=%d\n", a, 3*c, a+3*c), fmt.Sprintf("%d-7=%d\n", a+3*c, a+3*c-7)}
			for range i % 3 {
				lines = append(lines, "check "+lines[0])
			}
			answer := a + 3*c - 7
			if i%2 == 1 {
				answer++
			}
			lines = append(lines, fmt.Sprintf("A:%d\n", answer))
			text := strings.Join(lines, "")
			ids := tok.Encode(text)
			rows = append(rows, schemas.Verified{
				Rollout: schemas.Rollout{
					Prompt: schemas.Prompt{RunID: "bench", PromptID: gid, Task: "arith", Prompt: prompt,
						PromptTokenIDs: append([]int32{tok.BOS()}, tok.Encode(prompt+"\n")...)},
					TrajectoryID: fmt.Sprintf("%s/%d", gid, i), GroupID: gid,
					SampleIndex: int32(i), GroupSize: int32(g),
					Completion: text, CompletionTokenIDs: ids, TokenLogprobs: make([]float32, len(ids)),
					StepEnds: segment.Lines(tok, ids),
				},
				Correct: i%2 == 0,
			})
		}
	}
	return rows
}

// RandomPairs returns n preference pairs of d-wide normal features in
// groups of 8 pairs.
func RandomPairs(rng *rand.Rand, n, d int) []mlabeler.Pair {
	pairs := make([]mlabeler.Pair, n)
	for i := range pairs {
		pos, neg := make([]float32, d), make([]float32, d)
		for j := range pos {
			pos[j], neg[j] = float32(rng.NormFloat64()), float32(rng.NormFloat64())
		}
		pairs[i] = mlabeler.Pair{Group: fmt.Sprint(i / 8), Pos: pos, Neg: neg}
	}
	return pairs
}
