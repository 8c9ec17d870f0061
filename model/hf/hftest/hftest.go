// Package hftest gives tests tiny random Hugging Face models: a Qwen3
// checkpoint with a byte-level BPE tokenizer (the 256 byte tokens, no
// merges, Qwen's three special tokens), as a bundle or a directory in
// Hugging Face layout. It is a package of its own so that no binary links
// the testing package.
package hftest

import (
	"encoding/json"
	"math/rand/v2"
	"strings"
	"testing"

	"github.com/wsgrpo/wsgrpo/model/hf"
	"github.com/wsgrpo/wsgrpo/model/policy"
	"github.com/wsgrpo/wsgrpo/model/tokenizer"
)

// Ids of the tiny tokenizer's special tokens, and the model's vocab_size
// (the tokenizer's 259 ids padded to a multiple of 64).
const (
	PAD   = 256 // <|endoftext|>
	Start = 257 // <|im_start|>
	EOS   = 258 // <|im_end|>
	Vocab = 320
)

// ChatTemplate is the tiny tokenizer's Qwen-style chat template.
const ChatTemplate = "{% for message in messages %}{{ '<|im_start|>' + message['role'] + '\\n' + message['content'] + '<|im_end|>\\n' }}{% endfor %}{% if add_generation_prompt %}{{ '<|im_start|>assistant\\n' }}{% endif %}"

// byteLevelChars is GPT-2's byte-to-character map of byte-level BPE.
func byteLevelChars() [256]rune {
	var m [256]rune
	n := 0
	for b := range 256 {
		switch {
		case b >= '!' && b <= '~', b >= 0xa1 && b <= 0xac, b >= 0xae:
			m[b] = rune(b)
		default:
			m[b] = rune(256 + n)
			n++
		}
	}
	return m
}

func mustJSON(tb testing.TB, v any) []byte {
	tb.Helper()
	b, err := json.Marshal(v)
	if err != nil {
		tb.Fatal(err)
	}
	return b
}

// TokenizerFiles returns the tiny tokenizer's tokenizer.json and
// tokenizer_config.json (with ChatTemplate when chat).
func TokenizerFiles(tb testing.TB, chat bool) (js, conf []byte) {
	tb.Helper()
	vocab := map[string]int{}
	for b, r := range byteLevelChars() {
		vocab[string(r)] = b
	}
	var added []map[string]any
	for i, s := range []string{"<|endoftext|>", "<|im_start|>", "<|im_end|>"} {
		added = append(added, map[string]any{"id": 256 + i, "content": s, "special": true, "normalized": false,
			"lstrip": false, "rstrip": false, "single_word": false})
	}
	doc := map[string]any{
		"version": "1.0", "added_tokens": added, "normalizer": nil,
		"pre_tokenizer": map[string]any{"type": "Sequence", "pretokenizers": []any{
			map[string]any{"type": "Split", "pattern": map[string]any{"Regex": tokenizer.Qwen2Pattern}, "behavior": "Isolated", "invert": false},
			map[string]any{"type": "ByteLevel", "add_prefix_space": false, "trim_offsets": false, "use_regex": false},
		}},
		"decoder": map[string]any{"type": "ByteLevel"},
		"model":   map[string]any{"type": "BPE", "vocab": vocab, "merges": []any{}},
	}
	c := map[string]any{"bos_token": nil, "eos_token": "<|im_end|>", "pad_token": "<|endoftext|>", "add_bos_token": false}
	if chat {
		c["chat_template"] = ChatTemplate
	}
	return mustJSON(tb, doc), mustJSON(tb, c)
}

// Bundle returns a tiny random Qwen3 model (hidden size 32, one layer,
// two heads of 16, one KV head, tied embeddings, 96 positions) with
// weights drawn from seed, the tiny tokenizer and a generation config
// whose eos_token_id adds the padding id, as Qwen3's does.
func Bundle(tb testing.TB, seed uint64, chat bool) *hf.Bundle {
	tb.Helper()
	raw := mustJSON(tb, map[string]any{
		"architectures": []string{"Qwen3ForCausalLM"}, "model_type": hf.ArchQwen3,
		"vocab_size": Vocab, "hidden_size": 32, "intermediate_size": 64, "num_hidden_layers": 1,
		"num_attention_heads": 2, "num_key_value_heads": 1, "head_dim": 16, "attention_bias": false,
		"rope_theta": 1000000.0, "rms_norm_eps": 1e-6, "tie_word_embeddings": true,
		"max_position_embeddings": 96, "hidden_act": "silu", "torch_dtype": "float32",
		"eos_token_id": EOS,
	})
	cfg, err := hf.ParseConfig(raw)
	if err != nil {
		tb.Fatal(err)
	}
	w := RandomWeights(cfg, seed)
	js, conf := TokenizerFiles(tb, chat)
	return &hf.Bundle{
		Checkpoint: &hf.Checkpoint{Config: cfg, RawConfig: raw, Weights: w, DType: hf.DTypeF32},
		Files: map[string][]byte{
			tokenizer.TokenizerJSONFile:   js,
			tokenizer.TokenizerConfigFile: conf,
			hf.GenerationConfigFile:       mustJSON(tb, map[string]any{"eos_token_id": []int{EOS, PAD}, "pad_token_id": PAD}),
		},
	}
}

// RandomWeights returns random weights of a model of config c, drawn
// from seed: the norms' 1, every other value normal with deviation 0.1.
func RandomWeights(c hf.Config, seed uint64) policy.Weights {
	rng := rand.New(rand.NewPCG(seed, 3))
	w := policy.Weights{}
	for _, s := range c.ParamSpecs() {
		v := make([]float32, s.NumElements())
		for i := range v {
			if strings.HasSuffix(s.Name, "norm.weight") {
				v[i] = 1
			} else {
				v[i] = float32(0.1 * rng.NormFloat64())
			}
		}
		w[s.Name] = policy.Param{Shape: s.Shape, Data: v}
	}
	return w
}

// Dir writes Bundle(tb, seed, chat) in Hugging Face layout (float32) into
// a new temporary directory and returns it.
func Dir(tb testing.TB, seed uint64, chat bool) string {
	tb.Helper()
	dir := tb.TempDir()
	if err := Bundle(tb, seed, chat).Save(dir, hf.SaveOptions{}); err != nil {
		tb.Fatal(err)
	}
	return dir
}

// Blob returns MarshalBundle of Bundle(tb, seed, chat).
func Blob(tb testing.TB, seed uint64, chat bool) []byte {
	tb.Helper()
	b, err := hf.MarshalBundle(Bundle(tb, seed, chat))
	if err != nil {
		tb.Fatal(err)
	}
	return b
}
