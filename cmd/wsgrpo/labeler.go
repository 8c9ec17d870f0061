package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"slices"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/wsgrpo/wsgrpo/model/labeler"
	"github.com/wsgrpo/wsgrpo/model/ort"
	"github.com/wsgrpo/wsgrpo/model/shaping"
	"github.com/wsgrpo/wsgrpo/pipeline"
	"github.com/wsgrpo/wsgrpo/schemas"
	labelerstage "github.com/wsgrpo/wsgrpo/stages/labeler"
	"github.com/wsgrpo/wsgrpo/stages/stage"
	"github.com/wsgrpo/wsgrpo/tracelog"
)

// ErrNoPairs is returned when the trajectories given to `labeler fit` hold
// no (correct, incorrect) pair: every group was all right or all wrong.
var ErrNoPairs = errors.New("no preference pairs")

// LabelerConfig is the labeler: section: the WS-GRPO preference model and
// the labeler stage's options.
type LabelerConfig struct {
	// Artifact is a fitted preference model directory (`wsgrpo labeler
	// fit --out`). Empty in `train`: the run fits one after its warm-up
	// (train.warmup_steps) and saves it under the run directory.
	Artifact string `koanf:"artifact"`
	// Fit configures fitting the preference model (MLP width, AdamW,
	// epochs, held-out share, pairs per prompt).
	Fit labeler.Config `koanf:"fit"`
	// DropZeroVariance drops groups whose shaped rewards are all equal
	// instead of passing them on with zero advantages (they are counted
	// either way).
	DropZeroVariance bool `koanf:"drop_zero_variance"`
	// StepAdvantages gives the tokens of each step their own advantage
	// (the sequence advantage plus a centred step term, shaping.step_credit).
	StepAdvantages bool `koanf:"step_advantages"`
	// PendingMaxAge is how long the rows of an incomplete group wait in the
	// run's group store before they expire.
	PendingMaxAge time.Duration `koanf:"pending_max_age"`
	// ReferencePass makes a labeler whose shaper runs no reference policy
	// (every shaper but ws-grpo) run it to attach the completion's
	// reference log-probabilities for the learner's KL term, which then
	// skips its own pass (default true; docs/BENCHMARKS.md, "Labeler and
	// learner"). Off, the learner runs it.
	ReferencePass bool `koanf:"reference_pass"`
}

// DefaultLabelerConfig returns the labeler defaults.
func DefaultLabelerConfig() LabelerConfig {
	return LabelerConfig{Fit: labeler.DefaultConfig(), PendingMaxAge: time.Hour, ReferencePass: true}
}

// Validate reports the first problem with c.
func (c LabelerConfig) Validate() error {
	if err := c.Fit.Validate(); err != nil {
		return fmt.Errorf("%w: labeler.fit: %w", ErrConfig, err)
	}
	if c.PendingMaxAge < time.Minute {
		return fmt.Errorf("%w: labeler.pending_max_age %s must be at least 1m", ErrConfig, c.PendingMaxAge)
	}
	return nil
}

func newLabelerCmd() *cobra.Command {
	cmd := &cobra.Command{
		Use:   "labeler",
		Short: "Fit the WS-GRPO preference model (the weak labeler)",
	}
	cmd.AddCommand(newLabelerFitCmd())
	return cmd
}

// labelerFitOptions configures `wsgrpo labeler fit`.
type labelerFitOptions struct {
	From     string
	Where    string
	Out      string
	Model    string
	JSON     bool
	Force    bool
	Features string
	// EvalWhere selects test rows: left out of the fit, their pairs scored.
	EvalWhere string
}

func newLabelerFitCmd() *cobra.Command {
	var o labelerFitOptions
	cmd := &cobra.Command{
		Use:   "fit --run ID --out DIR [--where EXPR] [--eval-where EXPR] [--model REF]",
		Short: "Fit the preference model on stored trajectories",
		Long: `Fit the WS-GRPO preference model (Phase I) on trajectories in the trajectory
log: rollouts of the same prompt, labelled only by final correctness, give
(correct, incorrect) pairs of whole trajectories and of same-depth prefixes.
Features (--features, labeler.fit.features) come from the reference policy
(--model, default train.model): "hidden", its final hidden state at the
last token of each prefix; "confidence", four summaries of its
log-probabilities of the completion's tokens so far (summed, least, and
how many were below 0.5 and 0.1; the default); "hidden+confidence", both.
The model, an MLP features -> labeler.fit.hidden -> 1, is fitted with the Bradley-Terry loss; a share of
the prompts (labeler.fit.held_out) is held out to report pair accuracy on
pairs it never saw.

--run names the run whose rows are read (its directory holds the embedded
log; or --clickhouse-dsn); --from reads another run id from that log (a
training run's warm-up is <run>-warmup). --where filters rows with a SQL
expression over the trajectories columns (e.g. "step <= 4"). --eval-where
holds rows of the run out as a test set (whatever --where says): they are
not fitted on, and the fitted model's accuracy on their (correct,
incorrect) pairs is reported (e.g. fit on the
first steps of a warm-up and test on its last ones). DIR receives
labeler.safetensors and labeler.json; its id is recorded on every row it
labels.`,
		Example: `  wsgrpo labeler fit --run demo --from demo-warmup --out runs/demo/labeler-2
  wsgrpo labeler fit --run eval-20261206 --where "task = 'arith'" --out /tmp/labeler --json
  wsgrpo labeler fit --run demo --from demo-warmup --where "step < 4" --eval-where "step >= 12" --out /tmp/l4`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			cfg, log, err := setup(cmd)
			if err != nil {
				return err
			}
			if o.Out == "" {
				return fmt.Errorf("%w: give --out DIR", ErrConfig)
			}
			if _, err := os.Stat(o.Out); err == nil && !o.Force {
				return fmt.Errorf("%w: %s exists (give --force to replace it)", ErrConfig, o.Out)
			}
			model := o.Model
			if model == "" {
				model = cfg.Train.Model
			}
			run := o.From
			if run == "" {
				run = cfg.Run
			}
			store, err := openLog(cmd.Context(), cfg, log)
			if err != nil {
				return err
			}
			defer store.Close()
			rt, err := ort.Init(cfg.ortConfig(), log)
			if err != nil {
				return err
			}
			fc := cfg.Labeler.Fit
			if o.Features != "" {
				fc.Features = o.Features
				if err := fc.Validate(); err != nil {
					return fmt.Errorf("%w: --features: %w", ErrConfig, err)
				}
			}
			m, rep, test, err := fitFromLog(cmd.Context(), rt, store, fc, model, run, o.Where, o.EvalWhere, log)
			if err != nil {
				return err
			}
			if err := labeler.Save(o.Out, m); err != nil {
				return err
			}
			return printFit(cmd, m, rep, test, o.Out, o.JSON)
		},
	}
	addConfigFlags(cmd.Flags())
	f := cmd.Flags()
	f.StringVar(&o.From, "from", "", "run id whose rows to read from the log (default --run)")
	f.StringVar(&o.Where, "where", "", "SQL filter over the trajectories columns")
	f.StringVar(&o.EvalWhere, "eval-where", "", "leave the rows matching this SQL filter out of the fit and report pair accuracy on them (a test set, e.g. \"step >= 12\")")
	f.StringVar(&o.Out, "out", "", "directory for the fitted labeler")
	f.StringVar(&o.Model, "model", "", "reference policy checkpoint directory (default train.model)")
	f.BoolVar(&o.JSON, "json", false, "print the fit report as one JSON object")
	f.BoolVar(&o.Force, "force", false, "replace an existing --out")
	f.StringVar(&o.Features, "features", "", "feature kind: hidden, confidence or hidden+confidence (default labeler.fit.features)")
	return cmd
}

// fitFromLog fits a preference model on the rows of run (and where) in the
// trajectory log, with the checkpoint at model as the reference policy.
// With evalWhere, the rows of run that match it (whatever where says) are
// left out of the fit and their pairs scored as a test set (testReport).
func fitFromLog(ctx context.Context, rt *ort.Runtime, store tracelog.Store, fc labeler.Config, model, run, where, evalWhere string, log *slog.Logger) (*labeler.Model, labeler.Report, testReport, error) {
	q := "run_id = ?"
	if strings.TrimSpace(where) != "" {
		q += " AND (" + where + ")"
	}
	fitQ := q
	if strings.TrimSpace(evalWhere) != "" {
		fitQ += " AND NOT (" + evalWhere + ")"
	}
	f, err := referenceFeaturizer(rt, model, "", labeler.FeaturizerOptions{Features: fc.Features})
	if err != nil {
		return nil, labeler.Report{}, testReport{}, err
	}
	defer func() { _ = f.Close() }()
	examples, err := examplesFromLog(ctx, f, store, fitQ, run, log)
	if err != nil {
		return nil, labeler.Report{}, testReport{}, err
	}
	if len(examples) == 0 {
		return nil, labeler.Report{}, testReport{}, fmt.Errorf("%w: run %q has no sampled rows in the log (where %q)", ErrNoPairs, run, where)
	}
	fc.Reference = f.Reference()
	pairs := labeler.Pairs(examples, fc)
	if !slices.ContainsFunc(pairs, func(p labeler.Pair) bool { return p.Depth != labeler.AnchorDepth }) {
		return nil, labeler.Report{}, testReport{}, fmt.Errorf("%w: the %d rollouts of run %q hold no prompt with both a correct and an incorrect rollout (sample more per prompt, or from a policy that is sometimes right)", ErrNoPairs, len(examples), run)
	}
	m, rep, err := labeler.FitPairs(rt, pairs, fc, log)
	if err != nil || strings.TrimSpace(evalWhere) == "" {
		return m, rep, testReport{}, err
	}
	test, err := examplesFromLog(ctx, f, store, "run_id = ? AND ("+evalWhere+")", run, log)
	if err != nil {
		return nil, labeler.Report{}, testReport{}, err
	}
	tr := scoreTestPairs(m, labeler.BuildPairs(test, 0, fc.Seed))
	tr.Where = evalWhere
	if tr.Pairs == 0 {
		return nil, labeler.Report{}, testReport{}, fmt.Errorf("%w: --eval-where %q selects no prompt with both a correct and an incorrect rollout in run %q", ErrNoPairs, evalWhere, run)
	}
	return m, rep, tr, nil
}

// examplesFromLog reads the rows of run that match q (its first argument
// is the run id) and featurizes them with f.
func examplesFromLog(ctx context.Context, f *labeler.Featurizer, store tracelog.Store, q, run string, log *slog.Logger) ([]labeler.Example, error) {
	rows, err := tracelog.ReadRows(ctx, store, q, run)
	if err != nil {
		return nil, fmt.Errorf("read run %s: %w", run, err)
	}
	rollouts := make([]schemas.Rollout, 0, len(rows))
	correct := make([]bool, 0, len(rows))
	for i := range rows {
		r := rows[i].Verified()
		if len(r.PromptTokenIDs) == 0 {
			continue // a prompt the sampler could not encode
		}
		rollouts = append(rollouts, r.Rollout)
		correct = append(correct, r.Correct)
	}
	// A rollout longer than the reference policy's context by more than
	// the one token a context-filling rollout has past it was sampled by
	// another policy: it is left out of the fit, and counted.
	fits := 0
	for i := range rollouts {
		if len(rollouts[i].PromptTokenIDs)+len(rollouts[i].CompletionTokenIDs) <= f.MaxSeq()+1 {
			rollouts[fits], correct[fits] = rollouts[i], correct[i]
			fits++
		}
	}
	if left := len(rollouts) - fits; left > 0 {
		log.Warn("rollouts longer than the reference policy's context left out of the labeler fit", "left_out", left, "of", len(rollouts), "max_seq", f.MaxSeq())
	}
	rollouts, correct = rollouts[:fits], correct[:fits]
	start := time.Now()
	examples := make([]labeler.Example, 0, len(rollouts))
	const chunk = 64
	for lo := 0; lo < len(rollouts); lo += chunk {
		if err := ctx.Err(); err != nil {
			return nil, err
		}
		part := rollouts[lo:min(len(rollouts), lo+chunk)]
		feats, err := f.Rollouts(part)
		if err != nil {
			return nil, err
		}
		for i, ft := range feats {
			examples = append(examples, labeler.Example{Group: part[i].GroupID, Correct: correct[lo+i], Features: ft})
		}
	}
	log.Info("labeler features ready", "rollouts", len(examples), "seconds", time.Since(start).Seconds())
	return examples, nil
}

func printFit(cmd *cobra.Command, m *labeler.Model, rep labeler.Report, test testReport, out string, asJSON bool) error {
	if asJSON {
		var t *testReport
		if test.Where != "" {
			t = &test
		}
		return json.NewEncoder(cmd.OutOrStdout()).Encode(struct {
			ID     string         `json:"id"`
			Out    string         `json:"out"`
			Report labeler.Report `json:"report"`
			Test   *testReport    `json:"test,omitempty"`
		}{m.ID(), out, rep, t})
	}
	printFitReport(cmd, m, rep)
	if test.Where != "" {
		fmt.Fprintf(cmd.OutOrStdout(), "  test accuracy:        %.1f%% on %d pairs of %d prompts (--eval-where %s; whole trajectories %.1f%% of %d, prefixes %.1f%% of %d)\n",
			100*test.Accuracy, test.Pairs, test.Groups, test.Where, 100*test.FullAccuracy, test.FullPairs, 100*test.PrefixAccuracy, test.Pairs-test.FullPairs)
	}
	fmt.Fprintf(cmd.OutOrStdout(), "  saved to:             %s\n", out)
	return nil
}

func printFitReport(cmd *cobra.Command, m *labeler.Model, rep labeler.Report) {
	w := cmd.OutOrStdout()
	fmt.Fprintf(w, "labeler %s: %d pairs from %d prompts, %d epochs (%.1fs)\n", m.ID(), rep.Pairs, rep.Groups, rep.Epochs, rep.Seconds)
	fmt.Fprintf(w, "  train pair accuracy:  %.1f%% (loss %.3f)\n", 100*rep.TrainAccuracy, rep.TrainLoss)
	if rep.HeldOutPairs > 0 {
		fmt.Fprintf(w, "  held-out accuracy:    %.1f%% on %d pairs of %d prompts it never saw (loss %.3f)\n", 100*rep.HeldOutAccuracy, rep.HeldOutPairs, rep.HeldOutGroups, rep.HeldOutLoss)
	}
	if rep.HeldOutAnchors > 0 {
		fmt.Fprintf(w, "  held-out anchors:     %.1f%% of %d (correct over the empty prefix over wrong)\n", 100*rep.HeldOutAnchorAccuracy, rep.HeldOutAnchors)
	}
}

// klReference reports whether the labeler should attach the reference
// policy's log-probabilities for the learner (labeler.reference_pass, on by
// default, and a learner with a KL term).
func (c Config) klReference() bool {
	return c.Labeler.ReferencePass && !c.Learner.NoKL
}

// needsScorer reports whether the shaper uses the preference model.
func needsScorer(c shaping.Config) bool { return c.Shaper == "" || c.Shaper == shaping.WSGRPO }

// labelerStage is the labeler processor with the featurizer session it
// scores with, closed after the stage's last batch.
type labelerStage struct {
	*labelerstage.Processor
	feat *labeler.Featurizer
}

// Close closes the featurizer's session.
func (l *labelerStage) Close(context.Context) error {
	if l.feat == nil {
		return nil
	}
	return l.feat.Close()
}

// newLabelerStage builds the labeler: the shaper of the shaping: section;
// for ws-grpo the preference model labeler.artifact over the features of
// the reference policy (train.model); incomplete groups wait in the run's
// group store.
func newLabelerStage(ctx context.Context, env stageEnv) (stage.Processor, error) {
	cfg := env.cfg
	gs, err := pipeline.OpenGroupStore(ctx, env.sess.js, env.sess.topo, cfg.Labeler.PendingMaxAge)
	if err != nil {
		return nil, fmt.Errorf("group store: %w", err)
	}
	o := labelerstage.Options{
		Shaping: cfg.Shaping, Pending: gs, DropZeroVariance: cfg.Labeler.DropZeroVariance,
		StepAdvantages: cfg.Labeler.StepAdvantages, Logger: env.log,
	}
	var feat *labeler.Featurizer
	if needsScorer(cfg.Shaping) {
		if cfg.Labeler.Artifact == "" {
			return nil, fmt.Errorf("%w: the ws-grpo shaper needs a preference model: set labeler.artifact to a `wsgrpo labeler fit --out` directory (train fits one after its warm-up)", ErrConfig)
		}
		m, err := labeler.Load(cfg.Labeler.Artifact)
		if err != nil {
			return nil, fmt.Errorf("load labeler.artifact %s: %w", cfg.Labeler.Artifact, err)
		}
		rt, err := env.runtime()
		if err != nil {
			return nil, err
		}
		if feat, err = referenceFeaturizer(rt, cfg.Train.Model, "train.model ", labeler.FeaturizerOptions{Features: m.Features()}); err != nil {
			return nil, err
		}
		sc, err := labeler.NewScorer(feat, m)
		if err != nil {
			_ = feat.Close()
			return nil, fmt.Errorf("labeler.artifact %s against train.model %s: %w", cfg.Labeler.Artifact, cfg.Train.Model, err)
		}
		o.Scorer = sc
	} else if cfg.klReference() {
		// No scorer runs the reference policy: the labeler runs it for the
		// learner's KL term (the rows carry the log-probs; the learner,
		// with the same reference, then runs no pass of its own).
		rt, err := env.runtime()
		if err != nil {
			return nil, err
		}
		if feat, err = referenceFeaturizer(rt, cfg.Train.Model, "train.model ", labeler.FeaturizerOptions{Features: labeler.FeaturesConfidence}); err != nil {
			return nil, err
		}
		o.Reference = feat
	}
	p, err := labelerstage.New(o)
	if err != nil {
		if feat != nil {
			_ = feat.Close()
		}
		return nil, err
	}
	if err := registerLabelerMetrics(env.sess.reg, p.Stats); err != nil {
		if feat != nil {
			_ = feat.Close()
		}
		return nil, err
	}
	return &labelerStage{Processor: p, feat: feat}, nil
}
