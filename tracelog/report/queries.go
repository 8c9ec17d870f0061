package report

import (
	"embed"
	"fmt"
	"strings"
)

//go:embed sql/*.sql
var sqlFiles embed.FS

// Names of the report's queries: files sql/<name>.sql.
const (
	// QuerySummary: whole-run totals and length statistics.
	QuerySummary = "summary"
	// QuerySteps: length statistics and accuracy per training step.
	QuerySteps = "steps"
	// QueryLengthHist: length distribution at two training steps.
	QueryLengthHist = "length_hist"
	// QueryLengthAccuracy: accuracy per completion-length bucket.
	QueryLengthAccuracy = "length_accuracy"
)

// QueryNames lists every query of the package: those Build runs, in the
// order it runs them, then QueryRuns.
func QueryNames() []string {
	return []string{QuerySummary, QuerySteps, QueryLengthHist, QueryLengthAccuracy, QueryRuns}
}

// SQL returns the text of the named query, with ? placeholders for its
// arguments (each file's header comment lists them).
func SQL(name string) (string, error) {
	if strings.ContainsAny(name, "/.") {
		return "", fmt.Errorf("%w: query %q", ErrUnknownQuery, name)
	}
	b, err := sqlFiles.ReadFile("sql/" + name + ".sql")
	if err != nil {
		return "", fmt.Errorf("%w: query %q", ErrUnknownQuery, name)
	}
	return string(b), nil
}

// mustSQL returns an embedded query that a test guarantees exists.
func mustSQL(name string) string {
	s, err := SQL(name)
	if err != nil {
		panic(err)
	}
	return s
}
