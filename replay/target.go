package replay

import (
	"fmt"
	"strings"

	"github.com/wsgrpo/wsgrpo/pipeline"
	"github.com/wsgrpo/wsgrpo/schemas"
)

// Target is the stage whose input stream a replay publishes to.
type Target string

// The targets, named after the stages that consume them.
const (
	// TargetSampler receives the distinct prompts (prompt batches).
	TargetSampler Target = pipeline.StageSampler
	// TargetVerifier receives rollout batches.
	TargetVerifier Target = pipeline.StageVerifier
	// TargetLabeler receives verified batches.
	TargetLabeler Target = pipeline.StageLabeler
	// TargetLearner receives labeled batches.
	TargetLearner Target = pipeline.StageLearner
)

// Targets returns every target in pipeline order.
func Targets() []Target {
	return []Target{TargetSampler, TargetVerifier, TargetLabeler, TargetLearner}
}

// ParseTarget returns the target named s, or ErrTarget.
func ParseTarget(s string) (Target, error) {
	for _, t := range Targets() {
		if string(t) == s {
			return t, nil
		}
	}
	names := make([]string, 0, 4)
	for _, t := range Targets() {
		names = append(names, string(t))
	}
	return "", fmt.Errorf("%w: %q (want %s)", ErrTarget, s, strings.Join(names, ", "))
}

// Kind returns the hand-off kind the target stage consumes.
func (t Target) Kind() (schemas.Kind, error) {
	switch t {
	case TargetSampler:
		return schemas.KindPrompt, nil
	case TargetVerifier:
		return schemas.KindRollout, nil
	case TargetLabeler:
		return schemas.KindVerified, nil
	case TargetLearner:
		return schemas.KindLabeled, nil
	}
	return "", fmt.Errorf("%w: %q", ErrTarget, string(t))
}
