package replay_test

import (
	"context"
	"errors"
	"fmt"
	"reflect"
	"sort"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/apache/arrow-go/v18/arrow/memory"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/wsgrpo/wsgrpo/bench/logstore"
	"github.com/wsgrpo/wsgrpo/pipeline"
	"github.com/wsgrpo/wsgrpo/pipeline/pipetest"
	"github.com/wsgrpo/wsgrpo/replay"
	"github.com/wsgrpo/wsgrpo/schemas"
	"github.com/wsgrpo/wsgrpo/stages/logger"
	"github.com/wsgrpo/wsgrpo/tracelog"
	"github.com/wsgrpo/wsgrpo/tracelog/chtest"
)

const (
	srcRun   = "src"
	otherRun = "other"
	evalRun  = "evalrun"
	srcRows  = 256 // 4 steps of 8 groups of 8
)

// fixture is one backend's source log and a JetStream server.
type fixture struct {
	store tracelog.Store
	js    jetstream.JetStream
	src   []tracelog.Row
}

// newFixture opens a migrated store of backend b holding srcRun (labeled),
// otherRun and evalRun (never labeled), and starts JetStream.
func newFixture(t *testing.T, b chtest.Backend) *fixture {
	t.Helper()
	cfg, _ := b.Open(t)
	s, err := tracelog.Open(testCtx(t), cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = s.Close() })
	if err := s.Migrate(testCtx(t)); err != nil {
		t.Fatal(err)
	}
	f := &fixture{store: s, js: pipetest.JetStream(t), src: logstore.SyntheticRows(srcRun, srcRows, 8, 1)}
	f.src[5].Completion = "quote ' backslash \\ -- ; end"
	insertRows(t, s, f.src)
	insertRows(t, s, logstore.SyntheticRows(otherRun, 64, 8, 2))
	eval := logstore.SyntheticRows(evalRun, 64, 8, 3)
	for i := range eval {
		eval[i].Labeled = false
	}
	insertRows(t, s, eval)
	return f
}

func TestReplay(t *testing.T) {
	for _, b := range chtest.Backends() {
		t.Run(b.Name, func(t *testing.T) {
			f := newFixture(t, b)
			t.Run("round trip to every target", f.testRoundTrip)
			t.Run("log to stream to log", f.testLogRoundTrip)
			t.Run("idempotent", f.testIdempotent)
			t.Run("steps and where", f.testFilters)
			t.Run("where injection", f.testInjection)
			t.Run("empty selection", f.testEmpty)
			t.Run("stream checks", f.testStreamChecks)
			t.Run("paging", f.testPaging)
		})
	}
}

// want returns the hand-off rows a replay of rows into run into must
// publish for target, keyed by row id.
func want(rows []tracelog.Row, target replay.Target, into string) map[string]any {
	out := map[string]any{}
	for i := range rows {
		r := rows[i]
		r.RunID, r.Replayed = into, true
		switch target {
		case replay.TargetSampler:
			p := r.Verified().Prompt
			if _, dup := out[p.PromptID]; !dup {
				out[p.PromptID] = p
			}
		case replay.TargetVerifier:
			out[r.TrajectoryID] = r.Verified().Rollout
		case replay.TargetLabeler:
			out[r.TrajectoryID] = r.Verified()
		case replay.TargetLearner:
			out[r.TrajectoryID] = r.LabeledRow()
		}
	}
	return out
}

// got flattens batches to rows keyed by id, failing on a row seen twice.
func got(t *testing.T, batches []batch) map[string]any {
	t.Helper()
	out := map[string]any{}
	for _, b := range batches {
		v := reflect.ValueOf(b.rows)
		for i := range v.Len() {
			if _, dup := out[b.ids[i]]; dup {
				t.Fatalf("row %s published twice", b.ids[i])
			}
			out[b.ids[i]] = v.Index(i).Interface()
		}
	}
	return out
}

func compareRows(t *testing.T, g, w map[string]any) {
	t.Helper()
	if len(g) != len(w) {
		t.Fatalf("got %d rows, want %d", len(g), len(w))
	}
	for id, wv := range w {
		gv, ok := g[id]
		if !ok {
			t.Fatalf("row %s missing", id)
		}
		if !reflect.DeepEqual(gv, wv) {
			t.Fatalf("row %s differs:\n got %+v\nwant %+v", id, gv, wv)
		}
	}
}

func (f *fixture) testRoundTrip(t *testing.T) {
	for _, target := range replay.Targets() {
		t.Run(string(target), func(t *testing.T) {
			mem := newChecked(t)
			into := "rt-" + string(target)
			topo := ensureRun(t, f.js, into)
			kind, _ := target.Kind()
			c := newConsumer(t, f.js, topo, kind)
			var last replay.Progress
			sum, err := replay.Replay(testCtx(t), f.store, f.js, replay.Options{
				Run: srcRun, Into: topo, Target: target, Batch: 20, PageRows: 20, Allocator: mem,
				Progress: func(p replay.Progress) { last = p },
			})
			if err != nil {
				t.Fatal(err)
			}
			batches := c.readAll(t, mem)
			w := want(f.src, target, into)
			compareRows(t, got(t, batches), w)
			if sum.Rows != int64(len(w)) || sum.Selected != srcRows || sum.Subject != c.hop.Subject || sum.Kind != kind {
				t.Fatalf("summary %+v, want %d rows of %d to %s", sum, len(w), srcRows, c.hop.Subject)
			}
			if sum.Batches != len(batches) || last.Batches != sum.Batches || last.Read != srcRows || last.Total != srcRows {
				t.Fatalf("summary %+v, progress %+v, %d batches read", sum, last, len(batches))
			}
			groupOf := map[string]int{}
			for bi, b := range batches {
				if b.kind != string(kind) || !strings.HasPrefix(b.msgID, "replay:"+string(target)+":") {
					t.Fatalf("batch %d: kind %q id %q", bi, b.kind, b.msgID)
				}
				if target == replay.TargetSampler {
					continue
				}
				if len(b.ids) > 20 {
					t.Fatalf("batch %d holds %d rows, limit 20", bi, len(b.ids))
				}
				for _, id := range b.ids {
					g := id[:strings.LastIndexByte(id, '/')]
					if prev, ok := groupOf[g]; ok && prev != bi {
						t.Fatalf("group %s split over batches %d and %d", g, prev, bi)
					}
					groupOf[g] = bi
				}
			}
			if target != replay.TargetSampler && sum.Batches < srcRows/16 {
				t.Fatalf("%d batches, want at least %d (at most two whole groups of 8 per batch of 20)", sum.Batches, srcRows/16)
			}
		})
	}
}

// normalize makes log rows comparable: nil for empty arrays, no insert
// version, second-precision UTC times.
func normalize(rows []tracelog.Row) []tracelog.Row {
	out := make([]tracelog.Row, len(rows))
	for i, r := range rows {
		v := reflect.ValueOf(&r).Elem()
		for j := range v.NumField() {
			if fl := v.Field(j); fl.Kind() == reflect.Slice && fl.Len() == 0 {
				fl.Set(reflect.Zero(fl.Type()))
			}
		}
		r.Inserted = 0
		r.Created = r.Created.UTC().Truncate(time.Second)
		out[i] = r
	}
	sort.Slice(out, func(i, j int) bool { return out[i].TrajectoryID < out[j].TrajectoryID })
	return out
}

// testLogRoundTrip replays into the logger's input streams (labeled, and
// verified for runs without a labeler), runs the real logger stage on them,
// and reads the log back: the same rows under the new run, marked replayed.
func (f *fixture) testLogRoundTrip(t *testing.T) {
	for _, target := range []replay.Target{replay.TargetLearner, replay.TargetLabeler} {
		t.Run(string(target), func(t *testing.T) {
			mem := newChecked(t)
			into := "log-" + string(target)
			topo := ensureRun(t, f.js, into)
			stopLogger := f.startLogger(t, topo, target, mem)
			if _, err := replay.Replay(testCtx(t), f.store, f.js, replay.Options{Run: srcRun, Into: topo, Target: target, Allocator: mem}); err != nil {
				t.Fatal(err)
			}
			waitFor(t, "the logger to write every replayed row", func() bool {
				n, err := f.store.Count(testCtx(t), into)
				return err == nil && n == srcRows
			})
			stopLogger()
			back, err := tracelog.ReadRun(testCtx(t), f.store, into)
			if err != nil {
				t.Fatal(err)
			}
			exp := make([]tracelog.Row, len(f.src))
			for i, r := range f.src {
				r.RunID, r.Replayed = into, true
				if target == replay.TargetLabeler {
					r.Labeled, r.StepRewards, r.ShapedReward, r.Advantage = false, nil, 0, 0
					r.Shaper, r.LabelMs, r.StepScores, r.StepAdvantages, r.Labeler = "", 0, nil, nil, ""
				}
				exp[i] = r
			}
			g, w := normalize(back), normalize(exp)
			if len(g) != len(w) {
				t.Fatalf("log holds %d rows of %s, want %d", len(g), into, len(w))
			}
			for i := range w {
				if !reflect.DeepEqual(g[i], w[i]) {
					t.Fatalf("row %s differs:\n got %+v\nwant %+v", w[i].TrajectoryID, g[i], w[i])
				}
			}
		})
	}
}

// startLogger runs the logger stage of topo on the stream target reads,
// once its durable consumer exists; the returned function stops it.
func (f *fixture) startLogger(t *testing.T, topo pipeline.Topology, target replay.Target, mem memory.Allocator) func() {
	t.Helper()
	rc, err := topo.RunnerConfig(pipeline.StageLogger)
	if err != nil {
		t.Fatal(err)
	}
	kind, _ := target.Kind()
	hop, err := topo.Hop(kind)
	if err != nil {
		t.Fatal(err)
	}
	rc.Stream, rc.InputKind, rc.Allocator = hop.Stream, kind, mem
	r, err := pipeline.NewRunner(f.js, rc, logger.New(f.store, logger.Options{}))
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- r.Run(ctx) }()
	var once sync.Once
	stop := func() {
		once.Do(func() {
			cancel()
			if err := <-done; err != nil {
				t.Errorf("logger: %v", err)
			}
		})
	}
	t.Cleanup(stop)
	s, err := f.js.Stream(testCtx(t), hop.Stream)
	if err != nil {
		t.Fatal(err)
	}
	waitFor(t, "the logger's durable consumer", func() bool {
		_, err := s.Consumer(testCtx(t), rc.Consumer)
		return err == nil
	})
	return stop
}

func (f *fixture) testIdempotent(t *testing.T) {
	mem := newChecked(t)
	topo := ensureRun(t, f.js, "idem")
	hop, _ := topo.Hop(schemas.KindRollout)
	opts := replay.Options{Run: srcRun, Into: topo, Target: replay.TargetVerifier, Allocator: mem}
	first, err := replay.Replay(testCtx(t), f.store, f.js, opts)
	if err != nil {
		t.Fatal(err)
	}
	n := streamMsgs(t, f.js, hop)
	if n != uint64(first.Messages) || n == 0 {
		t.Fatalf("stream holds %d messages, replay published %d", n, first.Messages)
	}
	second, err := replay.Replay(testCtx(t), f.store, f.js, opts)
	if err != nil {
		t.Fatal(err)
	}
	if m := streamMsgs(t, f.js, hop); m != n || second != first {
		t.Fatalf("second replay: stream holds %d messages (was %d), summary %+v vs %+v", m, n, second, first)
	}
}

func (f *fixture) testFilters(t *testing.T) {
	tests := []struct {
		name  string
		steps string
		where string
		keep  func(r *tracelog.Row) bool
	}{
		{"steps range", "1..2", "", func(r *tracelog.Row) bool { return r.Step >= 1 && r.Step <= 2 }},
		{"steps open end", "3..", "", func(r *tracelog.Row) bool { return r.Step >= 3 }},
		{"single step", "0", "", func(r *tracelog.Row) bool { return r.Step == 0 }},
		{"where", "", "sample_index < 4 AND finish_reason = 'eos'",
			func(r *tracelog.Row) bool { return r.SampleIndex < 4 && r.FinishReason == "eos" }},
		{"steps and where", "1..2", "correct = 1 OR arrayExists(x -> x < -0.4, step_rewards)",
			func(r *tracelog.Row) bool {
				neg := false
				for _, x := range r.StepRewards {
					neg = neg || x < -0.4
				}
				return r.Step >= 1 && r.Step <= 2 && (r.Correct || neg)
			}},
	}
	for i, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			mem := newChecked(t)
			into := "filt" + string(rune('a'+i))
			topo := ensureRun(t, f.js, into)
			c := newConsumer(t, f.js, topo, schemas.KindVerified)
			steps, err := replay.ParseSteps(tc.steps)
			if err != nil {
				t.Fatal(err)
			}
			var keep []tracelog.Row
			for j := range f.src {
				if tc.keep(&f.src[j]) {
					keep = append(keep, f.src[j])
				}
			}
			if len(keep) == 0 || len(keep) == len(f.src) {
				t.Fatalf("filter keeps %d of %d rows: not a test of filtering", len(keep), len(f.src))
			}
			sum, err := replay.Replay(testCtx(t), f.store, f.js, replay.Options{
				Run: srcRun, Into: topo, Target: replay.TargetLabeler, Steps: steps, Where: tc.where, Allocator: mem,
			})
			if err != nil {
				t.Fatal(err)
			}
			compareRows(t, got(t, c.readAll(t, mem)), want(keep, replay.TargetLabeler, into))
			if sum.Selected != int64(len(keep)) {
				t.Fatalf("selected %d, want %d", sum.Selected, len(keep))
			}
		})
	}
}

func (f *fixture) testInjection(t *testing.T) {
	topo := ensureRun(t, f.js, "inj")
	hop, _ := topo.Hop(schemas.KindRollout)
	refused := []string{
		"1) OR (1",
		"1) OR run_id = 'other' OR (1",
		"1; DROP TABLE trajectories",
		"1) UNION ALL SELECT * FROM trajectories WHERE (1",
		"step IN (SELECT step FROM trajectories WHERE run_id = 'other')",
		"1 -- ",
		"1 /*",
		"1) SETTINGS max_threads = 1 --",
	}
	for _, w := range refused {
		t.Run("refused "+w, func(t *testing.T) {
			_, err := replay.Replay(testCtx(t), f.store, f.js, replay.Options{Run: srcRun, Into: topo, Target: replay.TargetVerifier, Where: w})
			if !errors.Is(err, replay.ErrWhere) {
				t.Fatalf("err = %v, want ErrWhere", err)
			}
		})
	}
	if n := streamMsgs(t, f.js, hop); n != 0 {
		t.Fatalf("refused replays published %d messages", n)
	}
	// Accepted expressions stay inside the run: other runs' rows never
	// come along, and quotes inside literals stay literal.
	contained := []struct {
		where string
		rows  int64
	}{
		{"1 = 1 OR run_id = 'other'", srcRows},
		{"run_id = 'other'", 0},
		{"task = 'x\\' OR 1=1 OR run_id = \\'other'", 0},
		{"task = 'arith'' OR run_id = ''other'", 0},
		{"task = 'a?b' OR prompt_id = '?'", 0},
	}
	for i, tc := range contained {
		t.Run("contained "+tc.where, func(t *testing.T) {
			mem := newChecked(t)
			into := "cont" + string(rune('a'+i))
			ctopo := ensureRun(t, f.js, into)
			c := newConsumer(t, f.js, ctopo, schemas.KindRollout)
			sum, err := replay.Replay(testCtx(t), f.store, f.js, replay.Options{Run: srcRun, Into: ctopo, Target: replay.TargetVerifier, Where: tc.where, Allocator: mem})
			if tc.rows == 0 {
				if !errors.Is(err, replay.ErrEmpty) {
					t.Fatalf("err = %v, want ErrEmpty", err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			g := got(t, c.readAll(t, mem))
			if sum.Selected != tc.rows || int64(len(g)) != tc.rows {
				t.Fatalf("selected %d, read %d, want %d", sum.Selected, len(g), tc.rows)
			}
			for id := range g {
				if !strings.HasPrefix(id, srcRun+"/") {
					t.Fatalf("row %s of another run escaped the run filter", id)
				}
			}
		})
	}
}

func (f *fixture) testEmpty(t *testing.T) {
	topo := ensureRun(t, f.js, "empty")
	tests := []struct {
		name, run, steps, where, says string
	}{
		{"unknown run", "nobody", "", "", `no trajectories of run "nobody"`},
		{"steps past the end", srcRun, "100..200", "", "none of the 256 trajectories"},
		{"where matches nothing", srcRun, "", "task = 'none'", "none of the 256 trajectories"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			steps, err := replay.ParseSteps(tc.steps)
			if err != nil {
				t.Fatal(err)
			}
			_, err = replay.Replay(testCtx(t), f.store, f.js, replay.Options{
				Run: tc.run, Into: topo, Target: replay.TargetVerifier, Steps: steps, Where: tc.where,
			})
			if !errors.Is(err, replay.ErrEmpty) || !strings.Contains(err.Error(), tc.says) {
				t.Fatalf("err = %v, want ErrEmpty saying %q", err, tc.says)
			}
		})
	}
}

func (f *fixture) testStreamChecks(t *testing.T) {
	t.Run("learner stream without consumers", func(t *testing.T) {
		// Ensure creates the learner and logger consumers by default; a
		// topology that opts out of them leaves an interest stream that
		// would drop what is published.
		topo, err := pipeline.NewTopology("nocons")
		if err != nil {
			t.Fatal(err)
		}
		topo.LabeledConsumers = []string{}
		if err := topo.Ensure(testCtx(t), f.js); err != nil {
			t.Fatal(err)
		}
		_, err = replay.Replay(testCtx(t), f.store, f.js, replay.Options{Run: srcRun, Into: topo, Target: replay.TargetLearner})
		if !errors.Is(err, replay.ErrStream) || !strings.Contains(err.Error(), "no") {
			t.Fatalf("err = %v, want ErrStream", err)
		}
	})
	t.Run("run without streams", func(t *testing.T) {
		topo, err := pipeline.NewTopology("nostreams")
		if err != nil {
			t.Fatal(err)
		}
		_, err = replay.Replay(testCtx(t), f.store, f.js, replay.Options{Run: srcRun, Into: topo, Target: replay.TargetVerifier})
		if !errors.Is(err, replay.ErrStream) {
			t.Fatalf("err = %v, want ErrStream", err)
		}
	})
	t.Run("unlabeled rows to learner", func(t *testing.T) {
		topo := ensureRun(t, f.js, "unlab")
		newConsumer(t, f.js, topo, schemas.KindLabeled)
		_, err := replay.Replay(testCtx(t), f.store, f.js, replay.Options{Run: evalRun, Into: topo, Target: replay.TargetLearner})
		if !errors.Is(err, replay.ErrUnlabeled) {
			t.Fatalf("err = %v, want ErrUnlabeled", err)
		}
	})
}

// testPaging checks step order within a page, and that groups whose ids
// interleave (overlapping page ranges) are still published once, whole.
func (f *fixture) testPaging(t *testing.T) {
	t.Run("step order", func(t *testing.T) {
		mem := newChecked(t)
		rows := logstore.SyntheticRows("steps", 12*64, 2, 9) // steps 0..11: ids sort 0, 1, 10, 11, 2, ...
		insertRows(t, f.store, rows)
		topo := ensureRun(t, f.js, "order")
		c := newConsumer(t, f.js, topo, schemas.KindRollout)
		if _, err := replay.Replay(testCtx(t), f.store, f.js, replay.Options{Run: "steps", Into: topo, Target: replay.TargetVerifier, Allocator: mem}); err != nil {
			t.Fatal(err)
		}
		batches := c.readAll(t, mem)
		prev := int64(-1)
		for i, b := range batches {
			rs := b.rows.([]schemas.Rollout)
			for _, r := range rs {
				if r.Step != rs[0].Step {
					t.Fatalf("batch %d mixes steps %d and %d", i, rs[0].Step, r.Step)
				}
			}
			if rs[0].Step < prev {
				t.Fatalf("batch %d has step %d after step %d", i, rs[0].Step, prev)
			}
			prev = rs[0].Step
		}
		compareRows(t, got(t, batches), want(rows, replay.TargetVerifier, "order"))
	})
	t.Run("interleaved group ids", func(t *testing.T) {
		mem := newChecked(t)
		rows := logstore.SyntheticRows("mixed", 32, 2, 4)
		for i := range rows {
			rows[i].Step, rows[i].SampleIndex = 0, int32(i/4)
			rows[i].TrajectoryID = fmt.Sprintf("mixed/t%02d", i)
			rows[i].GroupID = fmt.Sprintf("mixed/g%d", i%4)
		}
		insertRows(t, f.store, rows)
		topo := ensureRun(t, f.js, "interleaved")
		c := newConsumer(t, f.js, topo, schemas.KindLabeled)
		sum, err := replay.Replay(testCtx(t), f.store, f.js, replay.Options{
			Run: "mixed", Into: topo, Target: replay.TargetLearner, Batch: 8, PageRows: 8, Allocator: mem,
		})
		if err != nil {
			t.Fatal(err)
		}
		batches := c.readAll(t, mem)
		compareRows(t, got(t, batches), want(rows, replay.TargetLearner, "interleaved"))
		if sum.Batches != 4 || len(batches) != 4 {
			t.Fatalf("%d batches (%d read), want one per group", sum.Batches, len(batches))
		}
		for i, b := range batches {
			for _, r := range b.rows.([]schemas.Labeled) {
				if r.GroupID != b.rows.([]schemas.Labeled)[0].GroupID {
					t.Fatalf("batch %d mixes groups", i)
				}
			}
		}
	})
}
