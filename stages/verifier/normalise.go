package verifier

import (
	"math/big"
	"strings"
	"unicode/utf8"
)

// MaxDigits is the most digits a number may have, written or in its
// canonical form. A longer number is no answer: it is never parsed, so a
// completion of a million digits costs a scan, not a big-integer division.
const MaxDigits = 1000

// MaxAnswerBytes is the longest normalised answer, in bytes. A longer one
// (and any answer longer than four times this before normalisation) is no
// answer.
const MaxAnswerBytes = 1024

// Normalise returns the canonical form of an answer, the form that the
// verifier compares and stores as the extracted answer. It returns "" for
// no answer: an empty or blank string, a number over MaxDigits digits, or
// an answer over MaxAnswerBytes.
//
// The answer is first trimmed of surrounding white space, markdown
// emphasis and code marks (*, _, `), quotes, dollar signs and sentence
// punctuation (. , ; : ! ?), its inner white space is collapsed to single
// spaces and it is lower-cased. If what remains is a number it becomes
// the number's canonical form, otherwise the text itself is the answer.
//
// A number is an optional sign (+, - or the minus sign U+2212) and an
// integer, a decimal (3.50, .5) or a fraction of integers (1/2, or
// \frac{1}{2} with \dfrac and \tfrac), in which thousands separators must
// group digits by three (1,234,567). It may be wrapped in one pair of
// braces or parentheses, start with a currency sign ($ or \$) and end with
// a percent sign (% or \%). The percent sign is dropped, not applied:
// "42%" is 42, because a question that asks for a percentage has the
// percentage as its reference ("42"). Exponents (1e3), units ("42
// apples"), words ("forty-two") and mixed numbers ("1 1/2") are not
// numbers; they compare as text.
//
// The canonical form of a number is exact (math/big.Rat, never a float):
// a plain decimal without leading or trailing zeros when the value has a
// finite decimal expansion (3.50, 7/2 and 3.5 are all "3.5"; -0 is "0"),
// and a reduced fraction otherwise (2/6 is "1/3"); a value whose decimal
// expansion would exceed MaxDigits digits is written as a fraction too.
func Normalise(answer string) string {
	s, _ := normalise(answer)
	return s
}

// Equivalent reports whether two answers are the same once normalised:
// both numbers of equal value, or both text with equal canonical forms.
// No answer ("" after normalisation) is equivalent to nothing, not even
// to no answer. Equivalent is symmetric.
func Equivalent(a, b string) bool {
	na, numA := normalise(a)
	nb, numB := normalise(b)
	return na != "" && numA == numB && na == nb
}

// normalise returns the canonical form of s and whether it is a number.
func normalise(s string) (string, bool) {
	if len(s) > 4*MaxAnswerBytes {
		return "", false
	}
	t := strings.ToLower(collapse(trimWrappers(strings.ToValidUTF8(s, "\uFFFD"))))
	if t == "" || len(t) > MaxAnswerBytes {
		return "", false
	}
	if c, ok := parseNumber(t); ok {
		return c, c != ""
	}
	if countDigits(t) > MaxDigits {
		return "", false
	}
	return t, false
}

// collapse replaces every run of white space in s by one space.
func collapse(s string) string {
	simple := true
	for i := 0; i < len(s); i++ {
		c := s[i]
		if c >= utf8.RuneSelf || c == '\t' || c == '\n' || c == '\v' || c == '\f' || c == '\r' || (c == ' ' && i+1 < len(s) && s[i+1] == ' ') {
			simple = false
			break
		}
	}
	if simple {
		return s
	}
	return strings.Join(strings.Fields(s), " ")
}

// trimWrappers strips white space, markdown marks, quotes, dollar signs and
// sentence punctuation from both ends of s (only punctuation from the end)
// until none is left.
func trimWrappers(s string) string {
	for {
		t := strings.TrimSpace(s)
		t = strings.TrimRight(t, ".,;:!?")
		t = strings.Trim(t, "*_`\"'$\u201c\u201d")
		if t == s {
			return s
		}
		s = t
	}
}

// parseNumber parses a lower-cased, trimmed answer as a number (see
// Normalise for the grammar) and returns its canonical form: "" with ok
// for a number whose canonical form is over MaxDigits digits. It refuses,
// without allocating, anything with more than MaxDigits digits.
func parseNumber(s string) (canon string, ok bool) {
	if countDigits(s) > MaxDigits {
		return "", false
	}
	neg := false
	// A few layers of wrapping at most: {42}, (-5).
	for range 4 {
		if len(s) < 2 || !(s[0] == '{' && s[len(s)-1] == '}' || s[0] == '(' && s[len(s)-1] == ')') {
			break
		}
		s = strings.TrimSpace(s[1 : len(s)-1])
	}
	s = strings.TrimPrefix(s, `\$`)
	s = strings.TrimPrefix(s, "$")
	if t, ok := strings.CutSuffix(s, `\%`); ok {
		s = t
	} else {
		s = strings.TrimSuffix(s, "%")
	}
	s = strings.TrimSpace(s)
	switch {
	case strings.HasPrefix(s, "-"):
		neg, s = true, s[1:]
	case strings.HasPrefix(s, "\u2212"):
		neg, s = true, s[len("\u2212"):]
	case strings.HasPrefix(s, "+"):
		s = s[1:]
	}
	s = strings.TrimPrefix(s, `\$`)
	s = strings.TrimPrefix(s, "$")
	var r *big.Rat
	if num, den, ok := latexFrac(s); ok {
		r = fraction(num, den)
	} else if num, den, ok := strings.Cut(s, "/"); ok {
		r = fraction(num, den)
	} else {
		intDigits, frac, ok := decimal(s)
		if !ok {
			return "", false
		}
		if c, ok := canonicalDecimal(neg, intDigits, frac); ok {
			return c, true
		}
		// Over MaxDigits as a decimal: the fraction form may fit.
		n, _ := new(big.Int).SetString(intDigits+frac, 10)
		d := new(big.Int).Exp(big.NewInt(10), big.NewInt(int64(len(frac))), nil)
		r = new(big.Rat).SetFrac(n, d)
	}
	if r == nil {
		return "", false
	}
	if neg {
		r.Neg(r)
	}
	c, ok := canonical(r)
	if !ok {
		return "", true
	}
	return c, true
}

// latexFrac splits \frac{a}{b} (or \dfrac, \tfrac) into a and b.
func latexFrac(s string) (num, den string, ok bool) {
	for _, p := range []string{`\frac{`, `\dfrac{`, `\tfrac{`} {
		if rest, found := strings.CutPrefix(s, p); found {
			num, rest, ok = strings.Cut(rest, "}")
			if !ok {
				return "", "", false
			}
			rest, ok = strings.CutPrefix(strings.TrimSpace(rest), "{")
			if !ok {
				return "", "", false
			}
			den, ok = strings.CutSuffix(rest, "}")
			if !ok {
				return "", "", false
			}
			return strings.TrimSpace(num), strings.TrimSpace(den), true
		}
	}
	return "", "", false
}

// fraction parses a ratio of two unsigned integers (no separators); a zero
// denominator is not a number.
func fraction(num, den string) *big.Rat {
	num, den = strings.TrimSpace(num), strings.TrimSpace(den)
	if !allDigits(num) || !allDigits(den) {
		return nil
	}
	n, ok1 := new(big.Int).SetString(num, 10)
	d, ok2 := new(big.Int).SetString(den, 10)
	if !ok1 || !ok2 || d.Sign() == 0 {
		return nil
	}
	return new(big.Rat).SetFrac(n, d)
}

// decimal splits an unsigned integer or decimal, with optional thousands
// separators in its integer part (1,234.5, 007, .5, 3.), into the digits
// before and after the point.
func decimal(s string) (intDigits, frac string, ok bool) {
	intPart, frac, hasPoint := strings.Cut(s, ".")
	if intPart == "" && frac == "" {
		return "", "", false
	}
	if hasPoint && frac != "" && !allDigits(frac) {
		return "", "", false
	}
	if !strings.Contains(intPart, ",") {
		if intPart != "" && !allDigits(intPart) {
			return "", "", false
		}
		return intPart, frac, true
	}
	groups := strings.Split(intPart, ",")
	if len(groups[0]) < 1 || len(groups[0]) > 3 {
		return "", "", false
	}
	for i, g := range groups {
		if !allDigits(g) || (i > 0 && len(g) != 3) {
			return "", "", false
		}
	}
	return strings.Join(groups, ""), frac, true
}

// canonicalDecimal writes the canonical form of a decimal number given
// its digits, the same string canonical writes for its value, without
// math/big. It reports false for a form over MaxDigits digits.
func canonicalDecimal(neg bool, intDigits, frac string) (string, bool) {
	intDigits = strings.TrimLeft(intDigits, "0")
	frac = strings.TrimRight(frac, "0")
	if intDigits == "" {
		intDigits = "0"
	}
	if len(intDigits)+len(frac) > MaxDigits {
		return "", false
	}
	if intDigits == "0" && frac == "" {
		return "0", true
	}
	if !neg && frac == "" {
		return intDigits, true
	}
	var b strings.Builder
	b.Grow(len(intDigits) + len(frac) + 2)
	if neg {
		b.WriteByte('-')
	}
	b.WriteString(intDigits)
	if frac != "" {
		b.WriteByte('.')
		b.WriteString(frac)
	}
	return b.String(), true
}

func allDigits(s string) bool {
	if s == "" {
		return false
	}
	for i := 0; i < len(s); i++ {
		if s[i] < '0' || s[i] > '9' {
			return false
		}
	}
	return true
}

func countDigits(s string) int {
	n := 0
	for i := 0; i < len(s); i++ {
		if s[i] >= '0' && s[i] <= '9' {
			n++
		}
	}
	return n
}

var bigFive = big.NewInt(5)

// canonical writes r as a plain decimal when its expansion is finite and
// within MaxDigits digits, as a reduced fraction otherwise. It refuses a
// form over MaxDigits digits.
func canonical(r *big.Rat) (string, bool) {
	if r.IsInt() {
		s := r.Num().String()
		return s, countDigits(s) <= MaxDigits
	}
	// The decimal expansion of p/q (reduced) is finite iff q = 2^a 5^b;
	// it then has max(a, b) digits after the point.
	q := new(big.Int).Set(r.Denom())
	twos := q.TrailingZeroBits()
	q.Rsh(q, twos)
	fives := uint(0)
	var m, quo big.Int
	for q.Cmp(bigFive) >= 0 {
		quo.QuoRem(q, bigFive, &m)
		if m.Sign() != 0 {
			break
		}
		q.Set(&quo)
		fives++
	}
	if q.IsInt64() && q.Int64() == 1 && max(twos, fives) <= MaxDigits {
		s := r.FloatString(int(max(twos, fives)))
		if countDigits(s) <= MaxDigits {
			return s, true
		}
	}
	s := r.RatString()
	return s, countDigits(s) <= MaxDigits
}
