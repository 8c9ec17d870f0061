package tracelog

import (
	"errors"
	"math"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/wsgrpo/wsgrpo/internal/sqllex"
)

func TestBind(t *testing.T) {
	tests := []struct {
		name  string
		query string
		args  []any
		want  string
		err   error
	}{
		{"none", "SELECT 1", nil, "SELECT 1", nil},
		{"string", "WHERE a = ?", []any{"x'y"}, `WHERE a = 'x\'y'`, nil},
		{"ints", "? ? ? ?", []any{int8(-1), uint64(math.MaxUint64), 7, int64(math.MinInt64)}, "-1 18446744073709551615 7 -9223372036854775808", nil},
		{"floats", "? ? ? ?", []any{1.5, float32(0.1), math.Inf(-1), math.NaN()}, "1.5 0.1 -inf nan", nil},
		{"bool nil bytes", "? ? ?", []any{true, nil, []byte("b")}, "1 NULL 'b'", nil},
		{"time", "?", []any{time.Unix(1700000000, 0)}, "toDateTime(1700000000)", nil},
		{"slices", "? ?", []any{[]int32{1, 2}, []string{"a", "b'"}}, `[1,2] ['a','b\'']`, nil},
		{"placeholders in literals and comments", "SELECT '?', \"?\", `?` -- ?\n, ? /* ? */ # ?", []any{1}, "SELECT '?', \"?\", `?` -- ?\n, 1 /* ? */ # ?", nil},
		{"escaped quote in literal", `SELECT 'a\'?', ?`, []any{2}, `SELECT 'a\'?', 2`, nil},
		{"doubled quote in literal", `SELECT 'a''?', ?`, []any{2}, `SELECT 'a''?', 2`, nil},
		{"control bytes", "?", []any{"\x00\n\x01\x7f"}, `'\0\n\x01\x7F'`, nil},
		{"adjacent placeholders", "??", []any{"a", "b"}, "'a' 'b'", nil},
		{"placeholder against a literal", "'x'?'y'", []any{"a"}, "'x' 'a' 'y'", nil},
		{"too few args", "? ?", []any{1}, "", ErrBind},
		{"too many args", "?", []any{1, 2}, "", ErrBind},
		{"bad type", "?", []any{struct{}{}}, "", ErrBind},
		{"unterminated literal", "SELECT '?", nil, "SELECT '?", nil},
		{"nested block comment", "SELECT /* a /* ? */ ? */ ?", []any{3}, "SELECT /* a /* ? */ ? */ 3", nil},
		{"heredoc", "SELECT $$?$$, $t$ ? $t$, ?", []any{4}, "SELECT $$?$$, $t$ ? $t$, 4", nil},
		{"# without a space is code", "SELECT ?#?", []any{1, 2}, "SELECT 1#2", nil},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got, err := Bind(tc.query, tc.args...)
			if tc.err != nil {
				if !errors.Is(err, tc.err) {
					t.Fatalf("err = %v, want %v", err, tc.err)
				}
				return
			}
			if err != nil || got != tc.want {
				t.Fatalf("Bind = %q, %v; want %q", got, err, tc.want)
			}
		})
	}
}

// literals returns the single-quoted literals of q, unescaped as
// ClickHouse reads them.
func literals(t *testing.T, q string) []string {
	t.Helper()
	var out []string
	for i := 0; i < len(q); i++ {
		if q[i] != '\'' {
			continue
		}
		k, ok := sqllex.QuotedEnd(q, i)
		if !ok {
			t.Fatalf("unterminated literal at %d of %q", i, q)
		}
		end := k - 1
		body := q[i+1 : end]
		var b strings.Builder
		for j := 0; j < len(body); j++ {
			c := body[j]
			if c != '\\' {
				b.WriteByte(c)
				continue
			}
			j++
			switch body[j] {
			case 'n':
				b.WriteByte('\n')
			case 't':
				b.WriteByte('\t')
			case 'r':
				b.WriteByte('\r')
			case '0':
				b.WriteByte(0)
			case 'x':
				v, err := strconv.ParseUint(body[j+1:j+3], 16, 8)
				if err != nil {
					t.Fatalf("bad \\x escape in %q", body)
				}
				b.WriteByte(byte(v))
				j += 2
			default:
				b.WriteByte(body[j])
			}
		}
		out = append(out, b.String())
		i = end
	}
	return out
}

// FuzzBind checks that any string argument becomes exactly one literal
// that reads back as the argument, whatever the surrounding query, and that
// Bind never panics.
func FuzzBind(f *testing.F) {
	f.Add("SELECT ?", "x' OR '1'='1")
	f.Add("SELECT '?', ? -- ?", `\'; DROP TABLE t; --`)
	f.Add("/* ? */ ?", "\x00\xff")
	f.Fuzz(func(t *testing.T, query, arg string) {
		n := 0
		_ = scanSQL(query, func(_ string, p bool) error {
			if p {
				n++
			}
			return nil
		})
		args := make([]any, n)
		for i := range args {
			args[i] = arg
		}
		out, err := Bind(query, args...)
		if err != nil {
			t.Fatalf("Bind with %d args for %d placeholders: %v", n, n, err)
		}
		if n == 0 || strings.ContainsAny(query, "'\"`#-/\\") {
			return
		}
		// A query without quotes or comments: its only literals are ours.
		lits := literals(t, out)
		if len(lits) != n {
			t.Fatalf("%q bound to %q: %d literals, want %d", query, out, len(lits), n)
		}
		for _, l := range lits {
			if l != arg {
				t.Fatalf("literal reads %q, want %q", l, arg)
			}
		}
	})
}
