// Package reporting measures `wsgrpo report` (package tracelog/report): how
// long the report of one run takes to query and to render, on a store
// filled with a synthetic run whose trends a report can show
// (docs/benchmarks/report.md).
package reporting

import (
	"context"
	"fmt"
	"slices"
	"time"

	"github.com/wsgrpo/wsgrpo/tracelog/report"
)

// Result is the outcome of Report: one sample per repeat.
type Result struct {
	Run          string `json:"run"`
	Trajectories int64  `json:"trajectories"`
	// Query is the time Build took: every query of the report.
	Query []time.Duration `json:"query_ns"`
	// Render is the time Write took: plots, markdown and JSON (empty when
	// Report was given no directory).
	Render []time.Duration `json:"render_ns"`
}

// QueryMedian is the median of Query.
func (l Result) QueryMedian() time.Duration { return median(l.Query) }

// RenderMedian is the median of Render.
func (l Result) RenderMedian() time.Duration { return median(l.Render) }

// TotalMedian is the median of Query+Render per repeat.
func (l Result) TotalMedian() time.Duration {
	t := slices.Clone(l.Query)
	for i := range t {
		if i < len(l.Render) {
			t[i] += l.Render[i]
		}
	}
	return median(t)
}

func median(d []time.Duration) time.Duration {
	if len(d) == 0 {
		return 0
	}
	s := slices.Clone(d)
	slices.Sort(s)
	return s[len(s)/2]
}

// Report times `wsgrpo report` for run repeats times: Build against
// q, then, when outDir is not empty, Write into outDir (the plots and
// files are overwritten each time).
func Report(ctx context.Context, q report.Querier, run string, opts report.Options, outDir string, repeats int) (Result, error) {
	if repeats < 1 {
		return Result{}, fmt.Errorf("%w: repeats %d", report.ErrOptions, repeats)
	}
	l := Result{Run: run}
	for range repeats {
		start := time.Now()
		r, err := report.Build(ctx, q, run, opts)
		if err != nil {
			return l, err
		}
		l.Query = append(l.Query, time.Since(start))
		l.Trajectories = r.Summary.Trajectories
		if outDir == "" {
			continue
		}
		start = time.Now()
		if _, err := report.NewDocument(r, nil).Write(outDir); err != nil {
			return l, err
		}
		l.Render = append(l.Render, time.Since(start))
	}
	return l, nil
}
