package pipeline

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/apache/arrow-go/v18/arrow"
	"github.com/apache/arrow-go/v18/arrow/array"
	"github.com/apache/arrow-go/v18/arrow/memory"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/wsgrpo/wsgrpo/schemas"
	"github.com/wsgrpo/wsgrpo/stages/passthrough"
	"github.com/wsgrpo/wsgrpo/stages/stage"
)

// sinkFor starts a collecting sink on the verified stream (the labeler's
// consumer, turned into a sink).
func sinkFor(t testing.TB, js jetstream.JetStream, top Topology, mem memory.Allocator) *collector {
	t.Helper()
	cfg, err := top.RunnerConfig(StageLabeler)
	if err != nil {
		t.Fatal(err)
	}
	cfg.OutputSubject, cfg.OutputKind = "", ""
	cfg.Allocator, cfg.FetchWait = mem, 200*time.Millisecond
	sink := newCollector()
	startRunner(t, js, cfg, sink)
	return sink
}

// encodeWith encodes the columns of rec under schema s.
func encodeWith(t testing.TB, rec arrow.RecordBatch, s *arrow.Schema) []byte {
	t.Helper()
	r := array.NewRecordBatch(s, rec.Columns(), rec.NumRows())
	defer r.Release()
	b, err := schemas.Encode(r)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// malformedPayloads returns payloads a rollout consumer must refuse, with
// the error text each dead letter must mention.
func malformedPayloads(t testing.TB, mem memory.Allocator, run string) map[string]struct {
	data []byte
	want string
} {
	t.Helper()
	good := schemas.NewRolloutBatch(mem, rolloutRows(run, 1, 2, 8))
	defer good.Release()
	valid, err := schemas.Encode(good)
	if err != nil {
		t.Fatal(err)
	}
	random := make([]byte, 700)
	rng := rand.New(rand.NewPCG(1, 2))
	for i := range random {
		random[i] = byte(rng.UintN(256))
	}
	v2md := arrow.NewMetadata([]string{schemas.MetaKind, schemas.MetaVersion}, []string{string(schemas.KindRollout), fmt.Sprint(schemas.Version + 1)})
	v2 := arrow.NewSchema(good.Schema().Fields(), &v2md)

	rowmd := arrow.NewMetadata([]string{schemas.MetaKind, schemas.MetaVersion}, []string{string(schemas.KindRollout), fmt.Sprint(schemas.Version)})
	b := array.NewInt64Builder(mem)
	b.AppendValues([]int64{1, 2}, nil)
	col := b.NewArray()
	b.Release()
	defer col.Release()
	wrongCols := array.NewRecordBatch(arrow.NewSchema([]arrow.Field{{Name: "x", Type: arrow.PrimitiveTypes.Int64}}, &rowmd), []arrow.Array{col}, 2)
	defer wrongCols.Release()
	wc, err := schemas.Encode(wrongCols)
	if err != nil {
		t.Fatal(err)
	}
	prompt := schemas.NewPromptBatch(mem, promptRows(run, 1, 1))
	defer prompt.Release()
	wrongKind, err := schemas.Encode(prompt)
	if err != nil {
		t.Fatal(err)
	}
	return map[string]struct {
		data []byte
		want string
	}{
		"random bytes":         {random, "malformed"},
		"truncated IPC":        {valid[:len(valid)/2], "malformed"},
		"wrong schema version": {encodeWith(t, good, v2), "unknown schema version"},
		"wrong columns":        {wc, "schema mismatch"},
		"wrong kind":           {wrongKind, "wrong schema kind"},
		"empty":                {nil, "malformed"},
	}
}

// TestMalformedPayloadsDeadLettered publishes each kind of bad payload to
// the verifier's input: each must reach the dead-letter stream with its
// reason and original bytes, and the worker must go on to a valid batch.
func TestMalformedPayloadsDeadLettered(t *testing.T) {
	mem := newChecked(t)
	srv := startServer(t, false)
	js := connectJS(t, srv)
	top := ensureRun(t, js, "malformed", jetstream.FileStorage)
	subject := mustHop(t, top, schemas.KindRollout).Subject
	bad := malformedPayloads(t, mem, top.Run)
	ctx := context.Background()
	bySubjectSeq := map[uint64]string{}
	for name, p := range bad {
		ack, err := js.Publish(ctx, subject, p.data)
		if err != nil {
			t.Fatalf("publish %s: %v", name, err)
		}
		bySubjectSeq[ack.Sequence] = name
	}
	good := schemas.NewRolloutBatch(mem, rolloutRows(top.Run, 7, 3, 8))
	publishRecs(t, js, subject, []arrow.RecordBatch{good})
	good.Release()

	cfg, err := verifierConfig(top, mem)
	if err != nil {
		t.Fatal(err)
	}
	next, err := passthrough.New(schemas.KindRollout, schemas.KindVerified, mem)
	if err != nil {
		t.Fatal(err)
	}
	r, _ := startRunner(t, js, cfg, next)
	sink := sinkFor(t, js, top, mem)
	waitFor(t, 30*time.Second, "the valid batch after the bad ones", func() bool { return sink.distinct() == 3 })

	var dls []DeadLetter
	waitFor(t, 10*time.Second, "every dead letter", func() bool {
		dls, err = ReadDeadLetters(ctx, js, top, 0)
		return err == nil && len(dls) == len(bad)
	})
	for _, d := range dls {
		name := bySubjectSeq[d.Sequence]
		t.Run(name, func(t *testing.T) {
			p, ok := bad[name]
			if !ok {
				t.Fatalf("dead letter for unknown sequence %d", d.Sequence)
			}
			if d.Reason != ReasonInvalidPayload {
				t.Errorf("reason %q, want %q", d.Reason, ReasonInvalidPayload)
			}
			if !strings.Contains(d.Error, p.want) {
				t.Errorf("error %q does not mention %q", d.Error, p.want)
			}
			if string(d.Payload) != string(p.data) {
				t.Errorf("payload differs from the original (%d vs %d bytes)", len(d.Payload), len(p.data))
			}
			if d.Stage != StageVerifier || d.Stream != cfg.Stream || d.Subject != subject || d.Deliveries != 1 {
				t.Errorf("provenance %+v", d)
			}
		})
	}
	if got := metricValue(t, r.Config().Metrics.DeadLetters.WithLabelValues(StageVerifier, string(ReasonInvalidPayload))); got != float64(len(bad)) {
		t.Errorf("dead-letter counter %v, want %d", got, len(bad))
	}
}

// failingProcessor fails every call with err and counts the calls.
type failingProcessor struct {
	err   error
	calls atomic.Int64
}

func (p *failingProcessor) Process(context.Context, arrow.RecordBatch) ([]arrow.RecordBatch, error) {
	p.calls.Add(1)
	return nil, p.err
}

// TestProcessorErrorsDeadLettered checks the error routes: a permanent error
// is dead-lettered at once, a transient one retried until MaxDeliver and
// then dead-lettered.
func TestProcessorErrorsDeadLettered(t *testing.T) {
	const maxDeliver = 3
	for _, tc := range []struct {
		name      string
		err       error
		reason    Reason
		class     stage.Class
		wantCalls int64
	}{
		{"permanent", fmt.Errorf("bad prompt: %w", stage.ErrPermanent), ReasonPermanentError, stage.ClassPermanent, 1},
		{"invalid rows", fmt.Errorf("row 3: %w", schemas.ErrInvalid), ReasonPermanentError, stage.ClassInvalid, 1},
		{"invalid beats unavailable", fmt.Errorf("%w: %w", schemas.ErrInvalid, stage.ErrUnavailable), ReasonPermanentError, stage.ClassInvalid, 1},
		{"transient until MaxDeliver", errors.New("model busy"), ReasonMaxDeliveries, stage.ClassTransient, maxDeliver},
	} {
		t.Run(tc.name, func(t *testing.T) {
			mem := newChecked(t)
			srv := startServer(t, false)
			js := connectJS(t, srv)
			top := ensureRun(t, js, "errors", jetstream.MemoryStorage)
			rec := schemas.NewRolloutBatch(mem, rolloutRows(top.Run, 1, 2, 8))
			publishRecs(t, js, mustHop(t, top, schemas.KindRollout).Subject, []arrow.RecordBatch{rec})
			rec.Release()
			cfg, err := verifierConfig(top, mem)
			if err != nil {
				t.Fatal(err)
			}
			cfg.MaxDeliver, cfg.BackoffMin, cfg.BackoffMax = maxDeliver, 10*time.Millisecond, 50*time.Millisecond
			p := &failingProcessor{err: tc.err}
			startRunner(t, js, cfg, p)
			var dls []DeadLetter
			waitFor(t, 30*time.Second, "the dead letter", func() bool {
				dls, err = ReadDeadLetters(context.Background(), js, top, 0)
				return err == nil && len(dls) == 1
			})
			d := dls[0]
			if d.Reason != tc.reason || d.Class != tc.class || d.Deliveries != uint64(tc.wantCalls) {
				t.Errorf("dead letter reason %q, class %q after %d deliveries, want %q, %q after %d",
					d.Reason, d.Class, d.Deliveries, tc.reason, tc.class, tc.wantCalls)
			}
			if !strings.Contains(d.Error, tc.err.Error()) {
				t.Errorf("dead letter error %q does not name the processor's error %q", d.Error, tc.err)
			}
			if got := p.calls.Load(); got != tc.wantCalls {
				t.Errorf("processor called %d times, want %d", got, tc.wantCalls)
			}
		})
	}
}

// unavailableProcessor fails with stage.ErrUnavailable for its first failures
// calls (an outage of a dependency), then hands the batch to next.
type unavailableProcessor struct {
	failures int64
	calls    atomic.Int64
	next     stage.Processor
}

func (p *unavailableProcessor) Process(ctx context.Context, in arrow.RecordBatch) ([]arrow.RecordBatch, error) {
	if p.calls.Add(1) <= p.failures {
		return nil, fmt.Errorf("store: connection refused: %w", stage.ErrUnavailable)
	}
	return p.next.Process(ctx, in)
}

// heldSetup is a run with one rollout batch published, a sink on the
// verified stream, and a verifier configuration with fast backoff whose
// processor fails with stage.ErrUnavailable for its first failures calls.
type heldSetup struct {
	js   jetstream.JetStream
	top  Topology
	rows int
	sink *collector
	cfg  RunnerConfig
	next stage.Processor
}

func newHeldSetup(t *testing.T, run string, maxDeliver int) heldSetup {
	t.Helper()
	mem := newChecked(t)
	srv := startServer(t, false)
	h := heldSetup{js: connectJS(t, srv)}
	h.top = ensureRun(t, h.js, run, jetstream.MemoryStorage)
	rows := rolloutRows(h.top.Run, 1, 2, 8)
	h.rows = len(rows)
	rec := schemas.NewRolloutBatch(mem, rows)
	publishRecs(t, h.js, mustHop(t, h.top, schemas.KindRollout).Subject, []arrow.RecordBatch{rec})
	rec.Release()
	h.sink = sinkFor(t, h.js, h.top, mem)
	var err error
	if h.cfg, err = h.top.RunnerConfig(StageVerifier); err != nil {
		t.Fatal(err)
	}
	h.cfg.Allocator, h.cfg.MaxDeliver = mem, maxDeliver
	h.cfg.BackoffMin, h.cfg.BackoffMax = 10*time.Millisecond, 50*time.Millisecond
	if h.next, err = passthrough.New(schemas.KindRollout, schemas.KindVerified, mem); err != nil {
		t.Fatal(err)
	}
	return h
}

// TestUnavailableHeldNotDeadLettered checks that an outage longer than
// MaxDeliver tries and than AckWait loses nothing: the runner holds the
// batch and retries it in place (the heartbeat keeps it from being
// redelivered), then publishes its output once the dependency is back,
// with no dead letter and no redelivery.
func TestUnavailableHeldNotDeadLettered(t *testing.T) {
	// 60 failures at up to 50 ms each (about 3 s) outlast both MaxDeliver
	// (2) and AckWait (1 s): only holding the batch gets it through.
	// AckWait leaves the heartbeat (every AckWait/3) room on a loaded
	// machine, where a missed one would redeliver the batch.
	h := newHeldSetup(t, "outage", 2)
	h.cfg.AckWait = time.Second
	js, top, cfg := h.js, h.top, h.cfg
	p := &unavailableProcessor{failures: 60, next: h.next}
	r, _ := startRunner(t, js, cfg, p)
	waitFor(t, 30*time.Second, "the batch's rows downstream", func() bool { return h.sink.distinct() == h.rows })
	if got := p.calls.Load(); got != p.failures+1 {
		t.Errorf("processor called %d times, want %d", got, p.failures+1)
	}
	dls, err := ReadDeadLetters(context.Background(), js, top, 0)
	if err != nil || len(dls) != 0 {
		t.Errorf("dead letters %v (err %v), want none", dls, err)
	}
	m := r.Config().Metrics
	if got := metricValue(t, m.Redelivered.WithLabelValues(StageVerifier)); got != 0 {
		t.Errorf("%v redeliveries, want 0", got)
	}
	if got := metricValue(t, m.Errors.WithLabelValues(StageVerifier, "unavailable")); got != float64(p.failures) {
		t.Errorf("unavailable errors metric %v, want %d", got, p.failures)
	}
}

// TestUnavailableHandedBackAtShutdown stops a runner while it holds a
// batch for an unavailable dependency: the batch is handed back (not
// dead-lettered, not counted as a transient failure), and the next runner
// processes it once the dependency is back.
func TestUnavailableHandedBackAtShutdown(t *testing.T) {
	h := newHeldSetup(t, "handback", 3)
	js, top, cfg := h.js, h.top, h.cfg
	down := &unavailableProcessor{failures: 1 << 40, next: h.next}
	r, stop := startRunner(t, js, cfg, down)
	waitFor(t, 30*time.Second, "the batch to be held", func() bool { return down.calls.Load() >= 3 })
	stop()
	m := r.Config().Metrics
	if got := metricValue(t, m.Batches.WithLabelValues(StageVerifier, "shutdown")); got != 1 {
		t.Errorf("%v batches handed back at shutdown, want 1", got)
	}
	if got := metricValue(t, m.Errors.WithLabelValues(StageVerifier, "transient")); got != 0 {
		t.Errorf("%v transient errors, want 0", got)
	}
	if dls, err := ReadDeadLetters(context.Background(), js, top, 0); err != nil || len(dls) != 0 {
		t.Fatalf("dead letters %v (err %v), want none", dls, err)
	}
	up := &unavailableProcessor{next: h.next}
	startRunner(t, js, cfg, up)
	waitFor(t, 30*time.Second, "the batch's rows downstream", func() bool { return h.sink.distinct() == h.rows })
}

// TestPastMaxDeliver covers the path where no worker reports a failure:
// MaxDeliver deliveries are fetched and abandoned (as by crashed workers),
// the consumer keeps redelivering, and the runner that gets the next
// delivery copies it to the dead-letter stream without processing it and
// removes it from the work queue.
func TestPastMaxDeliver(t *testing.T) {
	mem := newChecked(t)
	srv := startServer(t, false)
	js := connectJS(t, srv)
	top := ensureRun(t, js, "pastmax", jetstream.MemoryStorage)
	rec := schemas.NewRolloutBatch(mem, rolloutRows(top.Run, 1, 1, 8))
	publishRecs(t, js, mustHop(t, top, schemas.KindRollout).Subject, []arrow.RecordBatch{rec})
	rec.Release()
	cfg, err := verifierConfig(top, mem)
	if err != nil {
		t.Fatal(err)
	}
	cfg.MaxDeliver, cfg.AckWait = 2, 200*time.Millisecond
	ctx := t.Context()
	// The consumer the runner makes, abandoned twice.
	probe, err := NewRunner(js, cfg, &failingProcessor{})
	if err != nil {
		t.Fatal(err)
	}
	if err := probe.ensureConsumer(ctx); err != nil {
		t.Fatal(err)
	}
	for abandoned := 0; abandoned < cfg.MaxDeliver; {
		b, err := probe.cons.Fetch(1, jetstream.FetchMaxWait(time.Second))
		if err != nil {
			t.Fatal(err)
		}
		for range b.Messages() {
			abandoned++
		}
	}
	p := &failingProcessor{}
	r, _ := startRunner(t, js, cfg, p)
	var dls []DeadLetter
	waitFor(t, 30*time.Second, "the dead letter", func() bool {
		dls, err = ReadDeadLetters(ctx, js, top, 0)
		return err == nil && len(dls) == 1
	})
	if d := dls[0]; d.Reason != ReasonMaxDeliveries || d.Class != stage.ClassTransient || d.Deliveries != 3 ||
		!strings.Contains(d.Error, "delivered 2 times") {
		t.Errorf("dead letter %s/%s after %d deliveries (%q), want %s/%s after 3, naming the 2 abandoned",
			d.Reason, d.Class, d.Deliveries, d.Error, ReasonMaxDeliveries, stage.ClassTransient)
	}
	if n := p.calls.Load(); n != 0 {
		t.Errorf("the processor was called %d times past MaxDeliver, want 0", n)
	}
	waitFor(t, 10*time.Second, "the message to leave the work queue", func() bool {
		info, err := r.stream.Info(ctx)
		return err == nil && info.State.Msgs == 0
	})
}

// blockingProcessor signals each call and then waits for release (returning
// a pass-through result) or for its context to end.
type blockingProcessor struct {
	started chan struct{}
	release chan struct{}
	next    stage.Processor
}

func (p *blockingProcessor) Process(ctx context.Context, in arrow.RecordBatch) ([]arrow.RecordBatch, error) {
	p.started <- struct{}{}
	select {
	case <-p.release:
		return p.next.Process(ctx, in)
	case <-ctx.Done():
		return nil, ctx.Err()
	}
}

// TestGracefulShutdown cancels a runner while it holds four batches, one in
// progress: work that finishes within the grace is published and acked,
// work that does not is handed back, and queued batches are never acked.
func TestGracefulShutdown(t *testing.T) {
	for _, tc := range []struct {
		name       string
		finish     bool
		grace      time.Duration
		wantLeft   uint64 // input messages left in the work queue
		wantOutput uint64 // messages in the output stream
	}{
		{"in-flight batch finishes within the grace", true, 10 * time.Second, 3, 1},
		{"in-flight batch outlives the grace", false, 100 * time.Millisecond, 4, 0},
	} {
		t.Run(tc.name, func(t *testing.T) {
			mem := newChecked(t)
			srv := startServer(t, false)
			js := connectJS(t, srv)
			top := ensureRun(t, js, "shutdown", jetstream.MemoryStorage)
			var recs []arrow.RecordBatch
			for b := range 4 {
				recs = append(recs, schemas.NewRolloutBatch(mem, rolloutRows(top.Run, b, 1, 8)))
			}
			publishRecs(t, js, mustHop(t, top, schemas.KindRollout).Subject, recs)
			for _, r := range recs {
				r.Release()
			}
			cfg, err := verifierConfig(top, mem)
			if err != nil {
				t.Fatal(err)
			}
			cfg.FetchSize, cfg.FetchWait, cfg.ShutdownGrace = 4, time.Second, tc.grace
			cfg.AckWait = time.Minute // nothing may come back by expiry
			next, err := passthrough.New(schemas.KindRollout, schemas.KindVerified, mem)
			if err != nil {
				t.Fatal(err)
			}
			p := &blockingProcessor{started: make(chan struct{}, 4), release: make(chan struct{}), next: next}
			r, err := NewRunner(js, cfg, p)
			if err != nil {
				t.Fatal(err)
			}
			ctx, cancel := context.WithCancel(context.Background())
			defer cancel()
			done := make(chan error, 1)
			go func() { done <- r.Run(ctx) }()
			<-p.started
			// Wait until the whole fetch is held, then shut down.
			waitFor(t, 10*time.Second, "four held batches", func() bool {
				info, err := r.cons.Info(context.Background())
				return err == nil && info.NumAckPending == 4
			})
			cancel()
			if tc.finish {
				close(p.release)
			}
			if err := <-done; err != nil {
				t.Fatalf("Run: %v", err)
			}
			left, out := streamMsgs(t, js, cfg.Stream), streamMsgs(t, js, mustHop(t, top, schemas.KindVerified).Stream)
			if left != tc.wantLeft || out != tc.wantOutput {
				t.Errorf("after shutdown: %d inputs left, %d outputs; want %d and %d", left, out, tc.wantLeft, tc.wantOutput)
			}
			if n := len(p.started); n != 0 {
				t.Errorf("%d queued batches were started after shutdown began", n)
			}
			// Handed-back batches are available again at once (nak, not
			// AckWait expiry, which is a minute here).
			got := 0
			waitFor(t, 10*time.Second, "the handed-back batches", func() bool {
				b, err := r.cons.Fetch(4, jetstream.FetchMaxWait(200*time.Millisecond))
				if err != nil {
					return false
				}
				for m := range b.Messages() {
					_ = m.Ack()
					got++
				}
				return uint64(got) == tc.wantLeft
			})
		})
	}
}

func streamMsgs(t testing.TB, js jetstream.JetStream, name string) uint64 {
	t.Helper()
	s, err := js.Stream(context.Background(), name)
	if err != nil {
		t.Fatal(err)
	}
	info, err := s.Info(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	return info.State.Msgs
}

// TestOutputSplitAndTooLarge checks that an output over MaxBody is split by
// rows into several messages that together hold every row once, and that an
// output whose single row cannot fit is dead-lettered.
func TestOutputSplitAndTooLarge(t *testing.T) {
	for _, tc := range []struct {
		name      string
		rows      int
		tokens    int
		maxBody   int
		wantRows  int
		wantDLQ   bool
		minOutMsg uint64
	}{
		{"split into parts", 64, 64, 8 << 10, 64, false, 2},
		{"one row too large", 1, 4096, 8 << 10, 0, true, 0},
	} {
		t.Run(tc.name, func(t *testing.T) {
			mem := newChecked(t)
			srv := startServer(t, false)
			js := connectJS(t, srv)
			top := ensureRun(t, js, "split", jetstream.MemoryStorage)
			rec := schemas.NewRolloutBatch(mem, rolloutRows(top.Run, 1, tc.rows, tc.tokens))
			publishRecs(t, js, mustHop(t, top, schemas.KindRollout).Subject, []arrow.RecordBatch{rec})
			rec.Release()
			cfg, err := verifierConfig(top, mem)
			if err != nil {
				t.Fatal(err)
			}
			cfg.MaxBody = tc.maxBody
			next, err := passthrough.New(schemas.KindRollout, schemas.KindVerified, mem)
			if err != nil {
				t.Fatal(err)
			}
			startRunner(t, js, cfg, next)
			if tc.wantDLQ {
				waitFor(t, 30*time.Second, "the dead letter", func() bool {
					dls, err := ReadDeadLetters(context.Background(), js, top, 0)
					return err == nil && len(dls) == 1 && dls[0].Reason == ReasonPermanentError &&
						strings.Contains(dls[0].Error, ErrBatchTooLarge.Error())
				})
				return
			}
			waitFor(t, 30*time.Second, "the split parts", func() bool {
				return streamMsgs(t, js, mustHop(t, top, schemas.KindVerified).Stream) >= tc.minOutMsg &&
					streamMsgs(t, js, cfg.Stream) == 0
			})
			sink := sinkFor(t, js, top, mem)
			waitFor(t, 30*time.Second, "every row", func() bool { return sink.distinct() == tc.wantRows })
			if sink.total != tc.wantRows {
				t.Errorf("%d rows delivered, want %d", sink.total, tc.wantRows)
			}
		})
	}
}

// TestRunnerConfigValidation checks that unusable configurations are
// refused with ErrInvalidConfig or ErrInvalidName.
func TestRunnerConfigValidation(t *testing.T) {
	srv := startServer(t, false)
	js := connectJS(t, srv)
	top, err := NewTopology("cfg")
	if err != nil {
		t.Fatal(err)
	}
	base, err := top.RunnerConfig(StageVerifier)
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		name string
		mut  func(*RunnerConfig)
		want error
	}{
		{"fetch too large", func(c *RunnerConfig) { c.FetchSize = MaxFetch + 1 }, ErrInvalidConfig},
		{"negative fetch", func(c *RunnerConfig) { c.FetchSize = -1 }, ErrInvalidConfig},
		{"bad stage name", func(c *RunnerConfig) { c.Stage = "a.b" }, ErrInvalidName},
		{"bad consumer", func(c *RunnerConfig) { c.Consumer = "" }, ErrInvalidName},
		{"output subject without kind", func(c *RunnerConfig) { c.OutputKind = "" }, ErrInvalidConfig},
		{"unknown input kind", func(c *RunnerConfig) { c.InputKind = "nope" }, ErrInvalidConfig},
		{"negative max deliver", func(c *RunnerConfig) { c.MaxDeliver = -1 }, ErrInvalidConfig},
		{"inverted backoff", func(c *RunnerConfig) { c.BackoffMin, c.BackoffMax = time.Second, time.Millisecond }, ErrInvalidConfig},
		{"no dead-letter subject", func(c *RunnerConfig) { c.DeadLetterSubject = "" }, ErrInvalidConfig},
	} {
		t.Run(tc.name, func(t *testing.T) {
			cfg := base
			tc.mut(&cfg)
			if _, err := NewRunner(js, cfg, &failingProcessor{}); !errors.Is(err, tc.want) {
				t.Fatalf("NewRunner: %v, want %v", err, tc.want)
			}
		})
	}
	if _, err := top.RunnerConfig("trainer"); !errors.Is(err, ErrInvalidConfig) {
		t.Errorf("unknown stage: %v", err)
	}
}
