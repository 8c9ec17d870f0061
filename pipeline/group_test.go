package pipeline

import (
	"context"
	"errors"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/apache/arrow-go/v18/arrow"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/wsgrpo/wsgrpo/schemas"
	"github.com/wsgrpo/wsgrpo/stages/passthrough"
	"github.com/wsgrpo/wsgrpo/stages/stage"
)

// closeLog records the order in which processors are closed.
type closeLog struct {
	mu    sync.Mutex
	names []string
	err   map[string]error
}

func (l *closeLog) closed() []string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return slices.Clone(l.names)
}

// closing wraps a processor with a Close that records itself.
type closing struct {
	stage.Processor
	name string
	log  *closeLog
}

func (c closing) Close(context.Context) error {
	c.log.mu.Lock()
	defer c.log.mu.Unlock()
	c.log.names = append(c.log.names, c.name)
	return c.log.err[c.name]
}

// TestGroup runs the whole chain as one group: rows flow end to end, and
// at shutdown the stages stop and close in the order they were added.
func TestGroup(t *testing.T) {
	mem := newChecked(t)
	srv := startServer(t, false)
	js := connectJS(t, srv)
	top := ensureRun(t, js, "group", jetstream.MemoryStorage)
	cfgs := chainConfigs(t, top, mem)
	closes := &closeLog{}
	g := NewGroup(js, nil)
	for _, cfg := range cfgs[:3] {
		p, err := passthrough.New(cfg.InputKind, cfg.OutputKind, mem)
		if err != nil {
			t.Fatal(err)
		}
		if err := g.Add(cfg, closing{p, cfg.Stage, closes}); err != nil {
			t.Fatal(err)
		}
	}
	sink := newCollector()
	if err := g.Add(cfgs[3], closing{sink, cfgs[3].Stage, closes}); err != nil {
		t.Fatal(err)
	}
	if got, want := g.Stages(), []string{StageSampler, StageVerifier, StageLabeler, StageLearner}; !slices.Equal(got, want) {
		t.Fatalf("Stages() = %v, want %v", got, want)
	}
	if g.Runner(StageVerifier) == nil || g.Runner("nope") != nil {
		t.Fatal("Runner lookup")
	}

	ctx, cancel := context.WithCancel(t.Context())
	done := make(chan error, 1)
	go func() { done <- g.Run(ctx) }()
	const batches, rows = 4, 8
	var recs []arrow.RecordBatch
	for b := range batches {
		recs = append(recs, schemas.NewPromptBatch(mem, promptRows(top.Run, b, rows)))
	}
	publishRecs(t, js, mustHop(t, top, schemas.KindPrompt).Subject, recs)
	for _, r := range recs {
		r.Release()
	}
	waitFor(t, 30*time.Second, "every row at the sink", func() bool { return sink.distinct() == batches*rows })
	if err := g.Run(ctx); !errors.Is(err, ErrGroupRunning) {
		t.Errorf("second Run = %v, want ErrGroupRunning", err)
	}
	if err := g.Add(cfgs[0], stage.Func(nil)); !errors.Is(err, ErrGroupRunning) {
		t.Errorf("Add while running = %v, want ErrGroupRunning", err)
	}
	cancel()
	if err := <-done; err != nil {
		t.Fatalf("Run = %v", err)
	}
	if got, want := closes.closed(), g.Stages(); !slices.Equal(got, want) {
		t.Fatalf("closed %v, want every stage once, in the order added %v", got, want)
	}
}

// TestGroupFirstError: a runner that cannot start ends the group; Run
// returns that error, stops the others and closes every processor. A
// Close error is reported when no runner failed.
func TestGroupFirstError(t *testing.T) {
	srv := startServer(t, false)
	js := connectJS(t, srv)
	top := ensureRun(t, js, "grouperr", jetstream.MemoryStorage)
	cfgs := chainConfigs(t, top, nil)
	closeErr := errors.New("flush failed")

	t.Run("runner fails", func(t *testing.T) {
		closes := &closeLog{}
		g := NewGroup(js, nil)
		if err := g.Add(cfgs[3], closing{newCollector(), "sink", closes}); err != nil {
			t.Fatal(err)
		}
		bad := cfgs[1]
		bad.Stream = "WSGRPO_nowhere_ROLLOUT"
		if err := g.Add(bad, closing{newCollector(), "bad", closes}); err != nil {
			t.Fatal(err)
		}
		err := g.Run(t.Context())
		if err == nil || !errors.Is(err, jetstream.ErrStreamNotFound) {
			t.Fatalf("Run = %v, want the failing stage's error", err)
		}
		if got := closes.closed(); !slices.Equal(got, []string{"sink", "bad"}) {
			t.Fatalf("closed %v", got)
		}
	})
	t.Run("close fails", func(t *testing.T) {
		closes := &closeLog{err: map[string]error{"sink": closeErr}}
		g := NewGroup(js, nil)
		if err := g.Add(cfgs[3], closing{newCollector(), "sink", closes}); err != nil {
			t.Fatal(err)
		}
		ctx, cancel := context.WithCancel(t.Context())
		cancel()
		if err := g.Run(ctx); !errors.Is(err, closeErr) {
			t.Fatalf("Run = %v, want the Close error", err)
		}
	})
	t.Run("invalid config closes the processor", func(t *testing.T) {
		closes := &closeLog{}
		g := NewGroup(js, nil)
		bad := cfgs[0]
		bad.FetchSize = MaxFetch + 1
		if err := g.Add(bad, closing{newCollector(), "bad", closes}); !errors.Is(err, ErrInvalidConfig) {
			t.Fatalf("Add = %v, want ErrInvalidConfig", err)
		}
		if got := closes.closed(); !slices.Equal(got, []string{"bad"}) {
			t.Fatalf("closed %v", got)
		}
	})
}
