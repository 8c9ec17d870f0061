package main

import (
	"context"
	"fmt"
	"log/slog"
	"time"

	"github.com/wsgrpo/wsgrpo/pipeline"
	"github.com/wsgrpo/wsgrpo/prompts"
	"github.com/wsgrpo/wsgrpo/schemas"
	"github.com/wsgrpo/wsgrpo/tasks"
)

// runPolicy is what a sampleRun samples with: a wsgrpo checkpoint blob,
// or a Hugging Face model loaded in this process.
type runPolicy struct {
	// blob is a checkpoint blob (checkpoint.Marshal), published as
	// version 1 to the run's weight store, from which the sampler stage
	// loads it as in a training run.
	blob []byte
	// hf, when set instead, is sampled by a sampler stage that holds it
	// (nothing is published).
	hf *hfModel
}

// sampleRun runs a run without a labeler or learner in this process: the
// policy blob as version 1, prompts from src (pc), the sampler and verifier
// stages, and (logged) the logger; it returns the verified rows once every
// prompt's samples were judged and, when logged, are in the trajectory log.
// eval and train's labeler warm-up use it. cfg.Sampler says how to sample.
// fresh deletes what an earlier run of the same id left in NATS (its
// streams, consumers, weights and state) first, so the run starts over; its
// rows in the trajectory log are replaced, row by row, by the new ones.
func sampleRun(ctx context.Context, cfg Config, log *slog.Logger, blob []byte, src tasks.Source, pc prompts.Config, logged, fresh bool, timeout time.Duration) ([]schemas.Verified, error) {
	return sampleRunPolicy(ctx, cfg, log, runPolicy{blob: blob}, src, pc, logged, fresh, timeout)
}

// sampleRunPolicy is sampleRun with the policy pol.
func sampleRunPolicy(ctx context.Context, cfg Config, log *slog.Logger, pol runPolicy, src tasks.Source, pc prompts.Config, logged, fresh bool, timeout time.Duration) (_ []schemas.Verified, err error) {
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	cfg.NoLabeler = true
	topo, err := cfg.topology()
	if err != nil {
		return nil, err
	}
	topo.VerifiedConsumers = []string{evalSink}
	if logged {
		topo.VerifiedConsumers = append(topo.VerifiedConsumers, pipeline.StageLogger)
	}
	s, err := openSessionAt(ctx, cfg, topo, log, false, "", 0)
	if err != nil {
		return nil, err
	}
	defer s.close()
	if fresh {
		if err := s.topo.Delete(ctx, s.js); err != nil {
			return nil, fmt.Errorf("start run %s afresh: %w", cfg.Run, err)
		}
		if err := s.topo.Ensure(ctx, s.js); err != nil {
			return nil, err
		}
	}
	if pol.hf == nil {
		ws, err := pipeline.OpenWeightStore(ctx, s.js, s.topo)
		if err != nil {
			return nil, err
		}
		if err := ws.Put(ctx, 1, pol.blob); err != nil {
			return nil, fmt.Errorf("publish the policy: %w", err)
		}
	}

	logs := newSharedLog(cfg, log)
	defer logs.close()
	g := pipeline.NewGroup(s.js, log)
	if pol.hf != nil {
		if err := addStage(ctx, g, s, pol.hf.samplerStage(), pipeline.StageSampler, cfg, log, logs); err != nil {
			return nil, err
		}
		err = addStages(ctx, g, s, []string{pipeline.StageVerifier}, cfg, log, logs)
	} else {
		err = addStages(ctx, g, s, []string{pipeline.StageSampler, pipeline.StageVerifier}, cfg, log, logs)
	}
	if err != nil {
		return nil, err
	}
	sink := &verifiedSink{rows: map[string]schemas.Verified{}}
	rc, err := s.topo.SinkRunnerConfig(evalSink)
	if err != nil {
		return nil, err
	}
	rc = cfg.runnerConfig(rc)
	rc.Logger, rc.Metrics, rc.StorageErr = log.With("stage", evalSink), s.metric, s.storageErr()
	rc.StoreDir = s.storeDir()
	if err := g.Add(rc, sink); err != nil {
		return nil, err
	}
	if logged {
		if err := addStages(ctx, g, s, []string{pipeline.StageLogger}, cfg, log, logs); err != nil {
			return nil, fmt.Errorf("%w (or run with --no-log)", err)
		}
	}
	run := startGroup(ctx, g)
	defer func() {
		if serr := run.Stop(); err == nil && serr != nil {
			err = serr
		}
	}()

	source, err := prompts.New(ctx, s.js, s.topo, src, pc, log)
	if err != nil {
		return nil, err
	}
	// The stages stopping, or a full store, ends the publishing too.
	pctx, stopPublish := boundTo(ctx, run, s)
	_, err = source.Run(pctx)
	stopPublish()
	if err != nil {
		if cause := boundCause(ctx, pctx, run); cause != nil {
			return nil, cause
		}
		return nil, fmt.Errorf("publish prompts: %w", s.whyFailed(err))
	}
	want := pc.PerStep * pc.Steps * cfg.groupSize()
	tick := time.NewTicker(100 * time.Millisecond)
	defer tick.Stop()
	wait := func(what string, count func() (int, error)) error {
		last, lastChange := -1, time.Now()
		for {
			got, err := count()
			if err != nil {
				return err
			}
			if got >= want {
				return nil
			}
			if got != last {
				last, lastChange = got, time.Now()
			}
			if time.Since(lastChange) > timeout {
				return fmt.Errorf("%w: %d of %d completions %s; none for %s", ErrIncomplete, got, want, what, timeout)
			}
			select {
			case <-ctx.Done():
				return fmt.Errorf("%w: interrupted with %d of %d completions %s", ErrIncomplete, got, want, what)
			case <-run.Done():
				return run.Stopped()
			case <-tick.C:
			}
		}
	}
	if err := wait("judged", func() (int, error) { return sink.count(), nil }); err != nil {
		return nil, err
	}
	if logged {
		store, err := logs.get(ctx)
		if err != nil {
			return nil, err
		}
		if err := wait("logged", func() (int, error) {
			n, err := store.Count(ctx, cfg.Run)
			return int(n), err
		}); err != nil {
			return nil, err
		}
	}
	return sink.all(), nil
}
