package tracelog

import (
	"strings"
	"testing"
)

func TestReturnsNoResult(t *testing.T) {
	cases := []struct {
		sql  string
		want bool
	}{
		{"OPTIMIZE TABLE trajectories FINAL", true},
		{"  optimize table t", true},
		{"-- compact\nOPTIMIZE TABLE t", true},
		{"/* a */ /* b */\n\tALTER TABLE t DELETE WHERE 1", true},
		{"# chDB comment\ndrop table t", true},
		{"CREATE TABLE t (x UInt8) ENGINE = Memory", true},
		{"SELECT 1", false},
		{"WITH 1 AS x SELECT x", false},
		{"(SELECT 1)", false},
		{"SHOW TABLES", false},
		{"INSERT INTO t SELECT 1", false},
		{"SELECT 'OPTIMIZE'", false},
		{"optimized_view", false},
		{"", false},
		{"-- only a comment", false},
		{"/* unterminated OPTIMIZE", false},
	}
	for _, tc := range cases {
		t.Run(tc.sql, func(t *testing.T) {
			if got := returnsNoResult(tc.sql); got != tc.want {
				t.Fatalf("returnsNoResult(%q) = %v, want %v", tc.sql, got, tc.want)
			}
		})
	}
}

// FuzzLeadingWord: the statement scanner reads user SQL (`wsgrpo sql`); it
// must not panic, and what it returns is a word of the input.
func FuzzLeadingWord(f *testing.F) {
	for _, s := range []string{"OPTIMIZE TABLE t", "-- x\nSELECT 1", "/* */ALTER", "/*", "--", "#", " \t\n", "é_1 x"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, q string) {
		w := leadingWord(q)
		if !strings.Contains(q, w) {
			t.Fatalf("leadingWord(%q) = %q, not part of the input", q, w)
		}
		if strings.ContainsFunc(w, func(r rune) bool { return r == ' ' || r == '\n' || r == '(' }) {
			t.Fatalf("leadingWord(%q) = %q holds a separator", q, w)
		}
		_ = returnsNoResult(q)
	})
}
