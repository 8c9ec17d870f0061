package pipeline

import (
	"context"
	"fmt"
	"os"
	"sync"
	"testing"
	"time"

	"github.com/apache/arrow-go/v18/arrow"
	"github.com/apache/arrow-go/v18/arrow/memory"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/prometheus/client_golang/prometheus"
	dto "github.com/prometheus/client_model/go"

	"github.com/wsgrpo/wsgrpo/schemas"
	"github.com/wsgrpo/wsgrpo/stages/passthrough"
	"github.com/wsgrpo/wsgrpo/stages/stage"
)

// TestMain doubles as the worker process of the crash test: when the worker
// environment variable is set, the test binary runs one stage runner instead
// of the tests (see runKillWorker).
func TestMain(m *testing.M) {
	if os.Getenv(envWorkerURL) != "" {
		os.Exit(runKillWorker())
	}
	os.Exit(m.Run())
}

// newChecked returns a checked allocator that fails t if anything allocated
// is still live at cleanup.
func newChecked(t testing.TB) *memory.CheckedAllocator {
	t.Helper()
	mem := memory.NewCheckedAllocator(memory.NewGoAllocator())
	t.Cleanup(func() { mem.AssertSize(t, 0) })
	return mem
}

// startServer starts an embedded server with file storage in a temp dir.
func startServer(t testing.TB, listen bool) *Server {
	t.Helper()
	s, err := StartServer(ServerConfig{StoreDir: t.TempDir(), Listen: listen})
	if err != nil {
		t.Fatalf("start server: %v", err)
	}
	t.Cleanup(s.Shutdown)
	return s
}

// connectJS opens a connection to s (closed at cleanup) and returns its
// JetStream API.
func connectJS(t testing.TB, s *Server) jetstream.JetStream {
	t.Helper()
	nc, err := s.Connect()
	if err != nil {
		t.Fatalf("connect: %v", err)
	}
	t.Cleanup(nc.Close)
	js, err := NewJetStream(nc)
	if err != nil {
		t.Fatal(err)
	}
	return js
}

// ensureRun creates the topology of run and returns it.
func ensureRun(t testing.TB, js jetstream.JetStream, run string, storage jetstream.StorageType) Topology {
	t.Helper()
	top, err := NewTopology(run)
	if err != nil {
		t.Fatal(err)
	}
	top.Storage = storage
	if err := top.Ensure(context.Background(), js); err != nil {
		t.Fatalf("ensure: %v", err)
	}
	return top
}

// waitFor polls cond until it holds or the deadline passes.
func waitFor(t testing.TB, timeout time.Duration, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out after %s waiting for %s", timeout, what)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// promptRows returns rows prompt rows of batch b of run.
func promptRows(run string, b, rows int) []schemas.Prompt {
	out := make([]schemas.Prompt, rows)
	for i := range out {
		out[i] = schemas.Prompt{
			RunID: run, Step: int64(b), PromptID: fmt.Sprintf("p%d-%d", b, i), Task: "wiring",
			Prompt: "1+1=", PromptTokenIDs: []int32{1, 2, 3}, ReferenceAnswer: "2",
		}
	}
	return out
}

// rolloutRows returns rows rollout rows of batch b with tokens completion
// tokens each.
func rolloutRows(run string, b, rows, tokens int) []schemas.Rollout {
	out := make([]schemas.Rollout, rows)
	for i := range out {
		p := schemas.Prompt{RunID: run, Step: int64(b), PromptID: fmt.Sprintf("p%d", b), Task: "wiring", Prompt: "q", PromptTokenIDs: []int32{1, 2}}
		ids := make([]int32, tokens)
		lps := make([]float32, tokens)
		for k := range ids {
			ids[k] = int32(k % 500)
			lps[k] = -float32(k%7) / 3
		}
		out[i] = schemas.Rollout{
			Prompt: p, TrajectoryID: schemas.TrajectoryID(run, int64(b), p.PromptID, int32(i)),
			GroupID: schemas.GroupID(run, int64(b), p.PromptID), SampleIndex: int32(i),
			CompletionTokenIDs: ids, TokenLogprobs: lps, StepEnds: []int32{int32(tokens)}, FinishReason: "length",
		}
	}
	return out
}

// publishRecs publishes batches to subject asynchronously, ids "seed:<first row id>",
// and waits for all PubAcks.
func publishRecs(t testing.TB, js jetstream.JetStream, subject string, recs []arrow.RecordBatch) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	for start := 0; start < len(recs); start += 500 {
		var msgs []*nats.Msg
		for i := start; i < min(start+500, len(recs)); i++ {
			ids, err := schemas.RowIDs(recs[i])
			if err != nil || len(ids) == 0 {
				t.Fatalf("seed batch %d has no row ids: %v", i, err)
			}
			parts, err := EncodeParts(recs[i], 0, "seed:"+ids[0])
			if err != nil {
				t.Fatal(err)
			}
			k, _ := schemas.KindOf(recs[i])
			msgs = append(msgs, partMsg(subject, k, parts[0], ""))
		}
		if _, err := publishParts(ctx, js, msgs); err != nil {
			t.Fatalf("seed publish: %v", err)
		}
	}
}

// collector is a sink processor that records every row id it sees.
type collector struct {
	mu      sync.Mutex
	seen    map[string]int
	total   int
	batches [][]string
}

func newCollector() *collector { return &collector{seen: map[string]int{}} }

func (c *collector) Process(_ context.Context, in arrow.RecordBatch) ([]arrow.RecordBatch, error) {
	ids, err := schemas.RowIDs(in)
	if err != nil {
		return nil, err
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	for _, id := range ids {
		c.seen[id]++
		c.total++
	}
	c.batches = append(c.batches, ids)
	return nil, nil
}

// distinct returns the number of distinct ids seen.
func (c *collector) distinct() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return len(c.seen)
}

func (c *collector) has(id string) bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.seen[id] > 0
}

// startRunner runs a runner until the test ends; the returned function
// stops it and waits for Run to return.
func startRunner(t testing.TB, js jetstream.JetStream, cfg RunnerConfig, p stage.Processor) (*Runner, func()) {
	t.Helper()
	r, err := NewRunner(js, cfg, p)
	if err != nil {
		t.Fatalf("new runner: %v", err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- r.Run(ctx) }()
	var once sync.Once
	stop := func() {
		once.Do(func() {
			cancel()
			if err := <-done; err != nil {
				t.Errorf("runner %s: %v", cfg.Stage, err)
			}
		})
	}
	t.Cleanup(stop)
	return r, stop
}

// chainConfigs returns the runner configs of the three hops
// prompt->rollout->verified->labeled plus the learner sink, with fast
// retry settings for tests.
func chainConfigs(t testing.TB, top Topology, mem memory.Allocator) []RunnerConfig {
	t.Helper()
	var out []RunnerConfig
	for _, st := range []string{StageSampler, StageVerifier, StageLabeler, StageLearner} {
		cfg, err := top.RunnerConfig(st)
		if err != nil {
			t.Fatal(err)
		}
		cfg.Allocator = mem
		cfg.FetchSize = MaxFetch
		cfg.AckWait = 5 * time.Second
		cfg.BackoffMin = 20 * time.Millisecond
		cfg.BackoffMax = 500 * time.Millisecond
		cfg.FetchWait = 500 * time.Millisecond
		cfg.LagInterval = 100 * time.Millisecond
		out = append(out, cfg)
	}
	return out
}

// startChain starts workers runners per hop (passthrough processors) and one
// collecting sink; it returns the sink and a function stopping them all.
func startChain(t testing.TB, js []jetstream.JetStream, top Topology, mem memory.Allocator, workers int, m *Metrics) (*collector, func()) {
	t.Helper()
	cfgs := chainConfigs(t, top, mem)
	var stops []func()
	for i, cfg := range cfgs[:3] {
		p, err := passthrough.New(cfg.InputKind, cfg.OutputKind, mem)
		if err != nil {
			t.Fatal(err)
		}
		cfg.Metrics = m
		for w := range workers {
			_, stop := startRunner(t, js[(i*workers+w)%len(js)], cfg, p)
			stops = append(stops, stop)
		}
	}
	sink := newCollector()
	cfgs[3].Metrics = m
	cfgs[3].Concurrency = 2
	_, stop := startRunner(t, js[len(js)-1], cfgs[3], sink)
	stops = append(stops, stop)
	return sink, func() {
		for _, s := range stops {
			s()
		}
	}
}

// metricValue returns the value of a counter or gauge.
func metricValue(t testing.TB, m prometheus.Metric) float64 {
	t.Helper()
	var pb dto.Metric
	if err := m.Write(&pb); err != nil {
		t.Fatal(err)
	}
	switch {
	case pb.Counter != nil:
		return pb.Counter.GetValue()
	case pb.Gauge != nil:
		return pb.Gauge.GetValue()
	}
	t.Fatalf("metric %s is neither a counter nor a gauge", m.Desc())
	return 0
}
