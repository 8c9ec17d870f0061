package main

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"time"

	"github.com/spf13/cobra"

	"github.com/wsgrpo/wsgrpo/pipeline"
	"github.com/wsgrpo/wsgrpo/prompts"
	"github.com/wsgrpo/wsgrpo/tasks"
)

// newSourceCmd is `wsgrpo source`: a run's prompt source as its own
// process, for a run whose stages all run as separate processes.
func newSourceCmd() *cobra.Command {
	var wait bool
	var natsWait time.Duration
	cmd := &cobra.Command{
		Use:   "source --nats URL --config FILE [--wait]",
		Short: "Feed a run's training prompts to its stage processes",
		Long: `Publish a run's training prompts (the train: section: train.model's task,
train.data or train.arith, train.steps steps of train.prompts_per_step prompts,
train.seed) on the run's prompt stream of an external NATS server, for a run
whose stages all run as their own processes (wsgrpo stage ...). It runs at
most train.ahead steps ahead of the learner's last finished step, so start it
with the stages in any order; the learner publishes the starting policy.

A restarted source resumes after the last step it published, without
duplicates. It exits when every step is published; with --wait it stays until
the learner has finished train.steps steps, then exits, so a deployment can
wait on it. In one process, wsgrpo train does all of this (and evaluates).

Started before its NATS server, or during an outage, it waits for it
(--nats-wait, logging the URL it waits for); once running, it rides out
server restarts, publishing a step again when its acknowledgement was lost
(message ids make that store the step once).`,
		Example: `  wsgrpo source --nats nats://nats:4222 --config run.yaml --wait
  wsgrpo stage learner --nats nats://nats:4222 --config run.yaml`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			cfg, log, err := setup(cmd)
			if err != nil {
				return err
			}
			if cfg.NATS == "" {
				return fmt.Errorf("%w: source feeds stage processes through a NATS server they share: give --nats URL (in one process, use wsgrpo train)", ErrConfig)
			}
			ctx := cmd.Context()
			src, err := trainTask(cfg)
			if err != nil {
				return err
			}
			deadline := time.Now().Add(natsWait)
			s, err := openStageSessionWait(ctx, cfg, log, pipeline.PrincipalSource, natsWait)
			if err != nil {
				return err
			}
			defer s.close()
			var source *prompts.Source
			if err := pipeline.WaitTransient(ctx, deadline, log, "open the run state", func(err error) bool { return waitable(s.nc, err) }, func(ctx context.Context) (err error) {
				source, err = prompts.New(ctx, s.js, s.topo, src, prompts.Config{
					PerStep: cfg.Train.PromptsPerStep, Steps: cfg.Train.Steps, Ahead: cfg.Train.Ahead,
					Split: tasks.Train, Seed: cfg.Train.Seed, MaxRows: cfg.Train.PromptBatch,
				}, log)
				return err
			}); err != nil {
				return err
			}
			out(cmd, "run %s: feeding %d steps x %d prompts (at most %d ahead of the learner)\n", cfg.Run, cfg.Train.Steps, cfg.Train.PromptsPerStep, cfg.Train.Ahead)
			stats, err := source.Run(ctx)
			if err != nil {
				return fmt.Errorf("prompt source: %w", s.whyFailed(err))
			}
			out(cmd, "published steps %d-%d of run %s\n", stats.First, stats.Last, cfg.Run)
			if !wait {
				return nil
			}
			return waitLearner(ctx, cmd, s, int64(cfg.Train.Steps))
		},
	}
	addConfigFlags(cmd.Flags())
	addLayoutFlags(cmd.Flags())
	addModelFlags(cmd.Flags())
	cmd.Flags().BoolVar(&wait, "wait", false, "after publishing, wait until the learner has finished train.steps steps")
	addNATSWaitFlag(cmd.Flags(), &natsWait)
	return cmd
}

// waitLearner returns once the run state's learner step reaches want, or
// with ctx's error.
func waitLearner(ctx context.Context, cmd *cobra.Command, s *session, want int64) error {
	st, err := pipeline.OpenRunState(ctx, s.js, s.topo)
	if err != nil {
		return err
	}
	wctx, cancel := context.WithCancel(ctx)
	defer cancel()
	ch, err := st.Watch(wctx, prompts.KeyLearnerStep)
	if err != nil {
		return err
	}
	last, reported := int64(0), time.Now()
	for {
		select {
		case <-ctx.Done():
			return fmt.Errorf("%w: the learner finished %d of %d steps", ErrIncomplete, last, want)
		case v, ok := <-ch:
			if !ok {
				if err := ctx.Err(); err != nil {
					return err
				}
				return errors.New("run state watch closed")
			}
			n, err := strconv.ParseInt(string(v), 10, 64)
			if err != nil {
				continue // not a step yet (an empty initial value)
			}
			last = n
			if last >= want {
				out(cmd, "the learner finished step %d of %d\n", last, want)
				return nil
			}
			if time.Since(reported) > 30*time.Second {
				out(cmd, "the learner is at step %d of %d\n", last, want)
				reported = time.Now()
			}
		}
	}
}
