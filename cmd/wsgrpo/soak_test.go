package main

import (
	"context"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/wsgrpo/wsgrpo/pipeline"
	"github.com/wsgrpo/wsgrpo/pipeline/pipetest"
	"github.com/wsgrpo/wsgrpo/pipeline/pipetest/natsproc"
	"github.com/wsgrpo/wsgrpo/schemas"
	"github.com/wsgrpo/wsgrpo/schemas/ddl"
)

// The soak test's settings (make soak). WSGRPO_SOAK=1 runs it;
// WSGRPO_SOAK_SEED replays the chaos of an earlier run (its seed is
// logged); WSGRPO_SOAK_NATS_SIGNAL=KILL restarts nats-server with SIGKILL
// instead of a graceful SIGTERM.
const (
	envSoak           = "WSGRPO_SOAK"
	envSoakSeed       = "WSGRPO_SOAK_SEED"
	envSoakNATSSignal = "WSGRPO_SOAK_NATS_SIGNAL"
)

// The soak run: soakBatches prompt batches of soakRows rows, published
// one per soakPace with at most soakWindow batches not yet at the end of
// the line.
const (
	soakRun     = "soak"
	soakBatches = 250
	soakRows    = 400
	soakPace    = 150 * time.Millisecond
	soakWindow  = 24
	// soakAckWait is the stages' ack wait: a killed copy's batch comes
	// back after it.
	soakAckWait = 2 * time.Second
	// soakStall fails the run when no new row reaches the end of the line
	// for this long.
	soakStall = 90 * time.Second
)

// soakRoles are the wiring run's stage processes and how many copies of
// each run at a time: pass-through processors at the sampler, verifier and
// labeler positions, and the logger (one: it owns the run directory's
// embedded trajectory log).
var soakRoles = []struct {
	role   string
	copies int
}{
	{pipeline.StageSampler, 2}, {pipeline.StageVerifier, 2}, {pipeline.StageLabeler, 2}, {pipeline.StageLogger, 1},
}

// soakEvent is one planned fault: a SIGKILL of a stage process of role
// (any role when ""), or the NATS restart, once at rows have reached the
// end of the line.
type soakEvent struct {
	at      int
	restart bool
	role    string
}

// soakPlan draws the faults for seed: 6 to 10 kills (at least one of the
// logger and one of the verifier, the rest of any stage) and one NATS
// restart, at random points of a run of rows rows (the restart between
// 30% and 70%), in the order they fire.
func soakPlan(seed uint64, rows int) []soakEvent {
	rng := rand.New(rand.NewPCG(seed, seed^0x9e3779b97f4a7c15))
	var plan []soakEvent
	for i := range 6 + rng.IntN(5) {
		ev := soakEvent{at: rows/20 + rng.IntN(rows*9/10)}
		switch i {
		case 0:
			ev.role = pipeline.StageLogger
		case 1:
			ev.role = pipeline.StageVerifier
		}
		plan = append(plan, ev)
	}
	plan = append(plan, soakEvent{at: rows*3/10 + rng.IntN(rows*4/10), restart: true})
	slices.SortStableFunc(plan, func(a, b soakEvent) int { return a.at - b.at })
	return plan
}

// soakSeed returns $WSGRPO_SOAK_SEED, or a new seed.
func soakSeed(tb testing.TB) uint64 {
	tb.Helper()
	s := os.Getenv(envSoakSeed)
	if s == "" {
		return uint64(time.Now().UnixNano())
	}
	n, err := strconv.ParseUint(s, 10, 64)
	if err != nil {
		tb.Fatalf("%s=%q: %v", envSoakSeed, s, err)
	}
	return n
}

// soakStages are the stage processes of the soak run.
type soakStages struct {
	t     *testing.T
	dir   string
	args  []string // the flags every stage process gets
	live  map[string][]*osProc
	all   []*osProc
	next  map[string]int // the next copy number of each role
	kills map[string]int
	// held reports whether role's consumer has a batch delivered and not
	// acknowledged: a kill waits a moment for one, so that it more often
	// lands on a copy that holds a batch.
	held func(role string) bool
	// bitten counts the kills that landed while the role held a batch.
	bitten int
}

// start starts one more copy of role.
func (s *soakStages) start(role string) {
	s.t.Helper()
	n := s.next[role]
	s.next[role]++
	args := []string{"stage", "passthrough", "--as", role}
	if role == pipeline.StageLogger {
		args = []string{"stage", pipeline.StageLogger}
	}
	p := startOSProc(s.t, s.dir, fmt.Sprintf("%s-%d", role, n), append(args, s.args...)...)
	s.live[role] = append(s.live[role], p)
	s.all = append(s.all, p)
}

// kill SIGKILLs a random live stage process of role (of any role when
// "") and starts its replacement; it returns the victim's name.
func (s *soakStages) kill(rng *rand.Rand, role string) string {
	s.t.Helper()
	var procs []*osProc
	roles := map[*osProc]string{}
	for _, r := range soakRoles {
		if role != "" && r.role != role {
			continue
		}
		for _, p := range s.live[r.role] {
			procs = append(procs, p)
			roles[p] = r.role
		}
	}
	p := procs[rng.IntN(len(procs))]
	role = roles[p]
	if s.held != nil {
		ctx, cancel := context.WithTimeout(s.t.Context(), 5*time.Second)
		if waitFor(ctx, 2*time.Millisecond, func() bool { return s.held(role) }) {
			s.bitten++
		}
		cancel()
	}
	if err := p.stop(s.t, syscall.SIGKILL, 30*time.Second); err == nil {
		s.t.Fatalf("%s exited cleanly; want killed", p.name)
	}
	s.live[role] = slices.DeleteFunc(s.live[role], func(q *osProc) bool { return q == p })
	s.kills[role]++
	s.start(role)
	return p.name
}

// report logs the tail of every stage process's stderr.
func (s *soakStages) report() {
	for _, p := range s.all {
		b, _ := os.ReadFile(p.stderr)
		s.t.Logf("--- %s (%s), stderr:\n%s", p.name, p.state(), tailText(string(b), 2000))
	}
}

// soakPublisher publishes the soak run's prompt batches in the
// background, paced and windowed, retrying each batch (same message id:
// the stream stores it once) until the server acknowledges it.
type soakPublisher struct {
	mu        sync.Mutex
	acked     []time.Time // when each batch's PubAck came (zero: not yet)
	failures  int         // attempts that failed (during the restart)
	lastError error
	done      chan error
}

func (p *soakPublisher) ackedAt(b int) time.Time {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.acked[b]
}

func startSoakPublisher(ctx context.Context, js jetstream.JetStream, subject string, sink *idSink) *soakPublisher {
	p := &soakPublisher{acked: make([]time.Time, soakBatches), done: make(chan error, 1)}
	go func() {
		tick := time.NewTicker(soakPace)
		defer tick.Stop()
		for b := range soakBatches {
			// Pace, and hold back while the window is full.
			for {
				select {
				case <-ctx.Done():
					p.done <- ctx.Err()
					return
				case <-tick.C:
				}
				if unique, _ := sink.counts(); unique >= (b-soakWindow)*soakRows {
					break
				}
			}
			rec := wiringPrompts(soakRun, b, soakRows)
			for {
				bctx, cancel := context.WithTimeout(ctx, 5*time.Second)
				_, err := pipeline.PublishBatch(bctx, js, subject, rec, fmt.Sprintf("%s-wiring-%d", soakRun, b), 0)
				cancel()
				if err == nil {
					break
				}
				p.mu.Lock()
				p.failures++
				p.lastError = err
				p.mu.Unlock()
				select {
				case <-ctx.Done():
					rec.Release()
					p.done <- fmt.Errorf("batch %d: %w (last error %v)", b, ctx.Err(), err)
					return
				case <-tick.C:
				}
			}
			rec.Release()
			p.mu.Lock()
			p.acked[b] = time.Now()
			p.mu.Unlock()
		}
		p.done <- nil
	}()
	return p
}

// soakIDs returns the trajectory ids of batch b of the soak run: the
// pass-through sampler makes prompt i of batch b (step b) the rollout
// soak/b/w<b>-<i>/0.
func soakIDs(b int) []string {
	ids := make([]string, soakRows)
	for i := range ids {
		ids[i] = schemas.TrajectoryID(soakRun, int64(b), fmt.Sprintf("w%d-%d", b, i), 0)
	}
	return ids
}

// TestSoakWiring is the soak test (make soak): a wiring run of
// soakBatches x soakRows = 100,000 rows against a nats-server process,
// its stages each a `wsgrpo stage` process (pass-through processors at
// the sampler, verifier and labeler positions, two copies each, and the
// logger writing the run directory's embedded trajectory log), the end of
// the line (the learner's consumer) an id sink in this process, and the
// prompt batches published from this process. A seeded plan SIGKILLs
// random stage processes (a replacement starts at once) and restarts the
// nats-server once (SIGTERM, or SIGKILL with WSGRPO_SOAK_NATS_SIGNAL=KILL)
// at random points of the run.
//
// At the end every row must have reached the end of the line, nothing may
// be dead-lettered, the logger must have acknowledged every labeled batch,
// and the trajectory log must hold every row exactly once: a row is
// identified by its trajectory_id (run/step/prompt id/sample, the key of
// the log's ReplacingMergeTree), and trajectories_dedup must hold one row
// per expected id and no other (checkTrajectoryLog). The raw table may
// hold copies of a row that a killed logger inserted but did not
// acknowledge; they are counted and logged.
func TestSoakWiring(t *testing.T) {
	if testing.Short() {
		t.Skip("a soak run of about a minute, seven processes")
	}
	if os.Getenv(envSoak) == "" {
		t.Skipf("set %s=1 (make soak): a 100,000-row wiring run with SIGKILLs and a NATS restart", envSoak)
	}
	natsproc.Binary(t) // skips without a nats-server binary
	seed := soakSeed(t)
	restartSig, restartName := syscall.SIGTERM, "SIGTERM"
	if strings.EqualFold(strings.TrimPrefix(strings.ToUpper(os.Getenv(envSoakNATSSignal)), "SIG"), "KILL") {
		restartSig, restartName = syscall.SIGKILL, "SIGKILL"
	}
	want := soakBatches * soakRows
	plan := soakPlan(seed, want)
	t.Logf("soak seed %d (replay with %s=%d): %d rows, %d faults planned, nats-server restart by %s", seed, envSoakSeed, seed, want, len(plan), restartName)
	rng := rand.New(rand.NewPCG(seed, 1))
	ctx, cancel := context.WithTimeout(t.Context(), 8*time.Minute)
	defer cancel()
	began := time.Now()

	dir := t.TempDir()
	natsFile, port := pipetest.NATSProcessConf(t, dir)
	srv := natsproc.Start(t, natsFile, port)

	cfg := DefaultConfig()
	cfg.Run, cfg.Dir, cfg.NATS = soakRun, filepath.Join(dir, "run"), fmt.Sprintf("nats://127.0.0.1:%d", port)
	cfg.Runner.AckWait = soakAckWait
	if err := cfg.Validate(); err != nil {
		t.Fatal(err)
	}
	logFile, err := os.Create(filepath.Join(dir, "test.log"))
	if err != nil {
		t.Fatal(err)
	}
	defer logFile.Close()
	log := slog.New(slog.NewTextHandler(logFile, &slog.HandlerOptions{Level: slog.LevelInfo}))

	// This process: a session (streams ensured), the end of the line.
	sess, err := openSession(ctx, cfg, log, false)
	if err != nil {
		t.Fatal(err)
	}
	defer sess.close()
	sink := &idSink{seen: map[string]int{}}
	g := pipeline.NewGroup(sess.js, log)
	rc, err := sess.topo.SinkRunnerConfig(pipeline.StageLearner)
	if err != nil {
		t.Fatal(err)
	}
	rc = cfg.runnerConfig(rc)
	rc.Logger, rc.Metrics = log.With("stage", "sink"), sess.metric
	if err := g.Add(rc, sink); err != nil {
		t.Fatal(err)
	}
	run := startGroup(ctx, g)
	defer func() {
		if err := run.Stop(); err != nil {
			t.Errorf("the end of the line stopped with %v", err)
		}
	}()

	stages := &soakStages{t: t, dir: dir, live: map[string][]*osProc{}, next: map[string]int{}, kills: map[string]int{},
		args: []string{"--run", cfg.Run, "--dir", cfg.Dir, "--nats", cfg.NATS, "--runner-ack-wait", soakAckWait.String(), "--log-level", "info"}}
	stages.held = func(role string) bool {
		rc, err := sess.topo.RunnerConfig(role)
		if err != nil {
			return false
		}
		c, err := sess.js.Consumer(ctx, rc.Stream, rc.Consumer)
		if err != nil {
			return false
		}
		info, err := c.Info(ctx)
		return err == nil && info.NumAckPending > 0
	}
	for _, r := range soakRoles {
		for range r.copies {
			stages.start(r.role)
		}
	}
	t.Cleanup(func() {
		if t.Failed() {
			stages.report()
			t.Logf("--- nats-server log:\n%s", tailText(srv.Log(), 3000))
			b, _ := os.ReadFile(logFile.Name())
			t.Logf("--- this process's log:\n%s", tailText(string(b), 3000))
		}
	})

	promptHop, err := sess.topo.Hop(schemas.KindPrompt)
	if err != nil {
		t.Fatal(err)
	}
	pub := startSoakPublisher(ctx, sess.js, promptHop.Subject, sink)

	// Run the plan as the rows arrive; fail on a stall, with what is
	// missing.
	var restartFrom, restartTo time.Time
	// One fault at a time, each once more rows arrived than at the one
	// before (a replacement is not killed before it could work).
	last, lastChange, lastFault := 0, time.Now(), -1
	for unique := 0; unique < want; unique, _ = sink.counts() {
		if len(plan) > 0 && unique >= plan[0].at && unique > lastFault {
			lastFault = unique
			ev := plan[0]
			plan = plan[1:]
			if ev.restart {
				restartFrom = time.Now()
				if restartSig == syscall.SIGKILL {
					if err := srv.Signal(syscall.SIGKILL); err != nil {
						t.Fatal(err)
					}
				}
				srv.Restart(t, 30*time.Second)
				restartTo = time.Now()
				t.Logf("%6.1fs  %d rows: nats-server restarted (%s) in %s", time.Since(began).Seconds(), unique, restartName, restartTo.Sub(restartFrom).Round(time.Millisecond))
			} else {
				victim := stages.kill(rng, ev.role)
				t.Logf("%6.1fs  %d rows: SIGKILL %s", time.Since(began).Seconds(), unique, victim)
			}
		}
		if unique != last {
			last, lastChange = unique, time.Now()
		}
		if time.Since(lastChange) > soakStall {
			soakStalled(ctx, t, sess.js, sess.topo, sink, pub, restartFrom, restartTo)
		}
		select {
		case <-ctx.Done():
			soakStalled(ctx, t, sess.js, sess.topo, sink, pub, restartFrom, restartTo)
		case <-run.Done():
			t.Fatalf("the end of the line stopped: %v", run.Stopped())
		case <-time.After(100 * time.Millisecond):
		}
	}
	if err := <-pub.done; err != nil {
		t.Fatalf("publisher: %v", err)
	}
	if restartTo.IsZero() {
		t.Fatal("the run ended before the NATS restart")
	}
	if len(plan) > 0 {
		t.Logf("%d kills planned near the end did not fire: the run ended first", len(plan))
	}
	arrived := time.Since(began)
	unique, deliveries := sink.counts()

	// The logger must have acknowledged every labeled batch.
	labeled, err := sess.topo.Hop(schemas.KindLabeled)
	if err != nil {
		t.Fatal(err)
	}
	if !waitUntil(ctx, func() bool {
		c, err := sess.js.Consumer(ctx, labeled.Stream, pipeline.StageLogger)
		if err != nil {
			return false
		}
		info, err := c.Info(ctx)
		return err == nil && info.NumPending == 0 && info.NumAckPending == 0
	}) {
		t.Fatal("the logger never acknowledged every labeled batch")
	}
	dead, err := pipeline.ReadDeadLetters(ctx, sess.js, sess.topo, 0)
	if err != nil || len(dead) != 0 {
		t.Fatalf("dead letters %v, %v", dead, err)
	}
	for _, r := range soakRoles {
		for _, p := range stages.live[r.role] {
			if err := p.stop(t, syscall.SIGTERM, 60*time.Second); err != nil {
				t.Errorf("%s exited with %v after SIGTERM", p.name, err)
			}
		}
	}

	// Every row exactly once in the trajectory log.
	expected := make(map[string]bool, want)
	for b := range soakBatches {
		for _, id := range soakIDs(b) {
			expected[id] = true
		}
	}
	logs := newSharedLog(cfg, log)
	defer logs.close()
	store, err := logs.get(ctx)
	if err != nil {
		t.Fatal(err)
	}
	checkTrajectoryLog(ctx, t, store, cfg.Run, expected)
	raw, err := queryUints(ctx, store, "SELECT count() FROM "+ddl.Table+" WHERE run_id = ?", cfg.Run)
	if err != nil {
		t.Fatal(err)
	}
	pub.mu.Lock()
	failures := pub.failures
	pub.mu.Unlock()
	var redelivered []string
	for _, r := range soakRoles {
		rc, err := sess.topo.RunnerConfig(r.role)
		if err != nil {
			t.Fatal(err)
		}
		redelivered = append(redelivered, r.role+" "+soakRedeliveries(ctx, t, sess.js, rc.Stream, rc.Consumer))
	}
	var kills []string
	total := 0
	for _, r := range soakRoles {
		kills = append(kills, fmt.Sprintf("%s %d", r.role, stages.kills[r.role]))
		total += stages.kills[r.role]
	}
	t.Logf("soak seed %d: %d rows exactly once in the trajectory log (%d raw rows); %d SIGKILLs (%s; %d while the stage held a batch); nats-server restarted by %s in %s; "+
		"batches redelivered (%s); %d deliveries at the end of the line for %d rows; %d publish attempts failed; all rows in %s, test %s",
		seed, want, raw[0], total, strings.Join(kills, ", "), stages.bitten, restartName, restartTo.Sub(restartFrom).Round(time.Millisecond),
		strings.Join(redelivered, ", "), deliveries, unique, failures, arrived.Round(time.Second), time.Since(began).Round(time.Second))
}

// waitFor calls cond every interval until it holds (true) or ctx ends
// (false).
func waitFor(ctx context.Context, interval time.Duration, cond func() bool) bool {
	tick := time.NewTicker(interval)
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

// soakRedeliveries says how many deliveries the consumer of stream made
// beyond one per message: its delivery sequence less the stream sequence
// it delivered last, or "unknown" when the delivery sequence is the lesser
// (after a SIGKILL of nats-server its consumer state can lag its streams).
func soakRedeliveries(ctx context.Context, t *testing.T, js jetstream.JetStream, stream, consumer string) string {
	t.Helper()
	c, err := js.Consumer(ctx, stream, consumer)
	if err != nil {
		t.Fatal(err)
	}
	info, err := c.Info(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if info.Delivered.Consumer < info.Delivered.Stream {
		return fmt.Sprintf("unknown (delivered %d, stream sequence %d)", info.Delivered.Consumer, info.Delivered.Stream)
	}
	return strconv.FormatUint(info.Delivered.Consumer-info.Delivered.Stream, 10)
}

// soakStalled fails the soak run that stopped making progress, with the
// evidence: the batches whose rows are missing at the end of the line,
// when each was acknowledged relative to the NATS restart, and the
// streams' state (a publication acknowledged during the restart but
// missing after it shows as a prompt stream whose last sequence is short
// of the batches acknowledged: docs/DESIGN.md, "Known problems").
func soakStalled(ctx context.Context, t *testing.T, js jetstream.JetStream, topo pipeline.Topology, sink *idSink, pub *soakPublisher, restartFrom, restartTo time.Time) {
	t.Helper()
	var missing []string
	published := 0
	sink.mu.Lock()
	for b := range soakBatches {
		at := pub.ackedAt(b)
		if at.IsZero() {
			continue
		}
		published++
		n := 0
		for _, id := range soakIDs(b) {
			if sink.seen[id] == 0 {
				n++
			}
		}
		if n > 0 {
			when := "before the restart"
			switch {
			case restartFrom.IsZero() || at.Before(restartFrom):
			case at.Before(restartTo):
				when = "during the restart"
			default:
				when = fmt.Sprintf("%s after the restart", at.Sub(restartTo).Round(time.Millisecond))
			}
			missing = append(missing, fmt.Sprintf("batch %d (%d of %d rows missing; PubAck %s)", b, n, soakRows, when))
		}
	}
	sink.mu.Unlock()
	var streams strings.Builder
	ictx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 10*time.Second)
	defer cancel()
	for _, h := range topo.Hops() {
		st, err := js.Stream(ictx, h.Stream)
		if err != nil {
			fmt.Fprintf(&streams, "%s: %v\n", h.Stream, err)
			continue
		}
		info, err := st.Info(ictx)
		if err != nil {
			fmt.Fprintf(&streams, "%s: %v\n", h.Stream, err)
			continue
		}
		fmt.Fprintf(&streams, "%s: %d messages, seq %d..%d\n", h.Stream, info.State.Msgs, info.State.FirstSeq, info.State.LastSeq)
		for c := range st.ListConsumers(ictx).Info() {
			fmt.Fprintf(&streams, "  %s: pending %d, ack pending %d, redelivered %d, delivered %d, ack floor %d\n",
				c.Name, c.NumPending, c.NumAckPending, c.NumRedelivered, c.Delivered.Stream, c.AckFloor.Stream)
		}
	}
	unique, _ := sink.counts()
	t.Fatalf("the soak run stalled at %d of %d rows: %d batches acknowledged to the publisher (one message each), missing at the end of the line: %s\nstreams:\n%s",
		unique, soakBatches*soakRows, published, strings.Join(missing, "; "), streams.String())
}
