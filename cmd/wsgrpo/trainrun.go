package main

import (
	"cmp"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"sync"
	"time"

	"github.com/schollz/progressbar/v3"
	"github.com/spf13/cobra"
	"golang.org/x/term"

	"github.com/wsgrpo/wsgrpo/model/labeler"
	"github.com/wsgrpo/wsgrpo/pipeline"
	"github.com/wsgrpo/wsgrpo/prompts"
	"github.com/wsgrpo/wsgrpo/stages/learner"
	"github.com/wsgrpo/wsgrpo/tasks"
	"github.com/wsgrpo/wsgrpo/tasks/arith"
	"github.com/wsgrpo/wsgrpo/tasks/dataset"
	"github.com/wsgrpo/wsgrpo/tracelog"
	"github.com/wsgrpo/wsgrpo/tracelog/report"
)

// trainOptions configures a training run (`train` without --wiring).
type trainOptions struct {
	Progress bool
	Timeout  time.Duration
	// Resume continues a stopped run in its run directory; Force starts
	// over, removing it. Without either an existing run is refused.
	Resume, Force bool
	// Out is where the trained policy is saved (default <run dir>/policy).
	Out string
	// Listen exposes the training phase's embedded NATS server (HOST:PORT)
	// so that extra stage processes can join it.
	Listen string
	// Start is when the run began, for the time to its first update (zero:
	// the process's start, as for `wsgrpo train`; `wsgrpo results` runs
	// several runs in one process and gives each its own).
	Start time.Time
}

// trainSummary is what a training run reports at its end.
type trainSummary struct {
	Before, After *evalReport
	// BeforeSampled and AfterSampled are the sampled evaluations
	// (train.eval_samples; nil when 0).
	BeforeSampled, AfterSampled *evalReport
	Labeler                     *labeler.Model
	Fit                         *labeler.Report
	First, Last                 learner.StepMetrics
	Steps                       int64
	Policy                      string
	Elapsed                     time.Duration
	// FirstUpdate is the time from the command's start to the learner's
	// first update of this attempt (0 when it made none).
	FirstUpdate time.Duration
}

// trainTask returns the run's training prompts: the arith train split, or
// the dataset file's items.
func trainTask(cfg Config) (tasks.Source, error) {
	if cfg.Train.Data == "" {
		t, err := arith.New(cfg.Train.Arith)
		if err != nil {
			return nil, fmt.Errorf("%w: train.arith: %w", ErrConfig, err)
		}
		return t, nil
	}
	res, err := dataset.Load(cfg.Train.Data, dataset.Options{})
	if err != nil {
		return nil, err
	}
	d, err := dataset.New(dataset.Config{Name: cfg.Train.DataTask, Split: tasks.Train}, res.Records)
	if err != nil {
		return nil, fmt.Errorf("%w: train.data %s: %w", ErrConfig, cfg.Train.Data, err)
	}
	return d, nil
}

// subRun is cfg for a helper run of a training run (its warm-up, its
// evaluations): its own run id, the same run directory and trajectory log.
func subRun(cfg Config, suffix string) Config {
	sub := cfg
	sub.Run = cfg.Run + "-" + suffix
	sub.Dir = cfg.RunDir()
	return sub
}

// evalPolicy evaluates blob on n arith test-split prompts as the sub-run
// <run>-<suffix>: greedily with samples 0, else with samples completions
// per prompt at sampler.temperature.
func evalPolicy(ctx context.Context, cfg Config, log *slog.Logger, blob []byte, n, samples int, suffix string, timeout time.Duration) (*evalReport, error) {
	sub := subRun(cfg, suffix)
	sub.Sampler.Samples, sub.Sampler.Greedy, sub.Sampler.Seed = 1, true, cfg.Train.Seed
	if samples > 0 {
		sub.Sampler.Samples, sub.Sampler.Greedy = samples, false
	}
	ac := cfg.Train.Arith
	if cfg.Train.EvalMaxOps > 0 {
		ac.MaxOps = cfg.Train.EvalMaxOps
	}
	task, err := arith.New(ac)
	if err != nil {
		return nil, err
	}
	start := time.Now()
	rows, err := sampleRun(ctx, sub, log, blob, task, prompts.Config{PerStep: n, Steps: 1, Split: tasks.Test, Seed: cfg.Train.Seed}, true, true, timeout)
	if err != nil {
		return nil, fmt.Errorf("eval %s: %w", sub.Run, err)
	}
	rep := scoreEval(rows, n, max(samples, 1))
	rep.Run, rep.Seconds = sub.Run, time.Since(start).Seconds()
	return &rep, nil
}

// warmupLabeler returns the run's preference model: labeler.artifact, the
// one a previous attempt of this run fitted, or a new one fitted on
// train.warmup_steps steps sampled from the starting policy (the sub-run
// <run>-warmup, logged like every rollout).
func warmupLabeler(ctx context.Context, cmd *cobra.Command, cfg Config, log *slog.Logger, blob []byte, src tasks.Source, timeout time.Duration) (string, *labeler.Model, *labeler.Report, error) {
	if cfg.Labeler.Artifact != "" {
		m, err := labeler.Load(cfg.Labeler.Artifact)
		return cfg.Labeler.Artifact, m, nil, err
	}
	dir := filepath.Join(cfg.RunDir(), "labeler")
	if m, err := labeler.Load(dir); err == nil {
		out(cmd, "labeler: %s from an earlier attempt of this run (%s)\n", m.ID(), dir)
		return dir, m, nil, nil
	}
	if cfg.Train.WarmupSteps < 1 {
		return "", nil, nil, fmt.Errorf("%w: the ws-grpo shaper needs a preference model: set train.warmup_steps >= 1 or labeler.artifact", ErrConfig)
	}
	sub := subRun(cfg, "warmup")
	out(cmd, "labeler warm-up: %d steps x %d prompts x %d samples from the starting policy (run %s)\n",
		cfg.Train.WarmupSteps, cfg.Train.PromptsPerStep, cfg.groupSize(), sub.Run)
	pc := prompts.Config{PerStep: cfg.Train.PromptsPerStep, Steps: cfg.Train.WarmupSteps, Split: tasks.Train, Seed: cfg.Train.Seed + 1}
	// A resumed run whose warm-up was logged before it stopped fits on it.
	if n, err := loggedRows(ctx, cfg, log, sub.Run); err != nil || n < int64(pc.PerStep*pc.Steps*cfg.groupSize()) {
		if _, err := sampleRun(ctx, sub, log, blob, src, pc, true, true, timeout); err != nil {
			return "", nil, nil, fmt.Errorf("labeler warm-up: %w", err)
		}
	}
	store, err := openLogForWrite(ctx, cfg, log)
	if err != nil {
		return "", nil, nil, err
	}
	defer store.Close()
	rt, err := stageEnv{cfg: cfg, log: log}.runtime()
	if err != nil {
		return "", nil, nil, err
	}
	m, rep, _, err := fitFromLog(ctx, rt, store, cfg.Labeler.Fit, cfg.Train.Model, sub.Run, "", "", log)
	if err != nil {
		return "", nil, nil, fmt.Errorf("fit the labeler on the warm-up: %w", err)
	}
	if err := labeler.Save(dir, m); err != nil {
		return "", nil, nil, err
	}
	printFitReport(cmd, m, rep)
	return dir, m, &rep, nil
}

// trainStateFile records, in the run directory, what a resumed run need
// not do again.
const trainStateFile = "train.json"

// trainState is the content of trainStateFile.
type trainState struct {
	Before *evalReport `json:"before,omitempty"`
	// BeforeSampled is the sampled evaluation before training
	// (train.eval_samples), AfterSampled the one after.
	BeforeSampled *evalReport `json:"before_sampled,omitempty"`
	AfterSampled  *evalReport `json:"after_sampled,omitempty"`
	// The rest is written when the run completes (wsgrpo results reads it).
	After   *evalReport          `json:"after,omitempty"`
	Shaper  string               `json:"shaper,omitempty"`
	Seed    uint64               `json:"seed,omitempty"`
	Steps   int64                `json:"steps,omitempty"`
	Labeler string               `json:"labeler,omitempty"`
	Fit     *labeler.Report      `json:"fit,omitempty"`
	First   *learner.StepMetrics `json:"first,omitempty"`
	Last    *learner.StepMetrics `json:"last,omitempty"`
	Policy  string               `json:"policy,omitempty"`
	Seconds float64              `json:"seconds,omitempty"`
	// FirstUpdateSeconds is the time from the command's start to the
	// learner's first update (of the attempt that completed the run).
	FirstUpdateSeconds float64 `json:"first_update_seconds,omitempty"`
}

func readTrainState(cfg Config) trainState {
	var st trainState
	if b, err := os.ReadFile(filepath.Join(cfg.RunDir(), trainStateFile)); err == nil {
		_ = json.Unmarshal(b, &st)
	}
	return st
}

func writeTrainState(cfg Config, st trainState) error {
	b, err := json.MarshalIndent(st, "", "  ")
	if err != nil {
		return err
	}
	return os.WriteFile(filepath.Join(cfg.RunDir(), trainStateFile), b, 0o644)
}

// prepareRunDir applies --resume and --force to an existing run directory
// and claims the directory for the run (claimRunDir); release ends the
// claim.
func prepareRunDir(cfg Config, o trainOptions) (release func(), err error) {
	if o.Resume && o.Force {
		return nil, fmt.Errorf("%w: --resume and --force exclude each other", ErrConfig)
	}
	dir := cfg.RunDir()
	exists := runDirUsed(dir)
	if cfg.NATS == "" {
		switch {
		case exists && !o.Resume && !o.Force:
			return nil, fmt.Errorf("%w: run directory %s exists: continue the run with --resume, or start over with --force (or give another --run)", ErrConfig, dir)
		case !exists && o.Resume:
			return nil, fmt.Errorf("%w: --resume: no run directory %s", ErrConfig, dir)
		}
	}
	if release, err = claimRunDir(cfg); err != nil {
		return nil, err
	}
	if cfg.NATS == "" && exists && o.Force {
		if err := clearRunDir(dir); err != nil {
			release()
			return nil, err
		}
	}
	return release, nil
}

// loggedSteps sets the summary's first and last step from the run's steps
// table (a resumed run's first step is in an earlier attempt).
func loggedSteps(ctx context.Context, cfg Config, log *slog.Logger, sum *trainSummary) error {
	store, err := openLogForWrite(ctx, cfg, log)
	if err != nil {
		return err
	}
	defer store.Close()
	rows, err := store.Steps(ctx, cfg.Run)
	if err != nil {
		return err
	}
	var applied []tracelog.StepRow
	for _, r := range rows {
		if !r.Skipped {
			applied = append(applied, r)
		}
	}
	if len(applied) == 0 {
		return nil
	}
	conv := func(r tracelog.StepRow) learner.StepMetrics {
		return learner.StepMetrics{Step: r.Step, Version: r.PolicyVersion, MeanReward: r.MeanReward, Accuracy: r.Accuracy,
			MeanTokens: r.MeanTokens, MeanSteps: r.MeanSteps, KL: r.KL, Loss: r.Loss}
	}
	sum.First, sum.Last = conv(applied[0]), conv(applied[len(applied)-1])
	return nil
}

// loggedRows counts the rows of run in cfg's trajectory log.
func loggedRows(ctx context.Context, cfg Config, log *slog.Logger, run string) (int64, error) {
	store, err := openLogForWrite(ctx, cfg, log)
	if err != nil {
		return 0, err
	}
	defer store.Close()
	return store.Count(ctx, run)
}

// runTrain runs a WS-GRPO (or baseline) training run in this process.
func runTrain(cmd *cobra.Command, cfg Config, log *slog.Logger, o trainOptions) (err error) {
	ctx, cancel := context.WithCancel(cmd.Context())
	defer cancel()
	start := time.Now()
	if cfg.Sampler.Chat {
		if err := checkChat(cfg.Train.Model, "sampler.chat"); err != nil {
			return err
		}
	}
	release, err := prepareRunDir(cfg, o)
	if err != nil {
		return err
	}
	defer release()
	blob, err := loadTrainModel(cfg.Train.Model, "train.model")
	if err != nil {
		return err
	}
	src, err := trainTask(cfg)
	if err != nil {
		return err
	}
	sum := trainSummary{}
	st := readTrainState(cfg)
	evalN := cfg.Train.EvalPrompts
	if cfg.Train.Data != "" {
		evalN = 0 // the held-out split of a dataset file is not defined here
	}
	evalK := cfg.Train.EvalSamples
	if evalN > 0 {
		if sum.Before = st.Before; sum.Before == nil {
			if sum.Before, err = evalPolicy(ctx, cfg, log, blob, evalN, 0, "eval-before", o.Timeout); err != nil {
				return err
			}
			st.Before = sum.Before
			if err := writeTrainState(cfg, st); err != nil {
				return err
			}
		}
		out(cmd, "before: greedy accuracy %.1f%%, %.1f tokens on %d test prompts\n", 100*sum.Before.Accuracy, sum.Before.MeanTokens, evalN)
		if sum.BeforeSampled = st.BeforeSampled; sum.BeforeSampled == nil && evalK > 0 {
			if sum.BeforeSampled, err = evalPolicy(ctx, cfg, log, blob, evalN, evalK, "eval-before-sampled", o.Timeout); err != nil {
				return err
			}
			st.BeforeSampled = sum.BeforeSampled
			if err := writeTrainState(cfg, st); err != nil {
				return err
			}
		}
		if s := sum.BeforeSampled; s != nil {
			out(cmd, "before: sampled accuracy %.1f%%, %.1f tokens (%d samples of each prompt at temperature %g)\n", 100*s.Accuracy, s.MeanTokens, s.Samples, cfg.Sampler.Temperature)
		}
	}
	if needsScorer(cfg.Shaping) {
		dir, m, rep, err := warmupLabeler(ctx, cmd, cfg, log, blob, src, o.Timeout)
		if err != nil {
			return err
		}
		cfg.Labeler.Artifact, sum.Labeler, sum.Fit = dir, m, rep
	}

	final, err := trainPhase(ctx, cmd, cfg, log, blob, src, o, &sum)
	if err != nil {
		if ctx.Err() != nil {
			out(cmd, "stopped at step %d of %d: the learner's checkpoint is in %s; continue with: wsgrpo train --config ... --run %s --resume\n",
				sum.Steps, cfg.Train.Steps, filepath.Join(cfg.RunDir(), "learner"), cfg.Run)
		}
		return err
	}
	if evalN > 0 {
		if sum.After, err = evalPolicy(ctx, cfg, log, final, evalN, 0, "eval-after", o.Timeout); err != nil {
			return err
		}
		if evalK > 0 {
			if sum.AfterSampled, err = evalPolicy(ctx, cfg, log, final, evalN, evalK, "eval-after-sampled", o.Timeout); err != nil {
				return err
			}
		}
	}
	sum.Elapsed = time.Since(start)
	if err := loggedSteps(ctx, cfg, log, &sum); err != nil {
		log.Warn("could not read the run's steps from the log; the summary shows this attempt's", "err", err)
	}
	printTrainSummary(cmd, cfg, sum)
	st.AfterSampled = sum.AfterSampled
	st.After, st.Shaper, st.Seed, st.Steps, st.Fit = sum.After, cfg.Shaping.Shaper, cfg.Train.Seed, sum.Steps, sum.Fit
	st.First, st.Last, st.Policy, st.Seconds = &sum.First, &sum.Last, sum.Policy, sum.Elapsed.Seconds()
	st.FirstUpdateSeconds = sum.FirstUpdate.Seconds()
	if sum.Labeler != nil {
		st.Labeler = sum.Labeler.ID()
	}
	if err := writeTrainState(cfg, st); err != nil {
		return err
	}
	return trainReport(ctx, cmd, cfg, log)
}

// trainReport writes the run's reasoning-length report (`wsgrpo report`)
// into <run dir>/report and prints where it is.
func trainReport(ctx context.Context, cmd *cobra.Command, cfg Config, log *slog.Logger) error {
	r, err := buildReport(ctx, cfg, log, report.Options{Logger: log})
	if err != nil {
		return fmt.Errorf("report: %w", err)
	}
	if _, err := report.NewDocument(r, nil).Write(filepath.Join(cfg.RunDir(), "report")); err != nil {
		return fmt.Errorf("report: %w", err)
	}
	out(cmd, "  report:              %s (summary.md, PNG plots of length and accuracy over training)\n", filepath.Join(cfg.RunDir(), "report"))
	return nil
}

// trainPhase runs the training proper: every stage of the run in this
// process until the learner finished train.steps updates. It returns the
// last version's checkpoint blob, also saved to <run dir>/policy.
func trainPhase(ctx context.Context, cmd *cobra.Command, cfg Config, log *slog.Logger, blob []byte, src tasks.Source, o trainOptions, sum *trainSummary) (_ []byte, err error) {
	topo, err := cfg.topology()
	if err != nil {
		return nil, err
	}
	host, port, err := splitListen(o.Listen)
	if err != nil {
		return nil, err
	}
	s, err := openSessionAt(ctx, cfg, topo, log, o.Listen != "", host, port)
	if err != nil {
		return nil, err
	}
	defer s.close()
	if s.srv != nil && o.Listen != "" {
		out(cmd, "embedded NATS server: %s (join with: wsgrpo stage <name> --nats %s --run %s)\n", s.srv.URL(), s.srv.URL(), cfg.Run)
	}
	ws, err := pipeline.OpenWeightStore(ctx, s.js, s.topo)
	if err != nil {
		return nil, err
	}
	if _, err := ws.Latest(ctx); errors.Is(err, pipeline.ErrNotFound) {
		if err := ws.Put(ctx, 1, blob); err != nil {
			return nil, fmt.Errorf("publish the starting policy: %w", err)
		}
	} else if err != nil {
		return nil, err
	}
	logs := newSharedLog(cfg, log)
	defer logs.close()
	g := pipeline.NewGroup(s.js, log)
	names := []string{pipeline.StageSampler, pipeline.StageVerifier, pipeline.StageLabeler, pipeline.StageLearner, pipeline.StageLogger}
	if err := addStages(ctx, g, s, names, cfg, log, logs); err != nil {
		return nil, err
	}
	want := int64(cfg.Train.Steps)
	var (
		mu       sync.Mutex
		progress = make(chan struct{}, 1)
		bar      *progressbar.ProgressBar
	)
	if o.Progress && term.IsTerminal(int(os.Stderr.Fd())) {
		bar = progressbar.NewOptions64(want, progressbar.OptionSetDescription("training"),
			progressbar.OptionSetWriter(cmd.ErrOrStderr()), progressbar.OptionShowCount(),
			progressbar.OptionSetItsString("steps"), progressbar.OptionThrottle(200*time.Millisecond))
	}
	resumed := s.learnerSteps.proc.Stats().Step
	sum.Steps = resumed
	if resumed > 0 {
		out(cmd, "resuming at step %d of %d (checkpoint in %s)\n", resumed, want, filepath.Join(cfg.RunDir(), "learner"))
	}
	if bar != nil {
		_ = bar.Set64(resumed)
	}
	phaseStart, lastStep := time.Now(), time.Now()
	s.learnerSteps.setWatch(func(m learner.StepMetrics) {
		mu.Lock()
		now := time.Now()
		rate := float64(m.Rows) / now.Sub(lastStep).Seconds()
		lastStep = now
		done := m.Step - resumed
		eta := time.Duration(float64(now.Sub(phaseStart)) / float64(max(done, 1)) * float64(want-m.Step))
		if sum.First.Step == 0 && !m.Skipped {
			sum.First = m
		}
		if sum.FirstUpdate == 0 {
			start := o.Start
			if start.IsZero() {
				start = processStart
			}
			sum.FirstUpdate = time.Since(start)
		}
		if !m.Skipped {
			sum.Last = m
		}
		sum.Steps = max(sum.Steps, m.Step)
		mu.Unlock()
		line := fmt.Sprintf("step %d/%d: reward %.2f acc %.0f%% tokens %.0f kl %.3f %.0f rollouts/s", m.Step, want, m.MeanReward, 100*m.Accuracy, m.MeanTokens, m.KL, rate)
		if m.Skipped {
			line = fmt.Sprintf("step %d/%d: skipped (non-finite loss or gradient)", m.Step, want)
		}
		if bar != nil {
			_ = bar.Set64(m.Step)
			bar.Describe(line)
		} else if o.Progress {
			fmt.Fprintf(cmd.ErrOrStderr(), "%s %s ETA %s\n", time.Now().Format(time.TimeOnly), line, eta.Round(time.Second))
		}
		select {
		case progress <- struct{}{}:
		default:
		}
	})
	run := startGroup(ctx, g)
	defer func() {
		if serr := run.Stop(); err == nil && serr != nil {
			err = serr
		}
	}()
	source, err := prompts.New(ctx, s.js, s.topo, src, prompts.Config{
		PerStep: cfg.Train.PromptsPerStep, Steps: cfg.Train.Steps, Ahead: cfg.Train.Ahead, Split: tasks.Train, Seed: cfg.Train.Seed,
		MaxRows: cfg.Train.PromptBatch,
	}, log)
	if err != nil {
		return nil, err
	}
	// The stages stopping, or a full store, ends the publishing too.
	pctx, stopPublish := boundTo(ctx, run, s)
	defer stopPublish()
	srcErr := make(chan error, 1)
	go func() {
		_, err := source.Run(pctx)
		srcErr <- err
	}()
	steps := func() int64 {
		mu.Lock()
		defer mu.Unlock()
		return sum.Steps
	}
	lastChange := time.Now()
	for steps() < want {
		select {
		case <-ctx.Done():
			return nil, fmt.Errorf("%w: interrupted at step %d of %d", ErrIncomplete, steps(), want)
		case <-run.Done():
			return nil, run.Stopped()
		case err := <-srcErr:
			if err != nil {
				if cause := boundCause(ctx, pctx, run); cause != nil {
					return nil, cause
				}
				return nil, fmt.Errorf("prompt source: %w", s.whyFailed(err))
			}
		case <-progress:
			lastChange = time.Now()
		case <-time.After(time.Second):
			if time.Since(lastChange) > o.Timeout {
				return nil, fmt.Errorf("%w: the learner finished %d of %d steps and none for %s (see `wsgrpo dlq list --run %s` and the learner's dropped rows in the log: stale rows need learner.max_staleness)", ErrIncomplete, steps(), want, o.Timeout, cfg.Run)
			}
		}
	}
	if bar != nil {
		_ = bar.Finish()
		fmt.Fprintln(cmd.ErrOrStderr())
	}
	v, err := ws.Latest(ctx)
	if err != nil {
		return nil, err
	}
	final, err := ws.Get(ctx, v)
	if err != nil {
		return nil, err
	}
	sum.Policy = cmp.Or(o.Out, filepath.Join(cfg.RunDir(), "policy"))
	if err := savePolicyBlob(sum.Policy, final); err != nil {
		return nil, fmt.Errorf("save the trained policy: %w", err)
	}
	return final, nil
}

// evalHint is the eval command line for the trained policy in dir: on the
// arith test split, or on the run's dataset file (a held-out file of the
// user's is the better choice; the hint names the training file's task
// and chat setting), with --chat when the run sampled with it.
func evalHint(cfg Config, dir string) string {
	hint := "wsgrpo eval --model " + dir
	if cfg.Train.Data == "" {
		hint += " --task arith"
	} else {
		hint += " --data TEST.jsonl --data-task " + cfg.Train.DataTask
	}
	if cfg.Sampler.Chat {
		hint += " --chat"
	}
	return hint
}

func printTrainSummary(cmd *cobra.Command, cfg Config, s trainSummary) {
	shaper := cfg.Shaping.Shaper
	out(cmd, "training run %q (%s): %d steps x %d prompts x %d samples in %s\n", cfg.Run, shaper, s.Steps,
		cfg.Train.PromptsPerStep, cfg.groupSize(), s.Elapsed.Round(time.Second))
	if s.Labeler != nil {
		out(cmd, "  labeler:             %s\n", s.Labeler.ID())
	}
	if s.FirstUpdate > 0 {
		out(cmd, "  first update:        %s after the command started\n", s.FirstUpdate.Round(100*time.Millisecond))
	}
	out(cmd, "  first step:          reward %.3f, accuracy %.1f%%, %.1f tokens, %.2f steps\n", s.First.MeanReward, 100*s.First.Accuracy, s.First.MeanTokens, s.First.MeanSteps)
	out(cmd, "  last step:           reward %.3f, accuracy %.1f%%, %.1f tokens, %.2f steps (kl %.4f)\n", s.Last.MeanReward, 100*s.Last.Accuracy, s.Last.MeanTokens, s.Last.MeanSteps, s.Last.KL)
	if s.Before != nil && s.After != nil {
		out(cmd, "  greedy test eval:    accuracy %.1f%% -> %.1f%%, tokens %.1f -> %.1f, steps %.2f -> %.2f (%d prompts)\n",
			100*s.Before.Accuracy, 100*s.After.Accuracy, s.Before.MeanTokens, s.After.MeanTokens, s.Before.MeanSteps, s.After.MeanSteps, s.Before.N)
	}
	if a, b := s.BeforeSampled, s.AfterSampled; a != nil && b != nil {
		out(cmd, "  sampled test eval:   accuracy %.1f%% -> %.1f%%, tokens %.1f -> %.1f, steps %.2f -> %.2f (%d prompts x %d samples, temperature %g)\n",
			100*a.Accuracy, 100*b.Accuracy, a.MeanTokens, b.MeanTokens, a.MeanSteps, b.MeanSteps, a.N, a.Samples, cfg.Sampler.Temperature)
	}
	out(cmd, "  trained policy:      %s (%s)\n", s.Policy, evalHint(cfg, s.Policy))
	out(cmd, "  per step:            wsgrpo sql --run %s \"SELECT step, accuracy, mean_tokens, mean_reward FROM steps_dedup WHERE run_id = '%s' ORDER BY step\"\n", cfg.RunDir(), cfg.Run)
}
