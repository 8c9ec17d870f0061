package learner

import (
	"errors"
	"fmt"

	"github.com/wsgrpo/wsgrpo/model/checkpoint"
	"github.com/wsgrpo/wsgrpo/model/hf"
	mlabeler "github.com/wsgrpo/wsgrpo/model/labeler"
	"github.com/wsgrpo/wsgrpo/model/onnx"
	"github.com/wsgrpo/wsgrpo/model/policy"
	"github.com/wsgrpo/wsgrpo/model/tokenizer"
	"github.com/wsgrpo/wsgrpo/stages/sampler"
)

// ErrNotCheckpoint is returned by Snapshot for a learner of a Hugging Face
// model (see SnapshotBundle).
var ErrNotCheckpoint = errors.New("learner: the policy is a Hugging Face model, not a wsgrpo checkpoint")

// ErrNotBundle is returned by SnapshotBundle for a learner of a wsgrpo
// checkpoint (see Snapshot).
var ErrNotBundle = errors.New("learner: the policy is a wsgrpo checkpoint, not a Hugging Face model")

// policyModel is what the learner trains: the built-in policy of a wsgrpo
// checkpoint, or a Hugging Face model. Both full-sequence graphs take
// policy.InputIDs and policy.InputMask and give policy.OutputLogits.
type policyModel interface {
	// fullGraph is the full-sequence graph over w.
	fullGraph(w policy.Weights) (*onnx.Model, error)
	// maxSeq is the longest sequence the graph takes; vocabSize the
	// rows of its logits.
	maxSeq() int
	vocabSize() int
	numParams() int64
	// tokenizer encodes prompts; its PAD pads batches.
	tokenizer() tokenizer.Tokenizer
	// weights are the initial (reference) weights.
	weights() policy.Weights
	// referenceConfig is the config bytes model/labeler's reference id
	// hashes with the weights (ReferenceConfig, or the HF config's JSON).
	referenceConfig() ([]byte, error)
	// blob encodes the policy with weights w (and, where the format
	// keeps it, metadata meta) as a published version.
	blob(w policy.Weights, meta map[string]string) ([]byte, error)
	// save writes the policy with weights w into dir; load reads back
	// the weights of what save wrote, checking it is the same
	// architecture.
	save(dir string, w policy.Weights, meta map[string]string) error
	load(dir string) (policy.Weights, error)
}

// builtin is a wsgrpo checkpoint's policy.
type builtin struct{ ck *checkpoint.Checkpoint }

func (b builtin) fullGraph(w policy.Weights) (*onnx.Model, error) {
	return policy.FullGraph(b.ck.Config, w, onnx.Float)
}
func (b builtin) maxSeq() int                      { return b.ck.Config.MaxSeq }
func (b builtin) vocabSize() int                   { return b.ck.Config.VocabSize }
func (b builtin) numParams() int64                 { return b.ck.Config.NumParams() }
func (b builtin) tokenizer() tokenizer.Tokenizer   { return b.ck.Tokenizer }
func (b builtin) weights() policy.Weights          { return b.ck.Weights }
func (b builtin) referenceConfig() ([]byte, error) { return mlabeler.ReferenceConfig(b.ck) }

func (b builtin) with(w policy.Weights, meta map[string]string) (*checkpoint.Checkpoint, error) {
	c := &checkpoint.Checkpoint{Config: b.ck.Config, Tokenizer: b.ck.Tokenizer, Weights: w, Metadata: meta}
	if err := c.Validate(); err != nil {
		return nil, err
	}
	return c, nil
}

func (b builtin) blob(w policy.Weights, meta map[string]string) ([]byte, error) {
	c, err := b.with(w, meta)
	if err != nil {
		return nil, err
	}
	return checkpoint.Marshal(c)
}

func (b builtin) save(dir string, w policy.Weights, meta map[string]string) error {
	c, err := b.with(w, meta)
	if err != nil {
		return err
	}
	return checkpoint.Save(dir, c)
}

func (b builtin) load(dir string) (policy.Weights, error) {
	c, err := checkpoint.Load(dir)
	if err != nil {
		return nil, fmt.Errorf("%w: %w", ErrCheckpoint, err)
	}
	if c.Config != b.ck.Config {
		return nil, fmt.Errorf("%w: %s holds a policy of architecture %+v, the initial one is %+v", ErrCheckpoint, dir, c.Config, b.ck.Config)
	}
	return c.Weights, nil
}

// hfPolicy is a Hugging Face model.
type hfPolicy struct {
	b   *hf.Bundle
	tok tokenizer.Tokenizer
	seq int
}

// newHFPolicy checks b's tokenizer (sampler.NewHF) and returns it as a
// policyModel.
func newHFPolicy(b *hf.Bundle) (*hfPolicy, error) {
	if b == nil || b.Checkpoint == nil {
		return nil, fmt.Errorf("%w: no Hugging Face model", ErrOptions)
	}
	if err := hf.CheckWeights(b.Checkpoint.Config, b.Checkpoint.Weights); err != nil {
		return nil, fmt.Errorf("%w: initial model: %w", ErrOptions, err)
	}
	h, err := sampler.NewHF(b)
	if err != nil {
		return nil, fmt.Errorf("%w: initial model: %w", ErrOptions, err)
	}
	return &hfPolicy{b: b, tok: h.Tokenizer, seq: h.MaxSeq}, nil
}

func (h *hfPolicy) fullGraph(w policy.Weights) (*onnx.Model, error) {
	return hf.FullGraph(h.b.Checkpoint.Config, w, hf.GraphOptions{MaxSeq: h.seq})
}
func (h *hfPolicy) maxSeq() int                    { return h.seq }
func (h *hfPolicy) vocabSize() int                 { return h.b.Checkpoint.Config.VocabSize }
func (h *hfPolicy) numParams() int64               { return h.b.Checkpoint.Config.NumParams() }
func (h *hfPolicy) tokenizer() tokenizer.Tokenizer { return h.tok }
func (h *hfPolicy) weights() policy.Weights        { return h.b.Checkpoint.Weights }

func (h *hfPolicy) referenceConfig() ([]byte, error) { return h.b.Checkpoint.Config.JSON() }

// blob is hf.MarshalBundle; the bundle keeps no metadata.
func (h *hfPolicy) blob(w policy.Weights, _ map[string]string) ([]byte, error) {
	return hf.MarshalBundle(h.b.WithWeights(w))
}

// save writes the bundle in Hugging Face layout, float32.
func (h *hfPolicy) save(dir string, w policy.Weights, _ map[string]string) error {
	return h.b.WithWeights(w).Save(dir, hf.SaveOptions{DType: hf.DTypeF32})
}

func (h *hfPolicy) load(dir string) (policy.Weights, error) {
	ck, err := hf.Load(dir)
	if err != nil {
		return nil, fmt.Errorf("%w: %w", ErrCheckpoint, err)
	}
	got, err1 := ck.Config.JSON()
	want, err2 := h.b.Checkpoint.Config.JSON()
	if err := errors.Join(err1, err2); err != nil {
		return nil, fmt.Errorf("%w: %w", ErrCheckpoint, err)
	}
	if string(got) != string(want) {
		return nil, fmt.Errorf("%w: %s holds a model of another architecture than the initial one", ErrCheckpoint, dir)
	}
	return ck.Weights, nil
}
