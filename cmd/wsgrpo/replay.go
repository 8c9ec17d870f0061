package main

import (
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/schollz/progressbar/v3"
	"github.com/spf13/cobra"

	"github.com/wsgrpo/wsgrpo/pipeline"
	"github.com/wsgrpo/wsgrpo/replay"
	"github.com/wsgrpo/wsgrpo/tracelog"
)

// replayFlags are the options of `wsgrpo replay`.
type replayFlags struct {
	From     string
	To       string
	Where    string
	Steps    string
	Batch    int
	Into     string
	Progress bool
}

func newReplayCmd() *cobra.Command {
	var f replayFlags
	cmd := &cobra.Command{
		Use:   "replay --run ID --to sampler|verifier|labeler|learner",
		Short: "Re-publish stored trajectories (or their prompts) into a run's streams",
		Long: `Re-publish trajectories from the trajectory log into the input stream of a
stage, as the schema of that hand-off, marked replayed:

  --to sampler    the distinct prompts (prompt batches): sample them again
  --to verifier   rollout batches: re-apply a changed verifier
  --to labeler    verified batches: re-score old rollouts with a new labeler
  --to learner    labeled batches: train offline from stored trajectories

The rows come from the log of --run (its ClickHouse server, --clickhouse-dsn,
or the embedded log in its run directory), or from --from: a ClickHouse DSN
(clickhouse://...), a run directory, an embedded log directory, or a Parquet
export (FILE.parquet). They go into the streams of --into (default: --run);
with the embedded NATS server, --into's run directory is the sibling of
--run's. To replay into a live run, give its --nats URL.

Batches hold whole groups and never mix training steps. Publication is
idempotent: message ids derive from the source run, the target and the rows
of each batch, so running the same replay again within the stream's
duplicate window (10 minutes) publishes nothing new.

--where is raw SQL for trusted users: a boolean expression over the columns
of the trajectories table (correct = 1 AND completion_tokens > 256). It is
validated, not bound: only column names, literals, operators, AND/OR/NOT/IN/
LIKE/BETWEEN/IS NULL/CASE, a fixed list of scalar functions and x -> lambdas
are accepted; no comments, semicolons, subqueries or other tables. It can
only narrow the selection: the run and --steps filters are applied around it.

Replayed rows keep their trajectory ids. Logged into the run they came from,
they replace the original rows in the log (marked replayed); use --into NEW
to keep both.`,
		Example: `  wsgrpo replay --run grpo-1 --to labeler --into ws-rescore
  wsgrpo replay --run grpo-1 --to learner --steps 10..20 --where 'correct = 1'
  wsgrpo replay --run eval-3 --from exports/eval-3.parquet --to sampler --into eval-4`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			cfg, log, err := setup(cmd)
			if err != nil {
				return err
			}
			return runReplay(cmd, cfg, log, f)
		},
	}
	addConfigFlags(cmd.Flags())
	addLayoutFlags(cmd.Flags())
	fs := cmd.Flags()
	fs.StringVar(&f.From, "from", "", "source log: ClickHouse DSN, run directory, embedded log directory or FILE.parquet (default: --run's log)")
	fs.StringVar(&f.To, "to", "", "stage to replay into: sampler, verifier, labeler or learner (required)")
	fs.StringVar(&f.Where, "where", "", "SQL boolean expression over the trajectories columns (validated; trusted users)")
	fs.StringVar(&f.Steps, "steps", "", "training steps a..b, a.., ..b or a (default: all)")
	fs.IntVar(&f.Batch, "batch", replay.DefaultBatch, "rows per published batch (whole groups are kept together)")
	fs.StringVar(&f.Into, "into", "", "run whose streams receive the batches (default: --run)")
	fs.BoolVar(&f.Progress, "progress", false, "show a progress bar")
	return cmd
}

// replayOptions checks the flags before anything is opened.
func replayOptions(cfg Config, f replayFlags) (replay.Options, Config, error) {
	var o replay.Options
	if f.To == "" {
		return o, cfg, fmt.Errorf("%w: --to is required (sampler, verifier, labeler or learner)", ErrConfig)
	}
	target, err := replay.ParseTarget(f.To)
	if err != nil {
		return o, cfg, fmt.Errorf("%w: %w", ErrConfig, err)
	}
	steps, err := replay.ParseSteps(f.Steps)
	if err != nil {
		return o, cfg, fmt.Errorf("%w: --steps: %w", ErrConfig, err)
	}
	if f.Where != "" {
		if err := replay.ValidateWhere(f.Where); err != nil {
			return o, cfg, fmt.Errorf("%w: %w", ErrConfig, err)
		}
	}
	if f.Batch < 1 || f.Batch > maxBatchRows {
		return o, cfg, fmt.Errorf("%w: --batch %d must be 1..%d", ErrConfig, f.Batch, maxBatchRows)
	}
	into := cfg
	if f.Into != "" && f.Into != cfg.Run {
		if err := pipeline.ValidateName(f.Into); err != nil {
			return o, cfg, fmt.Errorf("%w: --into: %w", ErrConfig, err)
		}
		into.Run = f.Into
		into.Dir = filepath.Join(filepath.Dir(filepath.Clean(cfg.RunDir())), f.Into)
		if into.NATS == "" {
			// The embedded server writes there: it must not be a
			// directory of something else.
			if err := checkRunDirFree(into.Dir); err != nil {
				return o, cfg, err
			}
		}
	}
	o = replay.Options{Run: cfg.Run, Target: target, Where: f.Where, Steps: steps, Batch: f.Batch}
	return o, into, nil
}

func runReplay(cmd *cobra.Command, cfg Config, log *slog.Logger, f replayFlags) error {
	ctx := cmd.Context()
	o, intoCfg, err := replayOptions(cfg, f)
	if err != nil {
		return err
	}
	// The target's embedded server, and the source's embedded log, live
	// in run directories: held before either opens.
	if intoCfg.NATS == "" {
		release, err := claimRunDir(intoCfg)
		if err != nil {
			return err
		}
		defer release()
	}
	if dir := replaySourceDir(cfg, f.From); dir != "" {
		release, err := holdRunDir(dir, useLog)
		if err != nil {
			return err
		}
		defer release()
	}
	src, err := replay.OpenSource(ctx, f.From, replay.SourceConfig{
		DSN: cfg.ClickHouseDSN, RunDir: cfg.RunDir(), Logger: log.With("component", "tracelog"),
	})
	if err != nil {
		return err
	}
	defer src.Close()
	s, err := openSession(ctx, intoCfg, log, false)
	if err != nil {
		return err
	}
	defer s.close()
	o.Into, o.Logger = s.topo, log
	if intoCfg.Run == cfg.Run && o.Target != replay.TargetSampler {
		log.Warn("replaying into the run the rows came from: once logged, the replayed rows replace the originals in the log (same run and trajectory ids); use --into to keep both",
			"run", cfg.Run)
	}
	var bar *progressbar.ProgressBar
	if f.Progress {
		o.Progress = func(p replay.Progress) {
			if bar == nil {
				bar = progressbar.NewOptions64(p.Total, progressbar.OptionSetDescription("rows replayed"),
					progressbar.OptionSetWriter(cmd.ErrOrStderr()), progressbar.OptionShowCount(),
					progressbar.OptionThrottle(100*time.Millisecond))
			}
			_ = bar.Set64(p.Read)
		}
	}
	start := time.Now()
	sum, err := replay.Replay(ctx, src.Store, s.js, o)
	if bar != nil {
		_ = bar.Finish()
		fmt.Fprintln(cmd.ErrOrStderr())
	}
	if err != nil {
		return fmt.Errorf("replay from %s: %w", src.Name, err)
	}
	printReplaySummary(cmd, sum, src.Name, f, time.Since(start))
	return nil
}

// replaySourceDir is the run directory whose embedded log replay reads
// (--run's, or --from DIR's), or "" for a server or a Parquet file.
func replaySourceDir(cfg Config, from string) string {
	switch {
	case from == "" && cfg.ClickHouseDSN == "":
		return cfg.RunDir()
	case from == "" || replay.IsDSN(from) || strings.HasSuffix(strings.ToLower(from), parquetExt):
		return ""
	case isDir(tracelog.EmbeddedDir(from)):
		return from
	case filepath.Base(filepath.Clean(from)) == filepath.Base(tracelog.EmbeddedDir("")) && isDir(filepath.Dir(filepath.Clean(from))):
		return filepath.Dir(filepath.Clean(from)) // an embedded log directory itself
	}
	return ""
}

// isDir reports whether path is a directory.
func isDir(path string) bool {
	st, err := os.Stat(path)
	return err == nil && st.IsDir()
}

func printReplaySummary(cmd *cobra.Command, sum replay.Summary, source string, f replayFlags, elapsed time.Duration) {
	what := "rows"
	if sum.Target == replay.TargetSampler {
		what = "distinct prompts"
	}
	out(cmd, "replayed %d %s of run %q into run %q as %s batches for the %s\n", sum.Rows, what, sum.Run, sum.Into, sum.Kind, sum.Target)
	out(cmd, "  source:     %s\n", source)
	out(cmd, "  selected:   %d trajectories, steps %d..%d", sum.Selected, sum.FirstStep, sum.LastStep)
	if f.Where != "" {
		out(cmd, ", where %s", f.Where)
	}
	out(cmd, "\n")
	out(cmd, "  batches:    %d (%d messages, at most %d rows each, whole groups)\n", sum.Batches, sum.Messages, f.Batch)
	out(cmd, "  target:     subject %s (stream %s)\n", sum.Subject, sum.Stream)
	out(cmd, "  time:       %s\n", elapsed.Round(time.Millisecond))
}
