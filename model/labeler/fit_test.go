package labeler_test

import (
	"errors"
	"fmt"
	"math/rand/v2"
	"testing"

	"github.com/wsgrpo/wsgrpo/model/labeler"
	"github.com/wsgrpo/wsgrpo/model/ort/orttest"
)

// xorPairs returns pairs over d-dimensional Gaussian features where a
// feature is "correct" when its first two coordinates have the same sign:
// no linear score separates them, an MLP does.
func xorPairs(rng *rand.Rand, groups, perGroup, d int) []labeler.Pair {
	draw := func(good bool) []float32 {
		for {
			x := make([]float32, d)
			for i := range x {
				x[i] = float32(rng.NormFloat64())
			}
			if (x[0]*x[1] > 0) == good {
				return x
			}
		}
	}
	var out []labeler.Pair
	for g := range groups {
		for range perGroup {
			out = append(out, labeler.Pair{Group: fmt.Sprintf("g%d", g), Pos: draw(true), Neg: draw(false)})
		}
	}
	return out
}

func TestFitSeparatesHeldOutPairs(t *testing.T) {
	rt := orttest.Runtime(t)
	pairs := xorPairs(rand.New(rand.NewPCG(3, 4)), 50, 16, 8)
	cfg := labeler.DefaultConfig()
	cfg.Hidden, cfg.Epochs, cfg.LR = 64, 100, 3e-3
	m, rep, err := labeler.FitPairs(rt, pairs, cfg, nil)
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("%+v", rep)
	if rep.Pairs != len(pairs) || rep.Groups != 50 || rep.HeldOutGroups != 10 || rep.HeldOutPairs != 160 {
		t.Errorf("split: %+v, want 10 of 50 groups (160 pairs) held out", rep)
	}
	if rep.HeldOutAccuracy < 0.9 {
		t.Errorf("held-out accuracy %.3f, want >= 0.9", rep.HeldOutAccuracy)
	}
	// The reported accuracy is the model's: score fresh pairs in Go.
	fresh := xorPairs(rand.New(rand.NewPCG(9, 9)), 1, 400, 8)
	right := 0
	for _, p := range fresh {
		if m.Score(p.Pos) > m.Score(p.Neg) {
			right++
		}
	}
	if acc := float64(right) / float64(len(fresh)); acc < 0.9 {
		t.Errorf("accuracy of Model.Score on fresh pairs %.3f, want >= 0.9", acc)
	}
	if m.Meta().Report != rep || m.DModel() != 8 || m.Meta().Hidden != 64 {
		t.Errorf("meta %+v", m.Meta())
	}
}

// TestFitReportsAnchorsApart: held-out anchor pairs are scored on their
// own, so the held-out pair accuracy stays that of (correct, incorrect)
// pairs of one prompt.
func TestFitReportsAnchorsApart(t *testing.T) {
	rt := orttest.Runtime(t)
	pairs := xorPairs(rand.New(rand.NewPCG(3, 4)), 20, 8, 8)
	n := len(pairs)
	for i := range n {
		if i%4 == 0 { // an anchor, flipped: the model cannot fit it and the other pairs both
			pairs = append(pairs, labeler.Pair{Group: pairs[i].Group, Depth: labeler.AnchorDepth, Pos: pairs[i].Neg, Neg: pairs[i].Pos})
		}
	}
	cfg := labeler.DefaultConfig()
	cfg.Hidden, cfg.Epochs = 16, 5
	_, rep, err := labeler.FitPairs(rt, pairs, cfg, nil)
	if err != nil {
		t.Fatal(err)
	}
	if rep.HeldOutGroups != 4 || rep.HeldOutPairs != 4*8 || rep.HeldOutAnchors != 4*2 {
		t.Fatalf("split %+v: want 4 groups held out, 32 pairs and 8 anchors", rep)
	}
	if rep.HeldOutAccuracy+rep.HeldOutAnchorAccuracy == 0 {
		t.Fatalf("no held-out figure: %+v", rep)
	}
}

func TestFitIsDeterministic(t *testing.T) {
	rt := orttest.Runtime(t)
	pairs := xorPairs(rand.New(rand.NewPCG(3, 4)), 6, 8, 8)
	cfg := labeler.DefaultConfig()
	cfg.Hidden, cfg.Epochs = 16, 2
	a, _, err := labeler.FitPairs(rt, pairs, cfg, nil)
	if err != nil {
		t.Fatal(err)
	}
	b, _, err := labeler.FitPairs(rt, pairs, cfg, nil)
	if err != nil {
		t.Fatal(err)
	}
	cfg.Seed++
	c, _, err := labeler.FitPairs(rt, pairs, cfg, nil)
	if err != nil {
		t.Fatal(err)
	}
	if a.ID() != b.ID() || a.ID() == c.ID() {
		t.Fatalf("ids %s %s (same seed), %s (other seed)", a.ID(), b.ID(), c.ID())
	}
}

func TestConfigValidate(t *testing.T) {
	for _, tc := range []struct {
		name string
		mut  func(*labeler.Config)
	}{
		{"hidden", func(c *labeler.Config) { c.Hidden = 0 }},
		{"lr", func(c *labeler.Config) { c.LR = 0 }},
		{"decay", func(c *labeler.Config) { c.WeightDecay = -1 }},
		{"epochs", func(c *labeler.Config) { c.Epochs = 0 }},
		{"batch", func(c *labeler.Config) { c.BatchSize = 0 }},
		{"held out", func(c *labeler.Config) { c.HeldOut = 1 }},
		{"cap", func(c *labeler.Config) { c.MaxPairsPerGroup = -1 }},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c := labeler.DefaultConfig()
			if err := c.Validate(); err != nil {
				t.Fatalf("default: %v", err)
			}
			tc.mut(&c)
			if err := c.Validate(); !errors.Is(err, labeler.ErrConfig) {
				t.Fatalf("got %v, want ErrConfig", err)
			}
		})
	}
}

func TestFitPairErrors(t *testing.T) {
	rt := orttest.Runtime(t)
	for _, tc := range []struct {
		name  string
		pairs []labeler.Pair
	}{
		{"none", nil},
		{"widths differ", []labeler.Pair{{Group: "a", Pos: []float32{1, 2}, Neg: []float32{1}}}},
		{"all held out", []labeler.Pair{{Group: "a", Pos: []float32{1}, Neg: []float32{0}}, {Group: "b", Pos: []float32{1}, Neg: []float32{0}}}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			cfg := labeler.DefaultConfig()
			if tc.name == "all held out" {
				// Two groups and a share of 0.9: one must still train.
				cfg.HeldOut, cfg.Epochs, cfg.Hidden = 0.9, 1, 4
				_, rep, err := labeler.FitPairs(rt, tc.pairs, cfg, nil)
				if err != nil || rep.HeldOutGroups != 1 {
					t.Fatalf("err %v, held out %d groups, want 1", err, rep.HeldOutGroups)
				}
				return
			}
			if _, _, err := labeler.FitPairs(rt, tc.pairs, cfg, nil); !errors.Is(err, labeler.ErrPairs) {
				t.Fatalf("got %v, want ErrPairs", err)
			}
		})
	}
}
