package pretrain_test

import (
	"errors"
	"math"
	"testing"

	"github.com/wsgrpo/wsgrpo/model/checkpoint"
	"github.com/wsgrpo/wsgrpo/model/ort/orttest"
	"github.com/wsgrpo/wsgrpo/pretrain"
)

func tiny() pretrain.Config {
	c := pretrain.DefaultConfig()
	c.Policy.DModel, c.Policy.NLayers, c.Policy.NHeads, c.Policy.DFF = 32, 1, 2, 64
	c.Steps, c.Batch, c.Warmup, c.EvalEvery, c.EvalPrompts, c.EvalOps = 80, 16, 5, 40, 4, []int{2, 3}
	return c
}

func TestRun(t *testing.T) {
	rt := orttest.Runtime(t)
	// Batches hold traces of similar length, so single steps' losses
	// differ by length: compare the mean of the first and last ten.
	var first, last float64
	evals := 0
	res, err := pretrain.Run(t.Context(), rt, tiny(), func(p pretrain.Progress) {
		if p.Step <= 10 {
			first += p.Loss / 10
		}
		if p.Step > 70 {
			last += p.Loss / 10
		}
		if p.Eval != nil {
			evals++
		}
		if math.IsNaN(p.Loss) || p.TokensPerSec <= 0 || p.LR <= 0 {
			t.Errorf("step %d: %+v", p.Step, p)
		}
	}, nil)
	if err != nil {
		t.Fatal(err)
	}
	if res.Steps != 80 || evals != 2 || res.Tokens == 0 {
		t.Fatalf("steps %d, evals %d, tokens %d", res.Steps, evals, res.Tokens)
	}
	if !(last < first*0.75) {
		t.Fatalf("loss %.3f -> %.3f: not learning", first, last)
	}
	if res.Eval.N != 8 || len(res.Eval.ByOps) != 2 || res.Eval.LengthRatio <= 0 {
		t.Fatalf("eval %+v", res.Eval)
	}
	t.Logf("loss %.3f -> %.3f; %s", first, last, res.Eval)
	// The checkpoint round-trips and evaluates the same.
	blob, err := checkpoint.Marshal(res.Checkpoint)
	if err != nil {
		t.Fatal(err)
	}
	ck, err := checkpoint.Unmarshal(blob)
	if err != nil {
		t.Fatal(err)
	}
	c := tiny()
	ev, err := pretrain.Evaluate(t.Context(), rt, ck, c.Task, c.EvalPrompts, c.EvalOps, c.Seed)
	if err != nil {
		t.Fatal(err)
	}
	if ev.Accuracy != res.Eval.Accuracy || ev.LengthRatio != res.Eval.LengthRatio {
		t.Fatalf("re-evaluation %v differs from %v", ev, res.Eval)
	}
}

func TestConfigValidate(t *testing.T) {
	for name, mut := range map[string]func(*pretrain.Config){
		"steps":     func(c *pretrain.Config) { c.Steps = 0 },
		"lr":        func(c *pretrain.Config) { c.LR = 0 },
		"min lr":    func(c *pretrain.Config) { c.MinLR = 1 },
		"vocab":     func(c *pretrain.Config) { c.Policy.VocabSize = 7 },
		"eval ops":  func(c *pretrain.Config) { c.EvalOps = []int{0} },
		"task":      func(c *pretrain.Config) { c.Task.MinOps = 9 },
		"negatives": func(c *pretrain.Config) { c.Warmup = -1 },
	} {
		t.Run(name, func(t *testing.T) {
			c := pretrain.DefaultConfig()
			mut(&c)
			if err := c.Validate(); !errors.Is(err, pretrain.ErrConfig) {
				t.Fatalf("Validate = %v", err)
			}
		})
	}
	if err := pretrain.DefaultConfig().Validate(); err != nil {
		t.Fatal(err)
	}
}

func TestAnswer(t *testing.T) {
	for _, tc := range []struct {
		in   string
		want int64
		ok   bool
	}{
		{"41*2=28\nA:82", 82, true},
		{"A:1\ncheck\nA:-105", -105, true},
		{"A: 7 ", 7, true},
		{"no answer", 0, false},
		{"A:x", 0, false},
	} {
		v, ok := pretrain.Answer(tc.in)
		if v != tc.want || ok != tc.ok {
			t.Errorf("Answer(%q) = %d, %v", tc.in, v, ok)
		}
	}
}

// TestInit continues from a saved checkpoint: its first step starts from
// the trained weights (a lower loss than random weights), and a
// checkpoint of another architecture is refused.
func TestInit(t *testing.T) {
	rt := orttest.Runtime(t)
	c := tiny()
	c.EvalEvery, c.EvalPrompts, c.EvalOps = 0, 1, []int{2}
	res, err := pretrain.Run(t.Context(), rt, c, nil, nil)
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	if err := checkpoint.Save(dir, res.Checkpoint); err != nil {
		t.Fatal(err)
	}
	firstLoss := func(c pretrain.Config) float64 {
		c.Steps = 1
		var l float64
		if _, err := pretrain.Run(t.Context(), rt, c, func(p pretrain.Progress) { l = p.Loss }, nil); err != nil {
			t.Fatal(err)
		}
		return l
	}
	fresh := firstLoss(c)
	c.Init = dir
	cont := firstLoss(c)
	if !(cont < fresh-0.5) {
		t.Fatalf("first loss from the checkpoint %.3f, from random weights %.3f", cont, fresh)
	}
	c.Policy.DModel = 64
	if _, err := pretrain.Run(t.Context(), rt, c, nil, nil); !errors.Is(err, pretrain.ErrConfig) {
		t.Fatalf("another architecture: %v", err)
	}
}

// TestShippedBase loads the shipped base policy (testdata/base) and checks
// that it still solves 2-operation expressions of the test split greedily
// (52% of 100 when it was shipped; the bar leaves room for floating-point
// differences between machines) and that its architecture is the one the
// shipped configuration trains.
func TestShippedBase(t *testing.T) {
	rt := orttest.Runtime(t)
	ck, err := checkpoint.Load("../testdata/base")
	if err != nil {
		t.Fatal(err)
	}
	c := pretrain.DefaultConfig()
	if ck.Config != c.Policy {
		t.Fatalf("base architecture %+v, DefaultConfig trains %+v", ck.Config, c.Policy)
	}
	ev, err := pretrain.Evaluate(t.Context(), rt, ck, c.Task, 50, []int{2}, c.Seed)
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("shipped base: %s", ev)
	if ev.Accuracy < 0.3 {
		t.Fatalf("the shipped base solves %.0f%% of 2-operation test expressions; it was shipped at 52%%", 100*ev.Accuracy)
	}
}
