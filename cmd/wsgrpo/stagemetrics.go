package main

import (
	"errors"

	"github.com/prometheus/client_golang/prometheus"

	labelerstage "github.com/wsgrpo/wsgrpo/stages/labeler"
	"github.com/wsgrpo/wsgrpo/stages/learner"
)

// learnerMetrics are the learner's per-update figures as Prometheus
// metrics (beside the trajectory log's steps table and the progress line).
type learnerMetrics struct {
	gauges  *prometheus.GaugeVec
	skipped prometheus.Counter
	rows    prometheus.Counter
	refRows prometheus.Counter
	phase   *prometheus.HistogramVec
}

// newLearnerMetrics registers the learner's metrics on reg; a second
// learner in the process (tests) reuses the registered ones.
func newLearnerMetrics(reg prometheus.Registerer) (*learnerMetrics, error) {
	m := &learnerMetrics{
		gauges: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Name: "wsgrpo_learner_last_update",
			Help: "The learner's last applied update: step, version, loss, kl, clip_fraction, ratio, grad_norm, mean_reward, accuracy, mean_tokens, mean_steps, staleness.",
		}, []string{"figure"}),
		skipped: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "wsgrpo_learner_skipped_updates_total",
			Help: "Updates skipped because the loss or a gradient was not finite.",
		}),
		rows: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "wsgrpo_learner_trained_rows_total",
			Help: "Trajectories trained on.",
		}),
		refRows: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "wsgrpo_learner_labeler_reference_rows_total",
			Help: "Rows whose reference log-probabilities came from the labeler (no reference pass of the learner's own).",
		}),
		phase: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name:    "wsgrpo_learner_phase_seconds",
			Help:    "Time per update by phase: wait (for rows), reference, forward_backward, optimizer, publish, checkpoint.",
			Buckets: prometheus.ExponentialBuckets(0.001, 2, 16),
		}, []string{"phase"}),
	}
	var err error
	if m.gauges, err = register(reg, m.gauges); err != nil {
		return nil, err
	}
	if m.skipped, err = register(reg, m.skipped); err != nil {
		return nil, err
	}
	if m.rows, err = register(reg, m.rows); err != nil {
		return nil, err
	}
	if m.refRows, err = register(reg, m.refRows); err != nil {
		return nil, err
	}
	if m.phase, err = register(reg, m.phase); err != nil {
		return nil, err
	}
	return m, nil
}

// register registers c on reg, or returns the collector already registered
// under its name (a second stage of the kind in one process).
func register[C prometheus.Collector](reg prometheus.Registerer, c C) (C, error) {
	if err := reg.Register(c); err != nil {
		var are prometheus.AlreadyRegisteredError
		if errors.As(err, &are) {
			if existing, ok := are.ExistingCollector.(C); ok {
				return existing, nil
			}
		}
		return c, err
	}
	return c, nil
}

// registerLabelerMetrics exposes a labeler's counters (read on every
// scrape) on reg.
func registerLabelerMetrics(reg prometheus.Registerer, stats func() labelerstage.Stats) error {
	counter := func(name, help string, v func(labelerstage.Stats) float64) error {
		_, err := register(reg, prometheus.NewCounterFunc(prometheus.CounterOpts{Name: name, Help: help}, func() float64 { return v(stats()) }))
		return err
	}
	sum := func(m map[string]int64) float64 {
		var n int64
		for _, v := range m {
			n += v
		}
		return float64(n)
	}
	return errors.Join(
		counter("wsgrpo_labeler_rows_labeled_total", "Rows the labeler emitted.", func(s labelerstage.Stats) float64 { return float64(s.RowsLabeled) }),
		counter("wsgrpo_labeler_groups_scored_total", "Complete groups shaped.", func(s labelerstage.Stats) float64 { return float64(s.GroupsScored) }),
		counter("wsgrpo_labeler_groups_from_pending_total", "Groups completed through the run's group store.", func(s labelerstage.Stats) float64 { return float64(s.GroupsFromPending) }),
		counter("wsgrpo_labeler_groups_deferred_total", "Times an incomplete group was stored and still incomplete.", func(s labelerstage.Stats) float64 { return float64(s.GroupsDeferred) }),
		counter("wsgrpo_labeler_zero_variance_groups_total", "Scored groups whose shaped rewards were all equal (kept or dropped).", func(s labelerstage.Stats) float64 {
			return float64(s.ZeroVarianceKept + s.ZeroVarianceDropped)
		}),
		counter("wsgrpo_labeler_rows_dropped_total", "Rows not emitted (duplicates, dropped zero-variance groups).", func(s labelerstage.Stats) float64 { return sum(s.RowsDropped) }),
		counter("wsgrpo_labeler_batches_refused_total", "Batches the labeler failed.", func(s labelerstage.Stats) float64 { return sum(s.BatchesRefused) }),
	)
}

// observe records one update.
func (m *learnerMetrics) observe(s learner.StepMetrics) {
	if s.Skipped {
		m.skipped.Inc()
		return
	}
	for name, v := range map[string]float64{
		"step": float64(s.Step), "version": float64(s.Version), "loss": s.Loss, "kl": s.KL,
		"clip_fraction": s.ClipFrac, "ratio": s.Ratio, "grad_norm": s.GradNorm, "mean_reward": s.MeanReward,
		"accuracy": s.Accuracy, "mean_tokens": s.MeanTokens, "mean_steps": s.MeanSteps, "staleness": s.MeanStaleness,
	} {
		m.gauges.WithLabelValues(name).Set(v)
	}
	m.rows.Add(float64(s.Rows))
	m.refRows.Add(float64(s.RefFromLabeler))
	for name, ms := range map[string]float64{
		"wait": s.WaitMs, "reference": s.RefMs, "forward_backward": s.ForwardBackwardMs,
		"optimizer": s.OptimizerMs, "publish": s.PublishMs, "checkpoint": s.CheckpointMs,
	} {
		m.phase.WithLabelValues(name).Observe(ms / 1e3)
	}
}
