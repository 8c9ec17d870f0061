// Package policy defines wsgrpo's language-model policy: a pre-norm decoder
// transformer with learned positional embeddings, its configuration, its
// deterministic weight initialisation, and the ONNX graphs that run it in
// ONNX Runtime — a full-sequence graph (scoring, training, the labeler's
// features) and two KV-cache graphs with Hugging Face exported-decoder
// naming (sampling): KVGraph, which returns the grown cache every step, and
// InPlaceKVGraph, which updates a fixed-size cache in place.
//
// Every weight is a graph initializer named by its parameter name, so the
// autodiff package can turn initializers into trainable inputs. The graphs
// use ONNX opset 17 and only differentiable primitives on the paths from
// weights to outputs (Gather, MatMul, Add, Sub, Mul, Div, ReduceMean, Sqrt,
// Reshape, Transpose, Softmax, Tanh, Concat); masks and positions go through
// Shape, Slice, Concat, Unsqueeze, CumSum, Cast, Where, integer Add/Sub/Mul
// and Constant nodes that no weight reaches. InPlaceKVGraph, which is only
// run, never differentiated, uses fused ONNX Runtime kernels instead
// (com.microsoft GroupQueryAttention and FastGelu; Gemm,
// LayerNormalization) and packs each layer's query, key and value
// weights into one initializer.
package policy

import (
	"errors"
	"fmt"
)

// Errors returned by this package; test with errors.Is.
var (
	// ErrConfig means a Config is out of range or inconsistent.
	ErrConfig = errors.New("policy: invalid config")
	// ErrWeights means a weight set does not match its Config (missing or
	// extra names, wrong shapes or sizes).
	ErrWeights = errors.New("policy: weights do not match config")
	// ErrBatch means token sequences cannot form a batch (empty, too long,
	// ids out of range).
	ErrBatch = errors.New("policy: invalid batch")
)

// Config is the architecture of a policy.
type Config struct {
	// VocabSize is the number of token ids.
	VocabSize int `json:"vocab_size" koanf:"vocab_size"`
	// DModel is the width of the residual stream.
	DModel int `json:"d_model" koanf:"d_model"`
	// NLayers is the number of decoder blocks.
	NLayers int `json:"n_layers" koanf:"n_layers"`
	// NHeads is the number of attention heads; it divides DModel.
	NHeads int `json:"n_heads" koanf:"n_heads"`
	// DFF is the hidden width of each block's MLP.
	DFF int `json:"d_ff" koanf:"d_ff"`
	// MaxSeq is the longest sequence (prompt plus completion, padding
	// included) the policy accepts; it sizes the positional embedding.
	MaxSeq int `json:"max_seq" koanf:"max_seq"`
}

// Limits on Config fields; they keep a hostile config.json from asking for
// absurd allocations.
const (
	maxVocab  = 1 << 20
	maxDModel = 1 << 14
	maxLayers = 256
	maxDFF    = 1 << 16
	maxSeqLen = 1 << 14
	// maxParams bounds the total parameter count (2^31 float32 = 8 GiB).
	maxParams = 1 << 31
)

// DefaultConfig returns a small policy for the given vocabulary size:
// d_model 128, 4 layers, 4 heads, MLP width 512, 256 positions.
func DefaultConfig(vocabSize int) Config {
	return Config{VocabSize: vocabSize, DModel: 128, NLayers: 4, NHeads: 4, DFF: 512, MaxSeq: 256}
}

// HeadDim returns DModel / NHeads.
func (c Config) HeadDim() int { return c.DModel / c.NHeads }

// Validate reports whether c describes a buildable policy.
func (c Config) Validate() error {
	checks := []struct {
		name     string
		v, limit int
	}{
		{"vocab_size", c.VocabSize, maxVocab},
		{"d_model", c.DModel, maxDModel},
		{"n_layers", c.NLayers, maxLayers},
		{"n_heads", c.NHeads, maxDModel},
		{"d_ff", c.DFF, maxDFF},
		{"max_seq", c.MaxSeq, maxSeqLen},
	}
	for _, ch := range checks {
		if ch.v < 1 || ch.v > ch.limit {
			return fmt.Errorf("%w: %s = %d, want 1..%d", ErrConfig, ch.name, ch.v, ch.limit)
		}
	}
	if c.DModel%c.NHeads != 0 {
		return fmt.Errorf("%w: n_heads %d does not divide d_model %d", ErrConfig, c.NHeads, c.DModel)
	}
	if n := c.NumParams(); n > maxParams {
		return fmt.Errorf("%w: %d parameters, limit %d", ErrConfig, n, int64(maxParams))
	}
	return nil
}

// NumParams returns the total number of weights of a policy with config c.
func (c Config) NumParams() int64 {
	var n int64
	for _, s := range c.ParamSpecs() {
		n += s.NumElements()
	}
	return n
}
