package main

import (
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"time"

	"github.com/schollz/progressbar/v3"
	"github.com/spf13/cobra"

	"github.com/wsgrpo/wsgrpo/model/checkpoint"
	"github.com/wsgrpo/wsgrpo/model/ort"
	"github.com/wsgrpo/wsgrpo/pretrain"
)

// pretrainReport is pretrain.json in the output directory.
type pretrainReport struct {
	Config       pretrain.Config `json:"config"`
	Steps        int             `json:"steps"`
	Tokens       int64           `json:"tokens"`
	Skipped      int             `json:"skipped_traces"`
	WallSeconds  float64         `json:"wall_seconds"`
	TokensPerSec float64         `json:"tokens_per_sec"`
	ORTThreads   int             `json:"ort_threads"`
	Eval         pretrain.Eval   `json:"eval"`
	Finished     time.Time       `json:"finished"`
}

func newPretrainCmd() *cobra.Command {
	var (
		outDir   string
		progress bool
		force    bool
	)
	cmd := &cobra.Command{
		Use:   "pretrain --out DIR [--config FILE]",
		Short: "Train the base policy on arith traces (supervised), with test-split evaluation",
		Long: `Train a policy from scratch with next-token cross-entropy on arith traces:
one operation per line, an "A:" answer line, and (in the configured shares)
traces that keep going after the answer is known and traces with a slip. The
result overthinks and is sometimes wrong: the starting point WS-GRPO improves.

pretrain.init continues from a checkpoint directory (fresh AdamW, this
schedule) instead of random weights. The checkpoint in DIR is rewritten at
every evaluation, so a stopped run keeps its last evaluated weights.

Settings are the pretrain: section of the configuration (YAML via --config;
testdata/configs/pretrain.yaml reproduces the shipped base policy). The run
evaluates greedily on the test split every pretrain.eval_every steps and at the
end, by operation count: accuracy, and mean completion length against the
minimal correct trace. DIR receives the checkpoint (config.json, safetensors,
tokenizer), which sampler, eval and train load, and pretrain.json with the
settings, wall time and final evaluation.`,
		Example: `  wsgrpo pretrain --config testdata/configs/pretrain.yaml --out runs/base --progress
  wsgrpo pretrain --out /tmp/tiny --progress   # the defaults`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			cfg, log, err := setup(cmd)
			if err != nil {
				return err
			}
			cfg = cfg.withAutoThreads()
			if outDir == "" {
				return fmt.Errorf("%w: give --out DIR for the checkpoint", ErrConfig)
			}
			if err := cfg.Pretrain.Validate(); err != nil {
				return fmt.Errorf("%w: %w", ErrConfig, err)
			}
			if _, err := os.Stat(filepath.Join(outDir, "config.json")); err == nil && !force {
				return fmt.Errorf("%w: %s already holds a checkpoint (give --force to overwrite)", ErrConfig, outDir)
			}
			rt, err := ort.Init(cfg.ortConfig(), log)
			if err != nil {
				return err
			}
			pc := cfg.Pretrain
			var bar *progressbar.ProgressBar
			if progress {
				bar = progressbar.NewOptions(pc.Steps, progressbar.OptionSetDescription("pretrain"),
					progressbar.OptionSetWriter(cmd.ErrOrStderr()), progressbar.OptionShowCount(),
					progressbar.OptionSetItsString("steps"), progressbar.OptionShowIts(), progressbar.OptionThrottle(250*time.Millisecond))
			}
			res, err := pretrain.Run(cmd.Context(), rt, pc, func(p pretrain.Progress) {
				if bar != nil {
					bar.Describe(fmt.Sprintf("pretrain loss %.3f lr %.1e %.0f tok/s", p.Loss, p.LR, p.TokensPerSec))
					_ = bar.Set(p.Step)
				}
				if p.Eval != nil {
					if bar != nil {
						_ = bar.Clear()
					}
					out(cmd, "step %d (%s): %s\n", p.Step, p.Elapsed.Round(time.Second), p.Eval)
					// Keep the latest evaluated weights: a run stopped
					// later loses only the steps since.
					if err := checkpoint.Save(outDir, p.Checkpoint); err != nil {
						log.Warn("could not save the checkpoint", "dir", outDir, "err", err)
					}
				}
			}, log)
			if bar != nil {
				_ = bar.Finish()
				fmt.Fprintln(cmd.ErrOrStderr())
			}
			if err != nil {
				return err
			}
			if err := checkpoint.Save(outDir, res.Checkpoint); err != nil {
				return fmt.Errorf("save checkpoint: %w", err)
			}
			rep := pretrainReport{Config: pc, Steps: res.Steps, Tokens: res.Tokens, Skipped: res.Skipped, WallSeconds: res.Elapsed.Seconds(),
				TokensPerSec: float64(res.Tokens) / res.Elapsed.Seconds(), ORTThreads: cfg.ORT.Threads, Eval: res.Eval, Finished: time.Now().UTC()}
			data, err := json.MarshalIndent(rep, "", "  ")
			if err != nil {
				return err
			}
			if err := os.WriteFile(filepath.Join(outDir, "pretrain.json"), append(data, '\n'), 0o644); err != nil {
				return err
			}
			out(cmd, "pretrained %d steps in %s (%.0f tokens/s, %d ORT threads, %d traces longer than max_seq skipped); checkpoint in %s\n",
				res.Steps, res.Elapsed.Round(time.Second), rep.TokensPerSec, cfg.ORT.Threads, res.Skipped, outDir)
			out(cmd, "test split, greedy: accuracy %.1f%%, completions %.2fx the minimal trace\n", 100*res.Eval.Accuracy, res.Eval.LengthRatio)
			for _, r := range res.Eval.ByOps {
				out(cmd, "  %d ops: accuracy %5.1f%%, %.1f tokens (minimal %.1f, %.2fx), truncated %.1f%% (n %d)\n",
					r.Ops, 100*r.Accuracy, r.MeanTokens, r.MinimalTokens, r.LengthRatio, 100*r.Truncated, r.N)
			}
			return nil
		},
	}
	addConfigFlags(cmd.Flags())
	f := cmd.Flags()
	f.StringVar(&outDir, "out", "", "directory for the checkpoint and pretrain.json")
	f.BoolVar(&progress, "progress", false, "show a progress bar")
	f.BoolVar(&force, "force", false, "overwrite a checkpoint in --out")
	return cmd
}
