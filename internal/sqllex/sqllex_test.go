package sqllex

import "testing"

func TestTokenEnds(t *testing.T) {
	for _, tc := range []struct {
		name string
		f    func(string, int) (int, bool)
		q    string
		at   int
		end  int
		ok   bool
	}{
		{"literal", QuotedEnd, "'a;b' x", 0, 5, true},
		{"escaped quote", QuotedEnd, `'a\'b' x`, 0, 6, true},
		{"doubled quote", QuotedEnd, "'a''b' x", 0, 6, true},
		{"identifier", QuotedEnd, "x `a;b`", 2, 7, true},
		{"unclosed literal", QuotedEnd, "'abc", 0, 0, false},
		{"block comment", BlockCommentEnd, "/* a */ b", 0, 7, true},
		{"nested block comment", BlockCommentEnd, "/* a /* b */ c */ d", 0, 17, true},
		{"unclosed block comment", BlockCommentEnd, "/* a /* b */", 0, 0, false},
		{"heredoc", HeredocEnd, "$$a;b$$ c", 0, 7, true},
		{"tagged heredoc", HeredocEnd, "$t$ $$ $t$ c", 0, 10, true},
		{"no heredoc", HeredocEnd, "$x", 0, 0, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			end, ok := tc.f(tc.q, tc.at)
			if end != tc.end || ok != tc.ok {
				t.Fatalf("%q at %d: got %d, %v; want %d, %v", tc.q, tc.at, end, ok, tc.end, tc.ok)
			}
		})
	}
}

func TestLineComments(t *testing.T) {
	for _, tc := range []struct {
		q    string
		at   int
		want bool
	}{
		{"-- x", 0, true}, {"# x", 0, true}, {"#!x", 0, true}, {"#x", 0, false}, {"-x", 0, false}, {"-", 0, false},
	} {
		if got := LineCommentStart(tc.q, tc.at); got != tc.want {
			t.Errorf("LineCommentStart(%q, %d) = %v", tc.q, tc.at, got)
		}
	}
	if got := LineEnd("a -- b\nc", 2); got != 6 {
		t.Errorf("LineEnd = %d, want 6", got)
	}
	if got := LineEnd("a -- b", 2); got != 6 {
		t.Errorf("LineEnd at the end = %d, want 6", got)
	}
}

// FuzzTokenEnds: on any text, every token end lies after its start and
// within the text.
func FuzzTokenEnds(f *testing.F) {
	for _, s := range []string{"'a'", "/* /* */ */", "$t$x$t$", "-- x\n", "`a``b`", `'\'`, "$"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, q string) {
		for i := range len(q) {
			for _, fn := range []func(string, int) (int, bool){QuotedEnd, BlockCommentEnd, HeredocEnd} {
				if end, ok := fn(q, i); ok && (end <= i || end > len(q)) {
					t.Fatalf("token at %d of %q ends at %d", i, q, end)
				}
			}
			if e := LineEnd(q, i); e < i || e > len(q) {
				t.Fatalf("line at %d of %q ends at %d", i, q, e)
			}
			_ = LineCommentStart(q, i)
			_ = HeredocMayStart(q, i)
		}
	})
}
