package pipeline

import (
	"context"
	"fmt"
	"log/slog"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"syscall"
	"testing"
	"time"

	"github.com/apache/arrow-go/v18/arrow"
	"github.com/apache/arrow-go/v18/arrow/memory"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/wsgrpo/wsgrpo/schemas"
	"github.com/wsgrpo/wsgrpo/stages/passthrough"
	"github.com/wsgrpo/wsgrpo/stages/stage"
)

// Environment of the crash-test worker process.
const (
	envWorkerURL    = "WSGRPO_PIPELINE_TEST_WORKER_URL"
	envWorkerRun    = "WSGRPO_PIPELINE_TEST_WORKER_RUN"
	envWorkerHold   = "WSGRPO_PIPELINE_TEST_WORKER_HOLD"
	envWorkerMarker = "WSGRPO_PIPELINE_TEST_WORKER_MARKER"
)

// killAckWait is the consumer AckWait of the crash test: how long after the
// kill the held batch is redelivered.
const killAckWait = 3 * time.Second

// verifierConfig is the verifier stage of top with fast test settings.
func verifierConfig(top Topology, mem memory.Allocator) (RunnerConfig, error) {
	cfg, err := top.RunnerConfig(StageVerifier)
	if err != nil {
		return cfg, err
	}
	cfg.Allocator = mem
	cfg.AckWait = killAckWait
	cfg.BackoffMin = 20 * time.Millisecond
	cfg.BackoffMax = 500 * time.Millisecond
	cfg.FetchWait = 200 * time.Millisecond
	return cfg, nil
}

// holdingProcessor passes batches through, except the one holding row id
// hold: for it, it writes the marker file and blocks until the process is
// killed (the runner's heartbeat keeps the batch leased meanwhile).
type holdingProcessor struct {
	next   stage.Processor
	hold   string
	marker string
}

func (p holdingProcessor) Process(ctx context.Context, in arrow.RecordBatch) ([]arrow.RecordBatch, error) {
	ids, err := schemas.RowIDs(in)
	if err != nil {
		return nil, err
	}
	for _, id := range ids {
		if id == p.hold {
			if err := os.WriteFile(p.marker, []byte(id), 0o600); err != nil {
				return nil, err
			}
			<-ctx.Done() // only a kill or the end of the grace gets past this
			return nil, ctx.Err()
		}
	}
	return p.next.Process(ctx, in)
}

// runKillWorker is the body of the worker process: a verifier runner that
// holds one batch forever. It returns the process exit code.
func runKillWorker() int {
	log := slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelWarn}))
	fail := func(err error) int {
		log.Error("worker failed", "err", err)
		return 2
	}
	nc, err := Connect(os.Getenv(envWorkerURL))
	if err != nil {
		return fail(err)
	}
	defer nc.Close()
	js, err := NewJetStream(nc)
	if err != nil {
		return fail(err)
	}
	top, err := NewTopology(os.Getenv(envWorkerRun))
	if err != nil {
		return fail(err)
	}
	cfg, err := verifierConfig(top, nil)
	if err != nil {
		return fail(err)
	}
	cfg.Logger = log
	next, err := passthrough.New(schemas.KindRollout, schemas.KindVerified, nil)
	if err != nil {
		return fail(err)
	}
	r, err := NewRunner(js, cfg, holdingProcessor{next: next, hold: os.Getenv(envWorkerHold), marker: os.Getenv(envWorkerMarker)})
	if err != nil {
		return fail(err)
	}
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGTERM)
	defer stop()
	if err := r.Run(ctx); err != nil {
		return fail(err)
	}
	return 0
}

// TestWorkerKilledMidBatch starts a worker process, lets it take a batch,
// SIGKILLs it while it holds the batch, and checks that another worker
// completes that batch and every other one.
func TestWorkerKilledMidBatch(t *testing.T) {
	const batches = 40
	mem := newChecked(t)
	srv := startServer(t, true)
	js := connectJS(t, srv)
	top := ensureRun(t, js, "kill", jetstream.FileStorage)
	subject := mustHop(t, top, schemas.KindRollout).Subject

	recs := make([]arrow.RecordBatch, batches)
	for b := range recs {
		recs[b] = schemas.NewRolloutBatch(mem, rolloutRows(top.Run, b, 2, 16))
	}
	hold := schemas.TrajectoryID(top.Run, 0, "p0", 0)
	publishRecs(t, js, subject, recs[:1]) // the worker's first fetch gets it

	marker := filepath.Join(t.TempDir(), "holding")
	cmd := exec.Command(os.Args[0], "-test.run=^$")
	cmd.Env = append(os.Environ(),
		envWorkerURL+"="+srv.URL(), envWorkerRun+"="+top.Run,
		envWorkerHold+"="+hold, envWorkerMarker+"="+marker)
	cmd.Stderr = os.Stderr
	if err := cmd.Start(); err != nil {
		t.Fatalf("start worker: %v", err)
	}
	exited := make(chan error, 1)
	go func() { exited <- cmd.Wait() }()
	t.Cleanup(func() {
		_ = cmd.Process.Kill()
		if err := <-exited; err != nil {
			t.Logf("worker process: %v", err) // killed: an exit error is expected
		}
	})
	waitFor(t, 30*time.Second, "the worker to hold the batch", func() bool {
		_, err := os.Stat(marker)
		return err == nil
	})
	publishRecs(t, js, subject, recs[1:])
	for _, r := range recs {
		r.Release()
	}

	cfg, err := verifierConfig(top, mem)
	if err != nil {
		t.Fatal(err)
	}
	next, err := passthrough.New(schemas.KindRollout, schemas.KindVerified, mem)
	if err != nil {
		t.Fatal(err)
	}
	survivor, _ := startRunner(t, js, cfg, next)
	sinkCfg, err := top.RunnerConfig(StageLabeler)
	if err != nil {
		t.Fatal(err)
	}
	sinkCfg.OutputSubject, sinkCfg.OutputKind = "", ""
	sinkCfg.Allocator, sinkCfg.FetchWait = mem, 200*time.Millisecond
	sink := newCollector()
	startRunner(t, js, sinkCfg, sink)

	// The held batch is still leased: the rest flows around it.
	waitFor(t, 30*time.Second, "the other batches", func() bool { return sink.distinct() >= 2*(batches-1) })
	if sink.has(hold) {
		t.Fatal("held batch completed while its worker was alive")
	}
	if err := cmd.Process.Signal(syscall.SIGKILL); err != nil {
		t.Fatalf("kill worker: %v", err)
	}
	if err := <-exited; err == nil {
		t.Fatal("worker exited cleanly; want killed")
	}
	exited <- nil // for the cleanup
	waitFor(t, 30*time.Second, "the held batch after the kill", func() bool { return sink.has(hold) })
	waitFor(t, 10*time.Second, "every row", func() bool { return sink.distinct() == 2*batches })
	if got := metricValue(t, survivor.Config().Metrics.Redelivered.WithLabelValues(cfg.Stage)); got < 1 {
		t.Errorf("survivor saw %v redeliveries, want >= 1", got)
	}
}

// TestServerRestartMidRun restarts the NATS server (file storage) while the
// chain runs: the workers reconnect and every row still arrives.
func TestServerRestartMidRun(t *testing.T) {
	const batches = 1500
	mem := newChecked(t)
	dir := t.TempDir()
	srv, err := StartServer(ServerConfig{StoreDir: dir, Listen: true})
	if err != nil {
		t.Fatal(err)
	}
	port := srv.Port()
	var restarted *Server
	t.Cleanup(func() {
		if restarted != nil {
			restarted.Shutdown()
		}
	})
	js := connectJS(t, srv)
	js2 := connectJS(t, srv)
	top := ensureRun(t, js, "restart", jetstream.FileStorage)
	recs := make([]arrow.RecordBatch, batches)
	for b := range recs {
		recs[b] = schemas.NewPromptBatch(mem, promptRows(top.Run, b, 1))
	}
	publishRecs(t, js, mustHop(t, top, schemas.KindPrompt).Subject, recs)
	for _, r := range recs {
		r.Release()
	}
	sink, stop := startChain(t, []jetstream.JetStream{js, js2}, top, mem, 2, nil)

	waitFor(t, time.Minute, "a third of the rows", func() bool { return sink.distinct() >= batches/3 })
	srv.Shutdown()
	waitFor(t, 10*time.Second, "clients to notice", func() bool { return !js.Conn().IsConnected() })
	restarted, err = StartServer(ServerConfig{StoreDir: dir, Listen: true, Port: port})
	if err != nil {
		t.Fatalf("restart server: %v", err)
	}
	at := sink.distinct()
	waitFor(t, 90*time.Second, "every row after the restart", func() bool { return sink.distinct() >= batches })
	stop()
	if at >= batches {
		t.Fatalf("all rows had arrived before the restart (%d); the test did not exercise it", at)
	}
	if got := sink.distinct(); got != batches {
		t.Fatalf("distinct rows = %d, want %d", got, batches)
	}
	for b := range batches {
		if id := schemas.TrajectoryID(top.Run, int64(b), fmt.Sprintf("p%d-0", b), 0); !sink.has(id) {
			t.Fatalf("row %s lost", id)
		}
	}
}
