package pipeline

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/apache/arrow-go/v18/arrow"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/wsgrpo/wsgrpo/schemas"
	"github.com/wsgrpo/wsgrpo/stages/passthrough"
	"github.com/wsgrpo/wsgrpo/stages/stage"
)

// smallStoreMax is the max_storage of the servers that run out of space.
const smallStoreMax = 1 << 20

// fillStore writes a filler stream until the server refuses writes for
// want of space, and returns a function that deletes it again.
func fillStore(t testing.TB, js jetstream.JetStream) (free func()) {
	t.Helper()
	ctx := t.Context()
	if _, err := js.CreateStream(ctx, jetstream.StreamConfig{Name: "FILL", Subjects: []string{"fill.>"}, Storage: jetstream.FileStorage}); err != nil {
		t.Fatal(err)
	}
	body := make([]byte, 16<<10)
	for i := 0; ; i++ {
		if _, err := js.Publish(ctx, "fill.x", body); err != nil {
			if !IsStorageFull(err) {
				t.Fatalf("filling the store: %v (want an out-of-space error)", err)
			}
			break
		}
		if i > 10*smallStoreMax/len(body) {
			t.Fatal("the store never filled")
		}
	}
	return func() {
		if err := js.DeleteStream(context.Background(), "FILL"); err != nil {
			t.Fatal(err)
		}
	}
}

// runUntilStopped runs r until it returns on its own and returns its error.
func runUntilStopped(t testing.TB, r *Runner) error {
	t.Helper()
	done := make(chan error, 1)
	ctx, cancel := context.WithCancel(t.Context())
	defer cancel()
	go func() { done <- r.Run(ctx) }()
	select {
	case err := <-done:
		return err
	case <-time.After(30 * time.Second):
		cancel()
		t.Fatalf("the runner did not stop on its own within 30s (stopped: %v)", <-done)
		return nil
	}
}

// TestStorageFull runs a stage whose writes meet a full store: the
// JetStream store (its max_storage reached) when it publishes outputs or a
// dead letter, or the processor's own store. The runner hands the batch
// back unacknowledged, never terminating it, stops, and Run returns an
// error wrapping ErrStorageFull that says which store is full. Once space
// is freed, a new runner gets the batch again and finishes it: nothing is
// lost, nothing is dead-lettered for want of space.
func TestStorageFull(t *testing.T) {
	storageFull := fmt.Errorf("trajectory log: insert: %w", stage.ErrStorageFull)
	for _, tc := range []struct {
		name   string
		fill   bool // fill the JetStream store before the first runner
		hook   bool // the runner asks the server (RunnerConfig.StorageErr)
		first  func(next stage.Processor) stage.Processor
		max1   int // MaxDeliver of the first runner
		second func(next stage.Processor) stage.Processor
		max2   int
		// after space is freed: the dead letter's reason, or "" when the
		// batch is to arrive downstream
		reason Reason
		calls  int64 // calls of the first processor, both runs
	}{
		{name: "dead letter of a permanent error", fill: true, hook: true,
			first: failWith(fmt.Errorf("bad row: %w", stage.ErrPermanent)), max1: 5,
			reason: ReasonPermanentError, calls: 2},
		{name: "dead letter on the last delivery", fill: true, hook: true,
			first: failWith(errors.New("model busy")), max1: 1, max2: 1,
			reason: ReasonMaxDeliveries, calls: 1},
		{name: "dead letter, the server's reply only", fill: true, hook: false,
			first: failWith(fmt.Errorf("bad row: %w", stage.ErrPermanent)), max1: 5,
			reason: ReasonPermanentError, calls: 2},
		{name: "outputs", fill: true, hook: true,
			first: same, max1: 1, second: same, max2: 5},
		{name: "the processor's store, on the last delivery", hook: true,
			first: failWith(storageFull), max1: 1, second: same, max2: 5, calls: 1},
	} {
		t.Run(tc.name, func(t *testing.T) {
			mem := newChecked(t)
			dir := t.TempDir()
			srv, err := StartServer(ServerConfig{StoreDir: dir, MaxStore: smallStoreMax})
			if err != nil {
				t.Fatal(err)
			}
			t.Cleanup(srv.Shutdown)
			js := connectJS(t, srv)
			top := ensureRun(t, js, "full", jetstream.FileStorage)
			rows := rolloutRows(top.Run, 1, 2, 8)
			rec := schemas.NewRolloutBatch(mem, rows)
			publishRecs(t, js, mustHop(t, top, schemas.KindRollout).Subject, []arrow.RecordBatch{rec})
			rec.Release()
			free := func() {}
			if tc.fill {
				free = fillStore(t, js)
			}
			cfg, err := verifierConfig(top, mem)
			if err != nil {
				t.Fatal(err)
			}
			if tc.hook {
				cfg.StorageErr = srv.StorageErr
			}
			next, err := passthrough.New(schemas.KindRollout, schemas.KindVerified, mem)
			if err != nil {
				t.Fatal(err)
			}
			counted := &countingProcessor{next: tc.first(next)}

			cfg.MaxDeliver = tc.max1
			r, err := NewRunner(js, cfg, counted)
			if err != nil {
				t.Fatal(err)
			}
			err = runUntilStopped(t, r)
			if !errors.Is(err, ErrStorageFull) {
				t.Fatalf("Run = %v, want an error wrapping ErrStorageFull", err)
			}
			var sf *StorageFullError
			switch {
			case !tc.fill:
				if !errors.Is(err, storageFull) {
					t.Errorf("Run = %v, want the processor's error", err)
				}
			case !errors.As(err, &sf) || sf.What != storeWhat:
				t.Errorf("Run = %v, want a StorageFullError of %s", err, storeWhat)
			case tc.hook && (sf.Where != dir || sf.Free < 0):
				t.Errorf("Run = %v, want it to name the store directory %s and the space free there", err, dir)
			}
			t.Logf("Run: %v", err)
			// Handed back: neither acknowledged nor terminated, and not
			// dead-lettered.
			st, err := js.Stream(t.Context(), mustHop(t, top, schemas.KindRollout).Stream)
			if err != nil {
				t.Fatal(err)
			}
			if info, err := st.Info(t.Context()); err != nil || info.State.Msgs != 1 {
				t.Fatalf("input stream holds %v messages (err %v), want the batch still there", info.State.Msgs, err)
			}
			if dls, err := ReadDeadLetters(t.Context(), js, top, 0); err != nil || len(dls) != 0 {
				t.Fatalf("dead letters %v (err %v), want none while the store is full", dls, err)
			}

			// Space is freed: the batch comes back and is finished.
			free()
			sink := sinkFor(t, js, top, mem)
			proc := stage.Processor(counted)
			if tc.second != nil {
				proc = tc.second(next)
			}
			cfg.MaxDeliver = cmp.Or(tc.max2, DefaultMaxDeliver)
			startRunner(t, js, cfg, proc)
			if tc.reason == "" {
				waitFor(t, 30*time.Second, "the batch's rows downstream", func() bool { return sink.distinct() == len(rows) })
			} else {
				var dls []DeadLetter
				waitFor(t, 30*time.Second, "the dead letter", func() bool {
					dls, err = ReadDeadLetters(t.Context(), js, top, 0)
					return err == nil && len(dls) == 1
				})
				if dls[0].Reason != tc.reason {
					t.Errorf("dead letter reason %s, want %s", dls[0].Reason, tc.reason)
				}
			}
			if n := counted.calls.Load(); tc.calls > 0 && n != tc.calls {
				t.Errorf("the first processor was called %d times, want %d", n, tc.calls)
			}
		})
	}
}

// same keeps the pass-through processor.
func same(next stage.Processor) stage.Processor { return next }

// failWith returns a processor that always fails with err.
func failWith(err error) func(stage.Processor) stage.Processor {
	return func(stage.Processor) stage.Processor { return &failingProcessor{err: err} }
}

// countingProcessor counts the calls of next.
type countingProcessor struct {
	next  stage.Processor
	calls atomic.Int64
}

func (p *countingProcessor) Process(ctx context.Context, in arrow.RecordBatch) ([]arrow.RecordBatch, error) {
	p.calls.Add(1)
	return p.next.Process(ctx, in)
}

// TestServerStorageErr checks what the embedded server reports: nothing
// while there is room, the line the server logged once a write failed for
// want of disk, naming the store directory.
func TestServerStorageErr(t *testing.T) {
	srv := startServer(t, false)
	if err := srv.StorageErr(); err != nil {
		t.Fatalf("StorageErr = %v on an empty server", err)
	}
	srv.watchLog("JetStream stream 'WSGRPO_x_PROMPT' has 3 consumers") // not about space
	line := "Filestore [WSGRPO_x_PROMPT] Critical write error: write /x/msgs/3.blk: no space left on device"
	srv.watchLog(line)
	srv.watchLog("a later line: no space left on device")
	err := srv.StorageErr()
	var sf *StorageFullError
	if !errors.As(err, &sf) || !errors.Is(err, ErrStorageFull) || sf.Where != srv.cfg.StoreDir || !strings.Contains(err.Error(), line) {
		t.Fatalf("StorageErr = %v, want a StorageFullError at %s quoting %q", err, srv.cfg.StoreDir, line)
	}
}

// TestIsStorageFull checks the recognition of out-of-space errors.
func TestIsStorageFull(t *testing.T) {
	for _, tc := range []struct {
		name string
		err  error
		want bool
	}{
		{"insufficient resources", &jetstream.APIError{Code: 503, ErrorCode: jsInsufficientResources, Description: "insufficient resources"}, true},
		{"account limits", fmt.Errorf("publish: %w", &jetstream.APIError{Code: 400, ErrorCode: jsAccountResourcesExceeded}), true},
		{"storage limits", &jetstream.APIError{Code: 500, ErrorCode: jsStorageResourcesExceeded}, true},
		{"stream not found", jetstream.ErrStreamNotFound, false},
		{"sentinel", fmt.Errorf("logger: %w", stage.ErrStorageFull), true},
		{"chdb", errors.New("Code: 243. DB::Exception: Cannot reserve 1.00 MiB, not enough space. (NOT_ENOUGH_SPACE)"), true},
		{"timeout", context.DeadlineExceeded, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if got := IsStorageFull(tc.err); got != tc.want {
				t.Errorf("IsStorageFull(%v) = %v, want %v", tc.err, got, tc.want)
			}
		})
	}
}

// TestConsumerLimitLifted: a consumer made by an older wsgrpo, whose
// server stopped redelivering at MaxDeliver, is updated to redeliver
// without limit when a runner starts on it (the runner counts).
func TestConsumerLimitLifted(t *testing.T) {
	srv := startServer(t, false)
	js := connectJS(t, srv)
	top := ensureRun(t, js, "older", jetstream.MemoryStorage)
	cfg, err := top.RunnerConfig(StageVerifier)
	if err != nil {
		t.Fatal(err)
	}
	old := consumerConfig(cfg.Consumer, DefaultAckWait, defaultMaxAckPending)
	old.MaxDeliver = DefaultMaxDeliver
	if _, err := js.CreateOrUpdateConsumer(t.Context(), cfg.Stream, old); err != nil {
		t.Fatal(err)
	}
	r, err := NewRunner(js, cfg, &failingProcessor{})
	if err != nil {
		t.Fatal(err)
	}
	if err := r.ensureConsumer(t.Context()); err != nil {
		t.Fatal(err)
	}
	info, err := r.cons.Info(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	if info.Config.MaxDeliver != -1 {
		t.Errorf("consumer MaxDeliver %d, want -1 (no limit)", info.Config.MaxDeliver)
	}
}
