package hf

import (
	"strconv"

	"github.com/wsgrpo/wsgrpo/model/policy"
)

// Hugging Face tensor names of the model-level weights.
const (
	ParamEmbed  = "model.embed_tokens.weight"
	ParamNorm   = "model.norm.weight"
	ParamLMHead = "lm_head.weight"
)

// Hugging Face tensor names of a decoder layer, relative to
// model.layers.N. (LayerParam builds the full name).
const (
	ParamInputNorm = "input_layernorm.weight"
	ParamQ         = "self_attn.q_proj.weight"
	ParamQBias     = "self_attn.q_proj.bias"
	ParamK         = "self_attn.k_proj.weight"
	ParamKBias     = "self_attn.k_proj.bias"
	ParamV         = "self_attn.v_proj.weight"
	ParamVBias     = "self_attn.v_proj.bias"
	ParamO         = "self_attn.o_proj.weight"
	ParamOBias     = "self_attn.o_proj.bias"
	ParamQNorm     = "self_attn.q_norm.weight"
	ParamKNorm     = "self_attn.k_norm.weight"
	ParamPostNorm  = "post_attention_layernorm.weight"
	ParamGate      = "mlp.gate_proj.weight"
	ParamUp        = "mlp.up_proj.weight"
	ParamDown      = "mlp.down_proj.weight"
)

// LayerParam returns the Hugging Face name of a layer tensor, e.g.
// LayerParam(3, ParamQ) = "model.layers.3.self_attn.q_proj.weight".
func LayerParam(layer int, name string) string {
	return "model.layers." + strconv.Itoa(layer) + "." + name
}

// ParamSpecs returns every tensor of a checkpoint with config c, with its
// Hugging Face name and shape (linear weights are [out, in]), in a fixed
// order. lm_head.weight is absent when the embeddings are tied.
func (c Config) ParamSpecs() []policy.ParamSpec {
	d, f, v := int64(c.HiddenSize), int64(c.IntermediateSize), int64(c.VocabSize)
	q, kv, dh := int64(c.QDim()), int64(c.KVDim()), int64(c.HeadDim)
	specs := []policy.ParamSpec{{Name: ParamEmbed, Shape: []int64{v, d}}}
	for l := 0; l < c.NumLayers; l++ {
		add := func(name string, shape ...int64) {
			specs = append(specs, policy.ParamSpec{Name: LayerParam(l, name), Shape: shape})
		}
		add(ParamInputNorm, d)
		add(ParamQ, q, d)
		add(ParamK, kv, d)
		add(ParamV, kv, d)
		if c.QKVBias {
			add(ParamQBias, q)
			add(ParamKBias, kv)
			add(ParamVBias, kv)
		}
		add(ParamO, d, q)
		if c.OBias {
			add(ParamOBias, d)
		}
		if c.QKNorm {
			add(ParamQNorm, dh)
			add(ParamKNorm, dh)
		}
		add(ParamPostNorm, d)
		add(ParamGate, f, d)
		add(ParamUp, f, d)
		add(ParamDown, d, f)
	}
	specs = append(specs, policy.ParamSpec{Name: ParamNorm, Shape: []int64{d}})
	if !c.TieWordEmbeddings {
		specs = append(specs, policy.ParamSpec{Name: ParamLMHead, Shape: []int64{v, d}})
	}
	return specs
}

// CheckWeights reports whether w holds exactly the tensors of c, with the
// right shapes and data lengths (policy.Weights.CheckSpecs with
// c.ParamSpecs()); failures wrap ErrWeights.
func CheckWeights(c Config, w policy.Weights) error {
	return w.CheckSpecs(c.ParamSpecs(), ErrWeights)
}

// sameShape reports whether a and b are equal.
func sameShape(a, b []int64) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if a[i] != b[i] {
			return false
		}
	}
	return true
}
