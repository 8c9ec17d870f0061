package arith

import (
	"fmt"
	"iter"
	"math/rand/v2"

	"github.com/wsgrpo/wsgrpo/tasks"
)

// Task is the arith task family under one Config. It satisfies
// tasks.Source; it is safe for concurrent use (each Generator and Tracer it
// returns is not).
type Task struct {
	cfg Config
}

// New returns the task for cfg, or an error matching ErrConfig when
// cfg.Validate refuses it.
func New(cfg Config) (*Task, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	return &Task{cfg: cfg}, nil
}

// Config returns the task's configuration.
func (t *Task) Config() Config { return t.cfg }

// Name returns Name, "arith".
func (t *Task) Name() string { return Name }

// Generator returns a generator of the problems of split, deterministic
// from seed; it panics on an invalid split.
func (t *Task) Generator(split tasks.Split, seed uint64) *Generator {
	stream := streamTrain
	switch split {
	case tasks.Train:
	case tasks.Test:
		stream = streamTest
	default:
		panic(fmt.Sprintf("arith: invalid split %q", split))
	}
	return &Generator{cfg: t.cfg, split: split, rng: rand.New(rand.NewPCG(seed, stream))}
}

// Tracer returns a trace writer deterministic from seed.
func (t *Task) Tracer(seed uint64) *Tracer {
	return &Tracer{cfg: t.cfg, rng: rand.New(rand.NewPCG(seed, streamTrace))}
}

// MinimalTrace returns the minimal correct trace of p in the task's result
// format (see the package function MinimalTrace).
func (t *Task) MinimalTrace(p Problem) string { return MinimalTrace(p.Expr, t.cfg.ReverseResults) }

// Items yields the problems of split as task items, endlessly, in an order
// fixed by seed: the prompt is the expression's canonical text and the
// reference answer its value. IDs are "arith-<split>-<seed>-<n>" with n
// counting from 0. An invalid split yields nothing.
func (t *Task) Items(split tasks.Split, seed uint64) iter.Seq[tasks.Item] {
	return func(yield func(tasks.Item) bool) {
		if !split.Valid() {
			return
		}
		g := t.Generator(split, seed)
		for n := 0; ; n++ {
			p := g.Next()
			it := tasks.Item{
				ID:              fmt.Sprintf("%s-%s-%d-%d", Name, split, seed, n),
				Task:            Name,
				Prompt:          p.Text,
				ReferenceAnswer: formatAnswer(p.Answer),
			}
			if !yield(it) {
				return
			}
		}
	}
}

// Example is a problem with a trace of it, one pretraining example.
type Example struct {
	Problem
	// Trace is the completion to train on.
	Trace Trace
}

// Examples yields pretraining examples of split endlessly: the problems of
// Generator(split, seed), each with a trace from Tracer(seed).
func (t *Task) Examples(split tasks.Split, seed uint64) iter.Seq[Example] {
	return func(yield func(Example) bool) {
		if !split.Valid() {
			return
		}
		g, tr := t.Generator(split, seed), t.Tracer(seed)
		for {
			p := g.Next()
			if !yield(Example{Problem: p, Trace: tr.Trace(p)}) {
				return
			}
		}
	}
}
