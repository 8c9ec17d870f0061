package main

import (
	"testing"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"

	labelerstage "github.com/wsgrpo/wsgrpo/stages/labeler"
	"github.com/wsgrpo/wsgrpo/stages/learner"
)

// TestStageMetrics: a learner's updates and a labeler's counters reach
// Prometheus, and a second registration in one process shares them.
func TestStageMetrics(t *testing.T) {
	reg := prometheus.NewRegistry()
	m, err := newLearnerMetrics(reg)
	if err != nil {
		t.Fatal(err)
	}
	m.observe(learner.StepMetrics{Step: 3, Version: 4, Loss: 0.5, Accuracy: 0.25, MeanTokens: 40, Rows: 64, ForwardBackwardMs: 120})
	m.observe(learner.StepMetrics{Step: 4, Skipped: true})
	again, err := newLearnerMetrics(reg)
	if err != nil {
		t.Fatal(err)
	}
	again.observe(learner.StepMetrics{Step: 5, Version: 5, Rows: 64})
	if got := testutil.ToFloat64(m.gauges.WithLabelValues("step")); got != 5 {
		t.Errorf("step gauge %v, want 5", got)
	}
	if got := testutil.ToFloat64(m.skipped); got != 1 {
		t.Errorf("skipped %v, want 1", got)
	}
	if got := testutil.ToFloat64(m.rows); got != 128 {
		t.Errorf("trained rows %v, want 128", got)
	}
	stats := labelerstage.Stats{RowsLabeled: 16, GroupsScored: 2, RowsDropped: map[string]int64{labelerstage.DropDuplicate: 3}}
	if err := registerLabelerMetrics(reg, func() labelerstage.Stats { return stats }); err != nil {
		t.Fatal(err)
	}
	if n, err := testutil.GatherAndCount(reg, "wsgrpo_labeler_rows_labeled_total", "wsgrpo_labeler_rows_dropped_total"); err != nil || n != 2 {
		t.Fatalf("labeler metrics: %d, %v", n, err)
	}
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, mf := range mfs {
		if mf.GetName() == "wsgrpo_labeler_rows_dropped_total" && mf.GetMetric()[0].GetCounter().GetValue() != 3 {
			t.Errorf("rows dropped %v, want 3", mf.GetMetric()[0].GetCounter().GetValue())
		}
	}
}
