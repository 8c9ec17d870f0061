package report

import (
	"fmt"
	"math"

	"github.com/wsgrpo/wsgrpo/tracelog"
)

// reader reads the columns of a query result by name. The first failure is
// kept in err; later reads return 0.
type reader struct {
	query string
	cols  map[string]int
	row   []any
	err   error
}

func newReader(query string, res *tracelog.Result) (*reader, error) {
	r := &reader{query: query, cols: make(map[string]int, len(res.Columns))}
	for i, c := range res.Columns {
		r.cols[c] = i
	}
	for _, row := range res.Rows {
		if len(row) != len(res.Columns) {
			return nil, fmt.Errorf("%w: %s: row of %d values for %d columns", ErrResult, query, len(row), len(res.Columns))
		}
	}
	return r, nil
}

// value returns the named column of the current row as a float64.
func (r *reader) value(name string) float64 {
	if r.err != nil {
		return 0
	}
	i, ok := r.cols[name]
	if !ok {
		r.err = fmt.Errorf("%w: %s: no column %q", ErrResult, r.query, name)
		return 0
	}
	switch v := r.row[i].(type) {
	case int64:
		return float64(v)
	case uint64:
		return float64(v)
	case float64:
		return v
	}
	r.err = fmt.Errorf("%w: %s: column %q holds %T, want a number", ErrResult, r.query, name, r.row[i])
	return 0
}

// int returns the named column of the current row as an int64.
func (r *reader) int(name string) int64 {
	if r.err != nil {
		return 0
	}
	if i, ok := r.cols[name]; ok {
		switch v := r.row[i].(type) {
		case int64:
			return v
		case uint64:
			if v > math.MaxInt64 {
				r.err = fmt.Errorf("%w: %s: column %q value %d overflows int64", ErrResult, r.query, name, v)
				return 0
			}
			return int64(v)
		}
	}
	f := r.value(name)
	if r.err == nil && (f != math.Trunc(f) || math.IsInf(f, 0) || math.IsNaN(f)) {
		r.err = fmt.Errorf("%w: %s: column %q value %v is not an integer", ErrResult, r.query, name, f)
	}
	return int64(f)
}

// stats reads one LengthStats from the columns named with suffix. An empty
// set has every statistic 0 (the engine reports nan for its means).
func (r *reader) stats(suffix string) LengthStats {
	s := LengthStats{Trajectories: r.int("n_" + suffix)}
	if s.Trajectories == 0 {
		return s
	}
	s.MeanTokens = r.value("mean_tokens_" + suffix)
	s.MedianTokens = r.value("median_tokens_" + suffix)
	s.P90Tokens = r.value("p90_tokens_" + suffix)
	s.MeanSteps = r.value("mean_steps_" + suffix)
	s.MedianSteps = r.value("median_steps_" + suffix)
	s.P90Steps = r.value("p90_steps_" + suffix)
	return s
}

func (r *reader) lengths() Lengths {
	return Lengths{All: r.stats("all"), Correct: r.stats("correct"), Incorrect: r.stats("incorrect")}
}

// totals reads the Totals of a summary or steps row.
func (r *reader) totals() Totals {
	t := Totals{
		Trajectories: r.int("n_all"),
		Correct:      r.int("correct_answers"),
		Truncated:    r.int("truncated"),
		TotalTokens:  r.int("total_tokens"),
	}
	t.derive()
	return t
}

// bucketTotals reads the Totals of a histogram row.
func (r *reader) bucketTotals() Totals {
	t := Totals{
		Trajectories: r.int("n"),
		Correct:      r.int("correct_answers"),
		Truncated:    r.int("truncated"),
		TotalTokens:  r.int("total_tokens"),
	}
	t.derive()
	return t
}
