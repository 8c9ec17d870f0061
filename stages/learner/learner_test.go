package learner

import (
	"context"
	"errors"
	"fmt"
	"math"
	"slices"
	"testing"

	"github.com/wsgrpo/wsgrpo/model/optim"
	"github.com/wsgrpo/wsgrpo/model/ort/orttest"
	"github.com/wsgrpo/wsgrpo/schemas"
)

// TestLearnsRewardedCompletion: on-policy groups where completion A has
// advantage +1 and B -1; after a few updates log p(A) rose and log p(B)
// fell, under both aggregations (token-sum with per-step credit too).
func TestLearnsRewardedCompletion(t *testing.T) {
	rt := orttest.Runtime(t)
	cases := []struct {
		name string
		o    Options
	}{
		{"seq-mean", Options{}},
		{"token-sum-step-credit", Options{Aggregation: AggTokenSum, PerStepCredit: true}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			init := tiny(t, 1)
			o := tc.o
			o.GroupsPerStep, o.MicroBatch = 2, 3
			o.Optim = optim.Config{LR: 3e-3}
			pub := &store{}
			p := newLearner(t, rt, init, pub, o)
			const prompt, good, bad = "2+2", "44", "57"
			beforeA := completionLogprob(t, rt, init, prompt, good)
			beforeB := completionLogprob(t, rt, init, prompt, bad)
			const steps = 8
			for s := range int64(steps) {
				cur := snapshot(t, p)
				old := policyLogprobs(t, rt, cur)
				for g := range int64(2) {
					sp := spec{step: 2*s + g, prompt: prompt, comps: []string{good, bad}, advs: []float32{1, -1},
						version: p.Stats().Version, stepAdv: tc.o.PerStepCredit}
					feed(t.Context(), t, p, sp.build(t, old))
				}
			}
			st := p.Stats()
			if st.Step != steps || st.RowsTrained != 4*steps || len(pub.versions()) != steps+1 {
				t.Fatalf("step %d, rows %d, versions %v; want %d steps of 4 rows", st.Step, st.RowsTrained, pub.versions(), steps)
			}
			after := snapshot(t, p)
			afterA := completionLogprob(t, rt, after, prompt, good)
			afterB := completionLogprob(t, rt, after, prompt, bad)
			t.Logf("log p(A) %.3f -> %.3f, log p(B) %.3f -> %.3f", beforeA, afterA, beforeB, afterB)
			if afterA <= beforeA+0.5 || afterB >= beforeB-0.5 {
				t.Fatalf("did not learn: log p(A) %.3f -> %.3f, log p(B) %.3f -> %.3f", beforeA, afterA, beforeB, afterB)
			}
		})
	}
}

// resumeInputs returns 2*steps groups of two rows, sampled with version
// 1, with fixed sampler logprobs.
func resumeInputs(t testing.TB, steps int) [][]schemas.Labeled {
	t.Helper()
	var out [][]schemas.Labeled
	for i := range 2 * steps {
		sp := spec{step: int64(i), prompt: fmt.Sprintf("%d+%d", i, i+1), comps: []string{"A: 1", "A: 22"},
			advs: []float32{float32(i%3) - 1, 1 - float32(i%3)}, version: 1}
		out = append(out, sp.build(t, nil))
	}
	return out
}

// TestResumeSameWeights: K updates straight match K/2, a Close (final
// checkpoint), a new learner on the same directory and K/2 more, bit for
// bit (one ONNX Runtime thread and the same inputs make the arithmetic
// deterministic). Rows redelivered after the resume are not trained again.
func TestResumeSameWeights(t *testing.T) {
	rt := orttest.Runtime(t)
	const k = 4
	init := tiny(t, 2)
	inputs := resumeInputs(t, k)
	o := Options{GroupsPerStep: 2, MicroBatch: 3, MaxStaleness: 100, CheckpointEvery: 100, Optim: optim.Config{LR: 1e-3}}

	straight := newLearner(t, rt, init, &store{}, o)
	for _, rows := range inputs {
		feed(t.Context(), t, straight, rows)
	}
	want := snapshot(t, straight)

	o.Dir = t.TempDir()
	pub := &store{}
	first, err := New(t.Context(), rt, init, pub, o)
	if err != nil {
		t.Fatal(err)
	}
	for _, rows := range inputs[:k] {
		feed(t.Context(), t, first, rows)
	}
	if err := first.Close(t.Context()); err != nil {
		t.Fatal(err)
	}
	second := newLearner(t, rt, init, pub, o)
	if st := second.Stats(); st.Step != k/2 || st.Version != 1+k/2 {
		t.Fatalf("resumed at step %d version %d, want %d and %d", st.Step, st.Version, k/2, 1+k/2)
	}
	// A redelivery of everything trained before the checkpoint.
	for _, rows := range inputs[:k] {
		feed(t.Context(), t, second, rows)
	}
	if st := second.Stats(); st.Step != k/2 || st.Dropped[DropDuplicate] != 2*k || st.Buffered != 0 {
		t.Fatalf("redelivered rows: step %d, duplicates %d, buffered %d; want step %d, %d duplicates, none buffered",
			st.Step, st.Dropped[DropDuplicate], st.Buffered, k/2, 2*k)
	}
	for _, rows := range inputs[k:] {
		feed(t.Context(), t, second, rows)
	}
	st := second.Stats()
	if st.Step != k || st.Version != straight.Stats().Version {
		t.Fatalf("step %d version %d after resume, straight run step %d version %d", st.Step, st.Version, straight.Stats().Step, straight.Stats().Version)
	}
	sameWeights(t, want, snapshot(t, second))
	if v := pub.versions(); !slices.Equal(v, []int64{1, 2, 3, 4, 5}) {
		t.Fatalf("published versions %v, want 1..5 once each", v)
	}
}

// TestDeferredAcks: a batch is acknowledged only once the checkpoint that
// covers its rows is written; a batch of dropped rows at once; one whose
// rows never trained is handed back at Close.
func TestDeferredAcks(t *testing.T) {
	rt := orttest.Runtime(t)
	a := &acks{}
	ctx := a.ctx(t.Context())
	o := Options{GroupsPerStep: 1, CheckpointEvery: 2, Dir: t.TempDir(), MaxStaleness: 100}
	p, err := New(t.Context(), rt, tiny(t, 3), &store{}, o)
	if err != nil {
		t.Fatal(err)
	}
	group := func(i int64) []schemas.Labeled {
		return spec{step: i, prompt: "1+1", comps: []string{"A: 2", "A: 3"}, advs: []float32{1, -1}, version: 1}.build(t, nil)
	}
	steps := []struct {
		name string
		rows []schemas.Labeled
		want []string
	}{
		{"first half of a group", group(1)[:1], []string{"open"}},
		{"second half: update 1, no checkpoint", group(1)[1:], []string{"open", "open"}},
		{"update 2 and its checkpoint", group(2), []string{"acked", "acked", "acked"}},
		{"only future-version rows", spec{step: 9, prompt: "1+1", comps: []string{"A: 2"}, advs: []float32{1}, version: 50}.build(t, nil),
			[]string{"acked", "acked", "acked", "acked"}},
		{"update 3", group(3), []string{"acked", "acked", "acked", "acked", "open"}},
		{"redelivered update 3 rows", group(3), []string{"acked", "acked", "acked", "acked", "open", "open"}},
		{"half of a group", group(4)[:1], []string{"acked", "acked", "acked", "acked", "open", "open", "open"}},
	}
	for _, s := range steps {
		feed(ctx, t, p, s.rows)
		if got := a.state(); !slices.Equal(got, s.want) {
			t.Fatalf("after %s: acks %v, want %v", s.name, got, s.want)
		}
	}
	if err := p.Close(t.Context()); err != nil {
		t.Fatal(err)
	}
	want := []string{"acked", "acked", "acked", "acked", "acked", "acked", "handed-back"}
	if got := a.state(); !slices.Equal(got, want) {
		t.Fatalf("after Close: acks %v, want %v", got, want)
	}
}

// TestStaleness: rows more than MaxStaleness versions old are dropped
// with their group and counted; an incomplete group that falls behind is
// purged at the next update.
func TestStaleness(t *testing.T) {
	rt := orttest.Runtime(t)
	cases := []struct {
		maxStale            int64
		wantStep, wantStale int64
	}{
		{0, 2, 2 + 1}, // the version-1 group after update 1 and the half group
		{1, 3, 1},     // the half group once version 3 is out
	}
	for _, tc := range cases {
		t.Run(fmt.Sprintf("max-staleness-%d", tc.maxStale), func(t *testing.T) {
			p := newLearner(t, rt, tiny(t, 4), &store{}, Options{GroupsPerStep: 1, MaxStaleness: tc.maxStale})
			g := func(i, v int64) []schemas.Labeled {
				return spec{step: i, prompt: "3+4", comps: []string{"A: 7", "A: 8"}, advs: []float32{1, -1}, version: v}.build(t, nil)
			}
			feed(t.Context(), t, p, g(0, 1)[:1]) // half a group at version 1
			feed(t.Context(), t, p, g(1, 1))     // update 1: version 2
			feed(t.Context(), t, p, g(2, 1))     // one version behind
			feed(t.Context(), t, p, g(3, p.Stats().Version))
			st := p.Stats()
			if st.Step != tc.wantStep || st.Dropped[DropStale] != tc.wantStale {
				t.Fatalf("step %d, stale drops %d; want %d and %d (%v)", st.Step, st.Dropped[DropStale], tc.wantStep, tc.wantStale, st.Dropped)
			}
			if tc.maxStale == 0 && st.Buffered != 0 {
				t.Fatalf("%d rows still buffered", st.Buffered)
			}
		})
	}
}

// TestNonFiniteUpdateSkipped: a sampler logprob of -1e30 on a row with a
// negative advantage makes the importance ratio overflow and the loss
// infinite: the update is skipped, the weights stay bit for bit, nothing
// is published, and the counters say so.
func TestNonFiniteUpdateSkipped(t *testing.T) {
	rt := orttest.Runtime(t)
	pub := &store{}
	var sink sinkFunc
	var got []StepMetrics
	sink = func(m StepMetrics) { got = append(got, m) }
	p := newLearner(t, rt, tiny(t, 5), pub, Options{GroupsPerStep: 1, Sink: sink})
	before := snapshot(t, p)
	rows := spec{step: 1, prompt: "5+5", comps: []string{"A: 10", "A: 11"}, advs: []float32{1, -1}, version: 1,
		mutate: func(i int, l *schemas.Labeled) {
			if i == 1 {
				l.TokenLogprobs[0] = -1e30
			}
		}}.build(t, nil)
	feed(t.Context(), t, p, rows)
	st := p.Stats()
	if st.Skipped != 1 || st.Step != 0 || st.Version != 1 || st.Dropped[DropSkippedUpdate] != 2 {
		t.Fatalf("stats %+v; want one skipped update, step 0, version 1, 2 rows dropped", st)
	}
	if len(got) != 1 || !got[0].Skipped || finite(got[0].Loss) {
		t.Fatalf("metrics %+v; want one skipped step with a non-finite loss", got)
	}
	sameWeights(t, before, snapshot(t, p))
	if v := pub.versions(); !slices.Equal(v, []int64{1}) {
		t.Fatalf("published %v, want only the initial version", v)
	}
	// The same group again is a redelivery, not a second try.
	feed(t.Context(), t, p, rows)
	if st := p.Stats(); st.Skipped != 1 || st.Dropped[DropDuplicate] != 2 {
		t.Fatalf("redelivery: %+v", st)
	}
	// A finite group trains afterwards.
	feed(t.Context(), t, p, spec{step: 2, prompt: "5+5", comps: []string{"A: 10", "A: 11"}, advs: []float32{1, -1}, version: 1}.build(t, nil))
	if st := p.Stats(); st.Step != 1 || st.Version != 2 {
		t.Fatalf("after a finite group: %+v", st)
	}
}

// sinkFunc adapts a function to StepSink.
type sinkFunc func(StepMetrics)

func (f sinkFunc) Step(m StepMetrics) { f(m) }

// TestBadInput: rows that break the labeled rows' rules dead-letter the
// batch (schemas.ErrInvalid, nothing taken); rows that cannot train are
// counted drops, whole groups for non-finite numbers.
func TestBadInput(t *testing.T) {
	rt := orttest.Runtime(t)
	init := tiny(t, 6)
	long := "A: " + string(slices.Repeat([]byte("9"), 40))
	cases := []struct {
		name      string
		comps     []string
		mutate    func(i int, l *schemas.Labeled)
		invalid   bool
		drop      string
		drops     int64
		wantSteps int64
	}{
		{name: "logprob count", mutate: func(i int, l *schemas.Labeled) { l.TokenLogprobs = l.TokenLogprobs[1:] }, invalid: true},
		{name: "token outside vocabulary", mutate: func(i int, l *schemas.Labeled) { l.CompletionTokenIDs[0] = 9999 }, invalid: true},
		{name: "sample index", mutate: func(i int, l *schemas.Labeled) { l.SampleIndex = 5 }, invalid: true},
		{name: "no trajectory id", mutate: func(i int, l *schemas.Labeled) { l.TrajectoryID = "" }, invalid: true},
		{name: "step ends", mutate: func(i int, l *schemas.Labeled) { l.StepEnds = []int32{3, 2} }, invalid: true},
		{name: "step advantages", mutate: func(i int, l *schemas.Labeled) { l.StepAdvantages = []float32{1, 2, 3} }, invalid: true},
		{name: "group sizes disagree", mutate: func(i int, l *schemas.Labeled) { l.GroupSize = int32(2 + i) }, invalid: true},
		{name: "NaN advantage", mutate: nanAt(1, func(l *schemas.Labeled, v float32) { l.Advantage = v }), drop: DropNonFinite, drops: 2},
		{name: "Inf step advantage", mutate: nanAt(0, func(l *schemas.Labeled, v float32) { l.StepAdvantages = []float32{float32(math.Inf(1))} }), drop: DropNonFinite, drops: 2},
		{name: "positive logprob", mutate: nanAt(1, func(l *schemas.Labeled, v float32) { l.TokenLogprobs[0] = 0.5 }), drop: DropNonFinite, drops: 2},
		{name: "empty completion", mutate: func(i int, l *schemas.Labeled) {
			if i == 0 {
				l.CompletionTokenIDs, l.TokenLogprobs, l.StepEnds = nil, nil, nil
			}
		}, drop: DropEmptyCompletion, drops: 1, wantSteps: 1},
		{name: "too long", comps: []string{long, "A: 1"}, drop: DropTooLong, drops: 1, wantSteps: 1},
		{name: "future version", mutate: func(i int, l *schemas.Labeled) { l.PolicyVersion = 7 }, drop: DropFutureVersion, drops: 2},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			p := newLearner(t, rt, init, &store{}, Options{GroupsPerStep: 1})
			comps := tc.comps
			if comps == nil {
				comps = []string{"A: 1", "A: 2"}
			}
			rows := spec{step: 1, prompt: "0+1", comps: comps, advs: []float32{1, -1}, version: 1, mutate: tc.mutate}.build(t, nil)
			_, err := p.Process(t.Context(), batch(t, rows))
			st := p.Stats()
			if tc.invalid {
				if !errors.Is(err, schemas.ErrInvalid) || st.Buffered != 0 {
					t.Fatalf("err %v, %d rows buffered; want schemas.ErrInvalid and nothing taken", err, st.Buffered)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if st.Dropped[tc.drop] != tc.drops || st.Step != tc.wantSteps || st.Buffered != 0 {
				t.Fatalf("dropped %v, step %d, buffered %d; want %d %s, step %d, none buffered", st.Dropped, st.Step, st.Buffered, tc.drops, tc.drop, tc.wantSteps)
			}
		})
	}
	t.Run("rollout batch", func(t *testing.T) {
		p := newLearner(t, rt, init, &store{}, Options{})
		rec := schemas.NewRolloutBatch(nil, []schemas.Rollout{{TrajectoryID: "x"}})
		defer rec.Release()
		if _, err := p.Process(t.Context(), rec); !errors.Is(err, schemas.ErrInvalid) {
			t.Fatalf("got %v, want schemas.ErrInvalid", err)
		}
	})
}

// nanAt applies set with NaN to row i only.
func nanAt(i int, set func(l *schemas.Labeled, v float32)) func(int, *schemas.Labeled) {
	return func(j int, l *schemas.Labeled) {
		if j == i {
			set(l, float32(math.NaN()))
		}
	}
}

// TestVersionNumbering: a learner never reuses a version.
func TestVersionNumbering(t *testing.T) {
	rt := orttest.Runtime(t)
	init := tiny(t, 7)
	cases := []struct {
		name      string
		published []int64
		initVer   int64
		want      int64
		wantPub   []int64
	}{
		{"nothing published", nil, 0, 1, []int64{1}},
		{"initial version published", []int64{1}, 1, 1, []int64{1}},
		{"newer versions published", []int64{1, 5}, 1, 6, []int64{1, 5, 6}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			pub := &store{}
			for _, v := range tc.published {
				if err := pub.Publish(t.Context(), v, []byte("x")); err != nil {
					t.Fatal(err)
				}
			}
			p := newLearner(t, rt, init, pub, Options{InitVersion: tc.initVer})
			if v := p.Stats().Version; v != tc.want || !slices.Equal(pub.versions(), tc.wantPub) {
				t.Fatalf("version %d, published %v; want %d, %v", v, pub.versions(), tc.want, tc.wantPub)
			}
		})
	}
	t.Run("publish outage holds batches", func(t *testing.T) {
		pub := &store{}
		p := newLearner(t, rt, init, pub, Options{GroupsPerStep: 1})
		pub.mu.Lock()
		pub.fail = errors.New("object store down")
		pub.mu.Unlock()
		rows := spec{step: 1, prompt: "1+2", comps: []string{"A: 3", "A: 4"}, advs: []float32{1, -1}, version: 1}.build(t, nil)
		if _, err := p.Process(context.Background(), batch(t, rows)); !errors.Is(err, errUnavailable()) {
			t.Fatalf("got %v, want stage.ErrUnavailable", err)
		}
		next := spec{step: 2, prompt: "1+2", comps: []string{"A: 3", "A: 4"}, advs: []float32{1, -1}, version: 2}.build(t, nil)
		if _, err := p.Process(t.Context(), batch(t, next)); !errors.Is(err, errUnavailable()) || p.Stats().Buffered != 0 {
			t.Fatalf("got %v with %d buffered, want stage.ErrUnavailable before taking rows", err, p.Stats().Buffered)
		}
		pub.mu.Lock()
		pub.fail = nil
		pub.mu.Unlock()
		feed(t.Context(), t, p, next)
		if st := p.Stats(); st.Step != 2 || !slices.Equal(pub.versions(), []int64{1, 2, 3}) {
			t.Fatalf("step %d, published %v", st.Step, pub.versions())
		}
	})
}
