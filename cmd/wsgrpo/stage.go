package main

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"strings"

	"github.com/spf13/cobra"

	"github.com/wsgrpo/wsgrpo/pipeline"
	"github.com/wsgrpo/wsgrpo/stages/passthrough"
	"github.com/wsgrpo/wsgrpo/stages/stage"
)

// ErrStageUnavailable is returned for a stage this build cannot run.
var ErrStageUnavailable = errors.New("stage not available in this build")

// stageFactory builds the processor of one stage for a run.
type stageFactory func(ctx context.Context, cfg Config, log *slog.Logger) (stage.Processor, func(), error)

// stageFactories lists the stages this build can run as processes. The
// WS-GRPO stages join this table as they land.
var stageFactories = map[string]stageFactory{}

// wiringPositions are the hops a pass-through processor can stand in for.
var wiringPositions = []string{pipeline.StageSampler, pipeline.StageVerifier, pipeline.StageLabeler}

func newStageCmd() *cobra.Command {
	var as string
	cmd := &cobra.Command{
		Use:   "stage <name>",
		Short: "Run one stage as its own process (start more copies to share the work)",
		Long: `Run one stage of a run as its own process. Every copy joins the stage's
durable JetStream consumer, so starting more copies scales the stage out.

Stages in this build:
  passthrough --as sampler|verifier|labeler   wiring aid: moves batches to the next
                                              hand-off without doing the stage's work
  logger                                      writes trajectories to the trajectory log
                                              (when the trajectory log is built in)

The logger reads the labeled stream. In a run without a labeler (an eval run:
sampler -> verifier -> logger) it reads the verified stream instead, through its
own durable consumer, and logs rows with labeled = 0: give --no-labeler (or
no_labeler: true in the run's run.yaml) to every process of such a run.`,
		Example: `  wsgrpo stage logger --nats nats://127.0.0.1:4222 --run grpo-1
  wsgrpo stage logger --nats nats://127.0.0.1:4222 --run eval-3 --no-labeler`,
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			cfg, log, err := setup(cmd)
			if err != nil {
				return err
			}
			return runStage(cmd.Context(), cfg, log, args[0], as)
		},
	}
	addConfigFlags(cmd.Flags())
	addLayoutFlags(cmd.Flags())
	cmd.Flags().StringVar(&as, "as", "", "for passthrough: the hop it stands in for (sampler, verifier or labeler)")
	return cmd
}

// runStage runs one stage until ctx ends.
func runStage(ctx context.Context, cfg Config, log *slog.Logger, name, as string) error {
	var (
		proc     stage.Processor
		position = name
		cleanup  = func() {}
	)
	switch {
	case name == "passthrough":
		if !slices.Contains(wiringPositions, as) {
			return fmt.Errorf("%w: passthrough needs --as %s", ErrConfig, strings.Join(wiringPositions, "|"))
		}
		position = as
	case stageFactories[name] != nil:
	default:
		known := []string{"passthrough"}
		for n := range stageFactories {
			known = append(known, n)
		}
		slices.Sort(known)
		return fmt.Errorf("%w: %q (this build runs: %s)", ErrStageUnavailable, name, strings.Join(known, ", "))
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
	s, err := openSession(ctx, cfg, log, false)
	if err != nil {
		return err
	}
	defer s.close()
	rc, err := s.topo.RunnerConfig(position)
	if err != nil {
		return err
	}
	if name == "passthrough" {
		proc, err = passthroughFor(rc)
	} else {
		proc, cleanup, err = stageFactories[name](ctx, cfg, log)
	}
	if err != nil {
		return err
	}
	defer cleanup()
	rc = cfg.runnerConfig(rc)
	rc.Logger = log.With("stage", position)
	rc.Metrics = s.metric
	r, err := pipeline.NewRunner(s.js, rc, proc)
	if err != nil {
		return err
	}
	log.Info("stage running", "stage", name, "position", position, "run", cfg.Run, "input", rc.Stream, "no_labeler", cfg.NoLabeler)
	if err := r.Run(ctx); err != nil && !errors.Is(err, context.Canceled) {
		return err
	}
	return nil
}

// passthroughFor returns the wiring processor for a hop's kinds.
func passthroughFor(rc pipeline.RunnerConfig) (stage.Processor, error) {
	if rc.OutputKind == "" {
		return nil, fmt.Errorf("%w: %s has no output hop", ErrConfig, rc.Stage)
	}
	return passthrough.New(rc.InputKind, rc.OutputKind, nil)
}
