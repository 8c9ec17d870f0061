package main

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/nats-io/nats.go"

	"github.com/wsgrpo/wsgrpo/pipeline"
	"github.com/wsgrpo/wsgrpo/prompts"
	"github.com/wsgrpo/wsgrpo/schemas"
)

// pipelineBench sizes `bench pipeline`: runs of steps updates of prompts x
// samples completions; the first skip steps are the pipeline filling and
// are not timed.
type pipelineBench struct {
	samplers  []int
	steps     int
	skip      int
	prompts   int
	samples   int
	maxTokens int
	labeler   string // the preference model the in-run labeler scores with
	timeout   time.Duration
	// ahead is the in-run passes' train.ahead (and learner.max_staleness).
	ahead int
}

// pipelineResult is one measured run.
type pipelineResult struct {
	// rollouts and tokens (completion tokens) sampled inside the timed
	// window, and its length.
	rollouts, tokens int
	window           time.Duration
	// busy is the samplers' decoding time of those rollouts, summed over
	// sampler processes.
	busy time.Duration
	// trainedTokens and trainWindow: completion tokens of the updates
	// after skip, and the time from the skip-th update to the last (in-run
	// only).
	trainedTokens int
	trainWindow   time.Duration
	wall          time.Duration
	// samplerCPUs lists the CPUs of their own the samplers ran on (bench
	// --pin); "" when they shared every CPU.
	samplerCPUs string
}

func (r pipelineResult) tokensPerSec() float64 { return float64(r.tokens) / r.window.Seconds() }

// add pools o into r: counts and times summed (wall too), the CPUs kept.
func (r *pipelineResult) add(o pipelineResult) {
	r.rollouts += o.rollouts
	r.tokens += o.tokens
	r.window += o.window
	r.busy += o.busy
	r.trainedTokens += o.trainedTokens
	r.trainWindow += o.trainWindow
	r.wall += o.wall
	r.samplerCPUs = o.samplerCPUs
}

// busyTokensPerSec is the samplers' rate while decoding: tokens per
// second of decoding time, per sampler process.
func (r pipelineResult) busyTokensPerSec() float64 { return float64(r.tokens) / r.busy.Seconds() }

func (r pipelineResult) rolloutsPerSec() float64 { return float64(r.rollouts) / r.window.Seconds() }
func (r pipelineResult) trainedPerSec() float64 {
	if r.trainWindow <= 0 {
		return 0
	}
	return float64(r.trainedTokens) / r.trainWindow.Seconds()
}

// arrival is one rollout batch as the bench saw it published.
type arrival struct {
	at           time.Time
	step         int64
	rows, tokens int
	// busy is the sampler's decoding time for the batch: the sum of its
	// decode runs' times (rows of one run share its SampleMs).
	busy time.Duration
}

// benchPipeline prints, for 1, 2 and 4 sampler processes, the samplers'
// throughput inside a whole run (every stage its own process against one
// NATS server) beside the same sampler processes alone, and the run's
// end-to-end rollouts/s and trained tokens/s.
func benchPipeline(ctx context.Context, b *benchEnv) error {
	pb := pipelineBench{samplers: []int{1, 2, 4}, steps: 10, skip: 2, prompts: 8, samples: 8, maxTokens: 192,
		labeler: "testdata/results/wsgrpo/labeler", timeout: 10 * time.Minute}
	if b.quick {
		pb = pipelineBench{samplers: []int{1, 2}, steps: 3, skip: 0, prompts: 2, samples: 2, maxTokens: 16, timeout: 3 * time.Minute}
	}
	if pb.ahead = b.ahead; pb.ahead == 0 {
		pb.ahead = 2
	}
	if _, err := os.Stat(b.cfg.Train.Model); err != nil {
		return fmt.Errorf("%w: the pipeline suite samples train.model %q: %w (run it from the repository root, or give --config)", ErrConfig, b.cfg.Train.Model, err)
	}
	layout, err := detectModelLayout(b.cfg.Train.Model)
	if err != nil {
		return err
	}
	if layout == layoutHF {
		// The shipped preference model scores the base policy's features:
		// another model's runs are grpo.
		pb.labeler = ""
	}
	exe, err := os.Executable()
	if err != nil {
		return err
	}
	tw := b.table(fmt.Sprintf("pipeline: every stage its own process against one NATS server (%d steps of %d prompts x G %d, up to %d new tokens, the first %d steps untimed; in-run: ahead %d, shaper %s, 1 ORT thread a process; efficiency goal >= 0.9)",
		pb.steps, pb.prompts, pb.samples, pb.maxTokens, pb.skip, pb.ahead, shaperOf(pb)),
		"sampler processes", "samplers' CPUs", "alone tok/s", "in-run tok/s", "efficiency", "decoding efficiency", "in-run rollouts/s", "trained tok/s", "run wall")
	passes := max(b.passes, 1)
	for _, n := range pb.samplers {
		// Passes alternate alone and in-run; the row pools them (tokens
		// over time summed), and lists each pass's efficiency.
		var alone, in pipelineResult
		var each []string
		for range passes {
			a, err := runPipelineBench(ctx, b, exe, pb, n, true)
			if err != nil {
				return fmt.Errorf("%d samplers alone: %w", n, err)
			}
			r, err := runPipelineBench(ctx, b, exe, pb, n, false)
			if err != nil {
				return fmt.Errorf("%d samplers in a run: %w", n, err)
			}
			each = append(each, fmt.Sprintf("%.2f", r.tokensPerSec()/a.tokensPerSec()))
			alone.add(a)
			in.add(r)
		}
		cpus := "shared"
		if in.samplerCPUs != "" {
			cpus = "own (" + in.samplerCPUs + ")"
		}
		eff := fmt.Sprintf("%.2f", in.tokensPerSec()/alone.tokensPerSec())
		if passes > 1 {
			eff += " (" + strings.Join(each, " ") + ")"
		}
		fmt.Fprintf(tw, "%d\t%s\t%.0f\t%.0f\t%s\t%.2f\t%.1f\t%.0f\t%s\n", n, cpus, alone.tokensPerSec(), in.tokensPerSec(),
			eff, in.busyTokensPerSec()/alone.busyTokensPerSec(), in.rolloutsPerSec(), in.trainedPerSec(), (in.wall / time.Duration(passes)).Round(100*time.Millisecond))
	}
	if err := tw.Flush(); err != nil {
		return err
	}
	fmt.Fprintln(b.w, "passes: alone and in-run alternate --passes times, a row pools them (the efficiency of each pass in brackets), run wall is a pass's mean; alone: the same sampler processes with only the prompt source (every step queued at once, the starting weights published by the bench); in-run: source, samplers, a verifier, a labeler, the learner and the logger, each a process; tok/s: completion tokens sampled per second from the first untimed step's last batch to the last batch; decoding efficiency: the same ratio over the samplers' decoding time only (what the pipeline costs a sampler while it works, leaving out its waits for prompts or weights); trained tok/s: completion tokens of the updates after the first untimed ones, per second between them")
	return nil
}

func shaperOf(pb pipelineBench) string {
	if pb.labeler == "" {
		return "grpo"
	}
	return "ws-grpo"
}

// runPipelineBench runs one measurement in a fresh temporary directory
// with its own embedded NATS server.
func runPipelineBench(ctx context.Context, b *benchEnv, exe string, pb pipelineBench, n int, alone bool) (pipelineResult, error) {
	var res pipelineResult
	dir, err := os.MkdirTemp("", "wsgrpo-bench-pipeline-")
	if err != nil {
		return res, err
	}
	defer func() { _ = os.RemoveAll(dir) }()
	srv, err := pipeline.StartServer(pipeline.ServerConfig{StoreDir: filepath.Join(dir, "nats"), Listen: true})
	if err != nil {
		return res, err
	}
	defer srv.Shutdown()
	mode := "run"
	if alone {
		mode = "alone"
	}
	cfg := b.cfg
	cfg.Run, cfg.Dir, cfg.NATS = fmt.Sprintf("benchpipe-%d-%s", n, mode), filepath.Join(dir, "run"), srv.URL()
	cfg.Train.Steps, cfg.Train.PromptsPerStep, cfg.Train.PromptBatch = pb.steps, pb.prompts, max(1, pb.prompts/n)
	cfg.Train.Ahead = pb.ahead
	if alone {
		cfg.Train.Ahead = pb.steps
	}
	cfg.Sampler.Samples, cfg.Sampler.MaxNewTokens = pb.samples, pb.maxTokens
	conf, err := writePipelineConf(dir, cfg, pb)
	if err != nil {
		return res, err
	}
	topo, err := cfg.topology()
	if err != nil {
		return res, err
	}
	nc, err := srv.Connect()
	if err != nil {
		return res, err
	}
	defer nc.Close()
	js, err := pipeline.NewJetStream(nc)
	if err != nil {
		return res, err
	}
	if err := topo.Ensure(ctx, js); err != nil {
		return res, err
	}
	rollouts, err := topo.Hop(schemas.KindRollout)
	if err != nil {
		return res, err
	}
	var mu sync.Mutex
	var seen []arrival
	sub, err := nc.Subscribe(rollouts.Subject, func(m *nats.Msg) {
		a, err := decodeArrival(m.Data)
		if err != nil {
			return // a message the stages will dead-letter; not a rollout
		}
		a.at = time.Now()
		mu.Lock()
		seen = append(seen, a)
		mu.Unlock()
	})
	if err != nil {
		return res, err
	}
	defer func() { _ = sub.Unsubscribe() }()
	st, err := pipeline.OpenRunState(ctx, js, topo)
	if err != nil {
		return res, err
	}
	own, rest := pinning(b.pin, n)
	res.samplerCPUs = own
	if own != "" {
		// The bench process runs the NATS server every stage talks to:
		// it belongs with the rest too, off the samplers' CPUs.
		restore, err := pinProcess(n, runtime.NumCPU()-1)
		if err != nil {
			return res, err
		}
		defer restore()
	}
	steps := newStepClock()
	procs := &procSet{dir: dir}
	defer procs.stop()
	start := time.Now()
	want := pb.steps * pb.prompts * pb.samples
	if alone {
		ws, err := pipeline.OpenWeightStore(ctx, js, topo)
		if err != nil {
			return res, err
		}
		base, err := loadTrainModel(cfg.Train.Model, "train.model")
		if err != nil {
			return res, err
		}
		if err := ws.Put(ctx, 1, base); err != nil {
			return res, err
		}
	} else {
		for _, s := range []string{"learner", "logger", "labeler", "verifier"} {
			args := []string{"stage", s, "--config", conf, "--nats", cfg.NATS}
			if s == "logger" {
				// The learner owns the run directory (its checkpoints); the
				// logger's embedded trajectory log lives in a directory of
				// its own (a shared deployment logs to a ClickHouse server).
				args = append(args, "--dir", filepath.Join(dir, "log"))
			}
			if err := procs.start(exe, rest, s, args...); err != nil {
				return res, err
			}
		}
	}
	for i := range n {
		if err := procs.start(exe, own, fmt.Sprintf("sampler-%d", i), "stage", "sampler", "--config", conf, "--nats", cfg.NATS); err != nil {
			return res, err
		}
	}
	srcArgs := []string{"source", "--config", conf, "--nats", cfg.NATS}
	if !alone {
		srcArgs = append(srcArgs, "--wait")
	}
	if err := procs.start(exe, rest, "source", srcArgs...); err != nil {
		return res, err
	}
	deadline := time.Now().Add(pb.timeout)
	for {
		mu.Lock()
		rows := 0
		for _, a := range seen {
			rows += a.rows
		}
		mu.Unlock()
		if !alone {
			steps.observe(learnerStep(ctx, st))
		}
		done := rows >= want && (alone || steps.last() >= int64(pb.steps))
		if done {
			break
		}
		if p := procs.failed(); p != "" {
			return res, fmt.Errorf("%s", p)
		}
		if time.Now().After(deadline) {
			return res, fmt.Errorf("timed out after %s with %d of %d rollouts and %d of %d updates\n%s", pb.timeout, rows, want, steps.last(), pb.steps, procs.tails())
		}
		select {
		case <-ctx.Done():
			return res, ctx.Err()
		case <-time.After(50 * time.Millisecond):
		}
	}
	res.wall = time.Since(start)
	mu.Lock()
	defer mu.Unlock()
	res.rollouts, res.tokens, res.busy, res.window = timedWindow(seen, int64(pb.skip))
	if res.window <= 0 {
		return res, errors.New("no rollouts after the untimed steps")
	}
	if !alone {
		tokens := map[int64]int{}
		for _, a := range seen {
			tokens[a.step] += a.tokens
		}
		for s := int64(pb.skip) + 1; s <= int64(pb.steps); s++ {
			res.trainedTokens += tokens[s]
		}
		res.trainWindow = steps.between(int64(pb.skip), int64(pb.steps))
	}
	return res, nil
}

// pinning returns the CPU lists of n sampler processes and of every other
// process with pin, the bench's own included: CPUs 0..n-1 and the rest. Without pin, or with no CPU
// left over (or no taskset), both are "" (any CPU).
func pinning(pin bool, n int) (samplers, rest string) {
	cpus := runtime.NumCPU()
	if !pin || n >= cpus {
		return "", ""
	}
	if _, err := exec.LookPath("taskset"); err != nil {
		return "", ""
	}
	span := func(a, b int) string {
		if a == b {
			return strconv.Itoa(a)
		}
		return fmt.Sprintf("%d-%d", a, b)
	}
	return span(0, n-1), span(n, cpus-1)
}

// timedWindow returns the rollouts and tokens that arrived after every
// batch of steps 1..skip had, the samplers' decoding time of those batches,
// and the time from then to the last arrival.
func timedWindow(seen []arrival, skip int64) (rollouts, tokens int, busy, window time.Duration) {
	slices.SortFunc(seen, func(a, b arrival) int { return a.at.Compare(b.at) })
	var t0 time.Time
	for _, a := range seen {
		if a.step <= skip && a.at.After(t0) {
			t0 = a.at
		}
	}
	if t0.IsZero() && len(seen) > 0 {
		t0 = seen[0].at
	}
	var last time.Time
	for _, a := range seen {
		if a.at.After(t0) {
			rollouts += a.rows
			tokens += a.tokens
			busy += a.busy
			last = a.at
		}
	}
	if last.IsZero() {
		return 0, 0, 0, 0
	}
	return rollouts, tokens, busy, last.Sub(t0)
}

// decodeArrival reads the rows and completion tokens of a rollout batch.
func decodeArrival(data []byte) (arrival, error) {
	rec, err := schemas.Decode(schemas.KindRollout, data, nil)
	if err != nil {
		return arrival{}, err
	}
	defer rec.Release()
	rows, err := schemas.ReadRollouts(rec)
	if err != nil {
		return arrival{}, err
	}
	a := arrival{rows: len(rows)}
	runs := map[float64]bool{}
	for _, r := range rows {
		a.tokens += len(r.CompletionTokenIDs)
		a.step = max(a.step, r.Step)
		runs[r.SampleMs] = true
	}
	for ms := range runs {
		a.busy += time.Duration(ms * float64(time.Millisecond))
	}
	return a, nil
}

// stepClock records when the learner's step was first seen at each value.
type stepClock struct{ at map[int64]time.Time }

func newStepClock() *stepClock { return &stepClock{at: map[int64]time.Time{}} }

func (c *stepClock) observe(step int64) {
	if _, ok := c.at[step]; !ok && step > 0 {
		c.at[step] = time.Now()
	}
}

func (c *stepClock) last() int64 {
	var m int64
	for s := range c.at {
		m = max(m, s)
	}
	return m
}

// between is the time from the first sighting of step a (or the lowest
// seen above it) to that of step b.
func (c *stepClock) between(a, b int64) time.Duration {
	keys := make([]int64, 0, len(c.at))
	for s := range c.at {
		keys = append(keys, s)
	}
	slices.SortFunc(keys, cmp.Compare[int64])
	var from, to time.Time
	for _, s := range keys {
		if s >= a && from.IsZero() {
			from = c.at[s]
		}
		if s <= b {
			to = c.at[s]
		}
	}
	if from.IsZero() || to.IsZero() {
		return 0
	}
	return to.Sub(from)
}

// writePipelineConf writes the stage processes' configuration file.
func writePipelineConf(dir string, cfg Config, pb pipelineBench) (string, error) {
	shaper := "grpo"
	labeler := ""
	if pb.labeler != "" {
		abs, err := filepath.Abs(pb.labeler)
		if err != nil {
			return "", err
		}
		shaper, labeler = "ws-grpo", fmt.Sprintf("labeler:\n  artifact: %s\n", strconv.Quote(abs))
	}
	model, err := filepath.Abs(cfg.Train.Model)
	if err != nil {
		return "", err
	}
	yaml := fmt.Sprintf(`run: %s
dir: %s
log:
  level: warn
ort:
  threads: 1
sampler:
  samples: %d
  temperature: 1.0
  max_new_tokens: %d
shaping:
  shaper: %s
%strain:
  model: %s
  steps: %d
  prompts_per_step: %d
  prompt_batch: %d
  ahead: %d
learner:
  max_staleness: %d
`, cfg.Run, strconv.Quote(cfg.Dir), cfg.Sampler.Samples, cfg.Sampler.MaxNewTokens, shaper, labeler,
		strconv.Quote(model), cfg.Train.Steps, cfg.Train.PromptsPerStep, cfg.Train.PromptBatch, cfg.Train.Ahead, max(2, cfg.Train.Ahead))
	p := filepath.Join(dir, "run.yaml")
	return p, os.WriteFile(p, []byte(yaml), 0o644)
}

// procSet is the bench's child processes.
type procSet struct {
	dir   string
	procs []*benchProc
}

type benchProc struct {
	name   string
	cmd    *exec.Cmd
	stderr string
	done   chan struct{}
	err    error
}

// start runs `exe args...` with stderr in dir/name.stderr, on the CPUs
// listed in cpus (taskset's list syntax; "" for any).
func (s *procSet) start(exe, cpus, name string, args ...string) error {
	p := &benchProc{name: name, stderr: filepath.Join(s.dir, name+".stderr"), done: make(chan struct{})}
	f, err := os.Create(p.stderr)
	if err != nil {
		return err
	}
	if cpus != "" {
		args = append([]string{"-c", cpus, exe}, args...)
		exe = "taskset"
	}
	p.cmd = exec.Command(exe, args...)
	p.cmd.Stdout, p.cmd.Stderr = f, f
	if err := p.cmd.Start(); err != nil {
		_ = f.Close()
		return fmt.Errorf("start %s: %w", name, err)
	}
	go func() { p.err = p.cmd.Wait(); _ = f.Close(); close(p.done) }()
	s.procs = append(s.procs, p)
	return nil
}

// failed describes the first process that exited with an error ("" if
// none did).
func (s *procSet) failed() string {
	for _, p := range s.procs {
		select {
		case <-p.done:
			if p.err != nil {
				b, _ := os.ReadFile(p.stderr)
				return fmt.Sprintf("%s exited: %v\n%s", p.name, p.err, tailText(string(b), 2000))
			}
		default:
		}
	}
	return ""
}

// tails returns the end of every process's output.
func (s *procSet) tails() string {
	var b strings.Builder
	for _, p := range s.procs {
		out, _ := os.ReadFile(p.stderr)
		fmt.Fprintf(&b, "--- %s:\n%s\n", p.name, tailText(string(out), 800))
	}
	return b.String()
}

// stop asks every process to stop (SIGTERM), and kills what still runs
// after 15 s.
func (s *procSet) stop() {
	for _, p := range s.procs {
		_ = p.cmd.Process.Signal(syscall.SIGTERM)
	}
	limit := time.After(15 * time.Second)
	for _, p := range s.procs {
		select {
		case <-p.done:
		case <-limit:
			_ = p.cmd.Process.Kill()
			<-p.done
		}
	}
}

// tailText returns about the last n bytes of s, from a line start.
func tailText(s string, n int) string {
	if len(s) <= n {
		return s
	}
	s = s[len(s)-n:]
	if i := strings.IndexByte(s, '\n'); i >= 0 {
		s = s[i+1:]
	}
	return "...\n" + s
}

// learnerStep reads the learner's last finished step from the run state
// (0 while it cannot be read).
func learnerStep(ctx context.Context, st *pipeline.RunState) int64 {
	ctx, cancel := context.WithTimeout(ctx, 2*time.Second)
	defer cancel()
	b, _, err := st.Get(ctx, prompts.KeyLearnerStep)
	if err != nil {
		return 0
	}
	n, _ := strconv.ParseInt(string(b), 10, 64)
	return n
}
