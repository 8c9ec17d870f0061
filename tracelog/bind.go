package tracelog

import (
	"fmt"
	"math"
	"reflect"
	"strconv"
	"strings"
	"time"

	"github.com/wsgrpo/wsgrpo/internal/sqllex"
)

// Bind replaces each ? placeholder of query (outside string literals,
// quoted identifiers and comments) with the SQL literal of the matching
// argument. Strings are single-quoted with backslash escapes, so no
// argument can close its literal. Supported argument types: string, []byte
// (as a string), bool, signed and unsigned integers, floats, time.Time (as
// toDateTime of its Unix seconds), nil (NULL) and slices of these (as
// arrays). A literal is never written against a quote: a space separates
// them, since ClickHouse reads 'a”b' as one literal.
func Bind(query string, args ...any) (string, error) {
	var b strings.Builder
	b.Grow(len(query) + 16*len(args))
	n := 0
	err := scanSQL(query, func(s string, placeholder bool) error {
		if !placeholder {
			// A quote right after a literal would join the two ('a''b'
			// is one literal): keep them apart.
			if n > 0 && strings.HasPrefix(s, "'") && strings.HasSuffix(b.String(), "'") {
				b.WriteByte(' ')
			}
			b.WriteString(s)
			return nil
		}
		if str := b.String(); strings.HasSuffix(str, "'") {
			b.WriteByte(' ')
		}
		if n >= len(args) {
			return fmt.Errorf("%w: more placeholders than the %d arguments", ErrBind, len(args))
		}
		if err := appendLiteral(&b, args[n]); err != nil {
			return fmt.Errorf("%w: argument %d: %w", ErrBind, n+1, err)
		}
		n++
		return nil
	})
	if err != nil {
		return "", err
	}
	if n != len(args) {
		return "", fmt.Errorf("%w: %d placeholders, %d arguments", ErrBind, n, len(args))
	}
	return b.String(), nil
}

// scanSQL splits query into runs of text and single ? placeholders. A '?'
// inside a quoted literal or identifier, a comment (--, "# ", "#!", and
// nesting /* */) or a heredoc ($tag$...$tag$) is text, as ClickHouse's lexer
// reads it (package internal/sqllex); an unterminated one runs to the end
// of the query.
func scanSQL(q string, emit func(s string, placeholder bool) error) error {
	start := 0
	for i := 0; i < len(q); {
		c, j := q[i], i+1
		end := func(k int, ok bool) int {
			if ok {
				return k
			}
			return len(q)
		}
		switch {
		case c == '?':
			if err := emit(q[start:i], false); err != nil {
				return err
			}
			if err := emit("?", true); err != nil {
				return err
			}
			start = j
		case c == '\'' || c == '"' || c == '`':
			j = end(sqllex.QuotedEnd(q, i))
		case sqllex.LineCommentStart(q, i):
			j = sqllex.LineEnd(q, i)
		case sqllex.BlockCommentStart(q, i):
			j = end(sqllex.BlockCommentEnd(q, i))
		case c == '$' && sqllex.HeredocMayStart(q, i):
			if k, ok := sqllex.HeredocEnd(q, i); ok {
				j = k
			}
		}
		i = j
	}
	return emit(q[start:], false)
}

// appendLiteral writes the SQL literal of v.
func appendLiteral(b *strings.Builder, v any) error {
	switch x := v.(type) {
	case nil:
		b.WriteString("NULL")
	case string:
		quoteString(b, x)
	case []byte:
		quoteString(b, string(x))
	case bool:
		if x {
			b.WriteString("1")
		} else {
			b.WriteString("0")
		}
	case time.Time:
		b.WriteString("toDateTime(")
		b.WriteString(strconv.FormatInt(x.Unix(), 10))
		b.WriteString(")")
	case float32:
		writeFloat(b, float64(x), 32)
	case float64:
		writeFloat(b, x, 64)
	default:
		rv := reflect.ValueOf(v)
		switch rv.Kind() {
		case reflect.Int, reflect.Int8, reflect.Int16, reflect.Int32, reflect.Int64:
			b.WriteString(strconv.FormatInt(rv.Int(), 10))
		case reflect.Uint, reflect.Uint8, reflect.Uint16, reflect.Uint32, reflect.Uint64:
			b.WriteString(strconv.FormatUint(rv.Uint(), 10))
		case reflect.String:
			quoteString(b, rv.String())
		case reflect.Slice, reflect.Array:
			b.WriteByte('[')
			for i := range rv.Len() {
				if i > 0 {
					b.WriteByte(',')
				}
				if err := appendLiteral(b, rv.Index(i).Interface()); err != nil {
					return err
				}
			}
			b.WriteByte(']')
		default:
			return fmt.Errorf("unsupported type %T", v)
		}
	}
	return nil
}

func writeFloat(b *strings.Builder, f float64, bits int) {
	switch {
	case math.IsNaN(f):
		b.WriteString("nan")
	case math.IsInf(f, 1):
		b.WriteString("inf")
	case math.IsInf(f, -1):
		b.WriteString("-inf")
	default:
		b.WriteString(strconv.FormatFloat(f, 'g', -1, bits))
	}
}

// quoteString writes s as a single-quoted ClickHouse string literal. Every
// quote, backslash and control byte is escaped, so the literal ends only at
// the closing quote written here.
func quoteString(b *strings.Builder, s string) {
	const hex = "0123456789ABCDEF"
	b.WriteByte('\'')
	for i := 0; i < len(s); i++ {
		c := s[i]
		switch c {
		case '\'':
			b.WriteString(`\'`)
		case '\\':
			b.WriteString(`\\`)
		case '\n':
			b.WriteString(`\n`)
		case '\t':
			b.WriteString(`\t`)
		case '\r':
			b.WriteString(`\r`)
		case 0:
			b.WriteString(`\0`)
		default:
			if c < 0x20 || c == 0x7f {
				b.WriteString(`\x`)
				b.WriteByte(hex[c>>4])
				b.WriteByte(hex[c&15])
			} else {
				b.WriteByte(c)
			}
		}
	}
	b.WriteByte('\'')
}
