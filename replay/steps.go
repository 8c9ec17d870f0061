package replay

import (
	"fmt"
	"math"
	"strconv"
	"strings"
)

// Steps is an inclusive range of training steps. The zero value selects
// every step.
type Steps struct {
	From, To int64
	// Set is false for the zero value: no step filter.
	Set bool
}

// AllSteps selects every step.
var AllSteps = Steps{}

// ParseSteps parses "a..b" (steps a to b inclusive), "a.." (a and later),
// "..b" (up to b), "a" (step a alone) or "" (every step). Steps are
// non-negative integers and a <= b.
func ParseSteps(s string) (Steps, error) {
	s = strings.TrimSpace(s)
	if s == "" {
		return AllSteps, nil
	}
	lo, hi, isRange := strings.Cut(s, "..")
	if !isRange {
		hi = lo
	}
	st := Steps{From: 0, To: math.MaxInt64, Set: true}
	var err error
	if lo != "" {
		if st.From, err = parseStep(lo); err != nil {
			return Steps{}, fmt.Errorf("%w: %q: %w", ErrSteps, s, err)
		}
	}
	if hi != "" {
		if st.To, err = parseStep(hi); err != nil {
			return Steps{}, fmt.Errorf("%w: %q: %w", ErrSteps, s, err)
		}
	}
	if isRange && lo == "" && hi == "" {
		return Steps{}, fmt.Errorf("%w: %q names no step (want a..b, a.., ..b or a)", ErrSteps, s)
	}
	if st.From > st.To {
		return Steps{}, fmt.Errorf("%w: %q: first step %d is after last step %d", ErrSteps, s, st.From, st.To)
	}
	return st, nil
}

func parseStep(s string) (int64, error) {
	n, err := strconv.ParseInt(strings.TrimSpace(s), 10, 64)
	if err != nil {
		return 0, fmt.Errorf("%q is not a step number", s)
	}
	if n < 0 {
		return 0, fmt.Errorf("step %d is negative", n)
	}
	return n, nil
}

// String writes the range as ParseSteps reads it ("" for every step).
func (s Steps) String() string {
	switch {
	case !s.Set:
		return ""
	case s.From == s.To:
		return strconv.FormatInt(s.From, 10)
	case s.To == math.MaxInt64:
		return strconv.FormatInt(s.From, 10) + ".."
	}
	return strconv.FormatInt(s.From, 10) + ".." + strconv.FormatInt(s.To, 10)
}
