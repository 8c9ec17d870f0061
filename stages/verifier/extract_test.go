package verifier

import (
	"strings"
	"testing"
)

func TestExtractArith(t *testing.T) {
	for _, tc := range []struct {
		name, completion, want string
	}{
		{"plain", "17+25=42\nA: 42", "42"},
		{"spaces", "A:    12   ", "12"},
		{"trailing newline", "step\nA: 7\n", "7"},
		{"crlf", "step\r\nA: 7\r\n", "7"},
		{"indented", "work\n   A: 9", "9"},
		{"last of several", "A: 1\nno wait\nA: 2\nthinking\n", "2"},
		{"inside a line does not count", "so A: 5 is it", ""},
		{"inside a line after a real one", "A: 3\nthen A: 5 maybe", "3"},
		{"negative", "3-8=-5\nA: -5", "-5"},
		{"unicode minus", "A: \u22125", "\u22125"},
		{"empty completion", "", ""},
		{"no answer line", "(17+25)*3-8 = 118", ""},
		{"cut before the answer", "(17+25)*3-8\n= 42*3-8\n= 12", ""},
		{"empty last answer", "A: 4\nA:", ""},
		{"lower case a is not the marker", "a: 4", ""},
		{"colon missing", "A 4", ""},
		{"garbage", "\x00\xff\xfe\nA: \xff12", "\xff12"},
		{"only marker", "A:", ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if got := ExtractArith(tc.completion); got != tc.want {
				t.Errorf("ExtractArith(%q) = %q, want %q", tc.completion, got, tc.want)
			}
		})
	}
}

func TestExtractDataset(t *testing.T) {
	long := strings.Repeat("9", 5000)
	for _, tc := range []struct {
		name, completion, want string
	}{
		{"gsm8k", "She has 3+4=7 apples.\n#### 7", "7"},
		{"hashes win over boxed", "\\boxed{3}\n#### 4", "4"},
		{"last hashes", "#### 1\n#### 2", "2"},
		{"hashes rest of line", "#### 1,234 \nmore text 5", "1,234"},
		{"five hashes", "##### 8", "8"},
		{"empty hashes fall back", "so \\boxed{12}\n####", "12"},
		{"boxed", "The answer is $\\boxed{42}$.", "42"},
		{"last boxed", "\\boxed{1} or \\boxed{2}", "2"},
		{"nested boxed", "\\boxed{\\boxed{5}}", "5"},
		{"boxed with braces", "\\boxed{\\frac{1}{2}}", "\\frac{1}{2}"},
		{"boxed escaped braces", "\\boxed{\\{1,2\\}}", "\\{1,2\\}"},
		{"unclosed last boxed", "\\boxed{3} then \\boxed{4", "3"},
		{"only unclosed boxed", "\\boxed{\\boxed{\\boxed{7", "7"},
		{"empty boxed falls back", "x = 9, \\boxed{}", "9"},
		{"last number", "We get 12 then 15.", "15"},
		{"last number negative", "the result is -3", "-3"},
		{"last number decimal", "costs 3.50 dollars", "3.50"},
		{"last number thousands", "about 1,234,567 people", "1,234,567"},
		{"last number fraction", "half: 1/2.", "1/2"},
		{"minus between digits is not a sign", "5-3", "3"},
		{"no answer", "I do not know.", ""},
		{"empty completion", "", ""},
		{"very long number", "n = " + long, long},
		{"non-utf8", "\xff\xfe 12 \xc3", "12"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if got := ExtractDataset(tc.completion); got != tc.want {
				t.Errorf("ExtractDataset(%.80q) = %.80q, want %.80q", tc.completion, got, tc.want)
			}
		})
	}
}

func TestLastBoxed(t *testing.T) {
	for _, tc := range []struct {
		name, s, want string
		ok            bool
	}{
		{"none", "no box", "", false},
		{"simple", `\boxed{x}`, "x", true},
		{"stray close", `}} \boxed{a}`, "a", true},
		{"braces inside", `\boxed{{a}{b}}`, "{a}{b}", true},
		{"unbalanced", `\boxed{{a}`, "", false},
		{"inner complete outer not", `\boxed{ \boxed{b}`, "b", true},
		{"escaped backslash", `\\boxed{c}`, "", false},
		{"many open", strings.Repeat(`\boxed{`, 10000), "", false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got, ok := LastBoxed(tc.s)
			if got != tc.want || ok != tc.ok {
				t.Errorf("LastBoxed(%.40q) = %q, %v, want %q, %v", tc.s, got, ok, tc.want, tc.ok)
			}
		})
	}
}

func TestLastNumber(t *testing.T) {
	for _, tc := range []struct{ s, want string }{
		{"", ""},
		{"abc", ""},
		{"1 2 3", "3"},
		{"x-5", "5"},
		{"(-5)", "-5"},
		{"= \u22127", "\u22127"},
		{"+4.", "+4"},
		{".5", ".5"},
		{"12,34", "34"},
		{"1,2345", "2345"},
		{"1,234,5678", "5678"},
		{"v1.2.3", "3"},
		{"3/4 of 8/", "8"},
	} {
		t.Run(tc.s, func(t *testing.T) {
			if got := LastNumber(tc.s); got != tc.want {
				t.Errorf("LastNumber(%q) = %q, want %q", tc.s, got, tc.want)
			}
		})
	}
}
