package hf

import (
	"encoding/binary"
	"encoding/json"
	"fmt"
	"math"
	"math/rand/v2"
	"os"
	"path/filepath"
	"sort"
	"testing"
)

// This file writes tiny random checkpoints in Hugging Face layout for the
// tests, independently of the package's own writer: its own tensor list,
// config.json and safetensors encoder.

// refArch is a tiny architecture as the test sees it.
type refArch struct {
	arch                                 string
	vocab, hidden, inter, layers         int
	heads, kvHeads, headDim, maxPos      int
	theta, eps                           float64
	tied, qkvBias, oBias, qkNorm, llama3 bool
}

// tinyArchs are the architectures under test, all with head size 16 (the
// smallest ONNX Runtime's GroupQueryAttention takes): Qwen2 (QKV biases,
// tied embeddings, GQA 2:1), Qwen3 (explicit head_dim wider than
// hidden/heads, q/k norms, untied, GQA 4:2), Llama (Llama 3 rope scaling
// with a short original context so that scaled, interpolated and kept
// frequencies occur, GQA 3:1, untied, and
// attention_bias, which Llama 3 leaves off, on: q/k/v/o biases).
var tinyArchs = map[string]refArch{
	ArchQwen2: {arch: ArchQwen2, vocab: 61, hidden: 32, inter: 48, layers: 2, heads: 2, kvHeads: 1, headDim: 16,
		maxPos: 64, theta: 10000, eps: 1e-6, tied: true, qkvBias: true},
	ArchQwen3: {arch: ArchQwen3, vocab: 61, hidden: 32, inter: 40, layers: 2, heads: 4, kvHeads: 2, headDim: 16,
		maxPos: 64, theta: 1000000, eps: 1e-6, qkNorm: true},
	ArchLlama: {arch: ArchLlama, vocab: 61, hidden: 48, inter: 64, layers: 2, heads: 3, kvHeads: 1, headDim: 16,
		maxPos: 64, theta: 500000, eps: 1e-5, llama3: true, qkvBias: true, oBias: true},
}

// configJSON returns the config.json a Hugging Face export of a would have.
func (a refArch) configJSON() map[string]any {
	classes := map[string]string{ArchQwen2: "Qwen2ForCausalLM", ArchQwen3: "Qwen3ForCausalLM", ArchLlama: "LlamaForCausalLM"}
	m := map[string]any{
		"architectures": []string{classes[a.arch]}, "model_type": a.arch,
		"vocab_size": a.vocab, "hidden_size": a.hidden, "intermediate_size": a.inter,
		"num_hidden_layers": a.layers, "num_attention_heads": a.heads, "num_key_value_heads": a.kvHeads,
		"rope_theta": a.theta, "rms_norm_eps": a.eps, "tie_word_embeddings": a.tied,
		"max_position_embeddings": a.maxPos, "hidden_act": "silu", "bos_token_id": 1, "eos_token_id": []int{2, 3},
		"torch_dtype": "bfloat16", "initializer_range": 0.02, "use_cache": true,
	}
	if a.arch == ArchQwen3 {
		m["head_dim"] = a.headDim
		m["attention_bias"] = false
	}
	if a.arch == ArchQwen2 {
		m["use_sliding_window"] = false
		m["sliding_window"] = 4096
	}
	if a.llama3 {
		m["rope_scaling"] = map[string]any{"rope_type": "llama3", "factor": 8.0, "low_freq_factor": 1.0,
			"high_freq_factor": 4.0, "original_max_position_embeddings": 16}
		m["attention_bias"] = a.oBias
		m["mlp_bias"] = false
	}
	return m
}

// refTensor is one tensor of a test checkpoint.
type refTensor struct {
	shape []int64
	data  []float32
}

// tensors returns random weights for a under Hugging Face names: matrices
// ~ N(0, 0.15²), biases ~ N(0, 0.1²), norm weights 1 + N(0, 0.1²). Each
// value is rounded to bf16 when bf16 is set, so the reference forward sees
// exactly the values on disk.
func (a refArch) tensors(seed uint64, bf16 bool) map[string]refTensor {
	rng := rand.New(rand.NewPCG(seed, 7))
	out := map[string]refTensor{}
	add := func(name string, kind byte, shape ...int64) {
		n := int64(1)
		for _, d := range shape {
			n *= d
		}
		v := make([]float32, n)
		for i := range v {
			x := rng.NormFloat64()
			switch kind {
			case 'm':
				x *= 0.15
			case 'b':
				x *= 0.1
			case 'n':
				x = 1 + 0.1*x
			}
			v[i] = float32(x)
			if bf16 {
				v[i] = roundBF16(v[i])
			}
		}
		out[name] = refTensor{shape: shape, data: v}
	}
	d, f, v := int64(a.hidden), int64(a.inter), int64(a.vocab)
	q, kv := int64(a.heads*a.headDim), int64(a.kvHeads*a.headDim)
	add("model.embed_tokens.weight", 'm', v, d)
	for l := 0; l < a.layers; l++ {
		p := fmt.Sprintf("model.layers.%d.", l)
		add(p+"input_layernorm.weight", 'n', d)
		add(p+"post_attention_layernorm.weight", 'n', d)
		add(p+"self_attn.q_proj.weight", 'm', q, d)
		add(p+"self_attn.k_proj.weight", 'm', kv, d)
		add(p+"self_attn.v_proj.weight", 'm', kv, d)
		add(p+"self_attn.o_proj.weight", 'm', d, q)
		if a.qkvBias {
			add(p+"self_attn.q_proj.bias", 'b', q)
			add(p+"self_attn.k_proj.bias", 'b', kv)
			add(p+"self_attn.v_proj.bias", 'b', kv)
		}
		if a.oBias {
			add(p+"self_attn.o_proj.bias", 'b', d)
		}
		if a.qkNorm {
			add(p+"self_attn.q_norm.weight", 'n', int64(a.headDim))
			add(p+"self_attn.k_norm.weight", 'n', int64(a.headDim))
		}
		add(p+"mlp.gate_proj.weight", 'm', f, d)
		add(p+"mlp.up_proj.weight", 'm', f, d)
		add(p+"mlp.down_proj.weight", 'm', d, f)
	}
	add("model.norm.weight", 'n', d)
	if !a.tied {
		add("lm_head.weight", 'm', v, d)
	}
	return out
}

// roundBF16 rounds x to the nearest bfloat16 (ties to even), written
// independently of the package's converter.
func roundBF16(x float32) float32 {
	bits := math.Float32bits(x)
	lower := bits & 0xffff
	upper := bits >> 16
	if lower > 0x8000 || (lower == 0x8000 && upper&1 == 1) {
		upper++
	}
	return math.Float32frombits(upper << 16)
}

// writeTestSafetensors writes the named tensors to path in dtype "F32" or
// "BF16".
func writeTestSafetensors(t testing.TB, path string, ts map[string]refTensor, names []string, dtype string) {
	t.Helper()
	width := 4
	if dtype == "BF16" {
		width = 2
	}
	header := map[string]any{"__metadata__": map[string]string{"format": "pt"}}
	var body []byte
	for _, n := range names {
		start := len(body)
		for _, v := range ts[n].data {
			if width == 2 {
				body = binary.LittleEndian.AppendUint16(body, uint16(math.Float32bits(v)>>16))
			} else {
				body = binary.LittleEndian.AppendUint32(body, math.Float32bits(v))
			}
		}
		header[n] = map[string]any{"dtype": dtype, "shape": ts[n].shape, "data_offsets": []int{start, len(body)}}
	}
	h, err := json.Marshal(header)
	if err != nil {
		t.Fatal(err)
	}
	out := binary.LittleEndian.AppendUint64(nil, uint64(len(h)))
	out = append(append(out, h...), body...)
	if err := os.WriteFile(path, out, 0o644); err != nil {
		t.Fatal(err)
	}
}

// writeTestCheckpoint writes a checkpoint of a in a new temporary directory:
// config.json and the tensors in dtype, in one model.safetensors or split
// over three shards with model.safetensors.index.json. It returns the
// directory and the tensors as written.
func writeTestCheckpoint(t testing.TB, a refArch, dtype string, sharded bool, seed uint64) (string, map[string]refTensor) {
	t.Helper()
	dir := t.TempDir()
	ts := a.tensors(seed, dtype == "BF16")
	cfg, err := json.MarshalIndent(a.configJSON(), "", "  ")
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "config.json"), cfg, 0o644); err != nil {
		t.Fatal(err)
	}
	names := make([]string, 0, len(ts))
	for n := range ts {
		names = append(names, n)
	}
	sort.Strings(names)
	if !sharded {
		writeTestSafetensors(t, filepath.Join(dir, "model.safetensors"), ts, names, dtype)
		return dir, ts
	}
	const shards = 3
	weightMap := map[string]string{}
	for s := 0; s < shards; s++ {
		file := fmt.Sprintf("model-%05d-of-%05d.safetensors", s+1, shards)
		var part []string
		for i := s; i < len(names); i += shards {
			part = append(part, names[i])
			weightMap[names[i]] = file
		}
		writeTestSafetensors(t, filepath.Join(dir, file), ts, part, dtype)
	}
	ix, err := json.Marshal(map[string]any{"metadata": map[string]any{"total_size": 0}, "weight_map": weightMap})
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "model.safetensors.index.json"), ix, 0o644); err != nil {
		t.Fatal(err)
	}
	return dir, ts
}
