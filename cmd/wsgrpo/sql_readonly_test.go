package main

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/wsgrpo/wsgrpo/bench/reporting"
)

// TestSQLOneStatementReadOnly: `wsgrpo sql` refuses a query of two
// statements before running either; by default (--read-only) the engine
// refuses writes, DDL and table functions and the command refuses INTO
// OUTFILE, leaving the log as it was; --read-only=false lets a statement
// write.
func TestSQLOneStatementReadOnly(t *testing.T) {
	rows := reporting.SyntheticRows("r1", 0, 40, 40, 16, 3)
	for _, b := range logBackends(t) {
		t.Run(b.name, func(t *testing.T) {
			runDir := filepath.Join(t.TempDir(), "r1")
			flags := append([]string{"--run", runDir}, b.fill(t, runDir, rows)...)
			sql := func(args ...string) (string, error) {
				return execute(t, newSQLCmd(), append(append([]string{}, flags...), args...)...)
			}
			countIs := func(when string) {
				t.Helper()
				got, err := sql("--format", "csv", "SELECT count() FROM trajectories_dedup")
				if err != nil || got != "count()\n40\n" {
					t.Fatalf("%s: count %q, %v; want 40 rows", when, got, err)
				}
			}
			if _, err := sql("SELECT 1; DROP TABLE trajectories"); !errors.Is(err, ErrStatements) || !strings.Contains(err.Error(), "exactly one") {
				t.Fatalf("two statements: err = %v, want ErrStatements", err)
			}
			countIs("after two statements")
			if got, err := sql("--format", "csv", "SELECT 'a;b' AS s; -- one statement\n"); err != nil || got != "s\na;b\n" {
				t.Fatalf("one statement with a semicolon in a string and one at the end: %q, %v", got, err)
			}
			for _, q := range []string{
				"DROP TABLE trajectories",
				"INSERT INTO trajectories (run_id, trajectory_id) VALUES ('r1', 'new')",
				"ALTER TABLE trajectories DELETE WHERE 1 = 1",
				"CREATE TABLE scratch (a UInt8) ENGINE = Memory",
				"SELECT * FROM file('x.tsv', 'TSV', 'a String')",
			} {
				_, err := sql(q)
				if !errors.Is(err, ErrReadOnlyStatement) || !strings.Contains(err.Error(), "--read-only=false") {
					t.Errorf("%s: err = %v, want ErrReadOnlyStatement saying --read-only=false", q, err)
				}
			}
			countIs("after the refused writes")
			outfile := filepath.Join(t.TempDir(), "out.tsv")
			if _, err := sql("SELECT 1 INTO OUTFILE '" + outfile + "'"); !errors.Is(err, ErrReadOnlyStatement) || !strings.Contains(err.Error(), "INTO OUTFILE") {
				t.Errorf("INTO OUTFILE: err = %v, want ErrReadOnlyStatement", err)
			}
			if _, err := os.Stat(outfile); err == nil {
				t.Errorf("read-only INTO OUTFILE wrote %s", outfile)
			}
			if _, err := sql("--read-only=false", "CREATE TABLE scratch (a UInt8) ENGINE = Memory"); err != nil {
				t.Fatalf("--read-only=false CREATE TABLE: %v", err)
			}
			if _, err := sql("--read-only=false", "SELECT 1; DROP TABLE trajectories"); !errors.Is(err, ErrStatements) {
				t.Fatalf("--read-only=false, two statements: err = %v, want ErrStatements", err)
			}
			countIs("at the end")
		})
	}
}
