package replay

import (
	"fmt"
	"strconv"
	"strings"

	"github.com/wsgrpo/wsgrpo/tracelog"
)

// MaxWhereLen bounds the length of a --where expression.
const MaxWhereLen = 4096

// whereKeywords are the SQL words an expression may use besides columns and
// functions (compared case-insensitively).
var whereKeywords = wordSet("and", "or", "not", "in", "like", "ilike", "between", "is", "null",
	"true", "false", "case", "when", "then", "else", "end", "inf", "nan")

// whereFunctions are the scalar functions an expression may call (compared
// case-insensitively). None of them reads another table, a dictionary, a
// file or a setting.
var whereFunctions = wordSet(
	// arithmetic and comparison
	"abs", "round", "floor", "ceil", "sqrt", "exp", "log", "log2", "log10", "pow", "power",
	"greatest", "least", "intdiv", "modulo", "plus", "minus", "multiply", "divide", "negate",
	"equals", "notequals", "less", "greater", "lessorequals", "greaterorequals",
	"and", "or", "not", "xor", "if", "multiif", "isnan", "isfinite", "isinfinite",
	"isnull", "isnotnull", "coalesce", "ifnull", "in", "notin",
	// conversions and dates
	"tostring", "tofloat32", "tofloat64", "toint32", "toint64", "touint8", "touint32", "touint64",
	"todate", "todatetime", "tostartofday", "tostartofhour", "tounixtimestamp", "now", "today",
	// strings
	"length", "lengthutf8", "empty", "notempty", "lower", "upper", "substring", "position",
	"positioncaseinsensitive", "positionutf8", "like", "notlike", "ilike", "match", "startswith",
	"endswith", "trimboth", "trimleft", "trimright", "concat", "countsubstrings", "extract",
	"replaceall", "replaceone", "splitbychar", "splitbystring", "cityhash64", "siphash64",
	// arrays
	"has", "hasall", "hasany", "indexof", "countequal", "arraysum", "arraymin", "arraymax",
	"arrayavg", "arraycount", "arrayexists", "arrayall", "arrayfilter", "arraymap",
	"arrayelement", "arrayslice", "arrayreverse", "arraysort", "arraydistinct", "arrayuniq",
	"arrayfirst", "arrayfirstindex", "arraycumsum", "array", "tuple", "range",
)

// reservedWords may not name a lambda parameter: they start or extend a
// query.
var reservedWords = wordSet("select", "from", "where", "prewhere", "union", "join", "format",
	"settings", "into", "with", "limit", "offset", "having", "group", "order", "final", "sample",
	"as", "except", "intersect", "exists", "any", "all", "distinct", "insert", "drop", "alter",
	"create", "system", "kill", "optimize", "attach", "detach", "rename", "truncate", "grant",
	"revoke", "set", "use", "show", "describe", "explain", "watch", "values", "table",
	"database", "over", "window", "qualify", "interval", "cast", "global", "array")

var whereColumns = func() map[string]bool {
	m := make(map[string]bool, len(tracelog.Columns))
	for _, c := range tracelog.Columns {
		m[c] = true
	}
	return m
}()

func wordSet(words ...string) map[string]bool {
	m := make(map[string]bool, len(words))
	for _, w := range words {
		m[w] = true
	}
	return m
}

type tokenKind int

const (
	tokWord tokenKind = iota
	tokNumber
	tokString
	tokOp
	tokOpen  // ( or [
	tokClose // ) or ]
)

type token struct {
	kind tokenKind
	text string
	pos  int
}

// ValidateWhere checks a --where expression: a SQL boolean expression over
// the columns of the trajectories table. It is raw SQL for trusted users,
// validated rather than bound: it may hold column names (exactly as in
// tracelog.Columns), single-quoted string literals, numbers, the operators
// = == != <> < > <= >= + - * / % || and ->, parentheses, brackets, commas,
// the keywords AND OR NOT IN LIKE ILIKE BETWEEN IS NULL TRUE FALSE CASE WHEN
// THEN ELSE END, calls of a fixed list of scalar functions, and
// single-parameter lambdas (x -> ...). It refuses statement separators,
// comments, quoted identifiers, placeholders, query parameters, subqueries
// and anything that names another table, and parentheses that close more
// than they open. Every refusal matches ErrWhere.
func ValidateWhere(expr string) error {
	if strings.TrimSpace(expr) == "" {
		return fmt.Errorf("%w: empty expression", ErrWhere)
	}
	if len(expr) > MaxWhereLen {
		return fmt.Errorf("%w: %d bytes, limit %d", ErrWhere, len(expr), MaxWhereLen)
	}
	toks, err := lexWhere(expr)
	if err != nil {
		return err
	}
	return checkTokens(toks)
}

// checkTokens applies the grammar-free rules: balanced brackets that never
// close below the expression, and only known words.
func checkTokens(toks []token) error {
	var stack []byte
	params := map[string]bool{}
	for i, t := range toks {
		next := func() token {
			if i+1 < len(toks) {
				return toks[i+1]
			}
			return token{}
		}
		switch t.kind {
		case tokOpen:
			stack = append(stack, t.text[0])
		case tokClose:
			want := byte('(')
			if t.text == "]" {
				want = '['
			}
			if len(stack) == 0 || stack[len(stack)-1] != want {
				return fmt.Errorf("%w: unbalanced %q at byte %d", ErrWhere, t.text, t.pos)
			}
			stack = stack[:len(stack)-1]
		case tokWord:
			lw := strings.ToLower(t.text)
			n := next()
			switch {
			case n.kind == tokOpen && n.text == "(":
				if !whereFunctions[lw] && !whereKeywords[lw] {
					return fmt.Errorf("%w: function %q is not allowed at byte %d", ErrWhere, t.text, t.pos)
				}
			case n.kind == tokOp && n.text == "->":
				if reservedWords[lw] || whereKeywords[lw] || whereColumns[t.text] {
					return fmt.Errorf("%w: %q cannot name a lambda parameter (byte %d)", ErrWhere, t.text, t.pos)
				}
				params[t.text] = true
			case whereColumns[t.text], whereKeywords[lw], params[t.text]:
			default:
				return fmt.Errorf("%w: unknown name %q at byte %d (columns of %s, literals and allowed functions only)",
					ErrWhere, t.text, t.pos, "trajectories")
			}
		}
	}
	if len(stack) > 0 {
		return fmt.Errorf("%w: %d unclosed bracket(s)", ErrWhere, len(stack))
	}
	return nil
}

// twoCharOps are the operators of two characters, tried before one.
var twoCharOps = []string{"==", "!=", "<>", "<=", ">=", "||", "->"}

// lexWhere splits expr into tokens, with string literals read the way
// ClickHouse reads them (a doubled quote or a backslash escapes; no other
// literal syntax).
func lexWhere(s string) ([]token, error) {
	var toks []token
	for i := 0; i < len(s); {
		c := s[i]
		switch {
		case c == ' ' || c == '\t' || c == '\n' || c == '\r':
			i++
		case isWordStart(c):
			j := i + 1
			for j < len(s) && isWordChar(s[j]) {
				j++
			}
			toks = append(toks, token{tokWord, s[i:j], i})
			i = j
		case c >= '0' && c <= '9':
			j := lexNumber(s, i)
			if !validNumber(s[i:j]) {
				return nil, fmt.Errorf("%w: malformed number %q at byte %d", ErrWhere, s[i:j], i)
			}
			toks = append(toks, token{tokNumber, s[i:j], i})
			i = j
		case c == '\'':
			j, ok := endOfString(s, i)
			if !ok {
				return nil, fmt.Errorf("%w: unterminated string literal at byte %d", ErrWhere, i)
			}
			toks = append(toks, token{tokString, s[i : j+1], i})
			i = j + 1
		case c == '(' || c == '[':
			toks = append(toks, token{tokOpen, s[i : i+1], i})
			i++
		case c == ')' || c == ']':
			toks = append(toks, token{tokClose, s[i : i+1], i})
			i++
		case strings.HasPrefix(s[i:], "--") || strings.HasPrefix(s[i:], "/*"):
			return nil, fmt.Errorf("%w: comments are not allowed (byte %d)", ErrWhere, i)
		default:
			op := ""
			for _, o := range twoCharOps {
				if strings.HasPrefix(s[i:], o) {
					op = o
					break
				}
			}
			if op == "" && strings.IndexByte("=<>+-*/%,", c) >= 0 {
				op = s[i : i+1]
			}
			if op == "" {
				return nil, fmt.Errorf("%w: character %q is not allowed at byte %d", ErrWhere, rune(c), i)
			}
			toks = append(toks, token{tokOp, op, i})
			i += len(op)
		}
	}
	return toks, nil
}

func isWordStart(c byte) bool {
	return c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c == '_'
}

func isWordChar(c byte) bool { return isWordStart(c) || c >= '0' && c <= '9' }

// lexNumber returns the end of the number starting at s[i]: digits, letters
// (hex digits, exponents), '_' and '.', and a sign right after an exponent
// marker of a decimal number.
func lexNumber(s string, i int) int {
	hex := strings.HasPrefix(s[i:], "0x") || strings.HasPrefix(s[i:], "0X")
	j := i
	for j < len(s) {
		c := s[j]
		switch {
		case isWordChar(c) || c == '.':
			j++
		case (c == '+' || c == '-') && !hex && j > i && (s[j-1] == 'e' || s[j-1] == 'E'):
			j++
		default:
			return j
		}
	}
	return j
}

// validNumber accepts decimal and hexadecimal integers and decimal floats.
func validNumber(n string) bool {
	if _, err := strconv.ParseUint(n, 0, 64); err == nil {
		return true
	}
	if strings.ContainsAny(n, "xXpP_") {
		return false
	}
	_, err := strconv.ParseFloat(n, 64)
	return err == nil
}

// endOfString returns the index of the quote that closes the literal opened
// at s[i]: a backslash escapes the next byte and a doubled quote is a quote.
func endOfString(s string, i int) (int, bool) {
	for j := i + 1; j < len(s); j++ {
		switch s[j] {
		case '\\':
			j++
		case '\'':
			if j+1 < len(s) && s[j+1] == '\'' {
				j++
				continue
			}
			return j, true
		}
	}
	return 0, false
}
