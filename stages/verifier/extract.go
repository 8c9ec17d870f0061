package verifier

import (
	"strings"
)

// Extractor returns the final answer of a completion as written (a
// substring of the completion, not yet normalised), or "" when the
// completion gives none. It must accept any string, including invalid
// UTF-8, without panicking, and be safe for concurrent use.
type Extractor func(completion string) string

// DefaultExtractors returns the default task registry: "arith" uses
// ExtractArith, "gsm8k" and "dataset" use ExtractDataset. The map is a
// fresh copy: add or replace entries and pass it in Options.Extractors.
func DefaultExtractors() map[string]Extractor {
	return map[string]Extractor{
		"arith":   ExtractArith,
		"gsm8k":   ExtractDataset,
		"dataset": ExtractDataset,
	}
}

// ExtractArith returns the answer of an arithmetic completion: the rest of
// the last line that starts with "A:" (after any indentation), trimmed.
// "A:" elsewhere in a line does not count, and a completion without such a
// line, a completion cut at the token limit before writing one included,
// has no answer. A last "A:" line with nothing after it is no answer
// either: earlier lines are not consulted.
func ExtractArith(completion string) string {
	s := completion
	for s != "" {
		i := strings.LastIndexByte(s, '\n')
		line := s[i+1:]
		if i < 0 {
			s = ""
		} else {
			s = s[:i]
		}
		line = strings.TrimLeft(line, " \t")
		if rest, ok := strings.CutPrefix(line, "A:"); ok {
			return strings.TrimSpace(rest)
		}
	}
	return ""
}

// ExtractDataset returns the answer of a dataset completion (GSM8K and
// similar), trying in order:
//
//  1. the rest of the line after the last "####", trimmed, if not empty;
//  2. the contents of the last complete \boxed{...}, braces balanced
//     (escaped \{ and \} do not count); in \boxed{\boxed{5}} that is 5;
//  3. the last number in the text (see LastNumber).
//
// It returns "" when none of them finds anything.
func ExtractDataset(completion string) string {
	if i := strings.LastIndex(completion, "####"); i >= 0 {
		rest := strings.TrimLeft(completion[i+4:], "#")
		if j := strings.IndexByte(rest, '\n'); j >= 0 {
			rest = rest[:j]
		}
		if a := strings.TrimSpace(rest); a != "" {
			return a
		}
	}
	if a, ok := LastBoxed(completion); ok {
		if a = strings.TrimSpace(a); a != "" {
			return a
		}
	}
	return LastNumber(completion)
}

// LastBoxed returns the contents of the last complete \boxed{...} in s
// (the one that opens last), with balanced braces; escaped braces (\{, \})
// do not count. It reports false when s has none. It runs in one pass over
// s, however many \boxed{ are left open.
func LastBoxed(s string) (string, bool) {
	const open = `\boxed{`
	if !strings.Contains(s, open) {
		return "", false
	}
	type opener struct{ start, depth int }
	var (
		stack     []opener // \boxed{ still open, innermost last
		depth     int
		bestStart = -1
		bestEnd   int
	)
	for i := 0; i < len(s); i++ {
		switch s[i] {
		case '\\':
			if strings.HasPrefix(s[i:], open) {
				depth++
				stack = append(stack, opener{start: i + len(open), depth: depth})
				i += len(open) - 1
				continue
			}
			i++ // skip the escaped character (\{, \}, \\)
		case '{':
			depth++
		case '}':
			if depth == 0 {
				continue // stray closing brace
			}
			if n := len(stack); n > 0 && stack[n-1].depth == depth {
				o := stack[n-1]
				stack = stack[:n-1]
				if o.start > bestStart {
					bestStart, bestEnd = o.start, i
				}
			}
			depth--
		}
	}
	if bestStart < 0 {
		return "", false
	}
	return s[bestStart:bestEnd], true
}

// LastNumber returns the last number written in s, as written: an
// optional sign (+, - or U+2212, only where it does not follow a letter,
// digit or closing bracket, so "5-3" holds 5 and 3), digits with
// thousands separators grouped by three, an optional decimal part and an
// optional "/denominator". A full stop ending a sentence ("is 42.") is not
// part of the number. It returns "" when s holds no digit.
func LastNumber(s string) string {
	last := ""
	for i := 0; i < len(s); {
		if !isDigit(s[i]) && !(s[i] == '.' && i+1 < len(s) && isDigit(s[i+1]) && (i == 0 || !isDigit(s[i-1]))) {
			i++
			continue
		}
		start := signStart(s, i)
		end := scanNumber(s, i)
		last = s[start:end]
		i = end
	}
	return last
}

// signStart returns where the number whose digits start at i begins,
// taking in a sign that stands in front of it on its own.
func signStart(s string, i int) int {
	j := i
	switch {
	case j >= 1 && (s[j-1] == '-' || s[j-1] == '+'):
		j--
	case j >= len("\u2212") && s[j-len("\u2212"):j] == "\u2212":
		j -= len("\u2212")
	default:
		return i
	}
	if j > 0 {
		c := s[j-1]
		if isDigit(c) || c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c == ')' || c == ']' || c == '}' || c == '_' {
			return i
		}
	}
	return j
}

// scanNumber returns the end of the number whose digits start at i.
func scanNumber(s string, i int) int {
	j := i
	for j < len(s) && isDigit(s[j]) {
		j++
	}
	// Thousands groups: ",ddd" not followed by another digit.
	if j > i && j-i <= 3 {
		for j+4 <= len(s) && s[j] == ',' && isDigit(s[j+1]) && isDigit(s[j+2]) && isDigit(s[j+3]) && (j+4 == len(s) || !isDigit(s[j+4])) {
			j += 4
		}
	}
	if j+1 < len(s) && s[j] == '.' && isDigit(s[j+1]) {
		j++
		for j < len(s) && isDigit(s[j]) {
			j++
		}
	} else if j+1 < len(s) && s[j] == '/' && isDigit(s[j+1]) {
		j++
		for j < len(s) && isDigit(s[j]) {
			j++
		}
	}
	return j
}

func isDigit(c byte) bool { return c >= '0' && c <= '9' }
