package main

import (
	"math"
	"strings"
	"testing"
)

func TestMeanSD(t *testing.T) {
	for _, tc := range []struct {
		name     string
		xs       []float64
		mean, sd float64
	}{
		{"one", []float64{2}, 2, 0},
		{"three", []float64{1, 2, 3}, 2, 1},
		{"equal", []float64{0.5, 0.5}, 0.5, 0},
	} {
		t.Run(tc.name, func(t *testing.T) {
			m, sd := meanSD(tc.xs)
			if math.Abs(m-tc.mean) > 1e-12 || math.Abs(sd-tc.sd) > 1e-12 {
				t.Fatalf("meanSD(%v) = %v, %v; want %v, %v", tc.xs, m, sd, tc.mean, tc.sd)
			}
		})
	}
	if m, _ := meanSD(nil); !math.IsNaN(m) {
		t.Fatalf("meanSD(nil) = %v, want NaN", m)
	}
}

// TestResultsMarkdown: the base row comes from the first run's evaluation
// before training, each method's row from its runs' evaluations after,
// with mean and spread over seeds.
func TestResultsMarkdown(t *testing.T) {
	ev := func(acc, tok float64) *evalReport {
		return &evalReport{Accuracy: acc, MeanTokens: tok, MeanSteps: 3, ByOps: []evalByOps{{Ops: 2, Accuracy: acc}}}
	}
	rows := []methodResult{
		{Method: "grpo", Runs: []trainState{{Before: ev(0.3, 40), After: ev(0.5, 60), Steps: 10}, {Before: ev(0.3, 40), After: ev(0.7, 80), Steps: 10}}},
		{Method: "wsgrpo", Runs: []trainState{{Before: ev(0.3, 40), After: ev(0.6, 20), Steps: 10}}},
	}
	doc := resultsMarkdown(rows)
	for _, want := range []string{
		"| base policy | 1 | 0 | 30.0 ± 0.0% | 40.0 ± 0.0 |",
		"| grpo | 2 | 10 | 60.0 ± 14.1% | 70.0 ± 14.1 |",
		"| wsgrpo | 1 | 10 | 60.0 ± 0.0% | 20.0 ± 0.0 | 3.00 ± 0.00 | 33.3 ± 0.0 |",
		" 2 ops |",
	} {
		if !strings.Contains(doc, want) {
			t.Errorf("no %q in\n%s", want, doc)
		}
	}
}
