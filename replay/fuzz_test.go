package replay_test

import (
	"strings"
	"testing"

	"github.com/wsgrpo/wsgrpo/replay"
	"github.com/wsgrpo/wsgrpo/tracelog"
)

// maskLiterals replaces the content of every single-quoted literal of s by
// spaces, reading literals as ClickHouse does (a doubled quote or a backslash
// escapes). ok is
// false for an unterminated literal.
func maskLiterals(s string) (masked string, ok bool) {
	b := []byte(s)
	for i := 0; i < len(b); i++ {
		if b[i] != '\'' {
			continue
		}
		j := i + 1
		for ; j < len(b); j++ {
			if b[j] == '\\' {
				b[j] = ' '
				if j+1 < len(b) {
					b[j+1] = ' '
				}
				j++
				continue
			}
			if b[j] == '\'' {
				if j+1 < len(b) && b[j+1] == '\'' {
					b[j], b[j+1] = ' ', ' '
					j++
					continue
				}
				break
			}
			b[j] = ' '
		}
		if j >= len(b) {
			return "", false
		}
		i = j
	}
	return string(b), true
}

// FuzzValidateWhere checks that an accepted expression cannot leave the
// parentheses it is placed in: literals terminate, brackets balance without
// going below zero, no separator, comment or clause word appears outside
// literals, and the wrapped query binds exactly its own placeholder.
func FuzzValidateWhere(f *testing.F) {
	for _, s := range []string{
		"step > 3", "task = 'a''b' OR 1 = 1", "1) OR (1", "x; DROP TABLE t", "completion = '\\' --'",
		"arrayExists(x -> x > 0, step_rewards)", "step IN (SELECT 1)", "1e-5 < advantage", "'\\''",
		"run_id = '?' AND step_rewards[2] < 0", "0x1F = step", "step -- c", "(((", "))",
	} {
		f.Add(s)
	}
	clause := []string{"select", "from", "union", "settings", "format", "into", "join", "with", "where"}
	f.Fuzz(func(t *testing.T, w string) {
		if replay.ValidateWhere(w) != nil {
			return
		}
		masked, ok := maskLiterals(w)
		if !ok {
			t.Fatalf("accepted an unterminated literal: %q", w)
		}
		depth := 0
		for _, c := range masked {
			switch c {
			case '(', '[':
				depth++
			case ')', ']':
				depth--
			}
			if depth < 0 {
				t.Fatalf("accepted a bracket closing below the expression: %q", w)
			}
		}
		if depth != 0 {
			t.Fatalf("accepted unbalanced brackets: %q", w)
		}
		for _, bad := range []string{";", "--", "/*", "#", "`", "\"", "?", "{", "$", "\\", ":"} {
			if strings.Contains(masked, bad) {
				t.Fatalf("accepted %q outside literals: %q", bad, w)
			}
		}
		words := strings.FieldsFunc(strings.ToLower(masked), func(r rune) bool {
			return (r < 'a' || r > 'z') && (r < '0' || r > '9') && r != '_'
		})
		for _, word := range words {
			for _, c := range clause {
				if word == c {
					t.Fatalf("accepted clause word %q: %q", c, w)
				}
			}
		}
		q, err := tracelog.Bind("SELECT 1 FROM trajectories WHERE run_id = ? AND ("+w+")", "r")
		if err != nil {
			t.Fatalf("accepted expression does not bind: %v: %q", err, w)
		}
		if !strings.HasPrefix(q, "SELECT 1 FROM trajectories WHERE run_id = 'r' AND (") {
			t.Fatalf("bound query %q", q)
		}
	})
}

// FuzzParseSteps checks that a parsed range is ordered, non-negative and
// survives String.
func FuzzParseSteps(f *testing.F) {
	for _, s := range []string{"", "1", "1..2", "3..", "..4", "..", "-1", "9223372036854775807", "1..0"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, in string) {
		s, err := replay.ParseSteps(in)
		if err != nil {
			return
		}
		if s.Set && (s.From < 0 || s.From > s.To) {
			t.Fatalf("%q parsed to %+v", in, s)
		}
		again, err := replay.ParseSteps(s.String())
		if err != nil || again != s {
			t.Fatalf("%q -> %+v -> %q -> %+v, %v", in, s, s.String(), again, err)
		}
	})
}
