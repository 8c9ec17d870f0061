package arith

import (
	"errors"
	"strings"
	"testing"
)

func TestEval(t *testing.T) {
	tests := []struct {
		in   string
		want int64
	}{
		{"0", 0},
		{"42", 42},
		{"17+25", 42},
		{"(17+25)*3-8", 118},
		{"(41*2)+23", 105},
		{"2+3*4", 14},
		{"2*3+4", 10},
		{"10-3-2", 5},
		{"10-(3-2)", 9},
		{"10-3*2-1", 3},
		{"5-17", -12},
		{"(5-17)*(3-9)", 72},
		{" 1 +\t2 * ( 3 + 4 ) ", 15},
		{"((((7))))", 7},
		{"99*99*99*99*99*99*99*99*99", 913517247483640899},
	}
	for _, tc := range tests {
		t.Run(tc.in, func(t *testing.T) {
			got, err := Eval(tc.in)
			if err != nil {
				t.Fatalf("Eval(%q): %v", tc.in, err)
			}
			if got != tc.want {
				t.Fatalf("Eval(%q) = %d, want %d", tc.in, got, tc.want)
			}
		})
	}
}

func TestParseRefuses(t *testing.T) {
	tests := []struct {
		name, in string
		want     error
		msg      string // a fragment the error text must contain
	}{
		{"empty", "", ErrSyntax, "operand was expected"},
		{"blank", "   ", ErrSyntax, "operand was expected"},
		{"trailing op", "1+", ErrSyntax, "ends where an operand"},
		{"leading op", "*1", ErrSyntax, `unexpected '*'`},
		{"unary minus", "-3+4", ErrSyntax, `unexpected '-'`},
		{"double op", "1+-2", ErrSyntax, `unexpected '-'`},
		{"division", "6/2", ErrSyntax, `unexpected '/'`},
		{"letters", "1+x", ErrSyntax, `unexpected 'x'`},
		{"unclosed", "(1+2", ErrSyntax, "missing ')'"},
		{"extra close", "1+2)", ErrSyntax, `unexpected ')'`},
		{"empty parens", "()", ErrSyntax, `unexpected ')'`},
		{"juxtaposed", "(1)(2)", ErrSyntax, `unexpected '('`},
		{"space in number", "1 2", ErrSyntax, `unexpected '2'`},
		{"huge integer", "99999999999999999999", ErrSyntax, "does not fit"},
		{"too deep", strings.Repeat("(", MaxDepth+1) + "1" + strings.Repeat(")", MaxDepth+1), ErrSyntax, "nested deeper"},
		{"too long", strings.Repeat("1+", MaxLen) + "1", ErrSyntax, "longer than"},
		{"overflow", "9999999999*9999999999", ErrOverflow, "9999999999*9999999999"},
		{"overflow add", "9223372036854775807+1", ErrOverflow, "+1"},
		{"overflow sub", "0-9223372036854775807-2", ErrOverflow, "-2"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			_, err := Eval(tc.in)
			if !errors.Is(err, tc.want) {
				t.Fatalf("Eval(%q) error %v, want %v", tc.in, err, tc.want)
			}
			if !strings.Contains(err.Error(), tc.msg) {
				t.Fatalf("Eval(%q) error %q lacks %q", tc.in, err, tc.msg)
			}
		})
	}
}

func TestStringCanonical(t *testing.T) {
	tests := []struct{ in, want string }{
		{"(41*2)+23", "41*2+23"},
		{"(17+25)*3-8", "(17+25)*3-8"},
		{"1+(2-3)", "1+2-3"},
		{"1-(2+3)", "1-(2+3)"},
		{"1-(2-3)", "1-(2-3)"},
		{"2*(3*4)", "2*3*4"},
		{"(2+3)*(4-1)", "(2+3)*(4-1)"},
		{"((1))", "1"},
		{" 1 + 2 ", "1+2"},
	}
	for _, tc := range tests {
		t.Run(tc.in, func(t *testing.T) {
			e, err := Parse(tc.in)
			if err != nil {
				t.Fatalf("Parse(%q): %v", tc.in, err)
			}
			if got := e.String(); got != tc.want {
				t.Fatalf("Parse(%q).String() = %q, want %q", tc.in, got, tc.want)
			}
		})
	}
}

func FuzzParse(f *testing.F) {
	for _, s := range []string{"(17+25)*3-8", "1-(2-3)", "", "((", "1+", "99*99", " 7 ", "1-(2+3)*4"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		e, err := Parse(s)
		if err != nil {
			if !errors.Is(err, ErrSyntax) {
				t.Fatalf("Parse(%q) error %v does not match ErrSyntax", s, err)
			}
			return
		}
		canon := e.String()
		e2, err := Parse(canon)
		if err != nil {
			t.Fatalf("canonical text %q of %q does not parse: %v", canon, s, err)
		}
		if e2.String() != canon {
			t.Fatalf("canonical text not a fixed point: %q -> %q", canon, e2.String())
		}
		if e2.Ops() != e.Ops() {
			t.Fatalf("%q has %d ops, its canonical text %q has %d", s, e.Ops(), canon, e2.Ops())
		}
		v, err := e.Eval()
		if err != nil {
			if !errors.Is(err, ErrOverflow) {
				t.Fatalf("Eval(%q) error %v does not match ErrOverflow", s, err)
			}
			return
		}
		// Re-association under + and * can only move an overflow around,
		// so compare values only when both sides fit.
		if v2, err := e2.Eval(); err == nil && v2 != v {
			t.Fatalf("%q = %d but its canonical text %q = %d", s, v, canon, v2)
		}
	})
}
