package shaping_test

import (
	"errors"
	"math"
	"testing"

	"github.com/wsgrpo/wsgrpo/model/shaping"
)

// group is a hand-computed example: correct, wrong, correct, wrong with
// 10, 20, 30 and 40 tokens and 3, 2, 7 and 0 steps.
var group = []shaping.Rollout{
	{Correct: true, Tokens: 10, StepRewards: []float64{0.9, 0.8, 0.7}},
	{Correct: false, Tokens: 20, StepRewards: []float64{0.2, 0.4}},
	{Correct: true, Tokens: 30, StepRewards: []float64{0.5, 0.5, 0.5, 0.5, 0.5, 0.5, 0.5}},
	{Correct: false, Tokens: 40},
}

func near(a, b []float64) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if math.Abs(a[i]-b[i]) > 1e-5 {
			return false
		}
	}
	return true
}

func TestShapers(t *testing.T) {
	for _, tc := range []struct {
		shaper     string
		rewards    []float64
		advantages []float64
	}{
		// R = correct; mean 0.5, std 0.5.
		{shaping.GRPO, []float64{1, 0, 1, 0}, []float64{1, -1, 1, -1}},
		// The same rewards without the std division.
		{shaping.DrGRPO, []float64{1, 0, 1, 0}, []float64{0.5, -0.5, 0.5, -0.5}},
		// 1*correct + 5*mean(step rewards) - 1*[steps outside 3..6]:
		// 1+4, 0+1.5-1, 1+2.5-1, 0+0-1; mean 1.75, std sqrt(5.0625+1.5625+0.5625+7.5625)=sqrt(14.75/4).
		{shaping.WSGRPO, []float64{5, 0.5, 2.5, -1}, nil},
		// lam = 0.5 - (len-10)/30 = .5, .1667, -.1667, -.5; wrong rows
		// keep min(0, lam).
		{shaping.Kimi, []float64{1.5, 0, 1 - 1.0/6, -0.5}, nil},
		// max_len 30, cache_len 10: free up to 20, -1 at 30 and beyond.
		{shaping.DAPO, []float64{1, 0, 0, -1}, nil},
		// Correct lengths 10 and 30: mean 20, std 10;
		// 1 - 0.2*sigmoid(-1), 1 - 0.2*sigmoid(1).
		{shaping.LengthPenalty, []float64{1 - 0.2/(1+math.E), 0, 1 - 0.2/(1+math.Exp(-1)), 0}, nil},
	} {
		t.Run(tc.shaper, func(t *testing.T) {
			c := shaping.DefaultConfig()
			c.Shaper, c.MaxLen, c.CacheLen = tc.shaper, 30, 10
			r, err := c.Rewards(group)
			if err != nil {
				t.Fatal(err)
			}
			if !near(r, tc.rewards) {
				t.Fatalf("rewards %v, want %v", r, tc.rewards)
			}
			a := c.Advantages(r)
			if tc.advantages != nil && !near(a, tc.advantages) {
				t.Fatalf("advantages %v, want %v", a, tc.advantages)
			}
			var sum float64
			for _, x := range a {
				sum += x
			}
			if math.Abs(sum) > 1e-9 {
				t.Errorf("advantages %v do not sum to zero", a)
			}
		})
	}
}

func TestWSGRPOAdvantages(t *testing.T) {
	c := shaping.DefaultConfig()
	r, err := c.Rewards(group)
	if err != nil {
		t.Fatal(err)
	}
	std := math.Sqrt((3.25*3.25 + 1.25*1.25 + 0.75*0.75 + 2.75*2.75) / 4)
	want := []float64{3.25 / std, -1.25 / std, 0.75 / std, -2.75 / std}
	if a := c.Advantages(r); !near(a, want) {
		t.Fatalf("advantages %v, want %v", a, want)
	}
}

func TestZeroVariance(t *testing.T) {
	c := shaping.DefaultConfig()
	c.Shaper = shaping.GRPO
	all := []shaping.Rollout{{Correct: true, Tokens: 3}, {Correct: true, Tokens: 9}}
	r, err := c.Rewards(all)
	if err != nil {
		t.Fatal(err)
	}
	if !shaping.ZeroVariance(r) || !near(c.Advantages(r), []float64{0, 0}) {
		t.Fatalf("all-correct group: rewards %v, advantages %v", r, c.Advantages(r))
	}
	if shaping.ZeroVariance([]float64{1, 0}) || !shaping.ZeroVariance(nil) {
		t.Fatal("ZeroVariance")
	}
	// A one-member group has no signal either.
	if a := c.Advantages([]float64{1}); a[0] != 0 {
		t.Fatalf("one-member group advantage %v", a)
	}
}

func TestErrors(t *testing.T) {
	c := shaping.DefaultConfig()
	for _, tc := range []struct {
		name  string
		mut   func(*shaping.Config)
		group []shaping.Rollout
		want  error
	}{
		{"unknown shaper", func(c *shaping.Config) { c.Shaper = "vibes" }, group, shaping.ErrConfig},
		{"negative weight", func(c *shaping.Config) { c.LStep = -1 }, group, shaping.ErrConfig},
		{"inverted window", func(c *shaping.Config) { c.StepsLo, c.StepsHi = 6, 3 }, group, shaping.ErrConfig},
		{"dapo window", func(c *shaping.Config) { c.MaxLen, c.CacheLen = 10, 10 }, group, shaping.ErrConfig},
		{"zero eps", func(c *shaping.Config) { c.Eps = 0 }, group, shaping.ErrConfig},
		{"empty group", nil, nil, shaping.ErrInput},
		{"NaN step reward", nil, []shaping.Rollout{{StepRewards: []float64{math.NaN()}}}, shaping.ErrInput},
		{"infinite step reward", nil, []shaping.Rollout{{StepRewards: []float64{math.Inf(1)}}}, shaping.ErrInput},
		{"negative length", nil, []shaping.Rollout{{Tokens: -1}}, shaping.ErrInput},
	} {
		t.Run(tc.name, func(t *testing.T) {
			cc := c
			if tc.mut != nil {
				tc.mut(&cc)
			}
			if _, err := cc.Rewards(tc.group); !errors.Is(err, tc.want) {
				t.Fatalf("Rewards = %v, want %v", err, tc.want)
			}
		})
	}
}

func TestStepRewards(t *testing.T) {
	got, err := shaping.StepRewards([]float64{0, 2, 2, 1})
	if err != nil {
		t.Fatal(err)
	}
	want := []float64{1 / (1 + math.Exp(-2)), 0.5, 1 / (1 + math.E)}
	if !near(got, want) {
		t.Fatalf("StepRewards = %v, want %v", got, want)
	}
	if r, err := shaping.StepRewards([]float64{3}); err != nil || len(r) != 0 {
		t.Fatalf("no steps: %v, %v", r, err)
	}
	for _, bad := range [][]float64{nil, {0, math.NaN()}, {math.Inf(-1), 0}} {
		if _, err := shaping.StepRewards(bad); !errors.Is(err, shaping.ErrInput) {
			t.Errorf("StepRewards(%v) = %v", bad, err)
		}
	}
}

func TestStepAdvantages(t *testing.T) {
	for _, tc := range []struct {
		name    string
		credit  float64
		adv     float64
		rewards []float64
		want    []float64
	}{
		// mean 0.5: the helpful steps gain, the redundant ones lose.
		{"centred", 1, 0.3, []float64{0.9, 0.6, 0.2, 0.3}, []float64{0.7, 0.4, 0, 0.1}},
		{"weighted", 2, -1, []float64{0.8, 0.2}, []float64{-0.4, -1.6}},
		{"off", 0, 0.5, []float64{0.9, 0.1}, []float64{0.5, 0.5}},
		{"one step", 1, 0.25, []float64{0.9}, []float64{0.25}},
		{"no steps", 1, 0.25, nil, nil},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c := shaping.DefaultConfig()
			c.StepCredit = tc.credit
			got, err := c.StepAdvantages(tc.adv, tc.rewards)
			if err != nil {
				t.Fatal(err)
			}
			if !near(got, tc.want) {
				t.Fatalf("got %v, want %v", got, tc.want)
			}
			var sum float64
			for _, g := range got {
				sum += g - tc.adv
			}
			if math.Abs(sum) > 1e-9 {
				t.Errorf("step terms sum to %v, want 0", sum)
			}
		})
	}
	if _, err := shaping.DefaultConfig().StepAdvantages(0, []float64{math.NaN()}); !errors.Is(err, shaping.ErrInput) {
		t.Fatalf("NaN step reward: got %v", err)
	}
}
