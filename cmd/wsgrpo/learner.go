package main

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"strconv"
	"sync"
	"time"

	"github.com/apache/arrow-go/v18/arrow"

	"github.com/wsgrpo/wsgrpo/model/checkpoint"
	"github.com/wsgrpo/wsgrpo/model/hf"
	"github.com/wsgrpo/wsgrpo/model/optim"
	"github.com/wsgrpo/wsgrpo/model/ort"
	"github.com/wsgrpo/wsgrpo/pipeline"
	"github.com/wsgrpo/wsgrpo/prompts"
	"github.com/wsgrpo/wsgrpo/stages/learner"
	"github.com/wsgrpo/wsgrpo/stages/stage"
	"github.com/wsgrpo/wsgrpo/tracelog"
)

// LearnerConfig is the learner: section (stages/learner.Options). Zero
// fields take the learner's defaults, except groups_per_step, which
// defaults to train.prompts_per_step.
type LearnerConfig struct {
	GroupsPerStep int     `koanf:"groups_per_step"`
	MicroBatch    int     `koanf:"micro_batch"`
	LR            float64 `koanf:"lr"`
	WeightDecay   float64 `koanf:"weight_decay"`
	ClipNorm      float64 `koanf:"clip_norm"`
	EpsLow        float64 `koanf:"eps_low"`
	EpsHigh       float64 `koanf:"eps_high"`
	Beta          float64 `koanf:"beta"`
	NoKL          bool    `koanf:"no_kl"`
	Aggregation   string  `koanf:"aggregation"` // seq-mean or token-sum
	PerStepCredit bool    `koanf:"per_step_credit"`
	// MaxStaleness is the staleness bound in versions (0: only rows of
	// the current version train). The default, 2, lets a row sampled
	// while a sampler was still loading the newest version train instead
	// of being dropped; with train.ahead 1 nearly every row is on-policy
	// anyway (the importance ratio corrects the rest).
	MaxStaleness    int64 `koanf:"max_staleness"`
	CheckpointEvery int   `koanf:"checkpoint_every"`
	KeepCheckpoints int   `koanf:"keep_checkpoints"`
	// LockTTL is how long the learner's run lock outlives its last refresh:
	// a crashed learner's successor waits at most this long (at least 1s).
	LockTTL time.Duration `koanf:"lock_ttl"`
}

// DefaultLearnerConfig returns the learner defaults used by `train`.
func DefaultLearnerConfig() LearnerConfig {
	return LearnerConfig{LR: 1e-4, ClipNorm: 1, Aggregation: learner.AggSeqMean, MaxStaleness: 2, CheckpointEvery: 10, LockTTL: defaultLearnerLockTTL}
}

// learnerOptions maps the configuration onto the stage's options.
func (c Config) learnerOptions(log *slog.Logger) learner.Options {
	l := c.Learner
	o := learner.Options{
		GroupsPerStep: l.GroupsPerStep, MicroBatch: l.MicroBatch,
		Optim:    optim.Config{LR: l.LR, WeightDecay: l.WeightDecay},
		ClipNorm: l.ClipNorm, EpsLow: l.EpsLow, EpsHigh: l.EpsHigh, Beta: l.Beta, NoKL: l.NoKL,
		Aggregation: l.Aggregation, PerStepCredit: l.PerStepCredit, MaxStaleness: l.MaxStaleness,
		InitVersion: 1, Dir: filepath.Join(c.RunDir(), "learner"),
		CheckpointEvery: l.CheckpointEvery, KeepCheckpoints: l.KeepCheckpoints, Logger: log,
	}
	if o.GroupsPerStep == 0 {
		o.GroupsPerStep = c.Train.PromptsPerStep
	}
	// Rows carry the prompt ids the sampler sampled with (a chat
	// template's too); the template is for rows without them.
	o.PromptTemplate = c.Sampler.PromptTemplate
	return o
}

// weightPublisher is the learner's Publisher over the run's weight store.
type weightPublisher struct{ ws *pipeline.WeightStore }

// Latest returns the announced version.
func (p weightPublisher) Latest(ctx context.Context) (int64, bool, error) {
	v, err := p.ws.Latest(ctx)
	if errors.Is(err, pipeline.ErrNotFound) {
		return 0, false, nil
	}
	return v, err == nil, err
}

// Publish stores and announces a version.
func (p weightPublisher) Publish(ctx context.Context, version int64, blob []byte) error {
	return p.ws.Put(ctx, version, blob)
}

// learnerSteps tells the run state the learner's step (the prompt source
// waits on it).
type learnerSteps struct{ st *pipeline.RunState }

// Advance records step.
func (s learnerSteps) Advance(ctx context.Context, step int64) error {
	_, err := s.st.Put(ctx, prompts.KeyLearnerStep, []byte(strconv.FormatInt(step, 10)))
	return err
}

// stepLog fans a learner's step metrics out to the trajectory log's steps
// table (written in the background: the sink must return quickly), and to
// an optional watcher (train's progress line).
type stepLog struct {
	run    string
	shaper string
	store  tracelog.Store
	log    *slog.Logger
	watch  func(learner.StepMetrics)
	// proc is the learner whose steps these are (train reads its step).
	proc *learner.Processor
	// prom receives every update as Prometheus metrics (nil: none).
	prom   *learnerMetrics
	rows   chan tracelog.StepRow
	done   chan struct{}
	mu     sync.Mutex
	last   learner.StepMetrics
	closed bool
}

func newStepLog(run, shaper string, store tracelog.Store, log *slog.Logger) *stepLog {
	s := &stepLog{run: run, shaper: shaper, store: store, log: log, rows: make(chan tracelog.StepRow, 1024), done: make(chan struct{})}
	go s.write()
	return s
}

// Step records one update.
func (s *stepLog) Step(m learner.StepMetrics) {
	s.mu.Lock()
	s.last = m
	watch, closed := s.watch, s.closed
	s.mu.Unlock()
	if watch != nil {
		watch(m)
	}
	if s.prom != nil {
		s.prom.observe(m)
	}
	s.log.Debug("learner update", "step", m.Step, "rows", m.Rows, "reference_ms", m.RefMs, "reference_from_labeler", m.RefFromLabeler)
	if closed || s.store == nil {
		return
	}
	row := tracelog.StepRow{
		RunID: s.run, Step: m.Step, PolicyVersion: m.Version, Shaper: s.shaper,
		Loss: m.Loss, KL: m.KL, ClipFrac: m.ClipFrac, Ratio: m.Ratio, GradNorm: m.GradNorm,
		MeanReward: m.MeanReward, Accuracy: m.Accuracy, MeanTokens: m.MeanTokens, MeanSteps: m.MeanSteps,
		Staleness: m.MeanStaleness, Rows: uint32(m.Rows), Skipped: m.Skipped,
		WaitMs: m.WaitMs, ForwardBackwardMs: m.ForwardBackwardMs, OptimizerMs: m.OptimizerMs, PublishMs: m.PublishMs,
		Created: time.Now(),
	}
	select {
	case s.rows <- row:
	default:
		s.log.Warn("step log full: a learner step row was not logged", "step", m.Step)
	}
}

// setWatch installs the progress watcher.
func (s *stepLog) setWatch(f func(learner.StepMetrics)) {
	s.mu.Lock()
	s.watch = f
	s.mu.Unlock()
}

// write inserts step rows as they come.
func (s *stepLog) write() {
	defer close(s.done)
	for row := range s.rows {
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		if err := s.store.InsertSteps(ctx, []tracelog.StepRow{row}); err != nil {
			s.log.Warn("could not log a learner step", "step", row.Step, "err", err)
		}
		cancel()
	}
}

// close flushes the pending rows.
func (s *stepLog) close() {
	s.mu.Lock()
	if s.closed {
		s.mu.Unlock()
		return
	}
	s.closed = true
	s.mu.Unlock()
	close(s.rows)
	<-s.done
}

// learnerStage is the learner processor with what the command opened for
// it, closed after the stage's last batch.
type learnerStage struct {
	*learner.Processor
	steps *stepLog
	lock  *pipeline.Lock
}

// ErrLockLost is returned for batches that reach a learner whose run lock
// was taken over: they go back to the stream for the learner that holds it.
var ErrLockLost = errors.New("the learner's run lock was lost (another learner took over the run)")

// Process trains on in, unless the run lock was lost.
func (l *learnerStage) Process(ctx context.Context, in arrow.RecordBatch) ([]arrow.RecordBatch, error) {
	select {
	case <-l.lock.Lost():
		return nil, ErrLockLost
	default:
	}
	return l.Processor.Process(ctx, in)
}

// Close closes the learner (its final checkpoint), flushes the step log and
// releases the run lock.
func (l *learnerStage) Close(ctx context.Context) error {
	err := l.Processor.Close(ctx)
	l.steps.close()
	return errors.Join(err, l.lock.Release(ctx))
}

// defaultLearnerLockTTL is the default learner.lock_ttl.
const defaultLearnerLockTTL = 30 * time.Second

// newLearnerStage builds the learner: the starting policy (train.model) is
// its initial and reference policy; versions go to the run's weight store;
// its step to the run state; its step metrics to the trajectory log.
func newLearnerStage(ctx context.Context, env stageEnv) (stage.Processor, error) {
	host, _ := os.Hostname()
	holder := fmt.Sprintf("%s/%d/%d", host, os.Getpid(), time.Now().UnixNano())
	lock, err := pipeline.AcquireLock(ctx, env.sess.js, env.sess.topo, pipeline.StageLearner, holder, env.cfg.Learner.LockTTL, pipeline.LockLogger(env.log))
	if err != nil {
		return nil, err
	}
	p, err := buildLearner(ctx, env, lock)
	if err != nil {
		_ = lock.Release(context.WithoutCancel(ctx))
		return nil, err
	}
	return p, nil
}

// learnerFor reads train.model, a wsgrpo checkpoint or a Hugging Face
// model, and returns the constructor of a learner that trains it
// (learner.New or learner.NewHF).
func learnerFor(dir string) (func(context.Context, *ort.Runtime, learner.Publisher, learner.Options) (*learner.Processor, error), error) {
	layout, err := detectModelLayout(dir)
	if err != nil {
		return nil, fmt.Errorf("train.model: %w", err)
	}
	if layout == layoutHF {
		b, err := hf.LoadBundle(dir)
		if err != nil {
			return nil, fmt.Errorf("load train.model %s: %w", dir, err)
		}
		return func(ctx context.Context, rt *ort.Runtime, pub learner.Publisher, o learner.Options) (*learner.Processor, error) {
			return learner.NewHF(ctx, rt, b, pub, o)
		}, nil
	}
	init, err := checkpoint.Load(dir)
	if err != nil {
		return nil, fmt.Errorf("load train.model %s: %w", dir, err)
	}
	return func(ctx context.Context, rt *ort.Runtime, pub learner.Publisher, o learner.Options) (*learner.Processor, error) {
		return learner.New(ctx, rt, init, pub, o)
	}, nil
}

// buildLearner builds the learner of newLearnerStage once it holds the lock.
func buildLearner(ctx context.Context, env stageEnv, lock *pipeline.Lock) (stage.Processor, error) {
	rt, err := env.runtime()
	if err != nil {
		return nil, err
	}
	newLearner, err := learnerFor(env.cfg.Train.Model)
	if err != nil {
		return nil, err
	}
	ws, err := pipeline.OpenWeightStore(ctx, env.sess.js, env.sess.topo)
	if err != nil {
		return nil, fmt.Errorf("weight store: %w", err)
	}
	st, err := pipeline.OpenRunState(ctx, env.sess.js, env.sess.topo)
	if err != nil {
		return nil, fmt.Errorf("run state: %w", err)
	}
	store, err := env.logs.get(ctx)
	if err != nil {
		return nil, err
	}
	steps := newStepLog(env.cfg.Run, env.cfg.Shaping.Shaper, store, env.log)
	if steps.prom, err = newLearnerMetrics(env.sess.reg); err != nil {
		steps.close()
		return nil, err
	}
	o := env.cfg.learnerOptions(env.log)
	o.Steps, o.Sink = learnerSteps{st}, steps
	p, err := newLearner(ctx, rt, weightPublisher{ws}, o)
	if err != nil {
		steps.close()
		return nil, err
	}
	env.sess.learnerSteps, steps.proc = steps, p
	return &learnerStage{Processor: p, steps: steps, lock: lock}, nil
}
