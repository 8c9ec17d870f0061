package main

import (
	"errors"
	"testing"
)

func TestSingleStatement(t *testing.T) {
	for _, tc := range []struct {
		name, q  string
		want     string // the statement sent; "" when refused
		outfile  bool
		refusedQ bool
	}{
		{name: "one", q: "SELECT 1", want: "SELECT 1"},
		{name: "trailing semicolon", q: "SELECT 1;", want: "SELECT 1"},
		{name: "trailing semicolon and comments", q: "SELECT 1 ; -- done\n /* really */  ", want: "SELECT 1 "},
		{name: "semicolon in a string", q: "SELECT 'a;b' AS s", want: "SELECT 'a;b' AS s"},
		{name: "escaped quote in a string", q: `SELECT 'a\';b'`, want: `SELECT 'a\';b'`},
		{name: "doubled quote in a string", q: "SELECT 'a'';b'", want: "SELECT 'a'';b'"},
		{name: "semicolon in a quoted identifier", q: `SELECT 1 AS "a;b"`, want: `SELECT 1 AS "a;b"`},
		{name: "semicolon in a backquoted identifier", q: "SELECT 1 AS `a;b`", want: "SELECT 1 AS `a;b`"},
		{name: "semicolon in a line comment", q: "SELECT 1 -- a; DROP TABLE trajectories\n, 2", want: "SELECT 1 -- a; DROP TABLE trajectories\n, 2"},
		{name: "semicolon in a hash comment", q: "SELECT 1 # a; b\n", want: "SELECT 1 # a; b\n"},
		{name: "semicolon in a nested block comment", q: "SELECT /* a /* b; */ c; */ 1", want: "SELECT /* a /* b; */ c; */ 1"},
		{name: "semicolon in a heredoc", q: "SELECT $$a;b$$, $t$c;d$t$", want: "SELECT $$a;b$$, $t$c;d$t$"},
		{name: "into outfile", q: "SELECT 1 INTO  /* x */ outfile '/tmp/x'", want: "SELECT 1 INTO  /* x */ outfile '/tmp/x'", outfile: true},
		{name: "outfile as a name", q: "SELECT 1 AS outfile", want: "SELECT 1 AS outfile"},
		{name: "two statements", q: "SELECT 1; DROP TABLE trajectories", refusedQ: true},
		{name: "two without space", q: "SELECT 1;SELECT 2;", refusedQ: true},
		{name: "empty second", q: "SELECT 1;;", refusedQ: true},
		{name: "empty first", q: "; SELECT 1", refusedQ: true},
		{name: "vertical delimiter", q: `SELECT 1\G DROP TABLE trajectories`, refusedQ: true},
		{name: "after a string", q: "SELECT 'x'; DROP TABLE trajectories", refusedQ: true},
		{name: "after a comment", q: "SELECT 1 /* x */; DROP TABLE trajectories", refusedQ: true},
		{name: "hash without a space is no comment", q: "SELECT 1 #; DROP TABLE trajectories", refusedQ: true},
		{name: "dollar inside a word", q: "SELECT 1 AS a$t$; DROP TABLE trajectories; $t$", refusedQ: true},
		{name: "unclosed heredoc", q: "SELECT $t$; DROP TABLE trajectories", refusedQ: true},
		{name: "unclosed string", q: "SELECT 'a; DROP TABLE trajectories", refusedQ: true},
		{name: "unclosed identifier", q: "SELECT `a; DROP TABLE trajectories", refusedQ: true},
		{name: "unclosed comment", q: "SELECT 1 /* /* */ ; DROP TABLE trajectories", refusedQ: true},
		{name: "only comments", q: " -- nothing\n/* here */ ", refusedQ: true},
		{name: "only a semicolon", q: " ; ", refusedQ: true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			st, err := singleStatement(tc.q)
			if tc.refusedQ {
				if !errors.Is(err, ErrStatements) || !errors.Is(err, ErrConfig) {
					t.Fatalf("singleStatement(%q) = %+v, %v; want ErrStatements", tc.q, st, err)
				}
				return
			}
			if err != nil {
				t.Fatalf("singleStatement(%q): %v", tc.q, err)
			}
			if st.Text != tc.want || st.IntoOutfile != tc.outfile {
				t.Fatalf("singleStatement(%q) = %q (outfile %v), want %q (outfile %v)", tc.q, st.Text, st.IntoOutfile, tc.want, tc.outfile)
			}
		})
	}
}

// FuzzSingleStatement: whatever the query, a statement that passes holds
// no separator the check would count again, and checking it again gives
// the same statement.
func FuzzSingleStatement(f *testing.F) {
	for _, q := range []string{"SELECT 1", "SELECT 'a;b'; ", "SELECT $a$;$a$", "SELECT /* /* ; */ */ 1", "SELECT 1; SELECT 2", "SELECT `x\\`;`"} {
		f.Add(q)
	}
	f.Fuzz(func(t *testing.T, q string) {
		st, err := singleStatement(q)
		if err != nil {
			return
		}
		again, err := singleStatement(st.Text)
		if err != nil || again.Text != st.Text || again.IntoOutfile != st.IntoOutfile {
			t.Fatalf("singleStatement(%q) = %q; checked again: %q, %v", q, st.Text, again.Text, err)
		}
	})
}
