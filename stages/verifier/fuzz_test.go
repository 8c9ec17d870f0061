package verifier

import (
	"strings"
	"testing"
	"unicode/utf8"
)

var fuzzSeeds = []string{
	"",
	"A: 42",
	"work\nA: -5\n",
	"so A: 5 is it",
	"#### 1,234",
	`\boxed{\boxed{\frac{1}{2}}}`,
	`\boxed{3} then \boxed{4`,
	"The answer is **3.50**.",
	"\xff\xfe\x00 12 \xc3",
	"A: \u22127/14",
	"-.5 and +0007",
	"1/0",
	"1e3 apples",
	"Hello\tWorld",
	strings.Repeat("9", 1200),
	"A: " + strings.Repeat("1,234", 300),
}

// FuzzExtract checks the extractors on arbitrary completions: no panic,
// the raw answer is a substring of the completion (or empty), and its
// normalised form is valid UTF-8, bounded and a fixed point of Normalise.
func FuzzExtract(f *testing.F) {
	for _, s := range fuzzSeeds {
		f.Add(s)
	}
	p, err := New(Options{})
	if err != nil {
		f.Fatal(err)
	}
	f.Fuzz(func(t *testing.T, completion string) {
		for task, ex := range DefaultExtractors() {
			raw := ex(completion)
			if raw != "" && !strings.Contains(completion, raw) {
				t.Fatalf("%s: answer %q is not part of the completion", task, raw)
			}
			ans := Normalise(raw)
			if !utf8.ValidString(ans) || len(ans) > MaxAnswerBytes {
				t.Fatalf("%s: normalised answer %q: invalid or too long", task, ans)
			}
			if again := Normalise(ans); again != ans {
				t.Fatalf("%s: Normalise(%q) = %q, not a fixed point", task, ans, again)
			}
			v, err := p.Judge(task, completion, raw)
			if err != nil {
				t.Fatal(err)
			}
			if v.Answer != ans || v.Correct != (ans != "") {
				t.Fatalf("%s: judged against its own answer %q: %+v", task, raw, v)
			}
		}
	})
}

// FuzzNormalise checks Normalise and Equivalent on arbitrary pairs: no
// panic, a fixed point, symmetry, and agreement between the two.
func FuzzNormalise(f *testing.F) {
	for i, s := range fuzzSeeds {
		f.Add(s, fuzzSeeds[(i+1)%len(fuzzSeeds)])
	}
	f.Add("3.50", "7/2")
	f.Add("1,234", "1234.0")
	f.Add("-0", "+0.000")
	f.Add("YES", " yes. ")
	f.Fuzz(func(t *testing.T, a, b string) {
		na, nb := Normalise(a), Normalise(b)
		if Normalise(na) != na {
			t.Fatalf("Normalise(%q) = %q, not a fixed point", a, na)
		}
		if !utf8.ValidString(na) || len(na) > MaxAnswerBytes {
			t.Fatalf("Normalise(%q) = %q: invalid or too long", a, na)
		}
		ab, ba := Equivalent(a, b), Equivalent(b, a)
		if ab != ba {
			t.Fatalf("Equivalent(%q, %q) = %v but reversed %v", a, b, ab, ba)
		}
		if ab && (na == "" || na != nb) {
			t.Fatalf("Equivalent(%q, %q) but normalised %q and %q", a, b, na, nb)
		}
		if Equivalent(a, a) != (na != "") {
			t.Fatalf("Equivalent(%q, itself) = %v with normal form %q", a, Equivalent(a, a), na)
		}
		if Equivalent(a, na) != (na != "") {
			t.Fatalf("%q is not equivalent to its normal form %q", a, na)
		}
	})
}
