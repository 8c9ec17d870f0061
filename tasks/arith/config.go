package arith

import (
	"fmt"
	"math"
)

// Name is the task name arith items carry.
const Name = "arith"

// MaxVerifyPasses is the most verify passes an overthinking trace may have.
const MaxVerifyPasses = 8

// Config sets up an arith Task. Start from DefaultConfig and change fields;
// zero values are meaningful (a zero share means never), not defaults.
type Config struct {
	// MinOps and MaxOps bound the number of operators per expression; each
	// expression draws its count uniformly from [MinOps, MaxOps].
	MinOps int `json:"min_ops" koanf:"min_ops"`
	MaxOps int `json:"max_ops" koanf:"max_ops"`
	// MaxOperand is the largest operand; operands are drawn uniformly from
	// 0..MaxOperand.
	MaxOperand int64 `json:"max_operand" koanf:"max_operand"`
	// TestShare is the share of all expressions that belong to the test
	// split, decided by tasks.SplitOf on the canonical text; in (0, 1).
	TestShare float64 `json:"test_share" koanf:"test_share"`
	// ReverseResults writes the result of every step line with its digits
	// reversed ("17+25=24" for 42, "5-17=-21" for -12), sign first; the
	// operands of later lines and the final "A:" line stay in normal order.
	// Measured here, a small policy learns this form much faster, likely
	// because it writes the least significant digit first, the order in
	// which carries propagate: in a 10-minute pretraining trial at learning
	// rate 1e-3, greedy accuracy on 2-op expressions went from 2.5% (plain)
	// to 9% (reversed); reversed at 3e-3 reached 39% (plain was not tried
	// at 3e-3). Off by default.
	ReverseResults bool `json:"reverse_results" koanf:"reverse_results"`
	// Overthink configures the traces that keep going after the answer is
	// known.
	Overthink OverthinkConfig `json:"overthink" koanf:"overthink"`
	// SlipShare is the share of traces with one arithmetic slip: one step
	// line gets a wrong result, later lines use it, and the final answer is
	// wrong. In [0, 1]; independent of Overthink.Share.
	SlipShare float64 `json:"slip_share" koanf:"slip_share"`
}

// OverthinkConfig sets how often and how much traces overthink.
type OverthinkConfig struct {
	// Share is the share of traces that overthink; in [0, 1].
	Share float64 `json:"share" koanf:"share"`
	// CheckProb is the chance, per step of an overthinking trace, of a
	// re-check line "check a+b=c" right after the step.
	CheckProb float64 `json:"check_prob" koanf:"check_prob"`
	// RepeatProb is the chance, per step of an overthinking trace, that the
	// step line is written twice.
	RepeatProb float64 `json:"repeat_prob" koanf:"repeat_prob"`
	// EarlyAnswerProb is the chance that an overthinking trace writes its
	// "A:" line right after the steps, before its verify passes; the last
	// line is always an "A:" line with the same answer.
	EarlyAnswerProb float64 `json:"early_answer_prob" koanf:"early_answer_prob"`
	// MinVerify and MaxVerify bound the number of verify passes (a
	// "verify:" line, then every step line again), drawn uniformly; at most
	// MaxVerifyPasses.
	MinVerify int `json:"min_verify" koanf:"min_verify"`
	MaxVerify int `json:"max_verify" koanf:"max_verify"`
}

// DefaultConfig returns the defaults: 2..4 operators, operands 0..99, 10%
// test share, results in normal digit order, half the traces overthinking
// (a re-check line after half the steps, a repeated step one time in five,
// the answer written early three times in four, one or two verify passes),
// and 5% of traces with a slip. At these settings the mean trace is a
// little over twice as long as the minimal one.
func DefaultConfig() Config {
	return Config{
		MinOps:     2,
		MaxOps:     4,
		MaxOperand: 99,
		TestShare:  0.1,
		Overthink: OverthinkConfig{
			Share:           0.5,
			CheckProb:       0.5,
			RepeatProb:      0.2,
			EarlyAnswerProb: 0.75,
			MinVerify:       1,
			MaxVerify:       2,
		},
		SlipShare: 0.05,
	}
}

// Validate reports the first field out of range, with an error matching
// ErrConfig. Besides the per-field ranges it refuses operand and operator
// bounds whose worst-case values could leave the int64 range.
func (c Config) Validate() error {
	switch {
	case c.MinOps < 1:
		return fmt.Errorf("%w: MinOps %d, want at least 1", ErrConfig, c.MinOps)
	case c.MaxOps < c.MinOps:
		return fmt.Errorf("%w: MaxOps %d below MinOps %d", ErrConfig, c.MaxOps, c.MinOps)
	case c.MaxOperand < 1:
		return fmt.Errorf("%w: MaxOperand %d, want at least 1", ErrConfig, c.MaxOperand)
	case !fits(c.MaxOperand, c.MaxOps):
		return fmt.Errorf("%w: MaxOps %d with operands up to %d can overflow int64", ErrConfig, c.MaxOps, c.MaxOperand)
	case !(c.TestShare > 0 && c.TestShare < 1):
		return fmt.Errorf("%w: TestShare %v, want in (0, 1)", ErrConfig, c.TestShare)
	}
	shares := []struct {
		name string
		v    float64
	}{
		{"SlipShare", c.SlipShare},
		{"Overthink.Share", c.Overthink.Share},
		{"Overthink.CheckProb", c.Overthink.CheckProb},
		{"Overthink.RepeatProb", c.Overthink.RepeatProb},
		{"Overthink.EarlyAnswerProb", c.Overthink.EarlyAnswerProb},
	}
	for _, s := range shares {
		if !(s.v >= 0 && s.v <= 1) {
			return fmt.Errorf("%w: %s %v, want in [0, 1]", ErrConfig, s.name, s.v)
		}
	}
	o := c.Overthink
	switch {
	case o.MinVerify < 0:
		return fmt.Errorf("%w: Overthink.MinVerify %d, want at least 0", ErrConfig, o.MinVerify)
	case o.MaxVerify < o.MinVerify:
		return fmt.Errorf("%w: Overthink.MaxVerify %d below MinVerify %d", ErrConfig, o.MaxVerify, o.MinVerify)
	case o.MaxVerify > MaxVerifyPasses:
		return fmt.Errorf("%w: Overthink.MaxVerify %d, want at most %d", ErrConfig, o.MaxVerify, MaxVerifyPasses)
	}
	return nil
}

// fits reports whether every expression with ops operators over operands
// 0..maxOperand stays well inside int64. By induction |value| is at most
// (maxOperand+1)^(operands) (for x, y >= 2, x+y <= x*y), so it checks that
// bound against 2^62, leaving room for a slip's offset.
func fits(maxOperand int64, ops int) bool {
	const limit = float64(1 << 62)
	return math.Pow(float64(maxOperand)+1, float64(ops)+1) < limit
}
