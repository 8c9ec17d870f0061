package main

import (
	"context"
	"fmt"
	"log/slog"
	"math"
	"sync"
	"testing"

	"github.com/apache/arrow-go/v18/arrow"

	"github.com/wsgrpo/wsgrpo/model/shaping"
	"github.com/wsgrpo/wsgrpo/pipeline"
	"github.com/wsgrpo/wsgrpo/schemas"
	"github.com/wsgrpo/wsgrpo/stages/stage"
)

// splitGroups are the groups of the labeler tests, 4 samples each, by
// which samples are correct, with their dr-grpo advantages worked out by
// hand (reward 1 when correct, advantage reward - group mean).
var splitGroups = []struct {
	correct []bool
	adv     []float32
}{
	{[]bool{true, false, false, false}, []float32{0.75, -0.25, -0.25, -0.25}},
	{[]bool{true, true, false, false}, []float32{0.5, 0.5, -0.5, -0.5}},
	{[]bool{false, false, false, true}, []float32{-0.25, -0.25, -0.25, 0.75}},
	{[]bool{false, true, true, true}, []float32{-0.75, 0.25, 0.25, 0.25}},
}

// splitBatches returns the verified rows of splitGroups as two batches:
// samples 0-1 of every group in the first, samples 2-3 in the second, so
// that no batch completes a group.
func splitBatches(run string) (a, b []schemas.Verified) {
	for n, g := range splitGroups {
		pid := fmt.Sprintf("p%d", n)
		for i, ok := range g.correct {
			var v schemas.Verified
			v.RunID, v.Step, v.PromptID, v.Task, v.Prompt.Prompt = run, 1, pid, "arith", fmt.Sprintf("%d+1=", n)
			v.TrajectoryID = schemas.TrajectoryID(run, 1, pid, int32(i))
			v.GroupID = schemas.GroupID(run, 1, pid)
			v.SampleIndex, v.GroupSize, v.PolicyVersion = int32(i), int32(len(g.correct)), 1
			v.Completion, v.CompletionTokenIDs, v.TokenLogprobs = "7", []int32{10, 2}, []float32{-1, -1}
			v.Correct = ok
			if i < len(g.correct)/2 {
				a = append(a, v)
			} else {
				b = append(b, v)
			}
		}
	}
	return a, b
}

// labelerRun is a run with a labeler position against a listening
// embedded server: its session (as a stage process opens it) and its
// dr-grpo configuration.
type labelerRun struct {
	cfg  Config
	sess *session
	log  *slog.Logger
}

func newLabelerRun(t *testing.T, run string) *labelerRun {
	t.Helper()
	srv := listeningServer(t)
	cfg := DefaultConfig()
	cfg.Run, cfg.NATS, cfg.Dir = run, srv.URL(), t.TempDir()
	cfg.Shaping.Shaper = shaping.DrGRPO // no preference model needed
	// Nor a reference policy: these rows are synthetic, and the labeler's
	// reference pass is tested in stages/labeler and by the train runs.
	cfg.Labeler.ReferencePass = false
	if err := cfg.Validate(); err != nil {
		t.Fatal(err)
	}
	log := slog.New(slog.DiscardHandler)
	s, err := openSession(testCtx(t), cfg, log, false)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(s.close)
	return &labelerRun{cfg: cfg, sess: s, log: log}
}

// processor builds a labeler processor through the stage table, with the
// run's group store, as a labeler process does.
func (r *labelerRun) processor(t *testing.T) stage.Processor {
	t.Helper()
	def, err := lookupStage(pipeline.StageLabeler)
	if err != nil {
		t.Fatal(err)
	}
	rc, err := r.sess.topo.RunnerConfig(pipeline.StageLabeler)
	if err != nil {
		t.Fatal(err)
	}
	p, err := def.build(testCtx(t), stageEnv{cfg: r.cfg, log: r.log, rc: r.cfg.runnerConfig(rc), sess: r.sess})
	if err != nil {
		t.Fatal(err)
	}
	return p
}

// start runs a labeler stage (a new processor, a new runner) in the
// background; the returned function stops it and checks its error.
func (r *labelerRun) start(t *testing.T) func() {
	t.Helper()
	ctx, cancel := context.WithCancel(testCtx(t))
	g := pipeline.NewGroup(r.sess.js, r.log)
	logs := newSharedLog(r.cfg, r.log)
	if err := addStages(ctx, g, r.sess, []string{pipeline.StageLabeler}, r.cfg, r.log, logs); err != nil {
		t.Fatal(err)
	}
	run := startGroup(ctx, g)
	var once sync.Once
	stop := func() {
		once.Do(func() {
			if err := run.Stop(); err != nil {
				t.Errorf("labeler: %v", err)
			}
			cancel()
		})
	}
	t.Cleanup(stop)
	return stop
}

// publish publishes rows as one verified batch under message id id.
func (r *labelerRun) publish(t *testing.T, rows []schemas.Verified, id string) {
	t.Helper()
	hop, err := r.sess.topo.Hop(schemas.KindVerified)
	if err != nil {
		t.Fatal(err)
	}
	publishRec(t, r.sess.js, hop.Subject, schemas.NewVerifiedBatch(nil, rows), id)
}

// waitAcked waits until the labeler's consumer has had n batches delivered
// and acknowledged every one.
func (r *labelerRun) waitAcked(t *testing.T, n uint64) {
	t.Helper()
	ctx := testCtx(t)
	hop, _ := r.sess.topo.Hop(schemas.KindVerified)
	pollCmd(t, ctx, fmt.Sprintf("the labeler to acknowledge %d batches", n), func() bool {
		c, err := r.sess.js.Consumer(ctx, hop.Stream, pipeline.StageLabeler)
		if err != nil {
			return false
		}
		info, err := c.Info(ctx)
		return err == nil && info.AckFloor.Stream >= n && info.NumAckPending == 0 && info.NumPending == 0
	})
}

// labeledRows reads every message of the labeled stream.
func (r *labelerRun) labeledRows(t *testing.T) []schemas.Labeled {
	t.Helper()
	ctx := testCtx(t)
	hop, _ := r.sess.topo.Hop(schemas.KindLabeled)
	stream, err := r.sess.js.Stream(ctx, hop.Stream)
	if err != nil {
		t.Fatal(err)
	}
	info, err := stream.Info(ctx)
	if err != nil {
		t.Fatal(err)
	}
	var out []schemas.Labeled
	for seq := info.State.FirstSeq; info.State.Msgs > 0 && seq <= info.State.LastSeq; seq++ {
		m, err := stream.GetMsg(ctx, seq)
		if err != nil {
			t.Fatal(err)
		}
		out = append(out, decodeLabeled(t, m.Data)...)
	}
	return out
}

func decodeLabeled(t *testing.T, data []byte) []schemas.Labeled {
	t.Helper()
	rec, err := schemas.Decode(schemas.KindLabeled, data, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer rec.Release()
	rows, err := schemas.ReadLabeled(rec)
	if err != nil {
		t.Fatal(err)
	}
	return rows
}

// checkLabels checks labeled rows against splitGroups: every sample is
// there, emitted at most emits times (whole groups), with the dr-grpo
// shaper and the hand-computed advantage; it returns how many times each
// group was emitted.
func checkLabels(t *testing.T, run string, rows []schemas.Labeled, emits int) map[string]int {
	t.Helper()
	seen := map[string]int{}
	for _, l := range rows {
		seen[l.TrajectoryID]++
		n := -1
		for i := range splitGroups {
			if l.GroupID == schemas.GroupID(run, 1, fmt.Sprintf("p%d", i)) {
				n = i
			}
		}
		if n < 0 || l.SampleIndex < 0 || int(l.SampleIndex) >= len(splitGroups[n].adv) {
			t.Errorf("unexpected labeled row %s", l.TrajectoryID)
			continue
		}
		if want := splitGroups[n].adv[l.SampleIndex]; math.Abs(float64(l.Advantage-want)) > 1e-6 || l.Shaper != shaping.DrGRPO {
			t.Errorf("row %s: advantage %v by %q, want %v by %q", l.TrajectoryID, l.Advantage, l.Shaper, want, shaping.DrGRPO)
		}
	}
	groups := map[string]int{}
	for n, g := range splitGroups {
		pid := fmt.Sprintf("p%d", n)
		gid := schemas.GroupID(run, 1, pid)
		for i := range g.correct {
			c := seen[schemas.TrajectoryID(run, 1, pid, int32(i))]
			if c < 1 || c > emits {
				t.Errorf("sample %d of group %d labeled %d times, want 1..%d", i, n, c, emits)
			}
			if i > 0 && c != groups[gid] {
				t.Errorf("group %d emitted in part: sample %d labeled %d times, sample 0 %d", n, i, c, groups[gid])
			}
			groups[gid] = c
		}
	}
	return groups
}

// checkNoDeadLetters fails the test if anything was dead-lettered.
func (r *labelerRun) checkNoDeadLetters(t *testing.T) {
	t.Helper()
	dead, err := pipeline.ReadDeadLetters(testCtx(t), r.sess.js, r.sess.topo, 0)
	if err != nil || len(dead) != 0 {
		t.Fatalf("dead letters %v, %v", dead, err)
	}
}

// TestLabelerGroupsAcrossRestart splits every group across two verified
// batches and stops the labeler between them: the first half waits in the
// run's group store, and a new labeler (new processor, new runner) labels
// each group exactly once when the second half arrives.
func TestLabelerGroupsAcrossRestart(t *testing.T) {
	r := newLabelerRun(t, "lrestart")
	a, b := splitBatches(r.cfg.Run)

	stop := r.start(t)
	r.publish(t, a, "a")
	r.waitAcked(t, 1)
	stop()
	if rows := r.labeledRows(t); len(rows) != 0 {
		t.Fatalf("half groups gave %d labeled rows", len(rows))
	}

	stop = r.start(t) // the restarted labeler
	r.publish(t, b, "b")
	r.waitAcked(t, 2)
	stop()
	rows := r.labeledRows(t)
	if len(rows) != len(a)+len(b) {
		t.Errorf("%d labeled rows, want %d", len(rows), len(a)+len(b))
	}
	checkLabels(t, r.cfg.Run, rows, 1)
	r.checkNoDeadLetters(t)
}

// TestLabelerGroupsAcrossWorkers gives the two halves of every group to
// two labeler processors (as two labeler processes hold them) at the same
// time. Both add their half to the group store and read back the rows
// written up to their own last write, so exactly one of them sees each
// group complete and emits it: every group is labeled exactly once.
func TestLabelerGroupsAcrossWorkers(t *testing.T) {
	r := newLabelerRun(t, "lworkers")
	a, b := splitBatches(r.cfg.Run)
	procs := []stage.Processor{r.processor(t), r.processor(t)}
	ctx := testCtx(t)
	var wg sync.WaitGroup
	res := make([][]arrow.RecordBatch, len(procs))
	start := make(chan struct{})
	for i, half := range [][]schemas.Verified{a, b} {
		wg.Go(func() {
			rec := schemas.NewVerifiedBatch(nil, half)
			defer rec.Release()
			<-start
			var err error
			if res[i], err = procs[i].Process(ctx, rec); err != nil {
				t.Errorf("processor %d: %v", i, err)
			}
		})
	}
	close(start)
	wg.Wait()
	outs := make([][]schemas.Labeled, len(procs))
	for i, recs := range res {
		for _, rec := range recs {
			rows, err := schemas.ReadLabeled(rec)
			rec.Release()
			if err != nil {
				t.Fatal(err)
			}
			outs[i] = append(outs[i], rows...)
		}
	}
	checkLabels(t, r.cfg.Run, append(outs[0], outs[1]...), 1)
	t.Logf("labeled rows per processor: %d, %d", len(outs[0]), len(outs[1]))
}
