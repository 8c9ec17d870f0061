package main

import (
	"errors"
	"fmt"
	"strings"
)

// Errors of `wsgrpo sql`'s statement check, tested with errors.Is. Both
// come wrapped with ErrConfig.
var (
	// ErrStatements is returned for a query that is not exactly one SQL
	// statement: two or more, none, or an unterminated quote or comment.
	ErrStatements = errors.New("not exactly one SQL statement")
	// ErrReadOnlyStatement is returned in --read-only mode for a statement
	// that writes a file (INTO OUTFILE): the engine's read-only setting
	// does not stop that.
	ErrReadOnlyStatement = errors.New("statement refused in read-only mode")
)

// sqlStatement is the one statement of a query, as singleStatement found it.
type sqlStatement struct {
	// Text is the statement without its trailing semicolon and what
	// follows it (white space and comments).
	Text string
	// IntoOutfile is set when the statement has an INTO OUTFILE clause.
	IntoOutfile bool
}

// singleStatement checks that q holds exactly one SQL statement and
// returns it. It reads q the way ClickHouse's lexer splits statements:
// semicolons inside string literals ('...'), quoted identifiers ("..." and
// `...`), heredocs ($tag$...$tag$), -- and # comments (# followed by a
// space or !) and nested /* */ comments do not count, nor does one
// trailing semicolon; \G ends a statement as a semicolon does. Where it
// is unsure it errs towards refusing: a heredoc is recognized only where
// it starts a token after white space, '(', ',', '=' or '[', so the check
// may refuse a valid query but never passes two statements.
func singleStatement(q string) (sqlStatement, error) {
	var (
		st       sqlStatement
		end      = -1    // where the first statement ends (its separator)
		code     = false // the first statement has code (not only comments)
		prevWord = ""    // the last bare word of the first statement, upper case
	)
	for i := 0; i < len(q); {
		c := q[i]
		next := byte(0)
		if i+1 < len(q) {
			next = q[i+1]
		}
		j := i + 1 // the end of the token at i
		isCode := true
		switch {
		case isSQLSpace(c):
			isCode = false
		case c == '-' && next == '-', c == '#' && (next == ' ' || next == '!'):
			j = len(q)
			if k := strings.IndexByte(q[i:], '\n'); k >= 0 {
				j = i + k
			}
			isCode = false
		case c == '/' && next == '*':
			k, ok := blockCommentEnd(q, i)
			if !ok {
				return st, fmt.Errorf("%w: %w: the /* comment at character %d is not closed", ErrConfig, ErrStatements, i+1)
			}
			j, isCode = k, false
		case c == '\'' || c == '"' || c == '`':
			k, ok := quotedEnd(q, i)
			if !ok {
				return st, fmt.Errorf("%w: %w: the %c at character %d is not closed", ErrConfig, ErrStatements, c, i+1)
			}
			j = k
		case c == '$' && heredocMayStart(q, i):
			if k, ok := heredocEnd(q, i); ok {
				j = k
			}
		case isSQLWordByte(c):
			for j < len(q) && isSQLWordByte(q[j]) {
				j++
			}
			if end < 0 {
				w := strings.ToUpper(q[i:j])
				if prevWord == "INTO" && w == "OUTFILE" {
					st.IntoOutfile = true
				}
				prevWord = w
			}
		case c == ';', c == '\\' && next == 'G':
			if c == '\\' {
				j = i + 2
			}
			if end >= 0 || !code {
				return st, fmt.Errorf("%w: %w: the query holds more than one statement (a second one, or an empty one, at character %d): `wsgrpo sql` runs exactly one; run each on its own", ErrConfig, ErrStatements, i+1)
			}
			end = i
			isCode = false
		default:
			if end < 0 {
				prevWord = ""
			}
		}
		if isCode {
			if end >= 0 {
				return st, fmt.Errorf("%w: %w: the query holds more than one statement (the second starts at character %d): `wsgrpo sql` runs exactly one; run each on its own", ErrConfig, ErrStatements, i+1)
			}
			code = true
		}
		i = j
	}
	if !code {
		return st, fmt.Errorf("%w: %w: the query is empty (only white space and comments)", ErrConfig, ErrStatements)
	}
	st.Text = q
	if end >= 0 {
		st.Text = q[:end]
	}
	return st, nil
}

// isSQLSpace reports white space between tokens.
func isSQLSpace(c byte) bool {
	switch c {
	case ' ', '\t', '\n', '\r', '\f', '\v':
		return true
	}
	return false
}

// isSQLWordByte reports a byte of a bare word or number: ClickHouse's
// word characters, '$' (which it accepts inside words), and every byte of
// a multi-byte UTF-8 character.
func isSQLWordByte(c byte) bool {
	return c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '_' || c == '$' || c >= 0x80
}

// quotedEnd returns the index after the quoted token starting at q[i]
// (its quote character closes it; a backslash escapes the next byte, and
// the quote doubled stands for itself), or false when it is not closed.
func quotedEnd(q string, i int) (int, bool) {
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

// blockCommentEnd returns the index after the /* comment starting at q[i],
// which nests, or false when it is not closed.
func blockCommentEnd(q string, i int) (int, bool) {
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

// heredocMayStart reports whether a '$' at q[i] starts a token where the
// check recognizes heredocs (see singleStatement).
func heredocMayStart(q string, i int) bool {
	if i == 0 {
		return true
	}
	p := q[i-1]
	return isSQLSpace(p) || p == '(' || p == ',' || p == '=' || p == '['
}

// heredocEnd returns the index after the heredoc starting at q[i]: as in
// ClickHouse's lexer, its tag runs from this '$' to the next one, and it
// ends after the next occurrence of the tag. Without one it is no heredoc.
func heredocEnd(q string, i int) (int, bool) {
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
