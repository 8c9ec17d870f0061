package arith

import (
	"strconv"
	"strings"
	"testing"

	"github.com/wsgrpo/wsgrpo/tasks"
)

// newTask returns the task for cfg or fails the test.
func newTask(tb testing.TB, cfg Config) *Task {
	tb.Helper()
	task, err := New(cfg)
	if err != nil {
		tb.Fatalf("New: %v", err)
	}
	return task
}

// problems returns the first n problems of split under seed.
func problems(tb testing.TB, task *Task, split tasks.Split, seed uint64, n int) []Problem {
	tb.Helper()
	g := task.Generator(split, seed)
	out := make([]Problem, n)
	for i := range out {
		out[i] = g.Next()
	}
	return out
}

// traceCheck is what checkTrace reads from a trace.
type traceCheck struct {
	answer    int64 // the value on the last A: line
	wrongStep bool  // some step line's result is not its operands' value
	extra     int   // lines of kinds beyond step lines and one A: line
}

// checkTrace reads a trace line by line: step lines "a op b=r" (results
// digit-reversed when reversed is set), "check <step>", "verify:" and
// "A:<n>". It fails the test on any other line, on a last line that is not
// an A: line, or on A: lines that disagree.
func checkTrace(tb testing.TB, text string, reversed bool) traceCheck {
	tb.Helper()
	var c traceCheck
	lines := strings.Split(text, "\n")
	answers := 0
	for i, line := range lines {
		switch {
		case strings.HasPrefix(line, AnswerPrefix):
			v, err := strconv.ParseInt(line[len(AnswerPrefix):], 10, 64)
			if err != nil {
				tb.Fatalf("trace %q line %d: bad answer line %q", text, i+1, line)
			}
			if answers > 0 && v != c.answer {
				tb.Fatalf("trace %q: answer lines disagree", text)
			}
			c.answer = v
			answers++
			if answers > 1 {
				c.extra++
			}
		case line == "verify:":
			c.extra++
		case strings.HasPrefix(line, "check "):
			c.extra++
			c.wrongStep = c.wrongStep || !stepRight(tb, text, line[len("check "):], reversed)
		default:
			c.wrongStep = c.wrongStep || !stepRight(tb, text, line, reversed)
		}
	}
	if !strings.HasPrefix(lines[len(lines)-1], AnswerPrefix) {
		tb.Fatalf("trace %q does not end with an answer line", text)
	}
	return c
}

// stepRight parses a step line and reports whether its result is right.
func stepRight(tb testing.TB, text, line string, reversed bool) bool {
	tb.Helper()
	lhs, rhs, ok := strings.Cut(line, "=")
	// The operator is the first + - * after the first character (which
	// may be the minus sign of a negative operand).
	k := strings.IndexAny(lhs[min(1, len(lhs)):], "+-*") + 1
	if !ok || k <= 0 {
		tb.Fatalf("trace %q: bad step line %q", text, line)
	}
	a, errA := strconv.ParseInt(lhs[:k], 10, 64)
	b, errB := strconv.ParseInt(lhs[k+1:], 10, 64)
	if reversed {
		rhs = unreverse(rhs)
	}
	r, errR := strconv.ParseInt(rhs, 10, 64)
	if errA != nil || errB != nil || errR != nil {
		tb.Fatalf("trace %q: bad step line %q", text, line)
	}
	want, err := Op(lhs[k]).apply(a, b)
	if err != nil {
		tb.Fatalf("trace %q: step %q: %v", text, line, err)
	}
	return want == r
}

// unreverse undoes the digit reversal of a written result ("-21" -> "-12",
// "021" -> "120").
func unreverse(s string) string {
	sign := ""
	if strings.HasPrefix(s, "-") {
		sign, s = "-", s[1:]
	}
	r := []byte(s)
	for i, j := 0, len(r)-1; i < j; i, j = i+1, j-1 {
		r[i], r[j] = r[j], r[i]
	}
	return sign + string(r)
}
