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

// TestResultsMarkdown: the base row comes from every run's evaluation
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
		"| base policy | 3 | 0 | 30.0 ± 0.0% | 40.0 ± 0.0 |",
		"| grpo | 2 | 10 | 60.0 ± 14.1% | 70.0 ± 14.1 |",
		"| wsgrpo | 1 | 10 | 60.0 ± 0.0% | 20.0 ± 0.0 | 3.00 ± 0.00 | 33.3 ± 0.0 |",
		" 2 ops |",
	} {
		if !strings.Contains(doc, want) {
			t.Errorf("no %q in\n%s", want, doc)
		}
	}
}

// TestResultsMarkdownSampled: with sampled evaluations in every run, the
// sampled table comes first, then the greedy one; a run without one leaves
// only the greedy table.
func TestResultsMarkdownSampled(t *testing.T) {
	ev := func(acc, tok float64, k int) *evalReport {
		return &evalReport{N: 50, Samples: k, Accuracy: acc, MeanTokens: tok, MeanSteps: 3, ByOps: []evalByOps{{Ops: 3, Accuracy: acc}}}
	}
	run := func(sampled bool) trainState {
		s := trainState{Before: ev(0.4, 40, 1), After: ev(0.5, 38, 1), Steps: 5}
		if sampled {
			s.BeforeSampled, s.AfterSampled = ev(0.3, 90, 4), ev(0.35, 45, 4)
		}
		return s
	}
	doc := resultsMarkdown([]methodResult{{Method: "wsgrpo", Runs: []trainState{run(true), run(true)}}})
	si, gi := strings.Index(doc, "Sampled: 4 completions of each of 50"), strings.Index(doc, "Greedy decoding")
	if si < 0 || gi < si {
		t.Fatalf("want the sampled table, then the greedy one:\n%s", doc)
	}
	for _, want := range []string{"| base policy | 2 | 0 | 30.0 ± 0.0% | 90.0 ± 0.0 |", "| wsgrpo | 2 | 5 | 35.0 ± 0.0% | 45.0 ± 0.0 |", "| wsgrpo | 2 | 5 | 50.0 ± 0.0% | 38.0 ± 0.0 |"} {
		if !strings.Contains(doc, want) {
			t.Errorf("no %q in\n%s", want, doc)
		}
	}
	if doc := resultsMarkdown([]methodResult{{Method: "grpo", Runs: []trainState{run(true), run(false)}}}); strings.Contains(doc, "Sampled:") {
		t.Errorf("a run without a sampled eval still got a sampled table:\n%s", doc)
	}
}
