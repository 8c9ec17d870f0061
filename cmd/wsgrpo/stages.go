package main

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/wsgrpo/wsgrpo/model/ort"
	"github.com/wsgrpo/wsgrpo/pipeline"
	"github.com/wsgrpo/wsgrpo/stages/passthrough"
	"github.com/wsgrpo/wsgrpo/stages/sampler"
	"github.com/wsgrpo/wsgrpo/stages/stage"
	"github.com/wsgrpo/wsgrpo/stages/verifier"
	"github.com/wsgrpo/wsgrpo/tracelog"
)

// stageDef is one entry of the stage table: a processor this build can run
// at one or more positions of a run's topology. `wsgrpo stage NAME` and
// `wsgrpo train` both build their stages from this table, so a stage is
// wired the same way whether it runs alone or beside the others.
type stageDef struct {
	// name is what `wsgrpo stage NAME` takes.
	name string
	// positions are the topology stages it can stand at; with more than
	// one, `wsgrpo stage NAME --as POSITION` picks.
	positions []string
	// usage is its line in `wsgrpo stage --help`.
	usage string
	// build returns the processor for env's position. A processor that
	// holds resources implements stage.Closer; the group closes it.
	build func(ctx context.Context, env stageEnv) (stage.Processor, error)
}

// stageEnv is what a stage factory may use.
type stageEnv struct {
	cfg Config
	log *slog.Logger
	// rc is the position's runner configuration with the run's settings
	// applied (cfg.runnerConfig); build may read it (not change it).
	rc pipeline.RunnerConfig
	// logs is the trajectory log, opened once per process on first use.
	logs *sharedLog
	// sess is the process's NATS session: the run's topology and
	// JetStream, for the transport dependencies a stage defines (weights).
	sess *session
}

// runtime returns the stage's ONNX Runtime: the process-wide environment
// (ort.Init is idempotent) with the stage's session settings (ort.threads,
// or ort.stage_threads.<stage>).
func (e stageEnv) runtime() (*ort.Runtime, error) {
	return ort.Init(e.cfg.stageORTConfig(e.rc.Stage), e.log)
}

// wiringPositions are the hops a pass-through processor can stand in for.
var wiringPositions = []string{pipeline.StageSampler, pipeline.StageVerifier, pipeline.StageLabeler}

// stageTable lists the stages this build runs. The WS-GRPO stages join it
// as they land.
var stageTable = []stageDef{
	{
		name: "passthrough", positions: wiringPositions,
		usage: "wiring aid: moves batches to the next hand-off without doing the stage's work",
		build: func(_ context.Context, env stageEnv) (stage.Processor, error) {
			if env.rc.OutputKind == "" {
				return nil, fmt.Errorf("%w: %s has no output hop", ErrConfig, env.rc.Stage)
			}
			return passthrough.New(env.rc.InputKind, env.rc.OutputKind, nil)
		},
	},
	{
		name: pipeline.StageSampler, positions: []string{pipeline.StageSampler},
		usage: "samples a group of completions per prompt with the newest policy version",
		build: newSamplerStage,
	},
	{
		name: pipeline.StageVerifier, positions: []string{pipeline.StageVerifier},
		usage: "judges each completion's final answer against the reference (arith, gsm8k, dataset)",
		build: func(context.Context, stageEnv) (stage.Processor, error) {
			return verifier.New(verifier.Options{})
		},
	},
	{
		name: pipeline.StageLabeler, positions: []string{pipeline.StageLabeler},
		usage: "scores complete groups: preference-model step rewards (ws-grpo) or a baseline shaper, and advantages",
		build: newLabelerStage,
	},
	{
		name: pipeline.StageLearner, positions: []string{pipeline.StageLearner},
		usage: "updates the policy from labeled groups and publishes each new version (one per run)",
		build: newLearnerStage,
	},
	{
		name: pipeline.StageLogger, positions: []string{pipeline.StageLogger},
		usage: "writes trajectories to the trajectory log",
		build: newLoggerStage,
	},
}

// lookupStage returns the table entry named name.
func lookupStage(name string) (stageDef, error) {
	for _, d := range stageTable {
		if d.name == name {
			return d, nil
		}
	}
	known := make([]string, len(stageTable))
	for i, d := range stageTable {
		known[i] = d.name
	}
	slices.Sort(known)
	return stageDef{}, fmt.Errorf("%w: %q (this build runs: %s)", ErrStageUnavailable, name, strings.Join(known, ", "))
}

// position resolves where d stands: its only position, or as (--as) when
// it can stand at several.
func (d stageDef) position(as string) (string, error) {
	if len(d.positions) == 1 && (as == "" || as == d.positions[0]) {
		return d.positions[0], nil
	}
	if !slices.Contains(d.positions, as) {
		return "", fmt.Errorf("%w: %s needs --as %s", ErrConfig, d.name, strings.Join(d.positions, "|"))
	}
	return as, nil
}

// addStage builds d at position for session s and adds it to g.
func addStage(ctx context.Context, g *pipeline.Group, s *session, d stageDef, position string, cfg Config, log *slog.Logger, logs *sharedLog) error {
	rc, err := s.topo.RunnerConfig(position)
	if err != nil {
		return fmt.Errorf("%w: stage %s: %w", ErrConfig, position, err)
	}
	rc = cfg.runnerConfig(rc)
	rc.Logger = log.With("stage", position)
	rc.Metrics, rc.StorageErr = s.metric, s.storageErr()
	rc.StoreDir = s.storeDir()
	proc, err := d.build(ctx, stageEnv{cfg: cfg, log: log.With("stage", position), rc: rc, logs: logs, sess: s})
	if err != nil {
		return fmt.Errorf("stage %s: %w", position, err)
	}
	return g.Add(rc, proc)
}

// sharedLog opens the run's trajectory log on first use and shares it
// between the stages of one process; close closes it after they stop.
type sharedLog struct {
	cfg   Config
	log   *slog.Logger
	once  sync.Once
	store tracelog.Store
	err   error
}

func newSharedLog(cfg Config, log *slog.Logger) *sharedLog { return &sharedLog{cfg: cfg, log: log} }

// get opens (creating and migrating if needed) the trajectory log once.
func (l *sharedLog) get(ctx context.Context) (tracelog.Store, error) {
	l.once.Do(func() { l.store, l.err = openLogForWrite(ctx, l.cfg, l.log) })
	return l.store, l.err
}

// close closes the store if it was opened.
func (l *sharedLog) close() {
	if l.store != nil {
		l.store.Close()
	}
}

// newSamplerStage builds the sampler: the run's weight store supplies the
// policy versions, loaded into this process's ONNX Runtime. It samples
// with a version at most one behind the newest (at most
// learner.max_staleness behind: with 0, always the newest), so that a
// sampler process that was idle while the learner published several
// versions does not sample rows the learner would drop as stale.
func newSamplerStage(ctx context.Context, env stageEnv) (stage.Processor, error) {
	rt, err := env.runtime()
	if err != nil {
		return nil, err
	}
	ws, err := pipeline.OpenWeightStore(ctx, env.sess.js, env.sess.topo)
	if err != nil {
		return nil, fmt.Errorf("weight store: %w", err)
	}
	loader := sampler.NewLoader(rt, ws, env.log)
	loader.SetMaxLag(min(sampler.DefaultMaxLag, env.cfg.Learner.MaxStaleness))
	return sampler.New(loader, env.cfg.samplerOptions(env.log), nil)
}

// addStages adds the named stages of the table, each at its own position.
func addStages(ctx context.Context, g *pipeline.Group, s *session, names []string, cfg Config, log *slog.Logger, logs *sharedLog) error {
	for _, name := range names {
		def, err := lookupStage(name)
		if err != nil {
			return err
		}
		if err := addStage(ctx, g, s, def, name, cfg, log, logs); err != nil {
			return err
		}
	}
	return nil
}

// groupRun is a stage group running in the background of a command that
// drives a run (train, eval).
type groupRun struct {
	cancel context.CancelFunc
	done   chan struct{}
	err    error
}

// startGroup runs g until ctx ends or Stop.
func startGroup(ctx context.Context, g *pipeline.Group) *groupRun {
	ctx, cancel := context.WithCancel(ctx)
	r := &groupRun{cancel: cancel, done: make(chan struct{})}
	go func() {
		r.err = g.Run(ctx)
		close(r.done)
	}()
	return r
}

// Done is closed when the group has stopped.
func (r *groupRun) Done() <-chan struct{} { return r.done }

// Stopped is the error of a run whose group stopped before the run was
// complete: the group's own error, or ErrIncomplete.
func (r *groupRun) Stopped() error {
	<-r.done
	if r.err != nil {
		return r.err
	}
	return fmt.Errorf("%w: the stages stopped", ErrIncomplete)
}

// boundTo returns a context for work beside the stages of run on session
// s (publishing prompts): it ends with ctx, when the group stops, or when
// s's embedded server reports its store out of space (asked every
// second: a full file store answers no more publishes, which would
// otherwise wait for ever), with what ended it as its cause (boundErr).
func boundTo(ctx context.Context, run *groupRun, s *session) (context.Context, context.CancelFunc) {
	c, cancel := context.WithCancelCause(ctx)
	go func() {
		t := time.NewTicker(time.Second)
		defer t.Stop()
		for {
			select {
			case <-run.done:
				cancel(run.Stopped())
				return
			case <-c.Done():
				return
			case <-t.C:
				if s.srv == nil {
					continue
				}
				if err := s.srv.StorageErr(); err != nil {
					cancel(err)
					return
				}
			}
		}
	}()
	return c, func() { cancel(nil) }
}

// boundCause is why bound (from boundTo on ctx) ended before ctx, or nil
// when it did not. The stages are stopped first: their error, which names
// the stage that failed first (and perhaps another full store), comes
// before a store out of space that the check found.
func boundCause(ctx, bound context.Context, run *groupRun) error {
	if ctx.Err() != nil || bound.Err() == nil {
		return nil
	}
	cause := context.Cause(bound)
	if errors.Is(cause, context.Canceled) {
		return nil
	}
	if serr := run.Stop(); serr != nil && !errors.Is(cause, serr) {
		return errors.Join(serr, cause)
	}
	return cause
}

// Stop stops the group and returns what stopping it said.
func (r *groupRun) Stop() error {
	r.cancel()
	<-r.done
	return r.err
}
