package main

import (
	"errors"
	"fmt"
	"strings"

	"github.com/wsgrpo/wsgrpo/internal/sqllex"
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
		case sqllex.IsSpace(c):
			isCode = false
		case sqllex.LineCommentStart(q, i):
			j, isCode = sqllex.LineEnd(q, i), false
		case c == '/' && next == '*':
			k, ok := sqllex.BlockCommentEnd(q, i)
			if !ok {
				return st, fmt.Errorf("%w: %w: the /* comment at character %d is not closed", ErrConfig, ErrStatements, i+1)
			}
			j, isCode = k, false
		case c == '\'' || c == '"' || c == '`':
			k, ok := sqllex.QuotedEnd(q, i)
			if !ok {
				return st, fmt.Errorf("%w: %w: the %c at character %d is not closed", ErrConfig, ErrStatements, c, i+1)
			}
			j = k
		case c == '$' && sqllex.HeredocMayStart(q, i):
			if k, ok := sqllex.HeredocEnd(q, i); ok {
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

// isSQLWordByte reports a byte of a bare word or number: ClickHouse's
// word characters, '$' (which it accepts inside words), and every byte of
// a multi-byte UTF-8 character.
func isSQLWordByte(c byte) bool {
	return c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '_' || c == '$' || c >= 0x80
}
