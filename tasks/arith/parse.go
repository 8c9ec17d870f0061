package arith

import (
	"fmt"
	"strconv"
)

// MaxDepth is the deepest parenthesis nesting Parse accepts.
const MaxDepth = 64

// MaxLen is the longest expression text, in bytes, Parse accepts.
const MaxLen = 4096

// Parse reads an arith expression: non-negative decimal integers, the
// binary operators + - * with the usual precedence (* before + and -, equal
// strengths left to right), and parentheses. Spaces and tabs between tokens
// are ignored. It refuses anything else (unary minus, other characters,
// unbalanced parentheses, empty operands, integers beyond int64, nesting
// deeper than MaxDepth, text longer than MaxLen) with an error matching
// ErrSyntax that names the byte offset.
func Parse(s string) (*Expr, error) {
	if len(s) > MaxLen {
		return nil, fmt.Errorf("%w: expression is %d bytes, longer than %d", ErrSyntax, len(s), MaxLen)
	}
	p := &parser{s: s}
	e, err := p.expr(0)
	if err != nil {
		return nil, err
	}
	p.skipSpace()
	if p.pos < len(p.s) {
		return nil, p.errorf("unexpected %q", p.s[p.pos])
	}
	return e, nil
}

// Eval parses s and returns its value; see Parse for the syntax.
func Eval(s string) (int64, error) {
	e, err := Parse(s)
	if err != nil {
		return 0, err
	}
	return e.Eval()
}

// parser is a recursive-descent parser over one expression text.
type parser struct {
	s   string
	pos int
}

// errorf returns an ErrSyntax error located at the current offset.
func (p *parser) errorf(format string, args ...any) error {
	text := p.s
	if len(text) > 64 {
		text = text[:61] + "..."
	}
	return fmt.Errorf("%w at offset %d of %q: %s", ErrSyntax, p.pos, text, fmt.Sprintf(format, args...))
}

// skipSpace moves past spaces and tabs.
func (p *parser) skipSpace() {
	for p.pos < len(p.s) && (p.s[p.pos] == ' ' || p.s[p.pos] == '\t') {
		p.pos++
	}
}

// peek returns the next non-space byte, or 0 at the end.
func (p *parser) peek() byte {
	p.skipSpace()
	if p.pos < len(p.s) {
		return p.s[p.pos]
	}
	return 0
}

// expr parses term (('+'|'-') term)*.
func (p *parser) expr(depth int) (*Expr, error) {
	left, err := p.term(depth)
	if err != nil {
		return nil, err
	}
	for c := p.peek(); c == '+' || c == '-'; c = p.peek() {
		p.pos++
		right, err := p.term(depth)
		if err != nil {
			return nil, err
		}
		left = &Expr{Op: Op(c), Left: left, Right: right}
	}
	return left, nil
}

// term parses factor ('*' factor)*.
func (p *parser) term(depth int) (*Expr, error) {
	left, err := p.factor(depth)
	if err != nil {
		return nil, err
	}
	for p.peek() == '*' {
		p.pos++
		right, err := p.factor(depth)
		if err != nil {
			return nil, err
		}
		left = &Expr{Op: Mul, Left: left, Right: right}
	}
	return left, nil
}

// factor parses a number or a parenthesised expression.
func (p *parser) factor(depth int) (*Expr, error) {
	switch c := p.peek(); {
	case c == 0:
		return nil, p.errorf("expression ends where an operand was expected")
	case c == '(':
		if depth >= MaxDepth {
			return nil, p.errorf("parentheses nested deeper than %d", MaxDepth)
		}
		p.pos++
		e, err := p.expr(depth + 1)
		if err != nil {
			return nil, err
		}
		if p.peek() != ')' {
			if p.pos >= len(p.s) {
				return nil, p.errorf("missing ')'")
			}
			return nil, p.errorf("unexpected %q where ')' was expected", p.s[p.pos])
		}
		p.pos++
		return e, nil
	case c >= '0' && c <= '9':
		start := p.pos
		for p.pos < len(p.s) && p.s[p.pos] >= '0' && p.s[p.pos] <= '9' {
			p.pos++
		}
		v, err := strconv.ParseInt(p.s[start:p.pos], 10, 64)
		if err != nil {
			digits := p.s[start:min(p.pos, start+24)]
			p.pos = start
			return nil, p.errorf("integer %s... does not fit in int64", digits)
		}
		return &Expr{Value: v}, nil
	default:
		return nil, p.errorf("unexpected %q where an operand was expected", c)
	}
}
