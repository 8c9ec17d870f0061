// Package prompts is a run's prompt source: it turns task items
// (tasks.Source: the built-in arith family or a dataset file) into prompt
// batches on the run's prompt stream, Config.PerStep prompts per training
// step, each of which the sampler samples G times. It never runs more than
// Config.Ahead steps ahead of the learner: it watches the learner's last
// finished step in the run state (KeyLearnerStep) and waits for it, so
// backpressure comes from the run's progress, not from sleeping.
//
// Publishing is idempotent: a batch's message id derives from the run,
// step and part, so a source restarted after a crash re-publishes the
// same steps without duplicates (within the stream's duplicate window).
// The source records its last published step (KeySourceStep) and a
// restarted source resumes after it.
package prompts

import (
	"context"
	"errors"
	"fmt"
	"iter"
	"log/slog"
	"strconv"
	"time"

	"github.com/apache/arrow-go/v18/arrow/memory"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/wsgrpo/wsgrpo/pipeline"
	"github.com/wsgrpo/wsgrpo/schemas"
	"github.com/wsgrpo/wsgrpo/tasks"
)

// Run-state keys.
const (
	// KeyLearnerStep holds the last training step the learner finished, as
	// a decimal integer; the source waits on it.
	KeyLearnerStep = pipeline.StateKeyLearnerStep
	// KeySourceStep holds the last step the source published.
	KeySourceStep = pipeline.StateKeySourceStep
)

// ErrConfig is returned for a source configuration that cannot work.
var ErrConfig = errors.New("prompts: invalid configuration")

// ErrExhausted is returned when the task source ran out of items before
// Config.Steps steps were published (a dataset file read once).
var ErrExhausted = errors.New("prompts: task source exhausted")

// DefaultMaxRows is the most prompts per published message.
const DefaultMaxRows = 64

// Config configures a prompt source.
type Config struct {
	// PerStep is the number of prompts per step (N).
	PerStep int
	// Steps is the number of steps to publish, counting from step 1.
	Steps int
	// Ahead is how many steps the source may run ahead of the learner's
	// last finished step; 0 means no limit (eval runs, which have no
	// learner).
	Ahead int
	// Split and Seed choose the task items (deterministic per seed).
	Split tasks.Split
	Seed  uint64
	// MaxRows bounds the prompts per message (default DefaultMaxRows).
	MaxRows int
}

// Validate reports the first problem with c.
func (c Config) Validate() error {
	switch {
	case c.PerStep < 1 || c.Steps < 1:
		return fmt.Errorf("%w: per_step %d and steps %d must be at least 1", ErrConfig, c.PerStep, c.Steps)
	case c.Ahead < 0 || c.MaxRows < 0:
		return fmt.Errorf("%w: negative ahead or max_rows", ErrConfig)
	case !c.Split.Valid():
		return fmt.Errorf("%w: split %q", ErrConfig, c.Split)
	}
	return nil
}

// Stats is what a source published.
type Stats struct {
	// First and Last are the steps published by this call (a resumed
	// source starts after the recorded step); Prompts counts them.
	First, Last int64
	Prompts     int
	// Waited is the time spent waiting for the learner.
	Waited time.Duration
}

// Source publishes one run's prompts.
type Source struct {
	js    jetstream.JetStream
	topo  pipeline.Topology
	state *pipeline.RunState
	src   tasks.Source
	cfg   Config
	log   *slog.Logger
}

// New returns a source for the run of topo (its streams and run state must
// exist: Topology.Ensure). A nil log discards.
func New(ctx context.Context, js jetstream.JetStream, topo pipeline.Topology, src tasks.Source, cfg Config, log *slog.Logger) (*Source, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	if cfg.MaxRows == 0 {
		cfg.MaxRows = DefaultMaxRows
	}
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	st, err := pipeline.OpenRunState(ctx, js, topo)
	if err != nil {
		return nil, err
	}
	return &Source{js: js, topo: topo, state: st, src: src, cfg: cfg, log: log}, nil
}

// Run publishes the remaining steps and returns once the last is stored,
// or when ctx ends (with its error).
func (s *Source) Run(ctx context.Context) (Stats, error) {
	hop, err := s.topo.Hop(schemas.KindPrompt)
	if err != nil {
		return Stats{}, err
	}
	var done int64
	if err := s.retry(ctx, "read "+KeySourceStep, func(ctx context.Context) (err error) {
		done, err = s.step(ctx, KeySourceStep)
		return err
	}); err != nil {
		return Stats{}, err
	}
	next, stop := iter.Pull(s.src.Items(s.cfg.Split, s.cfg.Seed))
	defer stop()
	// Skip the items of the steps already published.
	for range done * int64(s.cfg.PerStep) {
		if _, ok := next(); !ok {
			return Stats{}, fmt.Errorf("%w: resuming after step %d", ErrExhausted, done)
		}
	}
	stats := Stats{First: done + 1, Last: done}
	var learner <-chan []byte
	if s.cfg.Ahead > 0 {
		wctx, cancel := context.WithCancel(ctx)
		defer cancel()
		if learner, err = s.state.Watch(wctx, KeyLearnerStep); err != nil {
			return stats, err
		}
	}
	learned := int64(0)
	for step := done + 1; step <= int64(s.cfg.Steps); step++ {
		// Backpressure: step may go out once the learner finished
		// step - Ahead.
		if s.cfg.Ahead > 0 && step-int64(s.cfg.Ahead) > learned {
			t0 := time.Now()
			s.log.Debug("waiting for the learner", "step", step, "learner_step", learned, "ahead", s.cfg.Ahead)
			for step-int64(s.cfg.Ahead) > learned {
				select {
				case <-ctx.Done():
					return stats, ctx.Err()
				case v, ok := <-learner:
					if !ok {
						if err := ctx.Err(); err != nil {
							return stats, err
						}
						return stats, fmt.Errorf("the watch of the run state's %s ended while step %d waited for it", KeyLearnerStep, step)
					}
					if learned, err = parseStep(v); err != nil {
						return stats, fmt.Errorf("run state %s: %w", KeyLearnerStep, err)
					}
				}
			}
			stats.Waited += time.Since(t0)
		}
		rows := make([]schemas.Prompt, 0, s.cfg.PerStep)
		now := time.Now().UnixMilli()
		for range s.cfg.PerStep {
			it, ok := next()
			if !ok {
				return stats, fmt.Errorf("%w after %d of %d steps (%s has fewer items than steps x per_step)", ErrExhausted, step-1, s.cfg.Steps, s.src.Name())
			}
			rows = append(rows, schemas.Prompt{RunID: s.topo.Run, Step: step, PromptID: it.ID, Task: it.Task,
				Prompt: it.Prompt, ReferenceAnswer: it.ReferenceAnswer, CreatedMs: now})
		}
		for part := 0; part*s.cfg.MaxRows < len(rows); part++ {
			chunk := rows[part*s.cfg.MaxRows : min(len(rows), (part+1)*s.cfg.MaxRows)]
			rec := schemas.NewPromptBatch(memory.DefaultAllocator, chunk)
			id := fmt.Sprintf("prompts:%s:%d:%d", s.topo.Run, step, part)
			// Publishing again with the same id stores nothing new.
			err := s.retry(ctx, fmt.Sprintf("publish step %d", step), func(ctx context.Context) error {
				_, err := pipeline.PublishBatch(ctx, s.js, hop.Subject, rec, id, 0)
				return err
			})
			rec.Release()
			if err != nil {
				return stats, fmt.Errorf("publish step %d: %w", step, err)
			}
		}
		if err := s.retry(ctx, "record "+KeySourceStep, func(ctx context.Context) error {
			_, err := s.state.Put(ctx, KeySourceStep, []byte(strconv.FormatInt(step, 10)))
			return err
		}); err != nil {
			return stats, err
		}
		stats.Last, stats.Prompts = step, stats.Prompts+len(rows)
	}
	return stats, nil
}

// requestTimeout bounds each attempt of a request of the source (a
// publication's PubAcks, a run-state read or write). The JetStream client
// waits for a reply until its context's deadline: a reply lost in a NATS
// restart would hold the source for as long as ctx lives.
const requestTimeout = 10 * time.Second

// retryPause is the pause before a request that failed is tried again.
const retryPause = 500 * time.Millisecond

// retry runs call, each attempt bounded by requestTimeout, until it
// succeeds, fails in a way that trying again cannot fix, or ctx ends: a
// source outlives a NATS server that is down or restarting (its
// publications carry message ids, so publishing a step again stores it
// once).
func (s *Source) retry(ctx context.Context, what string, call func(context.Context) error) error {
	for attempt := 1; ; attempt++ {
		cctx, cancel := context.WithTimeout(ctx, requestTimeout)
		err := call(cctx)
		cancel()
		if err == nil || ctx.Err() != nil || !pipeline.IsTransient(err) {
			return err
		}
		if refused := pipeline.WithRefusal(s.js.Conn(), err); errors.Is(refused, nats.ErrPermissionViolation) {
			return refused
		}
		s.log.Warn("a NATS request of the prompt source failed; trying again (is the NATS server down or restarting?)",
			"request", what, "attempt", attempt, "url", s.js.Conn().ConnectedUrlRedacted(), "err", err)
		select {
		case <-ctx.Done():
			return err
		case <-time.After(retryPause):
		}
	}
}

// step reads a step counter from the run state (0 when absent).
func (s *Source) step(ctx context.Context, key string) (int64, error) {
	v, _, err := s.state.Get(ctx, key)
	if errors.Is(err, pipeline.ErrNotFound) {
		return 0, nil
	}
	if err != nil {
		return 0, err
	}
	n, err := parseStep(v)
	if err != nil {
		return 0, fmt.Errorf("run state %s: %w", key, err)
	}
	return n, nil
}

// parseStep reads a decimal step (nil: 0, a deleted key).
func parseStep(v []byte) (int64, error) {
	if v == nil {
		return 0, nil
	}
	n, err := strconv.ParseInt(string(v), 10, 64)
	if err != nil || n < 0 {
		return 0, fmt.Errorf("%w: step %q is not a non-negative integer", ErrConfig, v)
	}
	return n, nil
}
