// Package transport measures the pipeline's transport: the cost of moving
// one rollout batch through JetStream (RoundTrip), the throughput of one
// runner hop (Hop), and the same hop over Go channels without NATS
// (ChannelHop), the baseline the hop is compared with. `wsgrpo bench
// transport` prints these figures; the Go benchmarks of this package measure
// the same code paths (docs/benchmarks/pipeline.md).
package transport

import (
	"context"
	"fmt"
	"os"
	"strconv"
	"sync"
	"time"

	"github.com/apache/arrow-go/v18/arrow"
	"github.com/apache/arrow-go/v18/arrow/memory"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/wsgrpo/wsgrpo/pipeline"
	"github.com/wsgrpo/wsgrpo/schemas"
)

// Options sets up a transport benchmark. Zero values take the defaults
// listed.
type Options struct {
	Rows      int    // rows per rollout batch (default 64)
	Tokens    int    // completion tokens per row, each with a logprob (default 512)
	Batches   int    // batches sent (default 200)
	Workers   int    // hop workers (default 1)
	FetchSize int    // messages per pull (default 1)
	NATSURL   string // external or listening server; "" starts an in-process one
	Storage   jetstream.StorageType
}

func (o *Options) setDefaults() error {
	if o.Rows == 0 {
		o.Rows = 64
	}
	if o.Tokens == 0 {
		o.Tokens = 512
	}
	if o.Batches == 0 {
		o.Batches = 200
	}
	o.Workers = max(o.Workers, 1)
	o.FetchSize = max(o.FetchSize, 1)
	if o.Rows < 1 || o.Tokens < 0 || o.Batches < 1 || o.FetchSize > pipeline.MaxFetch {
		return fmt.Errorf("%w: bench options %+v", pipeline.ErrInvalidConfig, *o)
	}
	return nil
}

// Result is the outcome of one benchmark run.
type Result struct {
	Name        string
	Batches     int
	Rows        int           // rows moved in total
	MsgBytes    int           // encoded size of one batch
	Elapsed     time.Duration // wall time of the measured part
	PerBatch    time.Duration // Elapsed / Batches
	Codec       time.Duration // of PerBatch: Arrow encode + decode (RoundTrip only)
	RowsPerSec  float64
	BytesPerSec float64 // message bytes moved per second
}

func (r *Result) finish() {
	r.PerBatch = r.Elapsed / time.Duration(max(r.Batches, 1))
	s := r.Elapsed.Seconds()
	if s > 0 {
		r.RowsPerSec = float64(r.Rows) / s
		r.BytesPerSec = float64(r.Batches) * float64(r.MsgBytes) / s
	}
}

// String formats r on one line.
func (r Result) String() string {
	return fmt.Sprintf("%-28s batches=%d msg=%.1fKiB per_batch=%s codec=%s rows/s=%.0f MB/s=%.1f",
		r.Name, r.Batches, float64(r.MsgBytes)/1024, r.PerBatch.Round(time.Microsecond),
		r.Codec.Round(time.Microsecond), r.RowsPerSec, r.BytesPerSec/1e6)
}

// Batch builds the rollout batch the benchmarks send: rows rows of
// tokens completion tokens with logprobs and step ends. The caller releases
// it.
func Batch(mem memory.Allocator, run string, rows, tokens int) arrow.RecordBatch {
	out := make([]schemas.Rollout, rows)
	ids := make([]int32, tokens)
	lps := make([]float32, tokens)
	for k := range ids {
		ids[k] = int32(k*7919) % 32000
		lps[k] = -float32(k%13) / 4
	}
	prompt := make([]int32, 64)
	for k := range prompt {
		prompt[k] = int32(k)
	}
	for i := range out {
		p := schemas.Prompt{RunID: run, Step: 1, PromptID: "bench", Task: "bench", Prompt: "bench prompt", PromptTokenIDs: prompt}
		out[i] = schemas.Rollout{
			Prompt: p, TrajectoryID: schemas.TrajectoryID(run, 1, "bench", int32(i)), GroupID: schemas.GroupID(run, 1, "bench"),
			SampleIndex: int32(i), CompletionTokenIDs: ids, TokenLogprobs: lps,
			StepEnds: []int32{int32(tokens / 2), int32(tokens)}, FinishReason: "length",
		}
	}
	return schemas.NewRolloutBatch(mem, out)
}

// env is a server connection and a throw-away topology.
type env struct {
	js    jetstream.JetStream
	top   pipeline.Topology
	close func()
}

// open connects to o.NATSURL, or starts an in-process server, and creates a
// topology of its own there.
func open(ctx context.Context, o Options) (*env, error) {
	var closers []func()
	cleanup := func() {
		for i := len(closers) - 1; i >= 0; i-- {
			closers[i]()
		}
	}
	var nc *nats.Conn
	if o.NATSURL == "" {
		dir, err := os.MkdirTemp("", "wsgrpo-bench-")
		if err != nil {
			return nil, fmt.Errorf("bench: %w", err)
		}
		closers = append(closers, func() { _ = os.RemoveAll(dir) })
		srv, err := pipeline.StartServer(pipeline.ServerConfig{StoreDir: dir})
		if err != nil {
			cleanup()
			return nil, err
		}
		closers = append(closers, srv.Shutdown)
		if nc, err = srv.Connect(); err != nil {
			cleanup()
			return nil, err
		}
	} else {
		var err error
		if nc, err = pipeline.Connect(o.NATSURL); err != nil {
			return nil, err
		}
	}
	closers = append(closers, nc.Close)
	js, err := pipeline.NewJetStream(nc)
	if err != nil {
		cleanup()
		return nil, err
	}
	top, err := pipeline.NewTopology("bench-" + strconv.FormatInt(time.Now().UnixNano(), 36))
	if err != nil {
		cleanup()
		return nil, err
	}
	top.Storage = o.Storage
	if err := top.Ensure(ctx, js); err != nil {
		cleanup()
		return nil, err
	}
	closers = append(closers, func() { _ = top.Delete(context.WithoutCancel(ctx), js) })
	return &env{js: js, top: top, close: cleanup}, nil
}

// RoundTrip measures the transport cost of one batch, one at a time:
// encode, publish, wait for the PubAck, fetch, decode and ack.
func RoundTrip(ctx context.Context, o Options) (Result, error) {
	if err := o.setDefaults(); err != nil {
		return Result{}, err
	}
	e, err := open(ctx, o)
	if err != nil {
		return Result{}, err
	}
	defer e.close()
	mem := memory.NewGoAllocator()
	rec := Batch(mem, e.top.Run, o.Rows, o.Tokens)
	defer rec.Release()
	hop, err := e.top.Hop(schemas.KindRollout)
	if err != nil {
		return Result{}, err
	}
	cons, err := e.js.CreateOrUpdateConsumer(ctx, hop.Stream, jetstream.ConsumerConfig{
		Durable: "bench", AckPolicy: jetstream.AckExplicitPolicy,
	})
	if err != nil {
		return Result{}, fmt.Errorf("bench consumer: %w", err)
	}
	res := Result{Name: fmt.Sprintf("transport %d rows", o.Rows), Batches: o.Batches, Rows: o.Batches * o.Rows}
	var codec time.Duration
	one := func(i int) error {
		t0 := time.Now()
		data, err := schemas.Encode(rec)
		if err != nil {
			return err
		}
		codec += time.Since(t0)
		res.MsgBytes = len(data)
		m := pipeline.Part{ID: "bench:" + strconv.Itoa(i), Rows: rec.NumRows(), Data: data}.Msg(hop.Subject, schemas.KindRollout)
		if _, err := e.js.PublishMsg(ctx, m); err != nil {
			return fmt.Errorf("publish: %w", err)
		}
		b, err := cons.Fetch(1, jetstream.FetchMaxWait(5*time.Second))
		if err != nil {
			return fmt.Errorf("fetch: %w", err)
		}
		got := 0
		for msg := range b.Messages() {
			got++
			t1 := time.Now()
			out, err := schemas.Decode(schemas.KindRollout, msg.Data(), mem)
			if err != nil {
				return err
			}
			out.Release()
			codec += time.Since(t1)
			if err := msg.DoubleAck(ctx); err != nil {
				return fmt.Errorf("ack: %w", err)
			}
		}
		if got != 1 {
			return fmt.Errorf("bench: fetched %d messages, want 1: %w", got, b.Error())
		}
		return nil
	}
	if err := one(-1); err != nil { // warm-up
		return Result{}, err
	}
	codec = 0
	start := time.Now()
	for i := range o.Batches {
		if err := one(i); err != nil {
			return Result{}, err
		}
	}
	res.Elapsed = time.Since(start)
	res.finish()
	res.Codec = codec / time.Duration(o.Batches)
	return res, nil
}

// identity is the benchmark hop's processor: it returns its input.
type identity struct{}

// Process returns in, retained.
func (identity) Process(_ context.Context, in arrow.RecordBatch) ([]arrow.RecordBatch, error) {
	in.Retain()
	return []arrow.RecordBatch{in}, nil
}

// Hop measures rows per second through one runner hop with o.Workers
// workers: Batches rollout batches are queued first, then the runner
// decodes each, passes it through an identity processor, publishes it to
// the next stream and acks it. The clock runs from the runner's start until
// the last output is stored.
func Hop(ctx context.Context, o Options) (Result, error) {
	if err := o.setDefaults(); err != nil {
		return Result{}, err
	}
	e, err := open(ctx, o)
	if err != nil {
		return Result{}, err
	}
	defer e.close()
	mem := memory.NewGoAllocator()
	rec := Batch(mem, e.top.Run, o.Rows, o.Tokens)
	defer rec.Release()
	in, err := e.top.Hop(schemas.KindRollout)
	if err != nil {
		return Result{}, err
	}
	out, err := e.top.Hop(schemas.KindVerified)
	if err != nil {
		return Result{}, err
	}
	data, err := schemas.Encode(rec)
	if err != nil {
		return Result{}, err
	}
	for start := 0; start < o.Batches; start += 64 {
		var parts []pipeline.Part
		for i := start; i < min(start+64, o.Batches); i++ {
			parts = append(parts, pipeline.Part{ID: "bench:" + strconv.Itoa(i), Rows: rec.NumRows(), Data: data})
		}
		if _, err := pipeline.PublishParts(ctx, e.js, in.Subject, schemas.KindRollout, parts); err != nil {
			return Result{}, err
		}
	}
	cfg := pipeline.RunnerConfig{
		Stage: "bench", Stream: in.Stream, Consumer: "bench", InputKind: schemas.KindRollout,
		OutputSubject: out.Subject, OutputKind: schemas.KindRollout,
		DeadLetterSubject: e.top.DeadLetterSubject("bench"),
		Concurrency:       o.Workers, FetchSize: o.FetchSize, FetchWait: 200 * time.Millisecond,
	}
	r, err := pipeline.NewRunner(e.js, cfg, identity{})
	if err != nil {
		return Result{}, err
	}
	outStream, err := e.js.Stream(ctx, out.Stream)
	if err != nil {
		return Result{}, err
	}
	rctx, cancel := context.WithCancel(ctx)
	var wg sync.WaitGroup
	var runErr error
	start := time.Now()
	wg.Go(func() { runErr = r.Run(rctx) })
	for {
		info, err := outStream.Info(ctx)
		if err != nil {
			cancel()
			wg.Wait()
			return Result{}, err
		}
		if info.State.Msgs >= uint64(o.Batches) {
			break
		}
		if ctx.Err() != nil {
			cancel()
			wg.Wait()
			return Result{}, ctx.Err()
		}
		time.Sleep(5 * time.Millisecond) // coarse: each poll is a JetStream API call
	}
	elapsed := time.Since(start)
	cancel()
	wg.Wait()
	if runErr != nil {
		return Result{}, runErr
	}
	res := Result{
		Name:    fmt.Sprintf("hop %d rows %d workers", o.Rows, o.Workers),
		Batches: o.Batches, Rows: o.Batches * o.Rows, MsgBytes: len(data), Elapsed: elapsed,
	}
	res.finish()
	return res, nil
}

// ChannelHop is Hop's baseline without NATS: the encoded batches
// go through Go channels to o.Workers goroutines that decode them, pass them
// through the identity processor and encode the outputs.
func ChannelHop(ctx context.Context, o Options) (Result, error) {
	if err := o.setDefaults(); err != nil {
		return Result{}, err
	}
	mem := memory.NewGoAllocator()
	rec := Batch(mem, "bench", o.Rows, o.Tokens)
	defer rec.Release()
	data, err := schemas.Encode(rec)
	if err != nil {
		return Result{}, err
	}
	inCh := make(chan []byte, o.Batches)
	for range o.Batches {
		inCh <- data
	}
	close(inCh)
	outCh := make(chan []byte, o.Workers)
	errCh := make(chan error, o.Workers)
	start := time.Now()
	var wg sync.WaitGroup
	for range o.Workers {
		wg.Go(func() {
			for b := range inCh {
				r, err := schemas.Decode(schemas.KindRollout, b, mem)
				if err != nil {
					errCh <- err
					return
				}
				outs, _ := identity{}.Process(ctx, r)
				r.Release()
				enc, err := schemas.Encode(outs[0])
				outs[0].Release()
				if err != nil {
					errCh <- err
					return
				}
				outCh <- enc
			}
		})
	}
	go func() { wg.Wait(); close(outCh) }()
	n := 0
	for range outCh {
		n++
	}
	elapsed := time.Since(start)
	select {
	case err := <-errCh:
		return Result{}, err
	default:
	}
	res := Result{
		Name:    fmt.Sprintf("channel hop %d rows %d workers", o.Rows, o.Workers),
		Batches: n, Rows: n * o.Rows, MsgBytes: len(data), Elapsed: elapsed,
	}
	res.finish()
	return res, nil
}
