package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"path/filepath"
	"strings"

	"github.com/spf13/cobra"

	"github.com/wsgrpo/wsgrpo/pipeline"
	"github.com/wsgrpo/wsgrpo/tracelog/report"
)

func newReportCmd() *cobra.Command {
	var (
		outDir   string
		asJSON   bool
		compare  string
		histBins int
		accBins  int
	)
	cmd := &cobra.Command{
		Use:   "report --run ID [--out DIR] [--json] [--compare OTHER_RUN]",
		Short: "Reasoning-length report of a run: tables, PNG plots, markdown",
		Long: `Answer the usual questions about reasoning length from a run's trajectory
log: mean, median and p90 completion tokens and reasoning steps per training
step, for correct and incorrect answers apart; tokens spent per correct
answer; the length distribution at the first and the last step; the share of
completions truncated at the token limit (finish_reason = 'length');
accuracy against completion length.

The questions are SQL files kept in the repository (tracelog/report/sql),
run on the ClickHouse server (clickhouse_dsn) or the run's embedded chDB log,
always over the de-duplicated view.

Writes into --out (default <run dir>/report): summary.md, report.json and
PNG plots (length and reasoning steps over training, accuracy over training,
length histograms of the first vs the last step, accuracy against length).
--json prints report.json to stdout as well.

--compare OTHER_RUN adds a second run (a run id, or a run directory) against
this one, e.g. a WS-GRPO run against its GRPO baseline (--run): accuracy,
mean tokens, mean steps and the relative length cut, at the end of training
and over the whole run. With a server, both runs are read from it; with the
embedded log, the other run is read from its own run directory (a run id
is looked up next to this run's directory).`,
		Example: `  wsgrpo report --run grpo-baseline
  wsgrpo report --run grpo-baseline --compare ws-grpo --out cmp/`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			cfg, log, err := setup(cmd)
			if err != nil {
				return err
			}
			opts := report.Options{HistogramBins: histBins, AccuracyBins: accBins, Logger: log}
			base, err := buildReport(cmd.Context(), cfg, log, opts)
			if err != nil {
				return err
			}
			var other *report.Report
			if compare != "" {
				ocfg, err := otherRun(cfg, compare)
				if err != nil {
					return err
				}
				if other, err = buildReport(cmd.Context(), ocfg, log, opts); err != nil {
					return err
				}
			}
			if outDir == "" {
				outDir = filepath.Join(cfg.RunDir(), "report")
			}
			doc := report.NewDocument(base, other)
			files, err := doc.Write(outDir)
			if err != nil {
				return err
			}
			if asJSON {
				b, err := json.MarshalIndent(doc, "", "  ")
				if err != nil {
					return err
				}
				_, err = cmd.OutOrStdout().Write(append(b, '\n'))
				return err
			}
			printReport(cmd, doc, files)
			return nil
		},
	}
	addConfigFlags(cmd.Flags())
	f := cmd.Flags()
	f.StringVar(&outDir, "out", "", "directory for summary.md, report.json and the plots (default <run dir>/report)")
	f.BoolVar(&asJSON, "json", false, "print the report as JSON on stdout")
	f.StringVar(&compare, "compare", "", "another run (id or directory) to compare against this one")
	f.IntVar(&histBins, "hist-bins", 20, "about how many buckets the length histograms get")
	f.IntVar(&accBins, "accuracy-bins", 10, "about how many length buckets accuracy is split into")
	return cmd
}

// buildReport opens the log of cfg's run, builds its report and closes the
// log again (one embedded log per process: the compared run opens its own
// afterwards).
func buildReport(ctx context.Context, cfg Config, log *slog.Logger, opts report.Options) (*report.Report, error) {
	s, err := openLog(ctx, cfg, log)
	if err != nil {
		return nil, err
	}
	defer s.Close()
	r, err := report.Build(ctx, s, cfg.Run, opts)
	if errors.Is(err, report.ErrNoTrajectories) {
		if runs, lerr := report.Runs(ctx, s); lerr == nil {
			names := make([]string, len(runs))
			for i, ri := range runs {
				names[i] = fmt.Sprintf("%s (%d)", ri.Run, ri.Trajectories)
			}
			if len(names) == 0 {
				names = []string{"none"}
			}
			return nil, fmt.Errorf("%w; runs in this log: %s", err, strings.Join(names, ", "))
		}
	}
	if err != nil {
		return nil, logError(cfg, err)
	}
	return r, nil
}

// otherRun returns the configuration of the run to compare with: the same
// backend, with the run id and directory of other (a run directory, or a run
// id whose directory sits next to cfg's), resolved as --run is (resolveRun).
func otherRun(cfg Config, other string) (Config, error) {
	o := cfg
	o.Run, o.Dir = other, ""
	if !isRunDir(other) && pipeline.ValidateName(other) == nil {
		o.Dir = filepath.Join(filepath.Dir(cfg.RunDir()), other)
	}
	if err := resolveRun(&o, "--compare"); err != nil {
		return Config{}, err
	}
	if err := pipeline.ValidateName(o.Run); err != nil {
		return Config{}, fmt.Errorf("%w: --compare: %w", ErrConfig, err)
	}
	return o, nil
}

// printReport prints the headline figures and where the files are.
func printReport(cmd *cobra.Command, d *report.Document, f report.Files) {
	for _, r := range []*report.Report{d.Report, d.Other} {
		if r == nil {
			continue
		}
		s := r.Summary
		out(cmd, "run %s: %d trajectories, %d training steps (%d..%d)\n", r.Run, s.Trajectories, s.TrainingSteps, s.FirstStep, s.LastStep)
		out(cmd, "  accuracy %.1f%%, truncated %.1f%%, mean tokens %.1f (correct %.1f, incorrect %.1f), mean steps %.2f\n",
			100*s.Accuracy, 100*s.TruncatedShare, s.Lengths.All.MeanTokens, s.Lengths.Correct.MeanTokens, s.Lengths.Incorrect.MeanTokens, s.Lengths.All.MeanSteps)
		if s.Correct > 0 {
			out(cmd, "  tokens per correct answer %.1f\n", s.TokensPerCorrect)
		}
	}
	if c := d.Comparison; c != nil {
		out(cmd, "%s vs %s: accuracy %+.1f pp (last step %+.1f pp), length cut %.1f%% (last step %.1f%%), steps cut %.1f%%\n",
			c.Other.Run, c.Base.Run, 100*c.AccuracyDelta, 100*c.FinalAccuracyDelta, 100*c.RelativeLengthCut, 100*c.RelativeFinalLengthCut, 100*c.RelativeStepsCut)
	}
	out(cmd, "wrote %s, %s and %d plots in %s\n", filepath.Base(f.Markdown), filepath.Base(f.JSON), len(f.Plots), f.Dir)
}
