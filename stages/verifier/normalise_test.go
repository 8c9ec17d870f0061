package verifier

import (
	"fmt"
	"math/big"
	"math/rand/v2"
	"strings"
	"testing"
)

func TestNormalise(t *testing.T) {
	for _, tc := range []struct {
		name, in, want string
	}{
		{"integer", "42", "42"},
		{"leading zeros", "007", "7"},
		{"plus sign", "+5", "5"},
		{"minus", "-5", "-5"},
		{"unicode minus", "\u22125", "-5"},
		{"negative zero", "-0", "0"},
		{"negative zero decimal", "-0.0", "0"},
		{"decimal trailing zeros", "3.50", "3.5"},
		{"decimal no integer part", ".5", "0.5"},
		{"decimal integral", "2.000", "2"},
		{"fraction terminating", "1/2", "0.5"},
		{"fraction reduced", "2/6", "1/3"},
		{"fraction negative", "-3/4", "-0.75"},
		{"fraction integral", "8/4", "2"},
		{"fraction zero denominator", "1/0", "1/0"},
		{"latex frac", `\frac{1}{3}`, "1/3"},
		{"latex dfrac negative", `-\dfrac{3}{4}`, "-0.75"},
		{"thousands", "1,234", "1234"},
		{"thousands millions", "-1,234,567.25", "-1234567.25"},
		{"bad thousands", "1,23", "1,23"},
		{"dollar", "$42", "42"},
		{"latex dollar", `\$42`, "42"},
		{"percent", "42%", "42"},
		{"latex percent", `42\%`, "42"},
		{"sentence end", "42.", "42"},
		{"bold", "**42**", "42"},
		{"bold with period", "**42**.", "42"},
		{"math mode", "$-5$", "-5"},
		{"braces", "{42}", "42"},
		{"parentheses", "(-5)", "-5"},
		{"spaces", "   12   ", "12"},
		{"text", "  Hello   World ", "hello world"},
		{"text case", "YES", "yes"},
		{"text punctuation", "Paris.", "paris"},
		{"units are text", "42 apples", "42 apples"},
		{"exponent is text", "1e3", "1e3"},
		{"empty", "", ""},
		{"blank", " \t\n", ""},
		{"only marks", "**", ""},
		{"non-utf8", "\xff\xfe", "\ufffd"},
		{"non-utf8 number", "\xff12", "\ufffd12"},
		{"max digits", strings.Repeat("9", MaxDigits), strings.Repeat("9", MaxDigits)},
		{"too many digits", strings.Repeat("9", MaxDigits+1), ""},
		{"huge", strings.Repeat("1", 1<<20), ""},
		{"long fraction written as fraction", "1/" + pow2(3000), "1/" + pow2(3000)},
		{"long decimal under the cap", "0." + strings.Repeat("0", 998) + "1", "0." + strings.Repeat("0", 998) + "1"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got := Normalise(tc.in)
			if got != tc.want {
				t.Errorf("Normalise(%.60q) = %.60q, want %.60q", tc.in, got, tc.want)
			}
			if again := Normalise(got); again != got {
				t.Errorf("Normalise is not idempotent: %.60q -> %.60q", got, again)
			}
		})
	}
}

// pow2 returns 2^k in decimal.
func pow2(k int) string {
	d := []byte{1} // little-endian decimal digits
	for range k {
		carry := byte(0)
		for i := range d {
			v := d[i]*2 + carry
			d[i], carry = v%10, v/10
		}
		if carry > 0 {
			d = append(d, carry)
		}
	}
	out := make([]byte, len(d))
	for i, v := range d {
		out[len(d)-1-i] = '0' + v
	}
	return string(out)
}

func TestEquivalent(t *testing.T) {
	for _, tc := range []struct {
		a, b string
		want bool
	}{
		{"3.50", "3.5", true},
		{".5", "0.5", true},
		{"1/2", "0.5", true},
		{"1/3", "0.333333", false},
		{"2/6", "1/3", true},
		{"1,234", "1234", true},
		{"+5", "5", true},
		{"-5", "\u22125", true},
		{"-5", "5", false},
		{"$42", "42", true},
		{"42%", "42", true},
		{"42.", "42", true},
		{"**42**", "42", true},
		{"007", "7", true},
		{`\frac{1}{2}`, "0.5", true},
		{"0.1", "1/10", true},
		{"Yes", "yes", true},
		{"hello  world", "Hello World", true},
		{"42 apples", "42", false},
		{"", "", false},
		{"**", "", false},
		{strings.Repeat("9", MaxDigits+1), strings.Repeat("9", MaxDigits+1), false},
		{"1/0", "1/0", true}, // text, not a number
		{"0.3333333333333333", "1/3", false},
		{"12345678901234567890123", "12,345,678,901,234,567,890,123", true},
		{"12345678901234567890123", "12345678901234567890124", false},
	} {
		t.Run(tc.a+"~"+tc.b, func(t *testing.T) {
			if got := Equivalent(tc.a, tc.b); got != tc.want {
				t.Errorf("Equivalent(%.40q, %.40q) = %v, want %v", tc.a, tc.b, got, tc.want)
			}
			if got := Equivalent(tc.b, tc.a); got != tc.want {
				t.Errorf("Equivalent(%.40q, %.40q) = %v, want %v (not symmetric)", tc.b, tc.a, got, tc.want)
			}
		})
	}
}

// TestDecimalAgreesWithFraction checks that a number has one canonical
// form however it is written: decimals (parsed without math/big) and
// fractions (parsed with it) of the same value normalise alike.
func TestDecimalAgreesWithFraction(t *testing.T) {
	rng := rand.New(rand.NewPCG(1, 2))
	for range 5000 {
		n := rng.Int64N(2_000_001) - 1_000_000
		d := int64(1) << rng.IntN(12)
		for range rng.IntN(6) {
			d *= 5
		}
		r := big.NewRat(n, d)
		// The denominator is 2^a 5^b: the expansion has max(a, b) digits.
		q := r.Denom().Int64()
		a, b := 0, 0
		for ; q%2 == 0; q /= 2 {
			a++
		}
		for ; q%5 == 0; q /= 5 {
			b++
		}
		k := max(a, b)
		prec := k + rng.IntN(3)
		dec := r.FloatString(prec)
		if prec > 0 {
			dec += strings.Repeat("0", rng.IntN(2))
		}
		frac := fmt.Sprintf("%d/%d", n, d)
		if !Equivalent(dec, frac) || Normalise(dec) != Normalise(frac) {
			t.Fatalf("%s and %s: %q and %q", dec, frac, Normalise(dec), Normalise(frac))
		}
		if r.IsInt() && Normalise(dec) != r.Num().String() {
			t.Fatalf("integer %s normalises to %q", dec, Normalise(dec))
		}
	}
}
