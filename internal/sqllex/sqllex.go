// Package sqllex recognises the tokens of ClickHouse SQL that can hide a
// character from a scan of the query text: quoted literals and
// identifiers, comments and heredocs. Both wsgrpo's placeholder binding
// (tracelog) and its one-statement check (`wsgrpo sql`) scan queries with
// it, so the two agree with each other and with ClickHouse's lexer on
// where a '?' or a ';' is code.
package sqllex

import "strings"

// IsSpace reports white space between tokens.
func IsSpace(c byte) bool {
	switch c {
	case ' ', '\t', '\n', '\r', '\f', '\v':
		return true
	}
	return false
}

// QuotedEnd returns the index after the quoted token starting at q[i]
// ('...' literal, "..." or `...` identifier: its quote character closes it;
// a backslash escapes the next byte, and the quote doubled stands for
// itself), or false when it is not closed.
func QuotedEnd(q string, i int) (int, bool) {
	quote := q[i]
	for j := i + 1; j < len(q); j++ {
		switch q[j] {
		case '\\':
			j++
		case quote:
			if j+1 < len(q) && q[j+1] == quote {
				j++
				continue
			}
			return j + 1, true
		}
	}
	return 0, false
}

// LineCommentStart reports whether a line comment starts at q[i]: "--", or
// '#' followed by a space or '!' (ClickHouse's rule).
func LineCommentStart(q string, i int) bool {
	if i+1 >= len(q) {
		return false
	}
	c, next := q[i], q[i+1]
	return c == '-' && next == '-' || c == '#' && (next == ' ' || next == '!')
}

// LineEnd returns the index of the newline ending the line that holds
// q[i], or len(q).
func LineEnd(q string, i int) int {
	if k := strings.IndexByte(q[i:], '\n'); k >= 0 {
		return i + k
	}
	return len(q)
}

// BlockCommentStart reports whether a /* comment starts at q[i].
func BlockCommentStart(q string, i int) bool {
	return i+1 < len(q) && q[i] == '/' && q[i+1] == '*'
}

// BlockCommentEnd returns the index after the /* comment starting at q[i],
// which nests, or false when it is not closed.
func BlockCommentEnd(q string, i int) (int, bool) {
	depth := 0
	for j := i; j+1 < len(q); {
		switch {
		case q[j] == '/' && q[j+1] == '*':
			depth++
			j += 2
		case q[j] == '*' && q[j+1] == '/':
			depth--
			j += 2
			if depth == 0 {
				return j, true
			}
		default:
			j++
		}
	}
	return 0, false
}

// HeredocMayStart reports whether a '$' at q[i] starts a token where a
// heredoc is recognised: at the start, or after white space, '(', ',', '='
// or '['.
func HeredocMayStart(q string, i int) bool {
	if i == 0 {
		return true
	}
	p := q[i-1]
	return IsSpace(p) || p == '(' || p == ',' || p == '=' || p == '['
}

// HeredocEnd returns the index after the heredoc starting at q[i]: as in
// ClickHouse's lexer, its tag runs from this '$' to the next one, and it
// ends after the next occurrence of the tag. Without one it is no heredoc.
func HeredocEnd(q string, i int) (int, bool) {
	k := strings.IndexByte(q[i+1:], '$')
	if k < 0 {
		return 0, false
	}
	tag := q[i : i+k+2]
	e := strings.Index(q[i+len(tag):], tag)
	if e < 0 {
		return 0, false
	}
	return i + len(tag) + e + len(tag), true
}
