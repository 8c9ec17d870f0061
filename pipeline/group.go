package pipeline

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/wsgrpo/wsgrpo/stages/stage"
)

// ErrGroupRunning is returned by Group.Add after Run has started, and by a
// second Run.
var ErrGroupRunning = errors.New("group already running")

// DefaultCloseTimeout bounds each processor's Close when a Group stops.
const DefaultCloseTimeout = 30 * time.Second

// Group runs several stage runners in one process under one context, in
// the manner of Watermill's Router: Add each stage's runner configuration
// and processor, then Run them all. Run returns when its context ends or
// when a runner fails; then it stops the runners in the order they were
// added (add them upstream first, so that a stage stops taking work before
// the stages it feeds), closes each processor that implements
// stage.Closer once its runner has stopped, and returns the first error.
type Group struct {
	js  jetstream.JetStream
	log *slog.Logger

	mu      sync.Mutex
	members []*member
	started bool
}

type member struct {
	name   string
	runner *Runner
	proc   stage.Processor
}

// NewGroup returns an empty group whose runners read and write through js.
// A nil log discards.
func NewGroup(js jetstream.JetStream, log *slog.Logger) *Group {
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	return &Group{js: js, log: log}
}

// Add validates cfg, builds the stage's runner and adds it to the group.
// The group owns proc from then on: it closes it (stage.Closer) when the
// group stops, or at once if Add fails.
func (g *Group) Add(cfg RunnerConfig, proc stage.Processor) error {
	g.mu.Lock()
	defer g.mu.Unlock()
	if g.started {
		_ = closeProcessor(proc, g.log)
		return fmt.Errorf("%w: cannot add stage %s", ErrGroupRunning, cfg.Stage)
	}
	r, err := NewRunner(g.js, cfg, proc)
	if err != nil {
		_ = closeProcessor(proc, g.log)
		return fmt.Errorf("stage %s: %w", cfg.Stage, err)
	}
	g.members = append(g.members, &member{name: cfg.Stage, runner: r, proc: proc})
	return nil
}

// Stages returns the names of the group's stages in the order added.
func (g *Group) Stages() []string {
	g.mu.Lock()
	defer g.mu.Unlock()
	out := make([]string, len(g.members))
	for i, m := range g.members {
		out[i] = m.name
	}
	return out
}

// Runner returns the runner of the named stage, or nil.
func (g *Group) Runner(name string) *Runner {
	g.mu.Lock()
	defer g.mu.Unlock()
	for _, m := range g.members {
		if m.name == name {
			return m.runner
		}
	}
	return nil
}

// Run starts every runner and blocks until ctx ends or one of them fails
// (a runner fails when its consumer cannot be set up). It then stops the
// runners one by one in the order they were added, each within its
// ShutdownGrace, closes their processors, and returns the first runner
// error, or else the first Close error, or nil. A group runs once.
func (g *Group) Run(ctx context.Context) error {
	g.mu.Lock()
	if g.started {
		g.mu.Unlock()
		return ErrGroupRunning
	}
	g.started = true
	members := g.members
	g.mu.Unlock()

	// failed ends the group at the first runner error.
	group, failed := context.WithCancel(ctx)
	defer failed()
	type result struct {
		i   int
		err error
	}
	results := make(chan result, len(members))
	stops := make([]context.CancelFunc, len(members))
	for i, m := range members {
		rctx, stop := context.WithCancel(context.WithoutCancel(group))
		stops[i] = stop
		go func() {
			err := m.runner.Run(rctx)
			if err != nil && !errors.Is(err, context.Canceled) {
				err = fmt.Errorf("stage %s: %w", m.name, err)
				failed()
			} else {
				err = nil
			}
			results <- result{i, err}
		}()
	}
	g.log.Info("stage group running", "stages", len(members))
	<-group.Done()

	// Stop in order: cancel one runner, wait for it, then the next.
	errs := make([]error, len(members))
	done := make([]bool, len(members))
	var first error
	collect := func(r result) {
		done[r.i], errs[r.i] = true, r.err
		if r.err != nil && first == nil {
			first = r.err
		}
	}
	for i, m := range members {
		stops[i]()
		for !done[i] {
			collect(<-results)
		}
		closeErr := closeProcessor(m.proc, g.log.With("stage", m.name))
		if closeErr != nil && first == nil {
			first = fmt.Errorf("stage %s: close: %w", m.name, closeErr)
		}
	}
	g.log.Info("stage group stopped")
	return first
}

// closeProcessor closes proc if it implements stage.Closer.
func closeProcessor(proc stage.Processor, log *slog.Logger) error {
	c, ok := proc.(stage.Closer)
	if !ok {
		return nil
	}
	ctx, cancel := context.WithTimeout(context.Background(), DefaultCloseTimeout)
	defer cancel()
	if err := c.Close(ctx); err != nil {
		log.Warn("processor close failed", "err", err)
		return err
	}
	return nil
}
