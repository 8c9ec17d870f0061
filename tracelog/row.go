package tracelog

import (
	"time"

	"github.com/wsgrpo/wsgrpo/schemas"
)

// Row is one trajectory as the log stores it: one row of the trajectories
// table. Field order follows Columns.
type Row struct {
	RunID              string
	Step               int64
	PolicyVersion      int64
	TrajectoryID       string
	GroupID            string
	PromptID           string
	SampleIndex        int32
	Task               string
	Prompt             string
	Completion         string
	CompletionTokenIDs []int32
	CompletionTokens   uint32 // len(CompletionTokenIDs)
	Steps              uint32 // reasoning steps: len(StepEnds)
	FinishReason       string
	ExtractedAnswer    string
	Correct            bool
	TerminalReward     float32
	StepRewards        []float32
	ShapedReward       float32
	Advantage          float32
	Shaper             string
	SamplerLogprobSum  float64 // sum of TokenLogprobs
	SampleMs           float64
	VerifyMs           float64
	LabelMs            float64
	Replayed           bool
	Created            time.Time // prompt creation, second precision in the table
	// Inserted is the ReplacingMergeTree version: Insert sets it to the
	// insert time in nanoseconds when it is zero.
	Inserted uint64

	// Columns added by migration 3 for replay.
	Labeled         bool // the row came from the labeled stream
	ReferenceAnswer string
	PromptTokenIDs  []int32
	TokenLogprobs   []float32
	StepEnds        []int32
	StepScores      []float32
	StepAdvantages  []float32
	CreatedMs       int64

	// Columns added by migration 4 (hand-off schema version 2).
	GroupSize int32  // G, the samples in the prompt's group
	Labeler   string // id of the preference-model artifact that scored the row
}

// Columns are the trajectories table's columns in Row field order: the
// column list of every INSERT and SELECT of whole rows.
var Columns = []string{
	"run_id", "step", "policy_version", "trajectory_id", "group_id", "prompt_id", "sample_index",
	"task", "prompt", "completion", "completion_token_ids", "completion_tokens", "steps",
	"finish_reason", "extracted_answer", "correct", "terminal_reward", "step_rewards",
	"shaped_reward", "advantage", "shaper", "sampler_logprob_sum", "sample_ms", "verify_ms",
	"label_ms", "replayed", "created", "inserted",
	"labeled", "reference_answer", "prompt_token_ids", "token_logprobs", "step_ends",
	"step_scores", "step_advantages", "created_ms",
	"group_size", "labeler",
}

// FromVerified converts a verified row (a run without a labeler, such as an
// eval run) to a log row; the labeler columns stay zero.
func FromVerified(v *schemas.Verified) Row {
	var lp float64
	for _, x := range v.TokenLogprobs {
		lp += float64(x)
	}
	return Row{
		RunID:              v.RunID,
		Step:               v.Step,
		PolicyVersion:      v.PolicyVersion,
		TrajectoryID:       v.TrajectoryID,
		GroupID:            v.GroupID,
		PromptID:           v.PromptID,
		SampleIndex:        v.SampleIndex,
		GroupSize:          v.GroupSize,
		Task:               v.Task,
		Prompt:             v.Prompt.Prompt,
		Completion:         v.Completion,
		CompletionTokenIDs: v.CompletionTokenIDs,
		CompletionTokens:   uint32(len(v.CompletionTokenIDs)),
		Steps:              uint32(len(v.StepEnds)),
		FinishReason:       v.FinishReason,
		ExtractedAnswer:    v.ExtractedAnswer,
		Correct:            v.Correct,
		TerminalReward:     v.TerminalReward,
		SamplerLogprobSum:  lp,
		SampleMs:           v.SampleMs,
		VerifyMs:           v.VerifyMs,
		Replayed:           v.Replayed,
		Created:            time.UnixMilli(v.CreatedMs).UTC(),
		ReferenceAnswer:    v.ReferenceAnswer,
		PromptTokenIDs:     v.PromptTokenIDs,
		TokenLogprobs:      v.TokenLogprobs,
		StepEnds:           v.StepEnds,
		CreatedMs:          v.CreatedMs,
	}
}

// FromLabeled converts a labeled row to a log row. The reference
// log-probabilities a labeler may attach for the learner (RefLogprobs,
// Reference) are a hand-off between those two stages, recomputable from the
// reference policy, and are not logged.
func FromLabeled(l *schemas.Labeled) Row {
	r := FromVerified(&l.Verified)
	r.Labeled = true
	r.StepRewards = l.StepRewards
	r.ShapedReward = l.ShapedReward
	r.Advantage = l.Advantage
	r.Shaper = l.Shaper
	r.LabelMs = l.LabelMs
	r.Labeler = l.Labeler
	r.StepScores = l.StepScores
	r.StepAdvantages = l.StepAdvantages
	return r
}

// Verified rebuilds the verified hand-off row this log row was written
// from (replay into a labeler).
func (r *Row) Verified() schemas.Verified {
	return schemas.Verified{
		Rollout: schemas.Rollout{
			Prompt: schemas.Prompt{
				RunID:           r.RunID,
				Step:            r.Step,
				PromptID:        r.PromptID,
				Task:            r.Task,
				Prompt:          r.Prompt,
				PromptTokenIDs:  r.PromptTokenIDs,
				ReferenceAnswer: r.ReferenceAnswer,
				Replayed:        r.Replayed,
				CreatedMs:       r.CreatedMs,
			},
			TrajectoryID:       r.TrajectoryID,
			GroupID:            r.GroupID,
			SampleIndex:        r.SampleIndex,
			GroupSize:          r.GroupSize,
			PolicyVersion:      r.PolicyVersion,
			Completion:         r.Completion,
			CompletionTokenIDs: r.CompletionTokenIDs,
			TokenLogprobs:      r.TokenLogprobs,
			StepEnds:           r.StepEnds,
			FinishReason:       r.FinishReason,
			SampleMs:           r.SampleMs,
		},
		ExtractedAnswer: r.ExtractedAnswer,
		Correct:         r.Correct,
		TerminalReward:  r.TerminalReward,
		VerifyMs:        r.VerifyMs,
	}
}

// LabeledRow rebuilds the labeled hand-off row this log row was written from
// (replay into a learner). For a row that was never labeled the labeler
// columns are zero.
func (r *Row) LabeledRow() schemas.Labeled {
	return schemas.Labeled{
		Verified:       r.Verified(),
		StepScores:     r.StepScores,
		StepRewards:    r.StepRewards,
		ShapedReward:   r.ShapedReward,
		Advantage:      r.Advantage,
		StepAdvantages: r.StepAdvantages,
		Shaper:         r.Shaper,
		Labeler:        r.Labeler,
		LabelMs:        r.LabelMs,
	}
}
