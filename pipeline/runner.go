package pipeline

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"time"

	"github.com/apache/arrow-go/v18/arrow/memory"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/wsgrpo/wsgrpo/schemas"
	"github.com/wsgrpo/wsgrpo/stages/stage"
)

// Runner defaults and bounds.
const (
	// MaxFetch bounds FetchSize: batches are large messages, and a big pull
	// would hold many of them unprocessed (DESIGN.md: Fetch <= 8).
	MaxFetch = 8
	// DefaultAckWait is how long the server waits for an ack (or an
	// InProgress heartbeat) before redelivering.
	DefaultAckWait = 30 * time.Second
	// DefaultMaxDeliver is how many times a batch is tried.
	DefaultMaxDeliver = 5
	// The runner counts deliveries itself (RunnerConfig.MaxDeliver): the
	// durable consumer redelivers without limit, so that a batch whose
	// dead letter could not be stored comes back instead of being
	// dropped by the server at its limit.
	// defaultMaxAckPending caps a consumer's unacknowledged messages.
	defaultMaxAckPending = 1000
)

// RunnerConfig configures one stage runner. Topology.RunnerConfig fills the
// wiring of a standard stage; zero values take the defaults listed.
type RunnerConfig struct {
	Stage             string       // stage name: metrics label, logs, dead letters
	Stream            string       // input stream
	Consumer          string       // durable pull consumer shared by every process of the stage
	InputKind         schemas.Kind // schema of the input batches
	OutputSubject     string       // where outputs go; "" for a sink
	OutputKind        schemas.Kind // schema the outputs must have
	DeadLetterSubject string       // where dead letters go

	Concurrency   int           // workers in this process (default 1)
	FetchSize     int           // messages per pull, 1..MaxFetch (default 1)
	FetchWait     time.Duration // longest wait of one pull (default 1 s)
	AckWait       time.Duration // default DefaultAckWait
	MaxDeliver    int           // default DefaultMaxDeliver; at least 1 (a batch handed back at shutdown on its last delivery is dead-lettered; one delivered more often, without an outcome, is dead-lettered unprocessed)
	MaxAckPending int           // consumer-wide cap of unacked messages, deferred ones included (default 1000): above what every process of the stage defers plus Concurrency*FetchSize each
	BackoffMin    time.Duration // first NakWithDelay (default 250 ms)
	BackoffMax    time.Duration // longest NakWithDelay (default 30 s)
	Heartbeat     time.Duration // InProgress interval (default AckWait/3; negative disables)
	ShutdownGrace time.Duration // how long in-flight work may finish after ctx ends (default 10 s)
	PublishWait   time.Duration // longest wait for PubAcks and acks (default 10 s)
	LagInterval   time.Duration // how often queue lag is sampled (default 5 s)
	MaxBody       int           // largest output message (default server max_payload - HeaderReserve)

	// StorageErr, when set, reports whether the JetStream store is out of
	// space: nil, or an error wrapping ErrStorageFull that says where
	// (Server.StorageErr for an embedded server). The runner asks it when
	// a publish, a dead letter, an acknowledgement or the processor
	// fails: a file store that ran out of disk answers no more writes, so
	// its publishers see only timeouts.
	StorageErr func() error
	// StoreDir, when set, is the embedded server's store directory: a
	// write the server refused for space before StorageErr saw the store
	// full is reported as that directory's, with its free space.
	StoreDir string

	Allocator memory.Allocator // for decoding inputs (default memory.DefaultAllocator)
	Logger    *slog.Logger     // default: discard
	Metrics   *Metrics         // default: unregistered collectors
}

// RunnerConfig returns the configuration of a standard stage of this run
// with default settings.
func (t Topology) RunnerConfig(stage string) (RunnerConfig, error) {
	s, err := t.Stage(stage)
	if err != nil {
		return RunnerConfig{}, err
	}
	cfg := RunnerConfig{
		Stage:             s.Name,
		Stream:            s.Input.Stream,
		Consumer:          s.Consumer,
		InputKind:         s.Input.Kind,
		DeadLetterSubject: t.DeadLetterSubject(s.Name),
	}
	if s.Output != nil {
		cfg.OutputSubject = s.Output.Subject
		cfg.OutputKind = s.Output.Kind
	}
	return cfg, nil
}

func (c *RunnerConfig) setDefaults() error {
	for _, n := range []struct{ what, v string }{{"stage", c.Stage}, {"consumer", c.Consumer}} {
		if err := ValidateName(n.v); err != nil {
			return fmt.Errorf("runner %s: %w", n.what, err)
		}
	}
	if c.Stream == "" || c.InputKind == "" || c.DeadLetterSubject == "" {
		return fmt.Errorf("%w: runner %s needs Stream, InputKind and DeadLetterSubject", ErrInvalidConfig, c.Stage)
	}
	if _, err := schemas.Schema(c.InputKind); err != nil {
		return fmt.Errorf("%w: runner %s input: %w", ErrInvalidConfig, c.Stage, err)
	}
	if (c.OutputSubject == "") != (c.OutputKind == "") {
		return fmt.Errorf("%w: runner %s needs both OutputSubject and OutputKind, or neither", ErrInvalidConfig, c.Stage)
	}
	if c.OutputKind != "" {
		if _, err := schemas.Schema(c.OutputKind); err != nil {
			return fmt.Errorf("%w: runner %s output: %w", ErrInvalidConfig, c.Stage, err)
		}
	}
	def := func(d *time.Duration, v time.Duration) {
		if *d == 0 {
			*d = v
		}
	}
	c.Concurrency = max(c.Concurrency, 1)
	if c.FetchSize == 0 {
		c.FetchSize = 1
	}
	if c.FetchSize < 1 || c.FetchSize > MaxFetch {
		return fmt.Errorf("%w: runner %s FetchSize %d outside 1..%d", ErrInvalidConfig, c.Stage, c.FetchSize, MaxFetch)
	}
	def(&c.FetchWait, time.Second)
	def(&c.AckWait, DefaultAckWait)
	if c.MaxDeliver == 0 {
		c.MaxDeliver = DefaultMaxDeliver
	}
	if c.MaxDeliver < 1 {
		return fmt.Errorf("%w: runner %s MaxDeliver %d", ErrInvalidConfig, c.Stage, c.MaxDeliver)
	}
	if c.MaxAckPending == 0 {
		c.MaxAckPending = defaultMaxAckPending
	}
	def(&c.BackoffMin, 250*time.Millisecond)
	def(&c.BackoffMax, 30*time.Second)
	def(&c.Heartbeat, c.AckWait/3)
	def(&c.ShutdownGrace, 10*time.Second)
	def(&c.PublishWait, 10*time.Second)
	def(&c.LagInterval, 5*time.Second)
	if c.FetchWait < 0 || c.AckWait < 0 || c.BackoffMin < 0 || c.BackoffMax < c.BackoffMin ||
		c.ShutdownGrace < 0 || c.PublishWait < 0 || c.LagInterval < 0 {
		return fmt.Errorf("%w: runner %s has a negative or inverted duration", ErrInvalidConfig, c.Stage)
	}
	if c.Allocator == nil {
		// Not a recycling allocator: arrow-go's string accessors return
		// strings that alias the batch's buffers, and a processor may
		// keep them after the batch is released.
		c.Allocator = memory.DefaultAllocator
	}
	if c.Logger == nil {
		c.Logger = slog.New(slog.DiscardHandler)
	}
	if c.Metrics == nil {
		m, err := NewMetrics(nil)
		if err != nil {
			return err
		}
		c.Metrics = m
	}
	return nil
}

// Runner drives a stage.Processor from a durable pull consumer: it owns
// acks, retries, holds and dead letters, acting on the error classes the
// stage contract (stages/stage) defines.
type Runner struct {
	js   jetstream.JetStream
	cfg  RunnerConfig
	proc stage.Processor
	log  *slog.Logger

	cons     jetstream.Consumer
	stream   jetstream.Stream
	deferred *deferredSet // inputs waiting for a deferred stage.Ack (deferral.go)

	// A store out of space stops the runner (storage.go): halt records
	// the first such error, which Run returns, and calls stop.
	haltMu sync.Mutex
	fatal  error
	stop   context.CancelFunc
}

// NewRunner validates cfg and returns a runner; Run starts it.
func NewRunner(js jetstream.JetStream, cfg RunnerConfig, proc stage.Processor) (*Runner, error) {
	if js == nil || proc == nil {
		return nil, fmt.Errorf("%w: NewRunner needs a JetStream and a Processor", ErrInvalidConfig)
	}
	if err := cfg.setDefaults(); err != nil {
		return nil, err
	}
	if cfg.MaxBody <= 0 {
		cfg.MaxBody = int(js.Conn().MaxPayload()) - HeaderReserve
	}
	if cfg.MaxBody <= 0 {
		return nil, fmt.Errorf("%w: server max_payload %d is too small", ErrInvalidConfig, js.Conn().MaxPayload())
	}
	return &Runner{js: js, cfg: cfg, proc: proc, log: cfg.Logger.With("stage", cfg.Stage, "consumer", cfg.Consumer)}, nil
}

// Config returns the runner's configuration with defaults applied.
func (r *Runner) Config() RunnerConfig { return r.cfg }

// ensureConsumer creates or updates the durable consumer.
func (r *Runner) ensureConsumer(ctx context.Context) error {
	var s jetstream.Stream
	err := retryTimeout(ctx, r.js.Conn(), func(ctx context.Context) (err error) {
		s, err = r.js.Stream(ctx, r.cfg.Stream)
		return err
	})
	if err != nil {
		return fmt.Errorf("runner %s: input stream %s: %w", r.cfg.Stage, r.cfg.Stream, err)
	}
	var cons jetstream.Consumer
	err = retryTimeout(ctx, r.js.Conn(), func(ctx context.Context) (err error) {
		cons, err = s.CreateOrUpdateConsumer(ctx, consumerConfig(r.cfg.Consumer, r.cfg.AckWait, r.cfg.MaxAckPending))
		return err
	})
	if err != nil {
		return fmt.Errorf("runner %s: consumer %s on %s: %w", r.cfg.Stage, r.cfg.Consumer, r.cfg.Stream, err)
	}
	r.stream, r.cons = s, cons
	return nil
}

// Run consumes until ctx is done, then stops fetching, lets in-flight work
// finish within ShutdownGrace (or naks it), naks the inputs still waiting
// for a deferred stage.Ack (see stage.Defer; an Ack called after that is a
// no-op), and returns nil. It stops the same way, on its own, when a store
// runs out of space (a publish, a dead letter or an acknowledgement that
// the JetStream store cannot take, or a processor error wrapping
// ErrStorageFull): the batch that met it is handed back unacknowledged,
// and Run returns an error wrapping ErrStorageFull (a *StorageFullError
// says which store, where, and the space free and needed when known). It
// returns an error otherwise only when the consumer cannot be set up.
// Call Run once per Runner.
func (r *Runner) Run(parent context.Context) error {
	if err := r.ensureConsumer(parent); err != nil {
		return err
	}
	ctx, stop := context.WithCancel(parent)
	defer stop()
	r.haltMu.Lock()
	r.stop = stop
	r.haltMu.Unlock()
	// hard outlives ctx by ShutdownGrace: in-flight work runs under it.
	hard, hardCancel := context.WithCancel(context.WithoutCancel(ctx))
	defer hardCancel()
	stopGrace := context.AfterFunc(ctx, func() {
		t := time.NewTimer(r.cfg.ShutdownGrace)
		go func() {
			defer t.Stop()
			select {
			case <-t.C:
				hardCancel()
			case <-hard.Done():
			}
		}()
	})
	defer stopGrace()

	gauge := r.cfg.Metrics.Deferred.WithLabelValues(r.cfg.Stage)
	r.deferred = newDeferredSet(r.log, gauge.Add)
	if r.cfg.Heartbeat > 0 {
		stop := make(chan struct{})
		defer close(stop)
		go r.deferred.held.heartbeat(r.cfg.Heartbeat, stop)
	}

	r.log.Info("stage runner started", "stream", r.cfg.Stream, "workers", r.cfg.Concurrency, "fetch", r.cfg.FetchSize)
	var wg sync.WaitGroup
	wg.Go(func() { r.sampleLag(ctx) })
	for i := range r.cfg.Concurrency {
		wg.Go(func() { r.worker(ctx, hard, i) })
	}
	wg.Wait()
	if n := r.deferred.close(); n > 0 {
		r.log.Info("deferred batches handed back for redelivery", "count", n)
	}
	if err := r.fatalErr(); err != nil {
		r.log.Error("stage runner stopped: out of storage space", "err", err)
		return fmt.Errorf("runner %s stopped, its batches handed back: %w", r.cfg.Stage, err)
	}
	r.log.Info("stage runner stopped")
	return nil
}

// sampleLag records the consumer's pending and ack-pending counts.
func (r *Runner) sampleLag(ctx context.Context) {
	t := time.NewTicker(r.cfg.LagInterval)
	defer t.Stop()
	for {
		ictx, cancel := context.WithTimeout(ctx, r.cfg.PublishWait)
		info, err := r.cons.Info(ictx)
		cancel()
		if err == nil {
			r.cfg.Metrics.Pending.WithLabelValues(r.cfg.Stage).Set(float64(info.NumPending))
			r.cfg.Metrics.AckPending.WithLabelValues(r.cfg.Stage).Set(float64(info.NumAckPending))
		}
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
	}
}

// worker pulls and handles messages until ctx is done.
func (r *Runner) worker(ctx, hard context.Context, id int) {
	log := r.log.With("worker", id)
	h := newHeld(log)
	if r.cfg.Heartbeat > 0 {
		stop := make(chan struct{})
		defer close(stop)
		go h.heartbeat(r.cfg.Heartbeat, stop)
	}
	pause := r.cfg.BackoffMin
	for ctx.Err() == nil {
		// The server ends the pull after FetchWait. A client-side deadline
		// is not used: messages arriving after it would be dropped and only
		// come back after AckWait.
		batch, err := r.cons.Fetch(r.cfg.FetchSize, jetstream.FetchMaxWait(r.cfg.FetchWait))
		if err != nil {
			if ctx.Err() != nil {
				break
			}
			r.cfg.Metrics.Errors.WithLabelValues(r.cfg.Stage, "fetch").Inc()
			log.Warn("fetch failed; retrying", "err", err, "pause", pause)
			sleepCtx(ctx, pause)
			pause = min(2*pause, r.cfg.BackoffMax)
			continue
		}
		// Move messages out of the fetch as they arrive, so that the
		// heartbeat covers the ones waiting behind the one in progress.
		queue := make(chan jetstream.Msg, r.cfg.FetchSize)
		go func() {
			defer close(queue)
			for m := range batch.Messages() {
				h.add(m)
				queue <- m
			}
		}()
		for m := range queue {
			if ctx.Err() != nil {
				// Shutting down: hand unstarted work back at once.
				_ = m.Nak()
				r.cfg.Metrics.Batches.WithLabelValues(r.cfg.Stage, "shutdown").Inc()
			} else {
				r.handle(ctx, hard, m, log)
			}
			h.remove(m)
		}
		if err := batch.Error(); err != nil && ctx.Err() == nil && !isFetchTimeout(err) {
			r.cfg.Metrics.Errors.WithLabelValues(r.cfg.Stage, "fetch").Inc()
			log.Warn("fetch ended with error; retrying", "err", err, "pause", pause)
			sleepCtx(ctx, pause)
			pause = min(2*pause, r.cfg.BackoffMax)
			continue
		}
		pause = r.cfg.BackoffMin
	}
}

func isFetchTimeout(err error) bool {
	return errors.Is(err, context.DeadlineExceeded) || errors.Is(err, jetstream.ErrNoMessages) ||
		errors.Is(err, context.Canceled)
}

// sleepCtx sleeps for d or until ctx is done.
func sleepCtx(ctx context.Context, d time.Duration) {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
	case <-t.C:
	}
}

// held is the set of messages a worker holds unacknowledged; its heartbeat
// keeps them from being redelivered while work goes on.
type held struct {
	log  *slog.Logger
	mu   sync.Mutex
	msgs map[jetstream.Msg]struct{}
}

func newHeld(log *slog.Logger) *held { return &held{log: log, msgs: map[jetstream.Msg]struct{}{}} }

func (h *held) add(m jetstream.Msg) {
	h.mu.Lock()
	h.msgs[m] = struct{}{}
	h.mu.Unlock()
}

func (h *held) remove(m jetstream.Msg) {
	h.mu.Lock()
	delete(h.msgs, m)
	h.mu.Unlock()
}

func (h *held) heartbeat(every time.Duration, stop <-chan struct{}) {
	t := time.NewTicker(every)
	defer t.Stop()
	for {
		select {
		case <-stop:
			return
		case <-t.C:
		}
		h.mu.Lock()
		msgs := make([]jetstream.Msg, 0, len(h.msgs))
		for m := range h.msgs {
			msgs = append(msgs, m)
		}
		h.mu.Unlock()
		for _, m := range msgs {
			if err := m.InProgress(); err != nil {
				h.log.Debug("heartbeat failed", "err", err)
			}
		}
	}
}
