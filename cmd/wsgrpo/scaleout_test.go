package main

import (
	"context"
	"fmt"
	"log/slog"
	"maps"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/wsgrpo/wsgrpo/model/checkpoint"
	"github.com/wsgrpo/wsgrpo/model/shaping"
	"github.com/wsgrpo/wsgrpo/pipeline"
	"github.com/wsgrpo/wsgrpo/pipeline/pipetest"
	"github.com/wsgrpo/wsgrpo/pipeline/pipetest/natsproc"
	"github.com/wsgrpo/wsgrpo/prompts"
	"github.com/wsgrpo/wsgrpo/schemas"
	"github.com/wsgrpo/wsgrpo/schemas/ddl"
	"github.com/wsgrpo/wsgrpo/tasks"
	"github.com/wsgrpo/wsgrpo/tasks/arith"
	"github.com/wsgrpo/wsgrpo/tracelog"
	"github.com/wsgrpo/wsgrpo/tracelog/chtest"
)

// The scale-out run: scaleOutSteps learner updates of scaleOutPrompts
// groups of scaleOutSamples completions each.
const (
	scaleOutRun     = "scaleout"
	scaleOutSteps   = 8
	scaleOutPrompts = 2
	scaleOutSamples = 4
)

// osProc is a wsgrpo process a test started (the test binary re-executed
// as the wsgrpo binary, envCLI), its stderr kept in a file for the
// failure report.
type osProc struct {
	name   string
	cmd    *exec.Cmd
	stderr string
	exited chan struct{}
	err    error // how it exited, once exited is closed
}

// startOSProc starts `wsgrpo args...` as process name, its stderr in
// dir/name.stderr; cleanup kills it if it still runs.
func startOSProc(t *testing.T, dir, name string, args ...string) *osProc {
	t.Helper()
	p := &osProc{name: name, stderr: filepath.Join(dir, name+".stderr"), exited: make(chan struct{})}
	f, err := os.Create(p.stderr)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	p.cmd = exec.Command(os.Args[0], args...)
	p.cmd.Env = append(os.Environ(), envCLI+"=1")
	p.cmd.Stderr = f
	if err := p.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	go func() { p.err = p.cmd.Wait(); close(p.exited) }()
	t.Cleanup(func() { _ = p.cmd.Process.Kill(); <-p.exited })
	return p
}

// stop sends sig and waits up to limit for the process to exit; it
// returns how it exited.
func (p *osProc) stop(t *testing.T, sig syscall.Signal, limit time.Duration) error {
	t.Helper()
	if err := p.cmd.Process.Signal(sig); err != nil {
		t.Fatalf("%s: signal %v: %v", p.name, sig, err)
	}
	select {
	case <-p.exited:
		return p.err
	case <-time.After(limit):
		t.Fatalf("%s did not exit within %s of %v", p.name, limit, sig)
		return nil
	}
}

// signal sends sig to the process.
func (p *osProc) signal(t *testing.T, sig syscall.Signal) {
	t.Helper()
	if err := p.cmd.Process.Signal(sig); err != nil {
		t.Fatalf("%s: signal %v: %v", p.name, sig, err)
	}
}

// state says whether the process runs or how it exited.
func (p *osProc) state() string {
	select {
	case <-p.exited:
		if p.err == nil {
			return "exited 0"
		}
		return p.err.Error()
	default:
		return "running"
	}
}

// scaleOut is a run whose every stage is its own process, against a
// nats-server process and a ClickHouse server.
type scaleOut struct {
	t     *testing.T
	js    jetstream.JetStream // this process's client, once connected
	dir   string              // the processes' stderr files
	conf  string              // the stage processes' configuration file
	cfg   Config              // the same configuration, for this process
	nats  *natsproc.Server
	procs []*osProc
	// sourceLog is the log of the prompt source this process runs, in
	// the file sourceFile.
	sourceLog  *slog.Logger
	sourceFile string
}

// newScaleOut starts the nats-server process (JetStream in a temporary
// store) and writes the stage processes' configuration: the run logs to
// the ClickHouse server dsn and trains model with the grpo shaper (no
// preference model needed).
func newScaleOut(t *testing.T, dsn, model string) *scaleOut {
	t.Helper()
	s := &scaleOut{t: t, dir: t.TempDir()}
	s.sourceFile = filepath.Join(s.dir, "source.log")
	f, err := os.Create(s.sourceFile)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = f.Close() })
	s.sourceLog = slog.New(slog.NewTextHandler(f, &slog.HandlerOptions{Level: slog.LevelDebug}))
	natsFile, port := pipetest.NATSProcessConf(t, s.dir)
	s.nats = natsproc.Start(t, natsFile, port)

	s.cfg = DefaultConfig()
	s.cfg.Run, s.cfg.Dir, s.cfg.NATS, s.cfg.ClickHouseDSN = scaleOutRun, filepath.Join(s.dir, "run"), fmt.Sprintf("nats://127.0.0.1:%d", port), dsn
	s.cfg.Train.Model, s.cfg.Train.PromptsPerStep, s.cfg.Train.Steps = model, scaleOutPrompts, scaleOutSteps
	s.cfg.Train.Arith.MaxOps = 2 // short prompts for the small context
	s.cfg.Shaping.Shaper = shaping.GRPO
	s.cfg.Sampler = SamplerConfig{Samples: scaleOutSamples, MaxNewTokens: 12}
	// A killed worker's batch comes back after ack_wait; the workers that
	// live send heartbeats every third of it.
	s.cfg.Runner.AckWait = 3 * time.Second
	s.cfg.Learner.GroupsPerStep = scaleOutPrompts
	s.cfg.Learner.CheckpointEvery = 2
	// As in the shipped configurations: a sampler swaps a new version in
	// while it samples with the one it holds, so the first batch after an
	// update is one version stale.
	s.cfg.Learner.MaxStaleness = 2
	yaml := fmt.Sprintf(`run: %s
dir: %s
clickhouse_dsn: %s
log:
  level: info
runner:
  ack_wait: %s
sampler:
  samples: %d
  max_new_tokens: %d
shaping:
  shaper: %s
train:
  model: %s
  prompts_per_step: %d
  steps: %d
  arith:
    max_ops: %d
learner:
  groups_per_step: %d
  checkpoint_every: %d
  max_staleness: %d
`, s.cfg.Run, s.cfg.Dir, dsn, s.cfg.Runner.AckWait, s.cfg.Sampler.Samples, s.cfg.Sampler.MaxNewTokens, s.cfg.Shaping.Shaper,
		model, s.cfg.Train.PromptsPerStep, s.cfg.Train.Steps, s.cfg.Train.Arith.MaxOps, s.cfg.Learner.GroupsPerStep, s.cfg.Learner.CheckpointEvery, s.cfg.Learner.MaxStaleness)
	s.conf = filepath.Join(s.dir, "run.yaml")
	if err := os.WriteFile(s.conf, []byte(yaml), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := s.cfg.Validate(); err != nil {
		t.Fatal(err)
	}
	return s
}

// stage starts `wsgrpo stage NAME --config FILE --nats URL` as copy n of
// the stage.
func (s *scaleOut) stage(name string, n int) *osProc {
	s.t.Helper()
	p := startOSProc(s.t, s.dir, fmt.Sprintf("%s-%d", name, n), "stage", name, "--config", s.conf, "--nats", s.cfg.NATS)
	s.procs = append(s.procs, p)
	return p
}

// report logs the tail of every process's stderr and of the server's log.
func (s *scaleOut) report() {
	for _, p := range s.procs {
		b, _ := os.ReadFile(p.stderr)
		s.t.Logf("--- %s (%s), stderr:\n%s", p.name, p.state(), tailText(string(b), 3000))
	}
	if b, err := os.ReadFile(s.sourceFile); err == nil {
		s.t.Logf("--- prompt source (this process):\n%s", tailText(string(b), 3000))
	}
	if s.nats != nil {
		s.t.Logf("--- nats-server log:\n%s", tailText(s.nats.Log(), 3000))
	}
	if s.js != nil {
		s.t.Logf("--- streams and consumers:\n%s", s.queues())
		s.t.Logf("--- run state:\n%s", s.runState())
	}
}

// queues describes the run's streams and their consumers: messages,
// and what each consumer has pending, unacknowledged and redelivered.
func (s *scaleOut) queues() string {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	var b strings.Builder
	for name := range s.js.StreamNames(ctx).Name() {
		st, err := s.js.Stream(ctx, name)
		if err != nil {
			fmt.Fprintf(&b, "%s: %v\n", name, err)
			continue
		}
		info, err := st.Info(ctx)
		if err != nil {
			fmt.Fprintf(&b, "%s: %v\n", name, err)
			continue
		}
		fmt.Fprintf(&b, "%s: %d messages, seq %d..%d\n", name, info.State.Msgs, info.State.FirstSeq, info.State.LastSeq)
		for c := range st.ListConsumers(ctx).Info() {
			fmt.Fprintf(&b, "  %s: pending %d, ack pending %d, redelivered %d, waiting %d, delivered %d, ack floor %d\n",
				c.Name, c.NumPending, c.NumAckPending, c.NumRedelivered, c.NumWaiting, c.Delivered.Stream, c.AckFloor.Stream)
		}
	}
	return b.String()
}

// runState lists the run state's current keys with their revisions.
func (s *scaleOut) runState() string {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	topo, err := s.cfg.topology()
	if err != nil {
		return err.Error()
	}
	kv, err := s.js.KeyValue(ctx, topo.StateBucket())
	if err != nil {
		return err.Error()
	}
	keys, err := kv.ListKeys(ctx)
	if err != nil {
		return err.Error()
	}
	var b strings.Builder
	for k := range keys.Keys() {
		e, err := kv.Get(ctx, k)
		if err != nil {
			fmt.Fprintf(&b, "%s: %v\n", k, err)
			continue
		}
		fmt.Fprintf(&b, "%s = %.60q (revision %d, %s)\n", k, e.Value(), e.Revision(), e.Created().Format("15:04:05.000"))
	}
	return b.String()
}

// poll calls cond every 100 ms until it holds; the test fails when ctx
// ends first.
func (s *scaleOut) poll(ctx context.Context, what string, cond func() bool) {
	s.t.Helper()
	if !waitUntil(ctx, cond) {
		s.t.Fatalf("timed out waiting for %s", what)
	}
}

// waitUntil calls cond every 100 ms until it holds (true) or ctx ends
// (false).
func waitUntil(ctx context.Context, cond func() bool) bool {
	tick := time.NewTicker(100 * time.Millisecond)
	defer tick.Stop()
	for !cond() {
		select {
		case <-ctx.Done():
			return false
		case <-tick.C:
		}
	}
	return true
}

// held polls, every 2 ms for up to within, until the consumer of stream
// has n batches delivered and not acknowledged.
func (s *scaleOut) held(ctx context.Context, stream, consumer string, n int, within time.Duration) bool {
	ctx, cancel := context.WithTimeout(ctx, within)
	defer cancel()
	c, err := s.js.Consumer(ctx, stream, consumer)
	if err != nil {
		return false
	}
	for ctx.Err() == nil {
		if info, err := c.Info(ctx); err == nil && info.NumAckPending >= n {
			return true
		}
		time.Sleep(2 * time.Millisecond)
	}
	return false
}

// pulling waits up to 30 s until every stage's consumer has want[stage]
// pull requests waiting: an idle worker always has one (a copy runs one
// worker, the logger LoggerMinConcurrency), so a copy that lost its
// connection for good, or never joined, leaves the count short.
func (s *scaleOut) pulling(ctx context.Context, topo pipeline.Topology, want map[string]int) {
	s.t.Helper()
	for _, name := range slices.Sorted(maps.Keys(want)) {
		rc, err := topo.RunnerConfig(name)
		if err != nil {
			s.t.Fatal(err)
		}
		last := -1
		wctx, cancel := context.WithTimeout(ctx, 30*time.Second)
		ok := waitUntil(wctx, func() bool {
			c, err := s.js.Consumer(wctx, rc.Stream, rc.Consumer)
			if err != nil {
				return false
			}
			info, err := c.Info(wctx)
			if err != nil {
				return false
			}
			last = info.NumWaiting
			return last == want[name]
		})
		cancel()
		if !ok {
			s.t.Fatalf("the %s consumer has %d pull requests waiting; want %d, one per worker of each copy", name, last, want[name])
		}
	}
}

// redeliveries returns how many deliveries the consumer of stream made
// beyond one per message: its delivery sequence less the stream sequence
// it delivered last (the prompt stream's sequence has no gaps).
func (s *scaleOut) redeliveries(ctx context.Context, stream, consumer string) uint64 {
	s.t.Helper()
	c, err := s.js.Consumer(ctx, stream, consumer)
	if err != nil {
		s.t.Fatal(err)
	}
	info, err := c.Info(ctx)
	if err != nil {
		s.t.Fatal(err)
	}
	return info.Delivered.Consumer - info.Delivered.Stream
}

// expectedTrajectories returns the trajectory ids the run must log: those
// of the first steps x per-step training prompts the source publishes,
// each sampled G times.
func expectedTrajectories(t *testing.T, cfg Config) map[string]bool {
	t.Helper()
	task, err := arith.New(cfg.Train.Arith)
	if err != nil {
		t.Fatal(err)
	}
	want := map[string]bool{}
	i := 0
	for it := range task.Items(tasks.Train, cfg.Train.Seed) {
		if i == cfg.Train.Steps*cfg.Train.PromptsPerStep {
			break
		}
		step := int64(i/cfg.Train.PromptsPerStep + 1)
		for g := range cfg.groupSize() {
			want[schemas.TrajectoryID(cfg.Run, step, it.ID, int32(g))] = true
		}
		i++
	}
	return want
}

// queryUints runs q, which returns one row of unsigned integers.
func queryUints(ctx context.Context, store tracelog.Store, q string, args ...any) ([]uint64, error) {
	res, err := store.Query(ctx, q, args...)
	if err != nil {
		return nil, err
	}
	if len(res.Rows) != 1 {
		return nil, fmt.Errorf("%d rows from %s", len(res.Rows), q)
	}
	out := make([]uint64, len(res.Rows[0]))
	for i, v := range res.Rows[0] {
		n, ok := v.(uint64)
		if !ok {
			return nil, fmt.Errorf("column %d of %s is %T", i, q, v)
		}
		out[i] = n
	}
	return out, nil
}

// TestScaleOutProcesses is the tested scale-out topology (README, "Scaling
// out"): a nats-server process, a ClickHouse server, and every stage as
// its own `wsgrpo stage NAME --config FILE --nats URL` process: 2
// samplers, 2 verifiers, 1 labeler (grpo), 1 learner and 1 logger, fed by
// a prompt source in this process that runs one step ahead of the learner.
// Midway it SIGKILLs a sampler, a verifier and the labeler and starts
// replacements; later it restarts the NATS server (same store and port),
// and every process must reconnect on its own.
//
// It checks that the learner completes every step (run state, the steps
// table, its final checkpoint), that every stage copy still pulls work
// after the restart, that nothing was dead-lettered, that every process
// that was not killed exits cleanly on SIGTERM, and that the trajectory
// log holds every expected trajectory exactly once: trajectories_dedup
// holds one row per expected id and no other. The raw trajectories table
// may hold a trajectory twice (a batch redelivered after a kill or the
// restart is logged again; its ReplacingMergeTree collapses the copies
// only when it merges), but only as copies of expected ids, which the
// dedup view shows once.
func TestScaleOutProcesses(t *testing.T) {
	if testing.Short() {
		t.Skip("starts a nats-server, a ClickHouse server and 10 stage processes")
	}
	ch := chtest.Start(t) // skips without a ClickHouse server
	model := filepath.Join(t.TempDir(), "model")
	if err := checkpoint.Save(model, testPolicy(t, 16, 1, 64, 3)); err != nil { // skips without ONNX Runtime
		t.Fatal(err)
	}
	natsproc.Binary(t) // skips without a nats-server binary
	ctx, cancel := context.WithTimeout(t.Context(), 100*time.Second)
	defer cancel()
	s := newScaleOut(t, ch.DSN, model)
	cfg := s.cfg
	want := expectedTrajectories(t, cfg)

	// This process's view: a reconnecting client, the run's state and its
	// trajectory log.
	js := pipetest.Connect(t, cfg.NATS)
	s.js = js
	// A deferred report runs before the cleanups that kill the processes
	// and stop the server, so it shows them as they were.
	defer func() {
		if t.Failed() {
			s.report()
		}
	}()
	topo, err := cfg.topology()
	if err != nil {
		t.Fatal(err)
	}
	if err := topo.Ensure(ctx, js); err != nil {
		t.Fatal(err)
	}
	st, err := pipeline.OpenRunState(ctx, js, topo)
	if err != nil {
		t.Fatal(err)
	}
	store, err := tracelog.Open(ctx, tracelog.Config{DSN: cfg.ClickHouseDSN})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = store.Close() })

	// The stages, each copy its own process.
	logger := s.stage(pipeline.StageLogger, 0)
	lrn := s.stage(pipeline.StageLearner, 0)
	labeler := s.stage(pipeline.StageLabeler, 0)
	verifiers := []*osProc{s.stage(pipeline.StageVerifier, 0), s.stage(pipeline.StageVerifier, 1)}
	samplers := []*osProc{s.stage(pipeline.StageSampler, 0), s.stage(pipeline.StageSampler, 1)}

	// The prompt source, as train runs it: one step ahead of the learner,
	// one prompt per message so that both samplers get work. It runs in
	// two parts, as a restarted source would (the second resumes after the
	// last step the first published): steps 1..restartAt first, the rest
	// just before the NATS restart, so that the restart always lands with
	// steps still to sample and train.
	task, err := trainTask(cfg)
	if err != nil {
		t.Fatal(err)
	}
	type srcResult struct {
		stats prompts.Stats
		err   error
	}
	feed := func(steps int) <-chan srcResult {
		src, err := prompts.New(ctx, js, topo, task, prompts.Config{
			PerStep: cfg.Train.PromptsPerStep, Steps: steps, Ahead: cfg.Train.Ahead,
			Split: tasks.Train, Seed: cfg.Train.Seed, MaxRows: 1,
		}, s.sourceLog)
		if err != nil {
			t.Fatal(err)
		}
		done := make(chan srcResult, 1)
		go func() {
			stats, err := src.Run(ctx)
			done <- srcResult{stats, err}
		}()
		return done
	}
	sourced := func(done <-chan srcResult, first, last int64) {
		t.Helper()
		select {
		case r := <-done:
			if r.err != nil || r.stats.First != first || r.stats.Last != last {
				t.Fatalf("prompt source: %+v, %v; want steps %d..%d published", r.stats, r.err, first, last)
			}
		case <-ctx.Done():
			t.Fatalf("the prompt source did not publish steps %d..%d", first, last)
		}
	}
	const restartAt = 6
	stepAtLeast := func(n int64) func() bool {
		return func() bool { return learnerStep(ctx, st) >= n }
	}
	sourced(feed(2), 1, 2)
	s.poll(ctx, "the learner's step 2", stepAtLeast(2))
	promptHop, err := topo.Hop(schemas.KindPrompt)
	if err != nil {
		t.Fatal(err)
	}

	// Midway: kill a sampler while both samplers hold a prompt batch (the
	// killed one's comes back after ack_wait), a verifier and the labeler,
	// and start replacements. Samplers are fast here, so watching for the
	// moment both hold one is a race the test can lose: instead freeze
	// both (SIGSTOP) while each has a pull request waiting, and only then
	// publish the next step's prompts. The server delivers one to each
	// frozen copy's pull request unless it expired first (they last
	// runner.FetchWait); if so, thaw them, let the step finish, and try
	// again with the next step.
	var redelivered uint64
	step := int64(2)
	for {
		s.pulling(ctx, topo, map[string]int{pipeline.StageSampler: 2})
		for _, p := range samplers {
			p.signal(t, syscall.SIGSTOP)
		}
		step++
		sourced(feed(int(step)), step, step)
		if s.held(ctx, promptHop.Stream, pipeline.StageSampler, 2, 2*time.Second) {
			redelivered = s.redeliveries(ctx, promptHop.Stream, pipeline.StageSampler)
			break
		}
		for _, p := range samplers {
			p.signal(t, syscall.SIGCONT)
		}
		if step == restartAt-1 {
			t.Fatalf("both samplers never held a prompt batch in steps 3..%d", step)
		}
		s.poll(ctx, fmt.Sprintf("the learner's step %d", step), stepAtLeast(step))
	}
	t.Logf("both samplers held a batch of step %d", step)
	samplers[1].signal(t, syscall.SIGCONT)
	for i, p := range []*osProc{samplers[0], verifiers[0], labeler} {
		if err := p.stop(t, syscall.SIGKILL, 30*time.Second); err == nil {
			t.Fatalf("%s (killed %d) exited cleanly; want killed", p.name, i)
		}
	}
	killed := time.Now()
	samplers[0] = s.stage(pipeline.StageSampler, 2)
	verifiers[0] = s.stage(pipeline.StageVerifier, 2)
	labeler = s.stage(pipeline.StageLabeler, 1)
	midPart := feed(restartAt)

	// Later, once the replacements pull (and the killed processes' last
	// pull requests, which live for runner.FetchWait, have expired):
	// restart the NATS server.
	s.poll(ctx, "the killed processes' pull requests to expire", func() bool { return time.Since(killed) > 2*time.Second })
	s.pulling(ctx, topo, map[string]int{pipeline.StageSampler: 2, pipeline.StageVerifier: 2, pipeline.StageLabeler: 1})
	sourced(midPart, step+1, restartAt)
	lastPart := feed(cfg.Train.Steps)
	if n := learnerStep(ctx, st); n >= int64(cfg.Train.Steps) {
		t.Fatalf("the run finished (step %d) before the NATS restart; the test would not exercise it", n)
	}
	restarted := time.Now()
	s.nats.Restart(t, 30*time.Second)
	t.Logf("nats-server restarted in %s, the learner at step %d", time.Since(restarted).Round(time.Millisecond), learnerStep(ctx, st))

	// The source's second part must outlive the restart: a source that
	// gave up is reported as such, not as a learner that stalled.
	var lastRes *srcResult
	s.poll(ctx, fmt.Sprintf("the learner's step %d", cfg.Train.Steps), func() bool {
		if lastRes == nil {
			select {
			case r := <-lastPart:
				lastRes = &r
				if r.err != nil {
					t.Fatalf("the prompt source's second part failed across the NATS restart: %v (published %+v)", r.err, r.stats)
				}
			default:
			}
		}
		return stepAtLeast(int64(cfg.Train.Steps))()
	})
	if lastRes != nil {
		replay := make(chan srcResult, 1)
		replay <- *lastRes
		lastPart = replay
	}
	sourced(lastPart, restartAt+1, int64(cfg.Train.Steps))
	s.poll(ctx, fmt.Sprintf("%d trajectories in the log", len(want)), func() bool {
		n, err := store.Count(ctx, cfg.Run)
		return err == nil && n >= int64(len(want))
	})

	// Every copy of every stage pulls from its consumer after the restart.
	s.pulling(ctx, topo, map[string]int{
		pipeline.StageSampler: 2, pipeline.StageVerifier: 2, pipeline.StageLabeler: 1,
		pipeline.StageLearner: 1, pipeline.StageLogger: LoggerMinConcurrency,
	})
	if n := s.redeliveries(ctx, promptHop.Stream, pipeline.StageSampler); n <= redelivered {
		t.Errorf("prompt batches redelivered: %d before the kill, %d at the end; want the killed sampler's batch redelivered", redelivered, n)
	}
	dead, err := pipeline.ReadDeadLetters(ctx, js, topo, 0)
	if err != nil || len(dead) != 0 {
		t.Fatalf("dead letters %v, %v", dead, err)
	}

	// Every process that was not killed stops cleanly; the learner writes
	// its final checkpoint and flushes its steps.
	for _, p := range append(append(samplers, verifiers...), labeler, lrn, logger) {
		if err := p.stop(t, syscall.SIGTERM, 30*time.Second); err != nil {
			t.Errorf("%s exited with %v after SIGTERM", p.name, err)
		}
	}
	checkLearnerDone(ctx, t, cfg, store, int64(len(want)))
	checkTrajectoryLog(ctx, t, store, cfg.Run, want)
}

// checkLearnerDone checks that the learner finished every step of cfg:
// its final checkpoint is at the last step having trained rows rows, and
// the steps table holds steps 1..Steps once each.
func checkLearnerDone(ctx context.Context, t *testing.T, cfg Config, store tracelog.Store, rows int64) {
	t.Helper()
	if name, c := newestCheckpoint(t, filepath.Join(cfg.RunDir(), "learner")); c.Step != int64(cfg.Train.Steps) || c.RowsTrained != rows {
		t.Errorf("final checkpoint %s: step %d, rows trained %d; want %d, %d", name, c.Step, c.RowsTrained, cfg.Train.Steps, rows)
	}
	steps, err := queryUints(ctx, store, "SELECT count(), uniqExact(step), toUInt64(min(step)), toUInt64(max(step)) FROM "+ddl.StepsDedupView+" WHERE run_id = ?", cfg.Run)
	if n := uint64(cfg.Train.Steps); err != nil || !slices.Equal(steps, []uint64{n, n, 1, n}) {
		t.Errorf("steps table: %v, %v; want %d rows, steps 1..%d", steps, err, n, n)
	}
}

// checkTrajectoryLog checks that the log holds run's trajectories want
// exactly once: the dedup view one labeled row per id, the raw table no
// id lost and none unexpected (copies of an id are allowed there, and
// logged: the dedup view collapses them).
func checkTrajectoryLog(ctx context.Context, t *testing.T, store tracelog.Store, run string, want map[string]bool) {
	t.Helper()
	dedup, err := queryUints(ctx, store, "SELECT count(), uniqExact(trajectory_id), countIf(labeled = 0) FROM "+ddl.DedupView+" WHERE run_id = ?", run)
	if n := uint64(len(want)); err != nil || !slices.Equal(dedup, []uint64{n, n, 0}) {
		t.Errorf("%s: rows, distinct ids, unlabeled rows = %v, %v; want %d, %d, 0", ddl.DedupView, dedup, err, n, n)
	}
	raw, err := queryUints(ctx, store, "SELECT count(), uniqExact(trajectory_id) FROM "+ddl.Table+" WHERE run_id = ?", run)
	if err != nil || raw[1] != uint64(len(want)) || raw[0] < raw[1] {
		t.Errorf("%s: rows, distinct ids = %v, %v; want %d distinct", ddl.Table, raw, err, len(want))
	} else {
		t.Logf("raw table: %d rows for %d trajectories (%d copies the dedup view collapses)", raw[0], raw[1], raw[0]-raw[1])
	}
	res, err := store.Query(ctx, "SELECT DISTINCT trajectory_id FROM "+ddl.Table+" WHERE run_id = ?", run)
	if err != nil {
		t.Fatal(err)
	}
	got := map[string]bool{}
	for _, r := range res.Rows {
		id, _ := r[0].(string)
		got[id] = true
	}
	var lost, extra []string
	for id := range want {
		if !got[id] {
			lost = append(lost, id)
		}
	}
	for id := range got {
		if !want[id] {
			extra = append(extra, id)
		}
	}
	if len(lost) > 0 || len(extra) > 0 {
		slices.Sort(lost)
		slices.Sort(extra)
		t.Errorf("trajectory ids lost %v, unexpected %v", lost, extra)
	}
}
