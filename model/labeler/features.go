package labeler

import (
	"fmt"
	"math"
)

// Feature kinds: what represents a prefix to the preference model.
//
// FeaturesHidden is the reference policy's final hidden state at the last
// token of the prefix (d_model values). FeaturesConfidence is ConfidenceWidth
// summaries of how sure the reference policy was of the completion's tokens
// so far (see ConfidenceFeatures). FeaturesBoth is the hidden state followed
// by the confidence summaries.
const (
	FeaturesHidden     = "hidden"
	FeaturesConfidence = "confidence"
	FeaturesBoth       = "hidden+confidence"
)

// DefaultFeatures is the feature kind of DefaultConfig. On the arith
// warm-up of the shipped base policy the hidden state alone ordered 50-54%
// of held-out pairs (chance), the hidden state with the confidence
// summaries 75-76% (it overfits: 97% on its training pairs), the
// confidence summaries alone 74-89% (docs/RESULTS.md, "The preference
// model's features").
const DefaultFeatures = FeaturesConfidence

// ConfidenceWidth is the number of confidence summaries of a prefix.
const ConfidenceWidth = 4

// Scales of the confidence summaries, chosen so that each is of order one
// on completions of a few dozen tokens, as the hidden state's components
// are (they leave a final layer norm).
const (
	confSumScale = 16  // summed log-probability, nats
	confMinScale = 8   // least log-probability, nats
	confMinFloor = -3  // after scaling: a token below e^-24 counts as e^-24
	confUnsure   = 0.5 // a token sampled with less than this probability is "unsure"
	confRare     = 0.1 // ... and with less than this one "rare"
	confCountDiv = 4   // counts are divided by this
)

// checkFeatures resolves an empty kind to FeaturesHidden (the kind of every
// artifact written before kinds existed) and refuses unknown kinds.
func checkFeatures(kind string) (string, error) {
	switch kind {
	case "":
		return FeaturesHidden, nil
	case FeaturesHidden, FeaturesConfidence, FeaturesBoth:
		return kind, nil
	}
	return "", fmt.Errorf("%w: features %q (want %q, %q or %q)", ErrConfig, kind, FeaturesHidden, FeaturesConfidence, FeaturesBoth)
}

// FeatureWidth is the width of a feature vector of the given kind over a
// reference policy of width dModel (0 for an unknown kind).
func FeatureWidth(kind string, dModel int) int {
	switch kind {
	case "", FeaturesHidden:
		return dModel
	case FeaturesConfidence:
		return ConfidenceWidth
	case FeaturesBoth:
		return dModel + ConfidenceWidth
	}
	return 0
}

// ConfidenceFeatures returns, for each prefix end in ends (a count of
// completion tokens, ascending, each at most len(logprobs)), the
// ConfidenceWidth summaries of logprobs[:end], the reference policy's
// log-probabilities of the completion's tokens: the summed log-probability
// (the prefix's log-likelihood), the least one, and how many tokens had
// probability below 0.5 and below 0.1, each scaled to order one. The empty
// prefix has all four zero. A token the policy was sure of adds nothing, so
// repeating what is already written costs little, while an unlikely choice
// (where sampled errors come from) lowers the first two and raises the
// counts.
func ConfidenceFeatures(logprobs []float32, ends []int) [][]float32 {
	out := make([][]float32, len(ends))
	buf := make([]float32, len(ends)*ConfidenceWidth)
	var sum float64
	least := 0.0
	unsure, rare := 0, 0
	at := 0
	lnUnsure, lnRare := math.Log(confUnsure), math.Log(confRare)
	for k, end := range ends {
		for ; at < end && at < len(logprobs); at++ {
			lp := float64(logprobs[at])
			sum += lp
			least = min(least, lp)
			if lp < lnUnsure {
				unsure++
			}
			if lp < lnRare {
				rare++
			}
		}
		v := buf[k*ConfidenceWidth : (k+1)*ConfidenceWidth : (k+1)*ConfidenceWidth]
		v[0] = float32(sum / confSumScale)
		v[1] = float32(max(least/confMinScale, confMinFloor))
		v[2] = float32(unsure) / confCountDiv
		v[3] = float32(rare) / confCountDiv
		out[k] = v
	}
	return out
}

// tokenLogprobs returns the log-probability of each token of seq from
// index from on, out of lp: the graph's target log-probabilities, one per
// position (position j holds token j+1's), the sequence's first at rowOff.
func tokenLogprobs(lp []float32, rowOff int, seq []int32, from int) []float32 {
	out := make([]float32, 0, max(len(seq)-from, 0))
	for i := max(from, 1); i < len(seq); i++ {
		out = append(out, lp[rowOff+i-1])
	}
	return out
}
