package labeler

import (
	"cmp"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"slices"

	"github.com/wsgrpo/wsgrpo/model/checkpoint"
	"github.com/wsgrpo/wsgrpo/model/hf"
	"github.com/wsgrpo/wsgrpo/model/onnx"
	"github.com/wsgrpo/wsgrpo/model/ort"
	"github.com/wsgrpo/wsgrpo/model/policy"
	"github.com/wsgrpo/wsgrpo/model/train"
	"github.com/wsgrpo/wsgrpo/schemas"
)

// DefaultMaxBatch is the number of sequences a Featurizer runs together
// when FeaturizerOptions.MaxBatch is zero.
const DefaultMaxBatch = 16

// FeaturizerOptions configure a Featurizer.
type FeaturizerOptions struct {
	// MaxBatch is the most sequences per ONNX Runtime run (0:
	// DefaultMaxBatch). Sequences are sorted by length before batching, so
	// a batch pads little.
	MaxBatch int
	// Reference names the reference policy in every model fitted on this
	// featurizer's features; "" means ReferenceID of the checkpoint.
	Reference string
	// Features is the kind of feature vector it returns: FeaturesHidden
	// (also ""), FeaturesConfidence or FeaturesBoth. A Scorer's featurizer
	// must have its model's kind (Meta.Features).
	Features string
}

// Featurizer returns the frozen reference policy's view of prefixes: its
// final hidden state at chosen token positions, and with the confidence
// kinds summaries of its log-probabilities of the completion's tokens. It
// runs one ONNX Runtime session of the full-sequence graph (without the
// language-model head when only hidden states are needed). It is safe for
// concurrent use.
type Featurizer struct {
	sess     *ort.Session
	dModel   int // the width of the hidden state
	maxSeq   int // the longest sequence the graph takes
	pad      int32
	maxBatch int
	ref      string
	kind     string
	logits   bool // the session also returns logits
}

// NewFeaturizer opens a session for the reference policy ref.
func NewFeaturizer(rt *ort.Runtime, ref *checkpoint.Checkpoint, o FeaturizerOptions) (*Featurizer, error) {
	if err := ref.Validate(); err != nil {
		return nil, err
	}
	if o.Reference == "" {
		id, err := ReferenceID(ref)
		if err != nil {
			return nil, err
		}
		o.Reference = id
	}
	return newFeaturizer(rt, func() (*onnx.Model, error) { return policy.FullGraph(ref.Config, ref.Weights, onnx.Float) },
		ref.Config.DModel, ref.Config.MaxSeq, ref.Tokenizer.PAD(), o)
}

// NewHFFeaturizer opens a session for a Hugging Face reference model
// (hf.FullGraph over ref's weights) of maxSeq positions whose tokenizer
// pads with pad. An empty o.Reference means HFReferenceID of ref.
func NewHFFeaturizer(rt *ort.Runtime, ref *hf.Checkpoint, maxSeq int, pad int32, o FeaturizerOptions) (*Featurizer, error) {
	if err := hf.CheckWeights(ref.Config, ref.Weights); err != nil {
		return nil, err
	}
	if maxSeq < 1 || pad < 0 || int(pad) >= ref.Config.VocabSize {
		return nil, fmt.Errorf("%w: max_seq %d, pad %d", ErrConfig, maxSeq, pad)
	}
	if o.Reference == "" {
		id, err := HFReferenceID(ref)
		if err != nil {
			return nil, err
		}
		o.Reference = id
	}
	return newFeaturizer(rt, func() (*onnx.Model, error) {
		return hf.FullGraph(ref.Config, ref.Weights, hf.GraphOptions{MaxSeq: maxSeq})
	}, ref.Config.HiddenSize, maxSeq, pad, o)
}

// newFeaturizer opens the session of the full-sequence graph graph makes
// (inputs policy.InputIDs and InputMask, outputs policy.OutputLogits and
// OutputHidden) of a reference with hidden states of width dModel.
func newFeaturizer(rt *ort.Runtime, graph func() (*onnx.Model, error), dModel, maxSeq int, pad int32, o FeaturizerOptions) (*Featurizer, error) {
	if o.MaxBatch < 0 {
		return nil, fmt.Errorf("%w: max batch %d", ErrConfig, o.MaxBatch)
	}
	if o.MaxBatch == 0 {
		o.MaxBatch = DefaultMaxBatch
	}
	kind, err := checkFeatures(o.Features)
	if err != nil {
		return nil, err
	}
	m, err := graph()
	if err != nil {
		return nil, err
	}
	outputs := []string{policy.OutputHidden}
	inputs := []string{policy.InputIDs, policy.InputMask}
	withLogits := kind != FeaturesHidden
	if withLogits {
		// The completion's log-probabilities are computed in the graph
		// (log-softmax at each target token), so the session returns
		// [rows, len] values instead of every position's logits.
		if _, err := train.AppendTargetLogprobs(m.Graph, onnx.Float, policy.OutputLogits); err != nil {
			return nil, err
		}
		outputs = append(outputs, train.OutputTargetLogprobs)
		inputs = append(inputs, train.InputTargets)
	}
	m.Graph = prune(m.Graph, outputs...)
	if err := m.Validate(); err != nil {
		return nil, err
	}
	// NewModelSession: a Hugging Face reference model's weights may pass
	// the 2 GiB that one protobuf holds.
	sess, err := rt.NewModelSession(m, inputs, outputs)
	if err != nil {
		return nil, err
	}
	return &Featurizer{sess: sess, dModel: dModel, maxSeq: maxSeq, pad: pad, maxBatch: o.MaxBatch, ref: o.Reference, kind: kind, logits: withLogits}, nil
}

// HFReferenceID is ReferenceID of a Hugging Face model: "ref-" and 12 hex
// digits of the SHA-256 of its config (as hf.Config.JSON writes it) and
// weights.
func HFReferenceID(c *hf.Checkpoint) (string, error) {
	cfg, err := c.Config.JSON()
	if err != nil {
		return "", err
	}
	return referenceID(cfg, c.Weights)
}

// ReferenceID returns a content hash of a policy checkpoint, "ref-" and 12
// hex digits of the SHA-256 of its config and weights: the identity that
// a preference model records of the policy whose features it was fitted
// on.
func ReferenceID(c *checkpoint.Checkpoint) (string, error) {
	cfg, err := ReferenceConfig(c)
	if err != nil {
		return "", err
	}
	return referenceID(cfg, c.Weights)
}

// referenceID hashes a config's bytes and the weights w.
func referenceID(cfg []byte, w policy.Weights) (string, error) {
	st, err := checkpoint.WriteSafetensors(w, nil)
	if err != nil {
		return "", err
	}
	return ReferenceIDOf(cfg, st), nil
}

// ReferenceIDOf is ReferenceID (HFReferenceID) from the policy's config as
// ReferenceID encodes it and its weights already encoded by
// checkpoint.WriteSafetensors, for a caller that has them (the learner
// hashes the same encoding for its checkpoints).
func ReferenceIDOf(cfg, weights []byte) string {
	h := sha256.New()
	h.Write(cfg)
	h.Write(weights)
	return "ref-" + hex.EncodeToString(h.Sum(nil))[:12]
}

// ReferenceConfig returns the config bytes ReferenceID hashes for c.
func ReferenceConfig(c *checkpoint.Checkpoint) ([]byte, error) { return json.Marshal(c.Config) }

// Close releases the session. It is safe to call more than once.
func (f *Featurizer) Close() error { return f.sess.Close() }

// DModel is the reference policy's d_model, the width of its hidden state.
func (f *Featurizer) DModel() int { return f.dModel }

// Width is the width of a feature vector of this featurizer's kind.
func (f *Featurizer) Width() int { return FeatureWidth(f.kind, f.dModel) }

// Features is the kind of feature vector it returns (FeaturesHidden,
// FeaturesConfidence or FeaturesBoth).
func (f *Featurizer) Features() string { return f.kind }

// MaxSeq is the longest sequence (prompt plus completion) it accepts.
func (f *Featurizer) MaxSeq() int { return f.maxSeq }

// Reference is the identity of the reference policy (see
// FeaturizerOptions.Reference).
func (f *Featurizer) Reference() string { return f.ref }

// Hidden returns, for each sequence seqs[i], the hidden state at each of
// its positions[i] (token indexes into seqs[i]): out[i][k] is a DModel
// vector. Every sequence must be non-empty and at most MaxSeq long, every
// position inside its sequence; otherwise the error wraps ErrInput.
func (f *Featurizer) Hidden(seqs [][]int32, positions [][]int) ([][][]float32, error) {
	for i, s := range seqs {
		if len(s) > f.maxSeq {
			return nil, fmt.Errorf("%w: sequence %d has %d tokens, the reference policy takes at most %d", ErrInput, i, len(s), f.maxSeq)
		}
	}
	h, _, err := f.run(seqs, positions, nil)
	return h, err
}

// run returns the hidden states at positions and, when from is not nil
// (and the session has logits), each sequence's token log-probabilities
// from index from[i] on. A sequence may be one token longer than MaxSeq
// (a rollout that filled the context: its last token was sampled, never
// fed): it is fed without that token, its positions must be below MaxSeq,
// and the token's log-probability comes from the last position fed.
func (f *Featurizer) run(seqs [][]int32, positions [][]int, from []int) (hidden [][][]float32, logprobs [][]float32, err error) {
	if len(positions) != len(seqs) {
		return nil, nil, fmt.Errorf("%w: %d sequences, %d position lists", ErrInput, len(seqs), len(positions))
	}
	for i, s := range seqs {
		if len(s) == 0 {
			return nil, nil, fmt.Errorf("%w: sequence %d is empty", ErrInput, i)
		}
		if len(s) > f.maxSeq+1 {
			return nil, nil, fmt.Errorf("%w: sequence %d has %d tokens, the reference policy takes at most %d", ErrInput, i, len(s), f.maxSeq)
		}
		for _, p := range positions[i] {
			if p < 0 || p >= min(len(s), f.maxSeq) {
				return nil, nil, fmt.Errorf("%w: position %d outside sequence %d of %d tokens", ErrInput, p, i, len(s))
			}
		}
	}
	wantLP := from != nil && f.logits
	order := make([]int, len(seqs))
	for i := range order {
		order[i] = i
	}
	slices.SortStableFunc(order, func(a, b int) int { return cmp.Compare(len(seqs[b]), len(seqs[a])) })
	hidden = make([][][]float32, len(seqs))
	if wantLP {
		logprobs = make([][]float32, len(seqs))
	}
	d := f.dModel
	for start := 0; start < len(order); start += f.maxBatch {
		idx := order[start:min(start+f.maxBatch, len(order))]
		batch := make([][]int32, len(idx))
		for k, i := range idx {
			batch[k] = seqs[i][:min(len(seqs[i]), f.maxSeq)]
		}
		pb, err := policy.NewBatch(batch, f.pad, false, f.maxSeq)
		if err != nil {
			return nil, nil, fmt.Errorf("%w: %w", ErrInput, err)
		}
		shape := []int64{int64(pb.Rows), int64(pb.Len)}
		feeds := map[string]*ort.Tensor{
			policy.InputIDs:  ort.I64Tensor(pb.IDs, shape...),
			policy.InputMask: ort.I64Tensor(pb.Mask, shape...),
		}
		if f.logits {
			feeds[train.InputTargets] = ort.I64Tensor(targetIDs(pb, idx, seqs), shape...)
		}
		res, err := f.sess.Run(feeds)
		if err != nil {
			return nil, nil, err
		}
		h := res[policy.OutputHidden].F32
		for k, i := range idx {
			buf := make([]float32, len(positions[i])*d)
			vs := make([][]float32, len(positions[i]))
			for j, p := range positions[i] {
				at := (k*pb.Len + pb.Offset[k] + p) * d
				vs[j] = buf[j*d : (j+1)*d : (j+1)*d]
				copy(vs[j], h[at:at+d])
			}
			hidden[i] = vs
			if wantLP {
				logprobs[i] = tokenLogprobs(res[train.OutputTargetLogprobs].F32, k*pb.Len+pb.Offset[k], seqs[i], from[i])
			}
		}
	}
	return hidden, logprobs, nil
}

// targetIDs returns the batch's targets: at each position fed, the
// sequence's next token (0 past its end), so that the graph's target
// log-probabilities at position j are those of token j+1. A sequence one
// token longer than MaxSeq gets its last token's at the last position fed.
func targetIDs(pb *policy.Batch, idx []int, seqs [][]int32) []int64 {
	out := make([]int64, pb.Rows*pb.Len)
	for k, i := range idx {
		row := out[k*pb.Len+pb.Offset[k] : (k+1)*pb.Len]
		for j := range row {
			if j+1 < len(seqs[i]) {
				row[j] = int64(seqs[i][j+1])
			}
		}
	}
	return out
}

// PrefixPositions returns the token positions, in the sequence prompt
// followed by completion, that represent each prefix of a completion with
// the given step ends: prefix 0 (the empty completion) is the last prompt
// token, prefix t the last token of step t, promptLen + stepEnds[t-1] - 1.
// Step ends must be strictly increasing, positive and at most
// completionLen; the prompt must be non-empty (it holds BOS at least).
func PrefixPositions(promptLen, completionLen int, stepEnds []int32) ([]int, error) {
	if promptLen < 1 {
		return nil, fmt.Errorf("%w: empty prompt (a prompt holds BOS at least)", ErrInput)
	}
	out := make([]int, 0, len(stepEnds)+1)
	out = append(out, promptLen-1)
	prev := int32(0)
	for t, e := range stepEnds {
		if e <= prev || int(e) > completionLen {
			return nil, fmt.Errorf("%w: step end %d (step %d) after %d, completion of %d tokens", ErrInput, e, t+1, prev, completionLen)
		}
		prev = e
		out = append(out, promptLen+int(e)-1)
	}
	return out, nil
}

// RolloutFeatures are the features of one rollout.
type RolloutFeatures struct {
	// Prefixes[t] represents prefix t: 0 the empty completion, t the
	// completion up to the end of step t (len(StepEnds)+1 vectors).
	Prefixes [][]float32
	// Final represents the whole trajectory: the hidden state at the last
	// completion token (the last prompt token for an empty completion).
	Final []float32
	// TokenLogprobs are the reference policy's log-probabilities of the
	// completion's tokens, one per token, with the confidence kinds (nil
	// with FeaturesHidden).
	TokenLogprobs []float32
}

// Rollouts returns the features of each rollout: every prefix that its
// StepEnds define and the full trajectory. A rollout that filled the
// context ends one token past MaxSeq (its last token was sampled, never
// fed): the hidden state of a prefix ending on that token is the one at
// the token before it, and the confidence summaries count it all the same.
// A longer one is refused (ErrInput).
func (f *Featurizer) Rollouts(rows []schemas.Rollout) ([]RolloutFeatures, error) {
	seqs := make([][]int32, len(rows))
	pos := make([][]int, len(rows))
	for i := range rows {
		r := &rows[i]
		p, err := PrefixPositions(len(r.PromptTokenIDs), len(r.CompletionTokenIDs), r.StepEnds)
		if err != nil {
			return nil, fmt.Errorf("rollout %d (%s): %w", i, r.TrajectoryID, err)
		}
		// A rollout that filled the context is one token longer than the
		// policy's context: its last token was sampled, never fed.
		if n := len(r.PromptTokenIDs) + len(r.CompletionTokenIDs); n > f.maxSeq+1 || len(r.PromptTokenIDs) > f.maxSeq {
			return nil, fmt.Errorf("%w: rollout %d (%s) has %d tokens, the reference policy takes at most %d", ErrInput, i, r.TrajectoryID, n, f.maxSeq)
		}
		pos[i] = append(p, len(r.PromptTokenIDs)+len(r.CompletionTokenIDs)-1)
		seqs[i] = slices.Concat(r.PromptTokenIDs, r.CompletionTokenIDs)
	}
	// Hidden states are read at the last position fed; the confidence
	// summaries still count every token (ends come from pos).
	fed := make([][]int, len(pos))
	for i, p := range pos {
		fed[i] = p
		if slices.Contains(p, f.maxSeq) {
			fed[i] = make([]int, len(p))
			for k, v := range p {
				fed[i][k] = min(v, f.maxSeq-1)
			}
		}
	}
	var from []int
	if f.kind != FeaturesHidden {
		from = make([]int, len(rows))
		for i := range rows {
			from[i] = len(rows[i].PromptTokenIDs)
		}
	}
	h, lps, err := f.run(seqs, fed, from)
	if err != nil {
		return nil, err
	}
	out := make([]RolloutFeatures, len(rows))
	for i, v := range h {
		var lp []float32
		if f.kind != FeaturesHidden {
			v = f.combine(v, lps[i], pos[i], from[i])
			lp = lps[i]
		}
		out[i] = RolloutFeatures{Prefixes: v[:len(v)-1], Final: v[len(v)-1], TokenLogprobs: lp}
	}
	return out, nil
}

// TokenLogprobs returns the reference policy's log-probabilities of each
// rollout's completion tokens (one forward pass per rollout, no features):
// what a learner's KL term needs. It needs a featurizer of a confidence
// kind (its session computes them; ErrConfig otherwise). A rollout longer
// than the context by more than the one sampled token is refused
// (ErrInput).
func (f *Featurizer) TokenLogprobs(ctx context.Context, rows []schemas.Rollout) ([][]float32, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	if !f.logits {
		return nil, fmt.Errorf("%w: a %s featurizer computes no log-probabilities", ErrConfig, f.kind)
	}
	seqs := make([][]int32, len(rows))
	pos := make([][]int, len(rows))
	from := make([]int, len(rows))
	for i := range rows {
		r := &rows[i]
		n := len(r.PromptTokenIDs) + len(r.CompletionTokenIDs)
		if len(r.PromptTokenIDs) == 0 || n > f.maxSeq+1 || len(r.PromptTokenIDs) > f.maxSeq {
			return nil, fmt.Errorf("%w: rollout %d (%s) has %d prompt and %d completion tokens, the reference policy takes 1 to %d", ErrInput, i, r.TrajectoryID, len(r.PromptTokenIDs), len(r.CompletionTokenIDs), f.maxSeq)
		}
		seqs[i] = slices.Concat(r.PromptTokenIDs, r.CompletionTokenIDs)
		pos[i] = []int{min(n, f.maxSeq) - 1}
		from[i] = len(r.PromptTokenIDs)
	}
	_, lps, err := f.run(seqs, pos, from)
	return lps, err
}

// combine turns the hidden states of one rollout's prefixes (at token
// positions pos of a sequence whose completion starts at index start) into
// feature vectors of the featurizer's kind, with the completion's token
// log-probabilities lp.
func (f *Featurizer) combine(hidden [][]float32, lp []float32, pos []int, start int) [][]float32 {
	ends := make([]int, len(pos))
	for k, p := range pos {
		ends[k] = max(p+1-start, 0)
	}
	conf := ConfidenceFeatures(lp, ends)
	if f.kind == FeaturesConfidence {
		return conf
	}
	w := f.Width()
	buf := make([]float32, len(pos)*w)
	out := make([][]float32, len(pos))
	for k := range pos {
		v := buf[k*w : (k+1)*w : (k+1)*w]
		copy(v, hidden[k])
		copy(v[len(hidden[k]):], conf[k])
		out[k] = v
	}
	return out
}
