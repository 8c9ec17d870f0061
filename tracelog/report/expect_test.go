package report_test

import (
	"slices"
	"sort"

	"github.com/wsgrpo/wsgrpo/tracelog"
	"github.com/wsgrpo/wsgrpo/tracelog/report"
)

// expectReport computes in Go what Build should return for run from the
// distinct rows that were inserted: the reference the SQL is checked
// against.
func expectReport(run string, rows []tracelog.Row, histBins, accBins int) *report.Report {
	var mine []tracelog.Row
	for _, r := range rows {
		if r.RunID == run {
			mine = append(mine, r)
		}
	}
	r := &report.Report{Run: run}
	s := &r.Summary
	s.Totals = totalsOf(mine)
	s.Lengths = lengthsOf(mine)
	byStep := map[int64][]tracelog.Row{}
	for _, row := range mine {
		byStep[row.Step] = append(byStep[row.Step], row)
		s.MaxTokens = max(s.MaxTokens, int64(row.CompletionTokens))
	}
	steps := make([]int64, 0, len(byStep))
	for st := range byStep {
		steps = append(steps, st)
	}
	slices.Sort(steps)
	s.FirstStep, s.LastStep, s.TrainingSteps = steps[0], steps[len(steps)-1], int64(len(steps))
	for _, st := range steps {
		r.Steps = append(r.Steps, report.StepStats{Step: st, Totals: totalsOf(byStep[st]), Lengths: lengthsOf(byStep[st])})
	}
	w := report.BucketWidth(s.MaxTokens, histBins)
	r.FirstStepLengths = report.StepHistogram{Step: s.FirstStep, Histogram: histogramOf(byStep[s.FirstStep], w, s.MaxTokens/w+1, true)}
	r.LastStepLengths = report.StepHistogram{Step: s.LastStep, Histogram: histogramOf(byStep[s.LastStep], w, s.MaxTokens/w+1, true)}
	wa := report.BucketWidth(s.MaxTokens, accBins)
	r.LengthAccuracy = histogramOf(mine, wa, s.MaxTokens/wa+1, false)
	return r
}

func totalsOf(rows []tracelog.Row) report.Totals {
	var t report.Totals
	for _, r := range rows {
		t.Trajectories++
		t.TotalTokens += int64(r.CompletionTokens)
		if r.Correct {
			t.Correct++
		}
		if r.FinishReason == "length" {
			t.Truncated++
		}
	}
	if t.Trajectories > 0 {
		t.Accuracy = float64(t.Correct) / float64(t.Trajectories)
		t.TruncatedShare = float64(t.Truncated) / float64(t.Trajectories)
	}
	if t.Correct > 0 {
		t.TokensPerCorrect = float64(t.TotalTokens) / float64(t.Correct)
	}
	return t
}

func lengthsOf(rows []tracelog.Row) report.Lengths {
	var c, ic []tracelog.Row
	for _, r := range rows {
		if r.Correct {
			c = append(c, r)
		} else {
			ic = append(ic, r)
		}
	}
	return report.Lengths{All: statsOf(rows), Correct: statsOf(c), Incorrect: statsOf(ic)}
}

func statsOf(rows []tracelog.Row) report.LengthStats {
	s := report.LengthStats{Trajectories: int64(len(rows))}
	if len(rows) == 0 {
		return s
	}
	tok := make([]float64, len(rows))
	stp := make([]float64, len(rows))
	for i, r := range rows {
		tok[i], stp[i] = float64(r.CompletionTokens), float64(r.Steps)
	}
	s.MeanTokens, s.MedianTokens, s.P90Tokens = mean(tok), quantileExact(tok, 0.5), quantileExact(tok, 0.9)
	s.MeanSteps, s.MedianSteps, s.P90Steps = mean(stp), quantileExact(stp, 0.5), quantileExact(stp, 0.9)
	return s
}

func mean(x []float64) float64 {
	var s float64
	for _, v := range x {
		s += v
	}
	return s / float64(len(x))
}

// quantileExact is ClickHouse's quantileExact: the element at index
// floor(q*n) of the sorted values.
func quantileExact(x []float64, q float64) float64 {
	s := slices.Clone(x)
	sort.Float64s(s)
	i := int(q * float64(len(s)))
	if q >= 1 || i >= len(s) {
		i = len(s) - 1
	}
	return s[i]
}

// histogramOf buckets rows by length; dense lists every bucket of 0..nb-1,
// otherwise only buckets with rows.
func histogramOf(rows []tracelog.Row, width, nb int64, dense bool) report.Histogram {
	h := report.Histogram{Width: width}
	buckets := make([][]tracelog.Row, nb)
	for _, r := range rows {
		i := int64(r.CompletionTokens) / width
		buckets[i] = append(buckets[i], r)
	}
	for i, b := range buckets {
		if len(b) == 0 && !dense {
			continue
		}
		h.Buckets = append(h.Buckets, report.Bucket{MinTokens: int64(i) * width, MaxTokens: int64(i+1) * width, Totals: totalsOf(b)})
		h.Trajectories += int64(len(b))
	}
	for i := range h.Buckets {
		h.Buckets[i].Share = float64(h.Buckets[i].Trajectories) / float64(h.Trajectories)
	}
	return h
}
