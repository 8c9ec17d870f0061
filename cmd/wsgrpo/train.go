package main

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/apache/arrow-go/v18/arrow"
	"github.com/schollz/progressbar/v3"
	"github.com/spf13/cobra"

	"github.com/wsgrpo/wsgrpo/pipeline"
	"github.com/wsgrpo/wsgrpo/schemas"
	"github.com/wsgrpo/wsgrpo/stages/stage"
	"github.com/wsgrpo/wsgrpo/tracelog"
)

// ErrIncomplete is returned when a run ends before every row arrived.
var ErrIncomplete = errors.New("run incomplete")

// wiringSink is the durable consumer of the wiring run's end of the line
// in a run without a labeler (with one, the sink stands in for the learner).
const wiringSink = "wiring"

// wiringOptions configures `train --wiring`.
type wiringOptions struct {
	Batches  int
	Rows     int
	Timeout  time.Duration
	Progress bool
	NoLog    bool
	Listen   string
}

func newTrainCmd() *cobra.Command {
	var (
		wiring bool
		opts   wiringOptions
		to     trainOptions
		steps  int
	)
	cmd := &cobra.Command{
		Use:   "train",
		Short: "Train a policy: every stage of a run in one process",
		Long: `Train a policy with WS-GRPO (or a GRPO-family baseline: shaping.shaper) with
every stage of the run in one process over an embedded NATS server (or --nats
URL): the prompt source, sampler, verifier, labeler, learner and logger.

A run evaluates the starting policy (train.model) greedily on
train.eval_prompts arith test prompts, fits the WS-GRPO preference model on a
warm-up of train.warmup_steps sampled steps (unless labeler.artifact names
one), trains train.steps updates of train.prompts_per_step prompts x
sampler.samples completions, saves the last version to <run dir>/policy,
evaluates it the same way and prints a summary. Every rollout, the warm-up's
and the evaluations' included, goes to the trajectory log; every update to
its steps table.

--wiring runs the pipeline backbone end to end with pass-through processors in
the sampler, verifier and labeler positions: it publishes prompt batches, moves
them through every hand-off, checks that every row arrives exactly once, and
prints a summary. It exercises the real streams, runners, acks and dead-letter
handling; it does not sample, verify, label or learn.

--no-labeler (config key no_labeler) makes a run without a labeler, such as an
eval run: sampler -> verifier, and the verified stream is the end of the line,
read by the logger and the wiring check, each through its own durable consumer.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			cfg, log, err := setup(cmd)
			if err != nil {
				return err
			}
			cfg = cfg.withAutoThreads()
			if !wiring {
				if cfg.NoLabeler {
					return fmt.Errorf("%w: a training run needs its labeler (no_labeler is for eval and wiring runs)", ErrConfig)
				}
				if cmd.Flags().Changed("steps") {
					cfg.Train.Steps = steps
					if err := cfg.Train.Validate(); err != nil {
						return err
					}
				}
				if opts.Timeout <= 0 {
					return fmt.Errorf("%w: --timeout %s must be positive", ErrConfig, opts.Timeout)
				}
				to.Progress, to.Timeout, to.Listen = opts.Progress, opts.Timeout, opts.Listen
				return runTrain(cmd, cfg, log, to)
			}
			// Sizes are checked before anything is built: a batch must be
			// one NATS message, the run must fit in memory (wiringsize.go).
			if err := checkWiringFlags(opts); err != nil {
				return err
			}
			if cfg.NATS == "" {
				if err := checkWiringPayload(opts, cfg.Run, pipeline.DefaultMaxPayload); err != nil {
					return err
				}
			}
			if err := checkWiringMemory(opts, availableMemory()); err != nil {
				return err
			}
			return runWiring(cmd, cfg, log, opts)
		},
	}
	addConfigFlags(cmd.Flags())
	addLayoutFlags(cmd.Flags())
	addModelFlags(cmd.Flags())
	f := cmd.Flags()
	f.BoolVar(&wiring, "wiring", false, "run the pipeline wiring check with pass-through stages")
	f.IntVar(&steps, "steps", 0, "learner updates (overrides train.steps)")
	f.BoolVar(&to.Resume, "resume", false, "continue the stopped run in its run directory (from the learner's checkpoint)")
	f.BoolVar(&to.Force, "force", false, "start over: remove the run directory of an earlier run with this id")
	f.StringVar(&to.Out, "out", "", "directory for the trained policy (default <run dir>/policy)")
	f.IntVar(&opts.Batches, "batches", 200, "prompt batches to publish (--wiring; the run must fit in memory: about 1 KiB a row)")
	f.IntVar(&opts.Rows, "rows", 64, "rows per prompt batch (--wiring; a batch must fit in one NATS message: at most about 120,000 rows)")
	f.DurationVar(&opts.Timeout, "timeout", 5*time.Minute, "give up when rows stop arriving for this long")
	f.BoolVar(&opts.Progress, "progress", false, "show a progress bar")
	f.BoolVar(&opts.NoLog, "no-log", false, "do not run the logger stage (no trajectory log)")
	f.StringVar(&opts.Listen, "listen", "", "let other processes reach the embedded NATS server on HOST:PORT (e.g. 127.0.0.1:4222) so `wsgrpo stage --nats` can join")
	return cmd
}

// idSink is the wiring run's end of the line: it records every row id it
// receives so the summary can prove exactly-once delivery after dedup.
type idSink struct {
	mu    sync.Mutex
	seen  map[string]int
	rows  int
	onRow func(int)
}

// Process records the ids of in.
func (s *idSink) Process(_ context.Context, in arrow.RecordBatch) ([]arrow.RecordBatch, error) {
	ids, err := schemas.RowIDs(in)
	if err != nil {
		return nil, fmt.Errorf("%w: %w", stage.ErrPermanent, err)
	}
	s.mu.Lock()
	newRows := 0
	for _, id := range ids {
		if s.seen[id] == 0 {
			newRows++
		}
		s.seen[id]++
	}
	s.rows += len(ids)
	s.mu.Unlock()
	if s.onRow != nil {
		s.onRow(newRows)
	}
	return nil, nil
}

func (s *idSink) counts() (unique, total int) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return len(s.seen), s.rows
}

func runWiring(cmd *cobra.Command, cfg Config, log *slog.Logger, o wiringOptions) (err error) {
	ctx, cancel := context.WithCancel(cmd.Context())
	defer cancel()
	host, port, err := splitListen(o.Listen)
	if err != nil {
		return err
	}
	topo, err := cfg.topology()
	if err != nil {
		return err
	}
	// The embedded server and log live in the run directory: claimed
	// before either opens, for the whole run.
	if cfg.NATS == "" || (!o.NoLog && cfg.ClickHouseDSN == "") {
		release, err := claimRunDir(cfg)
		if err != nil {
			return err
		}
		defer release()
	}
	// The end of the line: the learner's position, or in a run without a
	// labeler the verified stream, which the sink and the logger each read
	// through a consumer Ensure makes up front (as on the labeled stream,
	// the logger's is made even with --no-log, for a `wsgrpo stage logger`
	// joining through --listen).
	positions, sinkName := wiringPositions, pipeline.StageLearner
	if cfg.NoLabeler {
		positions = slices.DeleteFunc(slices.Clone(wiringPositions), func(p string) bool { return p == pipeline.StageLabeler })
		sinkName = wiringSink
		topo.VerifiedConsumers = []string{wiringSink, pipeline.StageLogger}
	}
	s, err := openSessionAt(ctx, cfg, topo, log, o.Listen != "", host, port)
	if err != nil {
		return err
	}
	defer s.close()
	if s.srv != nil && o.Listen != "" {
		out(cmd, "embedded NATS server: %s (join with: wsgrpo stage <name> --nats %s --run %s)\n", s.srv.URL(), s.srv.URL(), cfg.Run)
	}
	if s.srv == nil {
		// An external server's max_payload is known now.
		if err := checkWiringPayload(o, cfg.Run, s.nc.MaxPayload()); err != nil {
			return err
		}
	}

	want := o.Batches * o.Rows
	var bar *progressbar.ProgressBar
	if o.Progress {
		bar = progressbar.NewOptions(want, progressbar.OptionSetDescription("rows through the pipeline"),
			progressbar.OptionSetWriter(cmd.ErrOrStderr()), progressbar.OptionShowCount(), progressbar.OptionShowIts(),
			progressbar.OptionSetItsString("rows"), progressbar.OptionThrottle(100*time.Millisecond))
	}
	sink := &idSink{seen: map[string]int{}, onRow: func(n int) {
		if bar != nil {
			_ = bar.Add(n)
		}
	}}

	// The stages come from the stage table, as `wsgrpo stage` builds
	// them, added upstream first: pass-through processors at the wiring
	// positions, the wiring check's sink at the end of the line, and the
	// logger, a real stage: every labeled row (verified row, without a
	// labeler) goes to the trajectory log.
	logs := newSharedLog(cfg, log)
	defer logs.close()
	var store tracelog.Store
	if !o.NoLog {
		if store, err = logs.get(ctx); err != nil {
			return fmt.Errorf("%w (or run with --no-log)", err)
		}
	}
	g := pipeline.NewGroup(s.js, log)
	wiring, err := lookupStage("passthrough")
	if err != nil {
		return err
	}
	for _, pos := range positions {
		if err := addStage(ctx, g, s, wiring, pos, cfg, log, logs); err != nil {
			return err
		}
	}
	rc, err := s.topo.SinkRunnerConfig(sinkName)
	if err != nil {
		return err
	}
	rc = cfg.runnerConfig(rc)
	rc.Logger = log.With("stage", sinkName)
	rc.Metrics, rc.StorageErr = s.metric, s.storageErr()
	rc.StoreDir = s.storeDir()
	if err := g.Add(rc, sink); err != nil {
		return err
	}
	if !o.NoLog {
		if err := addStages(ctx, g, s, []string{pipeline.StageLogger}, cfg, log, logs); err != nil {
			return err
		}
	}
	run := startGroup(ctx, g)
	defer func() {
		// Stop the stages and report what stopping them said.
		if serr := run.Stop(); err == nil && serr != nil {
			err = serr
		}
	}()

	start := time.Now()
	prompts, err := s.topo.Hop(schemas.KindPrompt)
	if err != nil {
		return err
	}
	// Publishing ends when the stages stop or the store is full
	// (boundTo), and a batch gives up after --timeout without a PubAck.
	pctx, stopPublish := boundTo(ctx, run, s)
	defer stopPublish()
	for b := range o.Batches {
		rec := wiringPrompts(cfg.Run, b, o.Rows)
		bctx, cancel := context.WithTimeout(pctx, o.Timeout)
		_, err := pipeline.PublishBatch(bctx, s.js, prompts.Subject, rec, fmt.Sprintf("%s-wiring-%d", cfg.Run, b), 0)
		cancel()
		rec.Release()
		if err != nil {
			if cause := boundCause(ctx, pctx, run); cause != nil {
				return cause
			}
			return fmt.Errorf("publish prompt batch %d: %w", b, s.whyFailed(err))
		}
	}
	published := time.Since(start)

	// Wait until every row has arrived, rows stop arriving, or a runner fails.
	last, lastChange := 0, time.Now()
	tick := time.NewTicker(50 * time.Millisecond)
	defer tick.Stop()
	for {
		unique, _ := sink.counts()
		if unique >= want {
			break
		}
		if unique != last {
			last, lastChange = unique, time.Now()
		}
		if time.Since(lastChange) > o.Timeout {
			return fmt.Errorf("%w: %d of %d rows arrived; no progress for %s", ErrIncomplete, unique, want, o.Timeout)
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("%w: interrupted with %d of %d rows", ErrIncomplete, unique, want)
		case <-run.Done():
			return run.Stopped()
		case <-tick.C:
		}
	}
	elapsed := time.Since(start)
	if bar != nil {
		_ = bar.Finish()
		fmt.Fprintln(cmd.ErrOrStderr())
	}
	dead, err := pipeline.ReadDeadLetters(ctx, s.js, s.topo, 0)
	if err != nil {
		return err
	}
	logged := int64(-1)
	if store != nil {
		// The logger acks after its insert; wait for the last batches.
		deadline := time.Now().Add(o.Timeout)
		for {
			if logged, err = store.Count(ctx, cfg.Run); err != nil {
				return fmt.Errorf("count logged trajectories: %w", logError(cfg, err))
			}
			if logged >= int64(want) || time.Now().After(deadline) {
				break
			}
			select {
			case <-ctx.Done():
				return ctx.Err()
			case <-run.Done():
				return run.Stopped()
			case <-tick.C:
			}
		}
	}
	unique, total := sink.counts()
	path := strings.Join(append(slices.Clone(positions), pipeline.StageLearner), " -> ")
	if cfg.NoLabeler {
		path = strings.Join(positions, " -> ") + " -> end of line (no labeler)"
	}
	out(cmd, "wiring run %q: %d prompt batches x %d rows through %s positions (pass-through)\n", cfg.Run, o.Batches, o.Rows, path)
	out(cmd, "  rows arrived:        %d unique of %d expected (%d deliveries, %d duplicates removed by id)\n", unique, want, total, total-unique)
	out(cmd, "  dead letters:        %d\n", len(dead))
	if store != nil {
		out(cmd, "  trajectory log:      %d rows (%s backend; try: wsgrpo sql --run %s \"SELECT count() FROM trajectories_dedup\")\n",
			logged, cfg.logConfig(nil).BackendName(), cfg.RunDir())
	}
	out(cmd, "  publish time:        %s\n", published.Round(time.Millisecond))
	out(cmd, "  end-to-end time:     %s (%.0f rows/s through %d hops)\n", elapsed.Round(time.Millisecond),
		float64(want)/elapsed.Seconds(), len(s.topo.Hops()))
	out(cmd, "  run directory:       %s\n", cfg.RunDir())
	if store != nil && logged != int64(want) {
		return fmt.Errorf("%w: trajectory log holds %d of %d rows", ErrIncomplete, logged, want)
	}
	if unique != want {
		return fmt.Errorf("%w: %d of %d rows", ErrIncomplete, unique, want)
	}
	return nil
}

// splitListen parses --listen HOST:PORT ("" means not listening).
func splitListen(addr string) (string, int, error) {
	if addr == "" {
		return "", 0, nil
	}
	host, p, err := net.SplitHostPort(addr)
	if err != nil {
		return "", 0, fmt.Errorf("%w: --listen %q: %w", ErrConfig, addr, err)
	}
	port, err := strconv.Atoi(p)
	if err != nil || port < 0 || port > 65535 {
		return "", 0, fmt.Errorf("%w: --listen %q: port must be 0..65535", ErrConfig, addr)
	}
	return host, port, nil
}

// wiringPrompts builds one batch of synthetic addition prompts.
func wiringPrompts(run string, batch, rows int) arrow.RecordBatch {
	ps := make([]schemas.Prompt, rows)
	now := time.Now().UnixMilli()
	for i := range ps {
		a, b := (batch*rows+i)%97, (batch+3*i)%89
		ps[i] = schemas.Prompt{
			RunID: run, Step: int64(batch), PromptID: fmt.Sprintf("w%d-%d", batch, i), Task: "add",
			Prompt: fmt.Sprintf("%d+%d=", a, b), ReferenceAnswer: fmt.Sprint(a + b), CreatedMs: now,
		}
	}
	return schemas.NewPromptBatch(nil, ps)
}
