package report

import (
	"context"
	"fmt"
	"slices"
	"time"
)

// Latency is the outcome of MeasureReport: one sample per repeat.
type Latency struct {
	Run          string `json:"run"`
	Trajectories int64  `json:"trajectories"`
	// Query is the time Build took: every query of the report.
	Query []time.Duration `json:"query_ns"`
	// Render is the time Write took: plots, markdown and JSON (empty when
	// MeasureReport was given no directory).
	Render []time.Duration `json:"render_ns"`
}

// QueryMedian is the median of Query.
func (l Latency) QueryMedian() time.Duration { return median(l.Query) }

// RenderMedian is the median of Render.
func (l Latency) RenderMedian() time.Duration { return median(l.Render) }

// TotalMedian is the median of Query+Render per repeat.
func (l Latency) TotalMedian() time.Duration {
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

// MeasureReport times `wsgrpo report` for run repeats times: Build against
// q, then, when outDir is not empty, Write into outDir (the plots and
// files are overwritten each time).
func MeasureReport(ctx context.Context, q Querier, run string, opts Options, outDir string, repeats int) (Latency, error) {
	if repeats < 1 {
		return Latency{}, fmt.Errorf("%w: repeats %d", ErrOptions, repeats)
	}
	l := Latency{Run: run}
	for range repeats {
		start := time.Now()
		r, err := Build(ctx, q, run, opts)
		if err != nil {
			return l, err
		}
		l.Query = append(l.Query, time.Since(start))
		l.Trajectories = r.Summary.Trajectories
		if outDir == "" {
			continue
		}
		start = time.Now()
		if _, err := NewDocument(r, nil).Write(outDir); err != nil {
			return l, err
		}
		l.Render = append(l.Render, time.Since(start))
	}
	return l, nil
}
