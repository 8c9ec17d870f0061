package arith

import (
	"strconv"
	"strings"
)

// Step is one line of a trace: an operator applied to two already-reduced
// values.
type Step struct {
	// A and B are the operands, Op the operator and Result the value the
	// line writes (the true value unless the trace slipped).
	A, B   int64
	Op     Op
	Result int64
}

// Line returns the step as trace text without a newline, "41*2=82", with
// the result's digits reversed when reversed is set ("41*2=28"; a minus
// sign stays first: "5-17=-21").
func (s Step) Line(reversed bool) string {
	var b strings.Builder
	b.WriteString(strconv.FormatInt(s.A, 10))
	b.WriteByte(byte(s.Op))
	b.WriteString(strconv.FormatInt(s.B, 10))
	b.WriteByte('=')
	b.WriteString(formatResult(s.Result, reversed))
	return b.String()
}

// formatResult writes v, with its digits reversed when reversed is set.
func formatResult(v int64, reversed bool) string {
	s := strconv.FormatInt(v, 10)
	if !reversed {
		return s
	}
	sign, digits := "", s
	if v < 0 {
		sign, digits = "-", s[1:]
	}
	r := []byte(digits)
	for i, j := 0, len(r)-1; i < j; i, j = i+1, j-1 {
		r[i], r[j] = r[j], r[i]
	}
	return sign + string(r)
}

// Steps returns the steps of e in evaluation order (left operand, right
// operand, then the operator), one per operator, each using the values
// the steps before it produced. The last step's Result is e's value.
// Values are computed without overflow checks; see Expr.Eval for those.
func Steps(e *Expr) []Step {
	steps, _ := slippedSteps(e, -1, 0)
	return steps
}

// slippedSteps returns the steps of e and its value as the steps compute
// it, with delta added to the result of step number slip (0-based) and the
// wrong value carried into every later step. A slip outside the steps
// changes nothing.
func slippedSteps(e *Expr, slip int, delta int64) ([]Step, int64) {
	steps := make([]Step, 0, e.Ops())
	var walk func(*Expr) int64
	walk = func(x *Expr) int64 {
		if x.IsLeaf() {
			return x.Value
		}
		a := walk(x.Left)
		b := walk(x.Right)
		var r int64
		switch x.Op {
		case Add:
			r = a + b
		case Sub:
			r = a - b
		default:
			r = a * b
		}
		if len(steps) == slip {
			r += delta
		}
		steps = append(steps, Step{A: a, B: b, Op: x.Op, Result: r})
		return r
	}
	v := walk(e)
	return steps, v
}
