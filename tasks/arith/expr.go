package arith

import (
	"fmt"
	"math"
	"strconv"
	"strings"
)

// Op is a binary operator of an arith expression: '+', '-' or '*'.
type Op byte

// The operators.
const (
	Add Op = '+'
	Sub Op = '-'
	Mul Op = '*'
)

// prec returns the binding strength of op: * binds tighter than + and -.
func (op Op) prec() int {
	if op == Mul {
		return 2
	}
	return 1
}

// apply returns a op b, or ErrOverflow when it does not fit in an int64.
func (op Op) apply(a, b int64) (int64, error) {
	switch op {
	case Add:
		if (b > 0 && a > math.MaxInt64-b) || (b < 0 && a < math.MinInt64-b) {
			return 0, fmt.Errorf("%w: %d+%d", ErrOverflow, a, b)
		}
		return a + b, nil
	case Sub:
		if (b < 0 && a > math.MaxInt64+b) || (b > 0 && a < math.MinInt64+b) {
			return 0, fmt.Errorf("%w: %d-%d", ErrOverflow, a, b)
		}
		return a - b, nil
	case Mul:
		if a == 0 || b == 0 {
			return 0, nil
		}
		p := a * b
		if p/b != a || (a == -1 && b == math.MinInt64) || (b == -1 && a == math.MinInt64) {
			return 0, fmt.Errorf("%w: %d*%d", ErrOverflow, a, b)
		}
		return p, nil
	}
	// Expressions are only built by Parse and the generator, which use
	// the three operators above.
	panic(fmt.Sprintf("arith: unknown operator %q", byte(op)))
}

// Expr is an arith expression tree: a leaf holding an operand (Op == 0) or
// an operator applied to Left and Right.
type Expr struct {
	// Op is the operator; 0 for a leaf.
	Op Op
	// Left and Right are the operands of Op; nil for a leaf.
	Left, Right *Expr
	// Value is a leaf's operand; unused for an operator node.
	Value int64
}

// IsLeaf reports whether e is a single operand.
func (e *Expr) IsLeaf() bool { return e.Op == 0 }

// Ops returns the number of operators in e.
func (e *Expr) Ops() int {
	if e.IsLeaf() {
		return 0
	}
	return 1 + e.Left.Ops() + e.Right.Ops()
}

// Operands returns the leaf values of e from left to right.
func (e *Expr) Operands() []int64 {
	var out []int64
	var walk func(*Expr)
	walk = func(x *Expr) {
		if x.IsLeaf() {
			out = append(out, x.Value)
			return
		}
		walk(x.Left)
		walk(x.Right)
	}
	walk(e)
	return out
}

// Eval returns the value of e, or an error matching ErrOverflow when a
// value along the way does not fit in an int64.
func (e *Expr) Eval() (int64, error) {
	if e.IsLeaf() {
		return e.Value, nil
	}
	a, err := e.Left.Eval()
	if err != nil {
		return 0, err
	}
	b, err := e.Right.Eval()
	if err != nil {
		return 0, err
	}
	return e.Op.apply(a, b)
}

// String returns the canonical text of e: no spaces and only the
// parentheses that precedence and left-to-right evaluation need, so that
// Parse(e.String()) has the same value as e. A right operand of the same
// strength as its operator keeps its parentheses only under '-', where they
// change the value: "1-(2+3)", but "1+(2-3)" is written "1+2-3".
func (e *Expr) String() string {
	var b strings.Builder
	e.write(&b)
	return b.String()
}

// write appends the canonical text of e to b.
func (e *Expr) write(b *strings.Builder) {
	if e.IsLeaf() {
		b.WriteString(strconv.FormatInt(e.Value, 10))
		return
	}
	p := e.Op.prec()
	left := !e.Left.IsLeaf() && e.Left.Op.prec() < p
	right := !e.Right.IsLeaf() && (e.Right.Op.prec() < p || (e.Right.Op.prec() == p && e.Op == Sub))
	writeSide(b, e.Left, left)
	b.WriteByte(byte(e.Op))
	writeSide(b, e.Right, right)
}

// writeSide writes x, in parentheses when paren is set.
func writeSide(b *strings.Builder, x *Expr, paren bool) {
	if paren {
		b.WriteByte('(')
	}
	x.write(b)
	if paren {
		b.WriteByte(')')
	}
}
