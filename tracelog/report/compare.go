package report

// RunTotals are the figures two runs are compared on.
type RunTotals struct {
	Run           string `json:"run"`
	Trajectories  int64  `json:"trajectories"`
	TrainingSteps int64  `json:"training_steps"`
	// Whole run.
	Accuracy         float64 `json:"accuracy"`
	MeanTokens       float64 `json:"mean_tokens"`
	MedianTokens     float64 `json:"median_tokens"`
	MeanSteps        float64 `json:"mean_steps"`
	TruncatedShare   float64 `json:"truncated_share"`
	TokensPerCorrect float64 `json:"tokens_per_correct"`
	// The last training step: where training left the policy.
	FinalStep       int64   `json:"final_step"`
	FinalAccuracy   float64 `json:"final_accuracy"`
	FinalMeanTokens float64 `json:"final_mean_tokens"`
	FinalMeanSteps  float64 `json:"final_mean_steps"`
}

// Comparison sets two runs side by side, e.g. a GRPO baseline (Base) and a
// WS-GRPO run (Other). Deltas are Other minus Base.
type Comparison struct {
	Base  RunTotals `json:"base"`
	Other RunTotals `json:"other"`

	AccuracyDelta      float64 `json:"accuracy_delta"`
	FinalAccuracyDelta float64 `json:"final_accuracy_delta"`
	MeanTokensDelta    float64 `json:"mean_tokens_delta"`
	MeanStepsDelta     float64 `json:"mean_steps_delta"`
	// RelativeLengthCut is 1 - Other.MeanTokens/Base.MeanTokens: 0.3 means
	// Other's completions are 30% shorter on average (negative: longer).
	// 0 when Base has no tokens.
	RelativeLengthCut float64 `json:"relative_length_cut"`
	// RelativeFinalLengthCut is the same at each run's last step.
	RelativeFinalLengthCut float64 `json:"relative_final_length_cut"`
	// RelativeStepsCut is 1 - Other.MeanSteps/Base.MeanSteps.
	RelativeStepsCut float64 `json:"relative_steps_cut"`
	// TokensPerCorrectRatio is Other.TokensPerCorrect/Base.TokensPerCorrect
	// (0 when either has no correct answer).
	TokensPerCorrectRatio float64 `json:"tokens_per_correct_ratio"`
}

// Totals returns the figures r is compared on.
func (r *Report) Totals() RunTotals {
	s := r.Summary
	t := RunTotals{
		Run:              r.Run,
		Trajectories:     s.Trajectories,
		TrainingSteps:    s.TrainingSteps,
		Accuracy:         s.Accuracy,
		MeanTokens:       s.Lengths.All.MeanTokens,
		MedianTokens:     s.Lengths.All.MedianTokens,
		MeanSteps:        s.Lengths.All.MeanSteps,
		TruncatedShare:   s.TruncatedShare,
		TokensPerCorrect: s.TokensPerCorrect,
	}
	if n := len(r.Steps); n > 0 {
		last := r.Steps[n-1]
		t.FinalStep = last.Step
		t.FinalAccuracy = last.Accuracy
		t.FinalMeanTokens = last.Lengths.All.MeanTokens
		t.FinalMeanSteps = last.Lengths.All.MeanSteps
	}
	return t
}

// Compare sets other against base.
func Compare(base, other *Report) *Comparison {
	b, o := base.Totals(), other.Totals()
	c := &Comparison{
		Base:                   b,
		Other:                  o,
		AccuracyDelta:          o.Accuracy - b.Accuracy,
		FinalAccuracyDelta:     o.FinalAccuracy - b.FinalAccuracy,
		MeanTokensDelta:        o.MeanTokens - b.MeanTokens,
		MeanStepsDelta:         o.MeanSteps - b.MeanSteps,
		RelativeLengthCut:      cut(b.MeanTokens, o.MeanTokens),
		RelativeFinalLengthCut: cut(b.FinalMeanTokens, o.FinalMeanTokens),
		RelativeStepsCut:       cut(b.MeanSteps, o.MeanSteps),
	}
	if b.TokensPerCorrect > 0 && o.TokensPerCorrect > 0 {
		c.TokensPerCorrectRatio = o.TokensPerCorrect / b.TokensPerCorrect
	}
	return c
}

// cut is the relative reduction from base to other, 0 when base is 0.
func cut(base, other float64) float64 {
	if base == 0 {
		return 0
	}
	return 1 - other/base
}
