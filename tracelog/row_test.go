package tracelog_test

import (
	"reflect"
	"testing"

	"github.com/wsgrpo/wsgrpo/schemas"
	"github.com/wsgrpo/wsgrpo/tracelog"
)

// fullLabeled returns a labeled hand-off row with every field set.
func fullLabeled() schemas.Labeled {
	return schemas.Labeled{
		Verified: schemas.Verified{
			Rollout: schemas.Rollout{
				Prompt: schemas.Prompt{
					RunID: "r", Step: 3, PromptID: "p1", Task: "arith", Prompt: "1+2=",
					PromptTokenIDs: []int32{5, 6}, ReferenceAnswer: "3", Replayed: true, CreatedMs: 1767225600123,
				},
				TrajectoryID: "r/3/p1/2", GroupID: "r/3/p1", SampleIndex: 2, GroupSize: 8, PolicyVersion: 2,
				Completion: "so 3", CompletionTokenIDs: []int32{7, 8, 9}, TokenLogprobs: []float32{-0.5, -1, -0.25},
				StepEnds: []int32{1, 3}, FinishReason: "eos", SampleMs: 12.5,
			},
			ExtractedAnswer: "3", Correct: true, TerminalReward: 1, VerifyMs: 0.5,
		},
		StepScores: []float32{0, 0.5, 0.75}, StepRewards: []float32{0.5, 0.25}, ShapedReward: 1.5,
		Advantage: 0.75, StepAdvantages: []float32{0.1, 0.2}, Shaper: "ws", Labeler: "pm-7", LabelMs: 3.25,
		RefLogprobs: []float32{-0.4, -0.9, -0.2}, Reference: "ref-0123456789ab",
	}
}

// requireAllSet fails when a field of v (recursing into embedded structs)
// holds its zero value: a fixture with a zero field cannot show that a
// conversion drops it.
func requireAllSet(tb testing.TB, v reflect.Value, path string) {
	tb.Helper()
	for i := range v.NumField() {
		f, name := v.Field(i), path+"."+v.Type().Field(i).Name
		if f.Kind() == reflect.Struct {
			requireAllSet(tb, f, name)
			continue
		}
		if f.IsZero() {
			tb.Fatalf("fixture field %s is zero", name)
		}
	}
}

func TestRowConversionsRoundTrip(t *testing.T) {
	l := fullLabeled()
	requireAllSet(t, reflect.ValueOf(l), "Labeled")
	// The labeler-to-learner hand-off fields are not logged (FromLabeled).
	logged := l
	logged.RefLogprobs, logged.Reference = nil, ""
	tests := []struct {
		name      string
		row       tracelog.Row
		back      func(r *tracelog.Row) any
		want      any
		labeled   bool
		wantLabel string
	}{
		{"labeled", tracelog.FromLabeled(&l), func(r *tracelog.Row) any { return r.LabeledRow() }, logged, true, "pm-7"},
		{"verified", tracelog.FromVerified(&l.Verified), func(r *tracelog.Row) any { return r.Verified() }, l.Verified, false, ""},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			r := tc.row
			if r.GroupSize != 8 || r.Labeler != tc.wantLabel || r.Labeled != tc.labeled {
				t.Fatalf("row: group_size %d, labeler %q, labeled %v", r.GroupSize, r.Labeler, r.Labeled)
			}
			if got := tc.back(&r); !reflect.DeepEqual(got, tc.want) {
				t.Fatalf("round trip:\n got %+v\nwant %+v", got, tc.want)
			}
		})
	}
}
