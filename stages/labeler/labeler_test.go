package labeler_test

import (
	"errors"
	"math"
	"slices"
	"testing"

	"github.com/apache/arrow-go/v18/arrow/memory"

	"github.com/wsgrpo/wsgrpo/model/shaping"
	"github.com/wsgrpo/wsgrpo/schemas"
	"github.com/wsgrpo/wsgrpo/stages/labeler"
	"github.com/wsgrpo/wsgrpo/stages/stage"
)

func grpo() shaping.Config {
	c := shaping.DefaultConfig()
	c.Shaper = shaping.GRPO
	return c
}

func TestCompleteGroupInOneBatch(t *testing.T) {
	mem := memory.NewCheckedAllocator(memory.NewGoAllocator())
	defer mem.AssertSize(t, 0)
	pend := newPending()
	p := newProcessor(t, labeler.Options{Shaping: grpo(), Pending: pend, Allocator: mem})
	// Two groups, interleaved and out of index order.
	got := mustProcess(t, p, mem,
		row("b", 1, 2, false, 4, 1), row("a", 1, 2, true, 4, 1), row("b", 0, 2, true, 4, 1), row("a", 0, 2, false, 4, 1))
	if pend.adds != 0 {
		t.Errorf("the fast path called Pending.Add %d times", pend.adds)
	}
	want := []struct {
		id  string
		adv float32
	}{{"b/0", 1}, {"b/1", -1}, {"a/0", -1}, {"a/1", 1}}
	if len(got) != len(want) {
		t.Fatalf("%d rows, want %d", len(got), len(want))
	}
	for i, w := range want {
		g := got[i]
		if g.TrajectoryID != w.id || !near(float64(g.Advantage), float64(w.adv)) || g.Shaper != shaping.GRPO || g.Labeler != "" || g.StepScores != nil || g.StepRewards != nil {
			t.Errorf("row %d: %s advantage %v shaper %q labeler %q scores %v, want %s %v", i, g.TrajectoryID, g.Advantage, g.Shaper, g.Labeler, g.StepScores, w.id, w.adv)
		}
	}
	s := p.Stats()
	if s.GroupsScored != 2 || s.RowsLabeled != 4 || s.RowsIn != 4 || s.Batches != 1 || s.GroupsFromPending != 0 || s.GroupsDeferred != 0 {
		t.Errorf("stats %+v", s)
	}
}

func TestGroupSplitAcrossBatches(t *testing.T) {
	mem := memory.NewCheckedAllocator(memory.NewGoAllocator())
	defer mem.AssertSize(t, 0)
	pend := newPending()
	p := newProcessor(t, labeler.Options{Shaping: grpo(), Pending: pend, Allocator: mem})
	// The first half of g and a whole group h: only h comes out.
	got := mustProcess(t, p, mem, row("g", 3, 4, true, 4, 1), row("h", 0, 1, true, 4, 1), row("g", 0, 4, false, 4, 1))
	if len(got) != 1 || got[0].GroupID != "h" {
		t.Fatalf("first batch gave %d rows, want only h's", len(got))
	}
	// A redelivered sample of g does not complete it.
	if got := mustProcess(t, p, mem, row("g", 0, 4, false, 4, 1)); got != nil {
		t.Fatalf("incomplete group emitted %d rows", len(got))
	}
	got = mustProcess(t, p, mem, row("g", 2, 4, false, 4, 1), row("g", 1, 4, true, 4, 1))
	if len(got) != 4 {
		t.Fatalf("completing batch gave %d rows, want 4", len(got))
	}
	for i, r := range got {
		want := []float32{-1, 1, -1, 1}[i]
		if r.SampleIndex != int32(i) || !near(float64(r.Advantage), float64(want)) {
			t.Errorf("row %d: sample %d advantage %v, want %d %v", i, r.SampleIndex, r.Advantage, i, want)
		}
	}
	s := p.Stats()
	if s.GroupsScored != 2 || s.GroupsFromPending != 1 || s.GroupsDeferred != 2 || s.OneMemberGroups != 1 || pend.adds != 3 {
		t.Errorf("stats %+v, %d adds", s, pend.adds)
	}
}

// TestShapers runs one group through every shaper: correct, wrong,
// correct, wrong with 10, 20, 30 and 40 tokens and 3, 2, 7 and 0 steps.
// The ws-grpo scorer gives every prefix the same score, so every step
// reward is 0.5.
func TestShapers(t *testing.T) {
	c := shaping.DefaultConfig()
	for _, tc := range []struct {
		shaper  string
		rewards []float64
		dr      bool // dr-grpo: no std division
	}{
		// 1*correct + 5*0.5 (no steps: 0) - 1*[steps outside 3..6].
		{shaper: shaping.WSGRPO, rewards: []float64{3.5, 1.5, 2.5, -1}},
		{shaper: shaping.GRPO, rewards: []float64{1, 0, 1, 0}},
		{shaper: shaping.DrGRPO, rewards: []float64{1, 0, 1, 0}, dr: true},
		// lam = 0.5 - (len-10)/30; wrong rows keep min(0, lam).
		{shaper: shaping.Kimi, rewards: []float64{1.5, 0, 1 - 1.0/6, -0.5}},
		// max_len 30, cache_len 10: free up to 20, -1 at 30 and beyond.
		{shaper: shaping.DAPO, rewards: []float64{1, 0, 0, -1}},
		// correct lengths 10, 30: mean 20, std 10.
		{shaper: shaping.LengthPenalty, rewards: []float64{1 - 0.2/(1+math.E), 0, 1 - 0.2/(1+math.Exp(-1)), 0}},
	} {
		t.Run(tc.shaper, func(t *testing.T) {
			mem := memory.NewCheckedAllocator(memory.NewGoAllocator())
			defer mem.AssertSize(t, 0)
			cfg := c
			cfg.Shaper, cfg.MaxLen, cfg.CacheLen = tc.shaper, 30, 10
			p := newProcessor(t, labeler.Options{Shaping: cfg, Scorer: fixedScorer{value: 0.7}, Allocator: mem, StepAdvantages: true})
			got := mustProcess(t, p, mem, row("g", 0, 4, true, 10, 3), row("g", 1, 4, false, 20, 2), row("g", 2, 4, true, 30, 7), row("g", 3, 4, false, 40, 0))
			adv := grpoAdvantages(tc.rewards)
			if tc.dr {
				adv = []float64{0.5, -0.5, 0.5, -0.5}
			}
			for i, r := range got {
				if !near(float64(r.ShapedReward), tc.rewards[i]) || !near(float64(r.Advantage), adv[i]) || r.Shaper != tc.shaper {
					t.Errorf("row %d: reward %v advantage %v shaper %s, want %v %v %s", i, r.ShapedReward, r.Advantage, r.Shaper, tc.rewards[i], adv[i], tc.shaper)
				}
				steps := len(r.StepEnds)
				ws := tc.shaper == shaping.WSGRPO
				if ws && (len(r.StepScores) != steps+1 || len(r.StepRewards) != steps || r.Labeler != "lbl-fixed") ||
					!ws && (r.StepScores != nil || r.StepRewards != nil || r.Labeler != "") {
					t.Errorf("row %d: %d scores, %d step rewards, labeler %q for %d steps", i, len(r.StepScores), len(r.StepRewards), r.Labeler, steps)
				}
				// Equal step rewards: every step's advantage is the row's.
				if ws && len(r.StepAdvantages) != steps || !ws && r.StepAdvantages != nil {
					t.Errorf("row %d: %d step advantages for %d steps", i, len(r.StepAdvantages), steps)
				}
				for _, a := range r.StepAdvantages {
					if !near(float64(a), float64(r.Advantage)) {
						t.Errorf("row %d: step advantage %v, advantage %v", i, a, r.Advantage)
					}
				}
				if r.LabelMs < 0 || math.IsNaN(r.LabelMs) {
					t.Errorf("row %d: label ms %v", i, r.LabelMs)
				}
			}
		})
	}
}

func TestZeroVariance(t *testing.T) {
	for _, drop := range []bool{false, true} {
		t.Run(map[bool]string{false: "keep", true: "drop"}[drop], func(t *testing.T) {
			mem := memory.NewCheckedAllocator(memory.NewGoAllocator())
			defer mem.AssertSize(t, 0)
			p := newProcessor(t, labeler.Options{Shaping: grpo(), DropZeroVariance: drop, Allocator: mem})
			got := mustProcess(t, p, mem,
				row("all", 0, 2, true, 4, 1), row("all", 1, 2, true, 9, 1), // all correct
				row("one", 0, 1, false, 4, 1), // a group of one
				row("mix", 0, 2, true, 4, 1), row("mix", 1, 2, false, 4, 1))
			var ids []string
			for _, r := range got {
				ids = append(ids, r.GroupID)
				if r.GroupID != "mix" && r.Advantage != 0 {
					t.Errorf("%s: advantage %v in a zero-variance group", r.TrajectoryID, r.Advantage)
				}
			}
			want := []string{"all", "all", "one", "mix", "mix"}
			s := p.Stats()
			if drop {
				want = []string{"mix", "mix"}
				if s.ZeroVarianceDropped != 2 || s.ZeroVarianceKept != 0 || s.RowsDropped[labeler.DropZeroVariance] != 3 {
					t.Errorf("stats %+v", s)
				}
			} else if s.ZeroVarianceKept != 2 || s.ZeroVarianceDropped != 0 {
				t.Errorf("stats %+v", s)
			}
			if !slices.Equal(ids, want) {
				t.Errorf("groups %v, want %v", ids, want)
			}
			if s.OneMemberGroups != 1 || s.GroupsScored != 3 {
				t.Errorf("stats %+v", s)
			}
		})
	}
}

func TestEmptyCompletion(t *testing.T) {
	mem := memory.NewCheckedAllocator(memory.NewGoAllocator())
	defer mem.AssertSize(t, 0)
	p := newProcessor(t, labeler.Options{Shaping: shaping.DefaultConfig(), Scorer: fixedScorer{}, Allocator: mem})
	got := mustProcess(t, p, mem, row("g", 0, 2, false, 0, 0), row("g", 1, 2, true, 6, 3))
	if len(got[0].StepScores) != 1 || len(got[0].StepRewards) != 0 || len(got[1].StepScores) != 4 {
		t.Fatalf("empty completion: %v scores, %v rewards", got[0].StepScores, got[0].StepRewards)
	}
	if got[0].Advantage >= got[1].Advantage {
		t.Errorf("advantages %v, %v", got[0].Advantage, got[1].Advantage)
	}
}

func TestDuplicateRowsCounted(t *testing.T) {
	mem := memory.NewCheckedAllocator(memory.NewGoAllocator())
	defer mem.AssertSize(t, 0)
	p := newProcessor(t, labeler.Options{Shaping: grpo(), Allocator: mem})
	got := mustProcess(t, p, mem, row("g", 0, 2, true, 4, 1), row("g", 0, 2, false, 4, 1), row("g", 1, 2, false, 4, 1))
	if len(got) != 2 || !got[0].Correct {
		t.Fatalf("%d rows, first correct %v: want 2 rows keeping the first of the duplicates", len(got), got[0].Correct)
	}
	if n := p.Stats().RowsDropped[labeler.DropDuplicate]; n != 1 {
		t.Fatalf("%d duplicates counted, want 1", n)
	}
}

func TestBadInput(t *testing.T) {
	bad := func(f func(*schemas.Verified)) schemas.Verified {
		r := row("g", 0, 2, true, 4, 2)
		f(&r)
		return r
	}
	ok := row("g", 1, 2, false, 4, 1)
	for _, tc := range []struct {
		name    string
		opts    labeler.Options
		rows    []schemas.Verified
		pending []schemas.Verified // stored before the batch
		class   stage.Class
		want    error
		reason  string
	}{
		{name: "group size 0", rows: []schemas.Verified{bad(func(r *schemas.Verified) { r.GroupSize = 0 }), ok}, class: stage.ClassInvalid, want: labeler.ErrBadGroup, reason: labeler.RefuseInvalid},
		{name: "index past G", rows: []schemas.Verified{bad(func(r *schemas.Verified) { r.SampleIndex = 2 }), ok}, class: stage.ClassInvalid, want: labeler.ErrBadGroup, reason: labeler.RefuseInvalid},
		{name: "negative index", rows: []schemas.Verified{bad(func(r *schemas.Verified) { r.SampleIndex = -1 }), ok}, class: stage.ClassInvalid, want: labeler.ErrBadGroup, reason: labeler.RefuseInvalid},
		{name: "no group id", rows: []schemas.Verified{bad(func(r *schemas.Verified) { r.GroupID = "" }), ok}, class: stage.ClassInvalid, want: labeler.ErrBadGroup, reason: labeler.RefuseInvalid},
		{name: "sizes disagree", rows: []schemas.Verified{bad(func(r *schemas.Verified) { r.GroupSize = 3 }), ok}, class: stage.ClassInvalid, want: labeler.ErrBadGroup, reason: labeler.RefuseInvalid},
		{name: "sizes disagree with the store", opts: labeler.Options{Pending: newPending()}, rows: []schemas.Verified{row("g", 1, 3, false, 4, 1)},
			pending: []schemas.Verified{row("g", 0, 2, true, 4, 1)}, class: stage.ClassInvalid, want: labeler.ErrBadGroup, reason: labeler.RefuseInvalid},
		{name: "step ends out of order", rows: []schemas.Verified{bad(func(r *schemas.Verified) { r.StepEnds = []int32{3, 2} }), ok}, class: stage.ClassInvalid, want: labeler.ErrBadGroup, reason: labeler.RefuseInvalid},
		{name: "step end past the completion", rows: []schemas.Verified{bad(func(r *schemas.Verified) { r.StepEnds = []int32{5} }), ok}, class: stage.ClassInvalid, want: labeler.ErrBadGroup, reason: labeler.RefuseInvalid},
		{name: "NaN score", opts: labeler.Options{Scorer: fixedScorer{value: float32(math.NaN())}}, rows: []schemas.Verified{row("g", 0, 2, true, 4, 2), ok}, class: stage.ClassPermanent, want: labeler.ErrUnscorable, reason: labeler.RefuseScore},
		{name: "infinite score", opts: labeler.Options{Scorer: fixedScorer{value: float32(math.Inf(1))}}, rows: []schemas.Verified{row("g", 0, 2, true, 4, 2), ok}, class: stage.ClassPermanent, want: labeler.ErrUnscorable, reason: labeler.RefuseScore},
		{name: "scores per prefix", opts: labeler.Options{Scorer: fixedScorer{extra: 1}}, rows: []schemas.Verified{row("g", 0, 2, true, 4, 2), ok}, class: stage.ClassPermanent, want: labeler.ErrUnscorable, reason: labeler.RefuseScore},
		{name: "incomplete without a store", rows: []schemas.Verified{ok}, class: stage.ClassPermanent, want: labeler.ErrIncomplete, reason: labeler.RefuseScore},
		{name: "store down", opts: labeler.Options{Pending: &memPending{fail: errDown}}, rows: []schemas.Verified{ok}, class: stage.ClassUnavailable, want: errDown, reason: labeler.RefusePending},
	} {
		t.Run(tc.name, func(t *testing.T) {
			mem := memory.NewCheckedAllocator(memory.NewGoAllocator())
			defer mem.AssertSize(t, 0)
			o := tc.opts
			o.Allocator = mem
			if o.Scorer == nil {
				o.Scorer = fixedScorer{}
			}
			if tc.pending != nil {
				if _, err := o.Pending.Add(t.Context(), "g", tc.pending); err != nil {
					t.Fatal(err)
				}
			}
			p := newProcessor(t, o)
			_, err := process(t, p, mem, tc.rows...)
			if !errors.Is(err, tc.want) || stage.Classify(err) != tc.class {
				t.Fatalf("got %v (class %s), want %v (class %s)", err, stage.Classify(err), tc.want, tc.class)
			}
			t.Log(err)
			if s := p.Stats(); s.BatchesRefused[tc.reason] != 1 || s.Batches != 0 {
				t.Errorf("stats %+v, want one batch refused for %s", s, tc.reason)
			}
		})
	}
}

func TestWrongKindRefused(t *testing.T) {
	mem := memory.NewCheckedAllocator(memory.NewGoAllocator())
	defer mem.AssertSize(t, 0)
	p := newProcessor(t, labeler.Options{Shaping: grpo(), Allocator: mem})
	in := schemas.NewRolloutBatch(mem, []schemas.Rollout{row("g", 0, 1, true, 4, 1).Rollout})
	defer in.Release()
	if _, err := p.Process(t.Context(), in); stage.Classify(err) != stage.ClassInvalid {
		t.Fatalf("rollout batch: got %v, want an invalid-class error", err)
	}
}

func TestNewErrors(t *testing.T) {
	c := shaping.DefaultConfig()
	c.Shaper = "vibes"
	if _, err := labeler.New(labeler.Options{Shaping: c}); !errors.Is(err, shaping.ErrConfig) {
		t.Errorf("unknown shaper: got %v", err)
	}
	if _, err := labeler.New(labeler.Options{Shaping: shaping.DefaultConfig()}); !errors.Is(err, labeler.ErrOptions) {
		t.Errorf("ws-grpo without a scorer: got %v", err)
	}
	if _, err := labeler.New(labeler.Options{}); !errors.Is(err, labeler.ErrOptions) {
		t.Errorf("zero options (ws-grpo by default) without a scorer: got %v", err)
	}
}
