// Package hf makes a Hugging Face decoder checkpoint directory (config.json
// plus model.safetensors, or shards listed in model.safetensors.index.json)
// a wsgrpo policy: Load reads the Qwen2, Qwen3 and Llama configurations
// (Llama 3 rope scaling included) and weights (bf16, fp16 or fp32 on disk,
// float32 in memory), the graph functions build what runs them in ONNX
// Runtime, and Save writes a (trained) weight set back in the same layout,
// so other tools can load it.
//
// The graphs come from one description (graphBuilder). FullGraph, the
// full-sequence graph (logits and the final hidden state, attention_mask
// for left or right padding), uses only primitives the autodiff package
// differentiates — RMSNorm from Mul, ReduceMean, Add, Sqrt and Div, rotary
// embeddings from cos/sin tables gathered by position and rotate-half with
// Slice, Neg and Concat, grouped-query attention by repeating the key/value
// heads with Unsqueeze, Expand and Reshape, SwiGLU from Sigmoid and Mul — so
// autodiff.Build (or the train package) turns it into the training graph.
// KVGraph is the same description with a key/value cache concatenated per
// step; FusedKVGraph runs the same model on ONNX Runtime's fused kernels
// (the op set of onnxruntime-genai's model builder: packed-QKV Gemm,
// com.microsoft GroupQueryAttention with the rotary embedding inside, over
// a fixed-size cache updated in place, SkipSimplifiedLayerNormalization), and
// SamplingGraph picks it when GroupQueryAttention takes the head size. Both sampling graphs are named like a Hugging Face
// exported decoder (input_ids, attention_mask, position_ids,
// past_key_values.N.key/value -> logits, present.N.key/value), so the
// generate package drives them unchanged.
//
// A checkpoint of any size builds: weights of 2 GiB or more (Qwen2.5-1.5B
// and up in float32) do not fit in one protobuf, so Marshal refuses such a
// graph (ErrTooLarge), and ort.Runtime.NewModelSession opens it instead,
// handing the large initializers to ONNX Runtime from memory as external
// data (no serialised copy, nothing written to disk); onnx.Model.SaveExternal
// writes it as a .onnx file plus a weights file. The training graph is not
// affected: autodiff turns the initializers into inputs.
//
// Graph initializers carry the Hugging Face tensor names and shapes
// (model.layers.N.self_attn.q_proj.weight, [out, in]), so a trained weight
// set maps back onto the checkpoint one to one.
package hf

import (
	"errors"

	"github.com/wsgrpo/wsgrpo/model/onnx"
)

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
	// ErrTooLarge is onnx.ErrTooLarge, which Marshal returns for a graph
	// whose weights reach protobuf's 2 GiB limit (Qwen2.5-1.5B and larger in
	// float32). The graph functions build such graphs all the same: open
	// them with ort.Runtime.NewModelSession, which hands the weights to ONNX
	// Runtime from memory, or write them with onnx.Model.SaveExternal.
	ErrTooLarge = onnx.ErrTooLarge
)
