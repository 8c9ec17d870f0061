package main

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/wsgrpo/wsgrpo/pipeline"
)

// ErrStageUnavailable is returned for a stage this build cannot run.
var ErrStageUnavailable = errors.New("stage not available in this build")

func newStageCmd() *cobra.Command {
	var as string
	var wait time.Duration
	cmd := &cobra.Command{
		Use:   "stage <name>",
		Short: "Run one stage as its own process (start more copies to share the work)",
		Long: `Run one stage of a run as its own process. Every copy joins the stage's
durable JetStream consumer, so starting more copies scales the stage out.
` + "`wsgrpo train`" + ` builds the same stages from the same table, all in one process.

Stages in this build:
` + stageUsage() + `
The logger reads the labeled stream. In a run without a labeler (an eval run:
sampler -> verifier -> logger) it reads the verified stream instead, through its
own durable consumer, and logs rows with labeled = 0: give --no-labeler (or
no_labeler: true in the run's run.yaml) to every process of such a run.

A stage started before its NATS server, or during an outage, waits for it
(--nats-wait, logging the URL it waits for) instead of exiting; once
running, it rides out server restarts on its own.`,
		Example: `  wsgrpo stage logger --nats nats://127.0.0.1:4222 --run grpo-1
  wsgrpo stage passthrough --as verifier --nats nats://127.0.0.1:4222 --run grpo-1
  wsgrpo stage logger --nats nats://127.0.0.1:4222 --run eval-3 --no-labeler`,
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			cfg, log, err := setup(cmd)
			if err != nil {
				return err
			}
			// A sampler process may run where train.model is not (it
			// samples the versions the learner publishes): the check is
			// made where it is, and otherwise the sampler dead-letters
			// batches it cannot put in a chat template (sampler.ErrChat).
			if cfg.Sampler.Chat && args[0] == pipeline.StageSampler {
				if _, err := os.Stat(cfg.Train.Model); err == nil {
					if err := checkChat(cfg.Train.Model, "sampler.chat"); err != nil {
						return err
					}
				}
			}
			return runStageWait(cmd.Context(), cfg, log, args[0], as, wait)
		},
	}
	addConfigFlags(cmd.Flags())
	addLayoutFlags(cmd.Flags())
	addModelFlags(cmd.Flags())
	addNATSWaitFlag(cmd.Flags(), &wait)
	cmd.Flags().StringVar(&as, "as", "", "for a stage that can stand at several positions (passthrough): the position (sampler, verifier or labeler)")
	return cmd
}

// stageUsage lists the stage table for the help text.
func stageUsage() string {
	var b strings.Builder
	for _, d := range stageTable {
		name := d.name
		if len(d.positions) > 1 {
			name += " --as " + strings.Join(d.positions, "|")
		}
		fmt.Fprintf(&b, "  %-45s %s\n", name, d.usage)
	}
	return b.String()
}

// runStage runs one stage of the stage table until ctx ends.
func runStage(ctx context.Context, cfg Config, log *slog.Logger, name, as string) error {
	return runStageWait(ctx, cfg, log, name, as, 0)
}

// runStageWait is runStage for a process that may start before its NATS
// server or during an outage: until wait has passed, it tries again to
// connect, to ensure the run's streams and to build the stage (the
// learner's lock, weights and run state, the sampler's policy) when the
// server does not answer, instead of exiting.
func runStageWait(ctx context.Context, cfg Config, log *slog.Logger, name, as string, wait time.Duration) error {
	deadline := time.Now().Add(wait)
	def, err := lookupStage(name)
	if err != nil {
		return err
	}
	position, err := def.position(as)
	if err != nil {
		return err
	}
	// A stage the run's layout lacks (the labeler of a run without one)
	// fails here, before anything is started.
	topo, err := cfg.topology()
	if err != nil {
		return err
	}
	if _, err := topo.Stage(position); err != nil {
		return fmt.Errorf("%w: stage %s: %w", ErrConfig, position, err)
	}
	if cfg.NATS == "" {
		return fmt.Errorf("%w: a stage process joins a shared NATS server: give --nats URL (an external server, or `wsgrpo train --listen HOST:PORT`)", ErrConfig)
	}
	// The learner writes its checkpoints into the run directory, the
	// logger the embedded trajectory log (and the learner its steps):
	// claimed before anything is opened.
	if position == pipeline.StageLearner || (position == pipeline.StageLogger && cfg.ClickHouseDSN == "") {
		release, err := claimRunDir(cfg)
		if err != nil {
			return err
		}
		defer release()
	}
	s, err := openStageSessionWait(ctx, cfg, log, position, wait)
	if err != nil {
		return err
	}
	defer s.close()
	logs := newSharedLog(cfg, log)
	defer logs.close()
	g := pipeline.NewGroup(s.js, log)
	// A build that fails adds nothing to g: try it again while the server
	// does not answer.
	attempts := 0
	build := func(ctx context.Context) error {
		err := addStage(ctx, g, s, def, position, cfg, log, logs)
		if attempts++; attempts == 1 && err != nil && wait > 0 && waitable(s.nc, err) {
			log.Warn("the stage could not start: the NATS server did not answer; trying again until it does (--nats-wait)",
				"stage", position, "url", cfg.NATS, "wait", wait, "err", err)
		}
		return err
	}
	if err := pipeline.WaitTransient(ctx, deadline, log, "start stage "+position, func(err error) bool { return waitable(s.nc, err) }, build); err != nil {
		return err
	}
	log.Info("stage running", "stage", name, "position", position, "run", cfg.Run, "no_labeler", cfg.NoLabeler)
	return pipeline.WithRefusal(s.nc, g.Run(ctx))
}
