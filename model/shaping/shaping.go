// Package shaping turns a group's verified rollouts into rewards and
// group-relative advantages: WS-GRPO's shaped return and the GRPO-family
// baselines, behind one switch (Config.Shaper) and one code path, so that a
// comparison between them changes one configuration value. The labeler
// stage applies it to every complete group.
//
// Shapers (docs/DESIGN.md and the WS-GRPO notes give the method and its sources):
//
//   - ws-grpo: R = l_term*correct + l_step*mean(step rewards) minus
//     l_range when the step count is outside [steps_lo, steps_hi],
//     std-normalised advantages;
//   - grpo: R = correct, std-normalised advantages;
//   - dr-grpo: R = correct, advantages without the std division;
//   - kimi: correct plus the Kimi k1.5 length reward, lam = 0.5 -
//     (len - min)/(max - min) within the group, lam if correct, min(0, lam)
//     if wrong;
//   - dapo: correct plus DAPO's overlong penalty (0 up to max_len -
//     cache_len, linear to -1 at max_len, -1 beyond);
//   - length-penalty: correct * (1 - alpha*sigmoid((len - mean)/std)) over
//     the group's correct rollouts (Arora and Zanette 2025).
package shaping

import (
	"errors"
	"fmt"
	"math"
	"slices"
)

// Shaper names (Config.Shaper); every labeled row records its shaper.
const (
	WSGRPO        = "ws-grpo"
	GRPO          = "grpo"
	DrGRPO        = "dr-grpo"
	Kimi          = "kimi"
	DAPO          = "dapo"
	LengthPenalty = "length-penalty"
)

// Shapers lists every shaper name.
func Shapers() []string { return []string{WSGRPO, GRPO, DrGRPO, Kimi, DAPO, LengthPenalty} }

// Errors.
var (
	// ErrConfig is returned for a configuration that cannot shape rewards
	// (an unknown shaper, a negative weight, an empty length window).
	ErrConfig = errors.New("shaping: invalid configuration")
	// ErrInput is returned for a group that cannot be shaped: no rollouts,
	// negative lengths, non-finite step rewards.
	ErrInput = errors.New("shaping: invalid input")
)

// Config selects and parameterises a shaper. Start from DefaultConfig.
type Config struct {
	Shaper string `json:"shaper" koanf:"shaper"`
	// WS-GRPO weights and step window.
	LTerm   float64 `json:"l_term" koanf:"l_term"`
	LStep   float64 `json:"l_step" koanf:"l_step"`
	LRange  float64 `json:"l_range" koanf:"l_range"`
	StepsLo int     `json:"steps_lo" koanf:"steps_lo"`
	StepsHi int     `json:"steps_hi" koanf:"steps_hi"`
	// LengthWeight scales the Kimi length reward and the DAPO penalty.
	LengthWeight float64 `json:"length_weight" koanf:"length_weight"`
	// MaxLen and CacheLen are DAPO's overlong window, in tokens.
	MaxLen   int `json:"max_len" koanf:"max_len"`
	CacheLen int `json:"cache_len" koanf:"cache_len"`
	// Alpha is the length-penalty strength.
	Alpha float64 `json:"alpha" koanf:"alpha"`
	// Eps keeps the std division finite.
	Eps float64 `json:"eps" koanf:"eps"`
	// StepCredit weights the centred step term of per-step credit (see
	// StepAdvantages).
	StepCredit float64 `json:"step_credit" koanf:"step_credit"`
}

// DefaultConfig returns WS-GRPO with the weights the review of the paper
// reports (l_term 1, l_step 5) and its [3, 6] step window with l_range 1;
// the other shapers' parameters at their papers' usual values; per-step
// credit at weight 1.
func DefaultConfig() Config {
	return Config{
		Shaper: WSGRPO, LTerm: 1, LStep: 5, LRange: 1, StepsLo: 3, StepsHi: 6,
		LengthWeight: 1, MaxLen: 256, CacheLen: 64, Alpha: 0.2, Eps: 1e-6,
		StepCredit: 1,
	}
}

// Validate reports the first problem with c.
func (c Config) Validate() error {
	switch {
	case !slices.Contains(Shapers(), c.Shaper):
		return fmt.Errorf("%w: unknown shaper %q (known: %v)", ErrConfig, c.Shaper, Shapers())
	case c.LTerm < 0 || c.LStep < 0 || c.LRange < 0 || c.LengthWeight < 0 || c.StepCredit < 0 || c.Alpha < 0 || c.Alpha > 1:
		return fmt.Errorf("%w: negative weight, or alpha outside [0, 1]", ErrConfig)
	case c.StepsLo < 0 || c.StepsHi < c.StepsLo:
		return fmt.Errorf("%w: step window [%d, %d]", ErrConfig, c.StepsLo, c.StepsHi)
	case c.CacheLen < 0 || c.MaxLen <= c.CacheLen:
		return fmt.Errorf("%w: dapo window: max_len %d must exceed cache_len %d >= 0", ErrConfig, c.MaxLen, c.CacheLen)
	case !(c.Eps > 0) || math.IsInf(c.Eps, 0):
		return fmt.Errorf("%w: eps %v must be positive", ErrConfig, c.Eps)
	}
	return nil
}

// Rollout is what a shaper reads of one verified rollout.
type Rollout struct {
	Correct bool
	// Tokens is the completion length in tokens.
	Tokens int
	// StepRewards are the labeler's per-step rewards (WS-GRPO); their
	// count is the rollout's number of steps.
	StepRewards []float64
}

// Rewards returns the shaped reward of each rollout of one group.
func (c Config) Rewards(group []Rollout) ([]float64, error) {
	if err := c.Validate(); err != nil {
		return nil, err
	}
	if len(group) == 0 {
		return nil, fmt.Errorf("%w: empty group", ErrInput)
	}
	for i, r := range group {
		if r.Tokens < 0 {
			return nil, fmt.Errorf("%w: rollout %d has %d tokens", ErrInput, i, r.Tokens)
		}
		for t, s := range r.StepRewards {
			if math.IsNaN(s) || math.IsInf(s, 0) {
				return nil, fmt.Errorf("%w: rollout %d step %d reward %v", ErrInput, i, t, s)
			}
		}
	}
	out := make([]float64, len(group))
	minLen, maxLen := group[0].Tokens, group[0].Tokens
	for _, r := range group {
		minLen, maxLen = min(minLen, r.Tokens), max(maxLen, r.Tokens)
	}
	meanC, stdC := correctLengthStats(group)
	for i, r := range group {
		correct := b2f(r.Correct)
		switch c.Shaper {
		case GRPO, DrGRPO:
			out[i] = correct
		case WSGRPO:
			steps := len(r.StepRewards)
			mean := 0.0
			for _, s := range r.StepRewards {
				mean += s
			}
			if steps > 0 {
				mean /= float64(steps)
			}
			out[i] = c.LTerm*correct + c.LStep*mean
			if steps < c.StepsLo || steps > c.StepsHi {
				out[i] -= c.LRange
			}
		case Kimi:
			lam := 0.0
			if maxLen > minLen {
				lam = 0.5 - float64(r.Tokens-minLen)/float64(maxLen-minLen)
			}
			if !r.Correct {
				lam = min(0, lam)
			}
			out[i] = correct + c.LengthWeight*lam
		case DAPO:
			out[i] = correct + c.LengthWeight*c.overlong(r.Tokens)
		case LengthPenalty:
			if r.Correct {
				out[i] = 1 - c.Alpha*sigmoid((float64(r.Tokens)-meanC)/(stdC+c.Eps))
			}
		}
	}
	return out, nil
}

// overlong is DAPO's soft overlong penalty of a completion of n tokens.
func (c Config) overlong(n int) float64 {
	free := c.MaxLen - c.CacheLen
	switch {
	case n <= free:
		return 0
	case n <= c.MaxLen:
		return float64(free-n) / float64(c.CacheLen)
	}
	return -1
}

// Advantages returns the group-relative advantages of rewards: (R - mean)
// / (std + eps), or R - mean for dr-grpo. A group whose rewards are all
// equal has zero advantages (ZeroVariance reports it).
func (c Config) Advantages(rewards []float64) []float64 {
	out := make([]float64, len(rewards))
	if len(rewards) == 0 {
		return out
	}
	mean, std := meanStd(rewards)
	for i, r := range rewards {
		if c.Shaper == DrGRPO {
			out[i] = r - mean
		} else {
			out[i] = (r - mean) / (std + c.Eps)
		}
	}
	return out
}

// ZeroVariance reports whether every reward of a group is the same: the
// group carries no learning signal.
func ZeroVariance(rewards []float64) bool {
	for _, r := range rewards[min(1, len(rewards)):] {
		if r != rewards[0] {
			return false
		}
	}
	return true
}

// meanStd returns the mean and the population standard deviation.
func meanStd(xs []float64) (float64, float64) {
	var mean float64
	for _, x := range xs {
		mean += x
	}
	mean /= float64(len(xs))
	var v float64
	for _, x := range xs {
		v += (x - mean) * (x - mean)
	}
	return mean, math.Sqrt(v / float64(len(xs)))
}

// correctLengthStats are the mean and std of the correct rollouts'
// lengths (0, 0 when none is correct).
func correctLengthStats(group []Rollout) (float64, float64) {
	var lens []float64
	for _, r := range group {
		if r.Correct {
			lens = append(lens, float64(r.Tokens))
		}
	}
	if len(lens) == 0 {
		return 0, 0
	}
	return meanStd(lens)
}

func sigmoid(x float64) float64 { return 1 / (1 + math.Exp(-x)) }

func b2f(b bool) float64 {
	if b {
		return 1
	}
	return 0
}

// StepRewards turns the preference scores of a rollout's consecutive
// prefixes (scores[0] for the empty prefix, scores[t] for the prefix
// ending with step t) into WS-GRPO's step rewards, sigmoid(f(t) - f(t-1))
// for t = 1..T: above 0.5 where continuing helped, below where it did not.
func StepRewards(scores []float64) ([]float64, error) {
	if len(scores) == 0 {
		return nil, fmt.Errorf("%w: no prefix scores (not even the empty prefix)", ErrInput)
	}
	for t, s := range scores {
		if math.IsNaN(s) || math.IsInf(s, 0) {
			return nil, fmt.Errorf("%w: prefix %d score %v", ErrInput, t, s)
		}
	}
	out := make([]float64, len(scores)-1)
	for t := range out {
		out[t] = sigmoid(scores[t+1] - scores[t])
	}
	return out, nil
}

// StepAdvantages returns the per-step credit of one rollout (beyond the
// paper): the advantage of the tokens of step t, adv plus the centred step
// term StepCredit * (r_t - mean_s r_s) over the rollout's own step rewards.
// The step terms sum to zero, so the rollout's total credit is its
// sequence advantage, moved from the steps that did not help (reward below
// the rollout's mean: a redundant re-check) to those that did. A rollout
// without steps has none (nil).
func (c Config) StepAdvantages(adv float64, stepRewards []float64) ([]float64, error) {
	if len(stepRewards) == 0 {
		return nil, nil
	}
	var mean float64
	for t, r := range stepRewards {
		if math.IsNaN(r) || math.IsInf(r, 0) {
			return nil, fmt.Errorf("%w: step %d reward %v", ErrInput, t, r)
		}
		mean += r
	}
	mean /= float64(len(stepRewards))
	out := make([]float64, len(stepRewards))
	for t, r := range stepRewards {
		out[t] = adv + c.StepCredit*(r-mean)
	}
	return out, nil
}
