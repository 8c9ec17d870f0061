// Package hf makes a Hugging Face decoder checkpoint directory (config.json
// plus model.safetensors, or shards listed in model.safetensors.index.json)
// a wsgrpo policy: it reads the Qwen2, Qwen3 and Llama configurations and
// weights (bf16, fp16 or fp32 on disk, float32 in memory), builds the ONNX
// graphs that run them in ONNX Runtime, and writes a weight set back in the
// same layout so other tools can load it.
//
// Every graph is built from one description (graphBuilder): the
// full-sequence graph (FullGraph: logits and the final hidden state, with
// attention_mask for left or right padding) uses only primitives the
// autodiff package differentiates — RMSNorm from Mul, ReduceMean, Add, Sqrt
// and Div, rotary embeddings from cos/sin tables gathered by position and
// rotate-half with Slice, Neg and Concat, grouped-query attention by
// repeating the key/value heads with Unsqueeze, Expand and Reshape, SwiGLU
// from Sigmoid and Mul — so autodiff.Build turns it into the training graph.
// The sampling graph (KVGraph) is the same description with a key/value
// cache named like a Hugging Face exported decoder (past_key_values.N.key,
// present.N.key, ...), so the generate package drives it unchanged.
//
// Graph initializers carry the Hugging Face tensor names and shapes
// (model.layers.N.self_attn.q_proj.weight, [out, in]), so a trained weight
// set maps back onto the checkpoint one to one.
package hf

import "errors"

// Errors returned by this package; test with errors.Is.
var (
	// ErrConfig means config.json is unreadable, out of range, or names an
	// architecture or option this package does not support.
	ErrConfig = errors.New("hf: invalid or unsupported config")
	// ErrSafetensors means a safetensors file or its shard index is
	// malformed.
	ErrSafetensors = errors.New("hf: invalid safetensors")
	// ErrWeights means the tensors of a checkpoint do not match its config
	// (missing, unexpected or wrongly shaped tensors).
	ErrWeights = errors.New("hf: weights do not match config")
)
