package tokenizer

import (
	"unicode"
	"unicode/utf8"
)

// The Split regular expressions of the Qwen2/Qwen3 and Llama 3 tokenizers
// (they differ in how many digits make a piece). They are matched by a
// hand-written scanner, several times faster than the regexp2 engine;
// TestKnownScannerMatchesRegexp and FuzzKnownScanner hold the two equal.
const (
	// Qwen2Pattern is the pre-tokenizer regex of Qwen2, Qwen2.5 and Qwen3.
	Qwen2Pattern = `(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+`
	// Llama3Pattern is the pre-tokenizer regex of Llama 3, 3.1, 3.2, 3.3.
	Llama3Pattern = `(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}{1,3}| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+`
)

// knownScanner matches Qwen2Pattern (maxDigits 1) or Llama3Pattern
// (maxDigits 3).
type knownScanner struct {
	maxDigits int
}

// knownPattern returns the scanner of a known pattern, or nil.
func knownPattern(p string) *knownScanner {
	switch p {
	case Qwen2Pattern:
		return &knownScanner{maxDigits: 1}
	case Llama3Pattern:
		return &knownScanner{maxDigits: 3}
	}
	return nil
}

// Character classes of the patterns.
const (
	classOther   = iota // not a letter, number or whitespace
	classLetter         // \p{L}
	classNumber         // \p{N}
	classSpace          // \s other than \r and \n (Unicode White_Space)
	classNewline        // \r or \n
)

// asciiClass is the class of each ASCII character.
var asciiClass = func() (c [128]uint8) {
	for r := range rune(128) {
		c[r] = classOf(r)
	}
	return c
}()

// classOf returns the class of r.
func classOf(r rune) uint8 {
	switch {
	case r == '\r' || r == '\n':
		return classNewline
	case unicode.IsLetter(r):
		return classLetter
	case unicode.IsNumber(r):
		return classNumber
	case unicode.IsSpace(r):
		return classSpace
	}
	return classOther
}

// at returns the class and width of the character at s[i], or classOther
// and width 0 at the end.
func at(s string, i int) (uint8, int) {
	if i >= len(s) {
		return classOther, 0
	}
	if c := s[i]; c < utf8.RuneSelf {
		return asciiClass[c], 1
	}
	r, n := utf8.DecodeRuneInString(s[i:])
	return classOf(r), n
}

// run returns the end of the run of characters of class want from i
// (classSpace also takes newlines when newlines is true).
func run(s string, i int, want uint8, newlines bool) int {
	for i < len(s) {
		c, n := at(s, i)
		if c != want && !(newlines && c == classNewline) {
			break
		}
		i += n
	}
	return i
}

// split emits the pattern's matches, which cover the whole text.
func (k *knownScanner) split(s string, emit func(string)) {
	for i := 0; i < len(s); {
		end := k.match(s, i)
		emit(s[i:end])
		i = end
	}
}

// match returns the end of the pattern's match at i (i < len(s)), trying
// the alternatives in order as the backtracking engines do.
func (k *knownScanner) match(s string, i int) int {
	c0, n0 := at(s, i)
	// (?i:'s|'t|'re|'ve|'m|'ll|'d)
	if s[i] == '\'' && i+1 < len(s) {
		switch s[i+1] | 0x20 {
		case 's', 't', 'm', 'd':
			return i + 2
		case 'r', 'v':
			if i+2 < len(s) && s[i+2]|0x20 == 'e' {
				return i + 3
			}
		case 'l':
			if i+2 < len(s) && s[i+2]|0x20 == 'l' {
				return i + 3
			}
		}
	}
	// [^\r\n\p{L}\p{N}]?\p{L}+
	if c0 == classLetter {
		return run(s, i+n0, classLetter, false)
	}
	if c0 == classOther || c0 == classSpace {
		if c1, n1 := at(s, i+n0); c1 == classLetter {
			return run(s, i+n0+n1, classLetter, false)
		}
	}
	// \p{N}{1,maxDigits}
	if c0 == classNumber {
		j := i + n0
		for d := 1; d < k.maxDigits; d++ {
			c, n := at(s, j)
			if c != classNumber {
				break
			}
			j += n
		}
		return j
	}
	// ' ?[^\s\p{L}\p{N}]+[\r\n]*'
	j := i
	if s[i] == ' ' {
		j++
	}
	if c, _ := at(s, j); c == classOther {
		j = run(s, j, classOther, false)
		return run(s, j, classNewline, false)
	}
	// Here c0 is whitespace (every other case matched above).
	end := run(s, i, classSpace, true)
	// \s*[\r\n]+ : up to the run's last newline.
	for j := end - 1; j >= i; j-- {
		if s[j] == '\r' || s[j] == '\n' {
			return j + 1
		}
		if s[j] < utf8.RuneSelf {
			continue
		}
		// Step back over a multi-byte space; newlines are ASCII.
		for j > i && !utf8.RuneStart(s[j]) {
			j--
		}
	}
	// \s+(?!\S) : all but the last space unless the run ends the text.
	if end < len(s) {
		if _, last := utf8.DecodeLastRuneInString(s[i:end]); end-last > i {
			return end - last
		}
	}
	// \s+
	return end
}
