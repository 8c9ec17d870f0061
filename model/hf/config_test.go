package hf

import (
	"encoding/json"
	"errors"
	"math"
	"reflect"
	"strings"
	"testing"
)

// qwen25Config is the config.json of Qwen2.5-0.5B-Instruct.
const qwen25Config = `{
  "architectures": ["Qwen2ForCausalLM"],
  "attention_dropout": 0.0,
  "bos_token_id": 151643,
  "eos_token_id": 151645,
  "hidden_act": "silu",
  "hidden_size": 896,
  "initializer_range": 0.02,
  "intermediate_size": 4864,
  "max_position_embeddings": 32768,
  "max_window_layers": 21,
  "model_type": "qwen2",
  "num_attention_heads": 14,
  "num_hidden_layers": 24,
  "num_key_value_heads": 2,
  "rms_norm_eps": 1e-06,
  "rope_theta": 1000000.0,
  "sliding_window": 32768,
  "tie_word_embeddings": true,
  "torch_dtype": "bfloat16",
  "transformers_version": "4.43.1",
  "use_cache": true,
  "use_sliding_window": false,
  "vocab_size": 151936
}`

// qwen3Config is the config.json of Qwen3-0.6B.
const qwen3Config = `{
  "architectures": ["Qwen3ForCausalLM"],
  "attention_bias": false,
  "attention_dropout": 0.0,
  "bos_token_id": 151643,
  "eos_token_id": 151645,
  "head_dim": 128,
  "hidden_act": "silu",
  "hidden_size": 1024,
  "initializer_range": 0.02,
  "intermediate_size": 3072,
  "max_position_embeddings": 40960,
  "max_window_layers": 28,
  "model_type": "qwen3",
  "num_attention_heads": 16,
  "num_hidden_layers": 28,
  "num_key_value_heads": 8,
  "rms_norm_eps": 1e-06,
  "rope_scaling": null,
  "rope_theta": 1000000,
  "sliding_window": null,
  "tie_word_embeddings": true,
  "torch_dtype": "bfloat16",
  "use_cache": true,
  "use_sliding_window": false,
  "vocab_size": 151936
}`

// llama32Config is the config.json of Llama-3.2-1B-Instruct.
const llama32Config = `{
  "architectures": ["LlamaForCausalLM"],
  "attention_bias": false,
  "attention_dropout": 0.0,
  "bos_token_id": 128000,
  "eos_token_id": [128001, 128008, 128009],
  "head_dim": 64,
  "hidden_act": "silu",
  "hidden_size": 2048,
  "initializer_range": 0.02,
  "intermediate_size": 8192,
  "max_position_embeddings": 131072,
  "mlp_bias": false,
  "model_type": "llama",
  "num_attention_heads": 32,
  "num_hidden_layers": 16,
  "num_key_value_heads": 8,
  "pretraining_tp": 1,
  "rms_norm_eps": 1e-05,
  "rope_scaling": {
    "factor": 32.0,
    "high_freq_factor": 4.0,
    "low_freq_factor": 1.0,
    "original_max_position_embeddings": 8192,
    "rope_type": "llama3"
  },
  "rope_theta": 500000.0,
  "tie_word_embeddings": true,
  "torch_dtype": "bfloat16",
  "use_cache": true,
  "vocab_size": 128256
}`

func TestParseConfigReal(t *testing.T) {
	tests := []struct {
		name string
		json string
		want Config
	}{
		{"qwen2.5-0.5b", qwen25Config, Config{Arch: ArchQwen2, VocabSize: 151936, HiddenSize: 896, IntermediateSize: 4864,
			NumLayers: 24, NumHeads: 14, NumKVHeads: 2, HeadDim: 64, RopeTheta: 1e6, RMSNormEps: 1e-6,
			TieWordEmbeddings: true, QKVBias: true, MaxPositions: 32768, BOS: 151643, EOS: []int{151645}, TorchDType: "bfloat16"}},
		{"qwen3-0.6b", qwen3Config, Config{Arch: ArchQwen3, VocabSize: 151936, HiddenSize: 1024, IntermediateSize: 3072,
			NumLayers: 28, NumHeads: 16, NumKVHeads: 8, HeadDim: 128, RopeTheta: 1e6, RMSNormEps: 1e-6,
			TieWordEmbeddings: true, QKNorm: true, MaxPositions: 40960, BOS: 151643, EOS: []int{151645}, TorchDType: "bfloat16"}},
		{"llama-3.2-1b", llama32Config, Config{Arch: ArchLlama, VocabSize: 128256, HiddenSize: 2048, IntermediateSize: 8192,
			NumLayers: 16, NumHeads: 32, NumKVHeads: 8, HeadDim: 64, RopeTheta: 500000, RMSNormEps: 1e-5,
			RopeScaling:       &RopeScaling{Type: "llama3", Factor: 32, LowFreqFactor: 1, HighFreqFactor: 4, OriginalMaxPositions: 8192},
			TieWordEmbeddings: true, MaxPositions: 131072, BOS: 128000, EOS: []int{128001, 128008, 128009}, TorchDType: "bfloat16"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := ParseConfig([]byte(tt.json))
			if err != nil {
				t.Fatal(err)
			}
			if !reflect.DeepEqual(got, tt.want) {
				t.Fatalf("ParseConfig =\n%+v\nwant\n%+v", got, tt.want)
			}
			// Config.JSON writes a config that parses back to the same.
			data, err := got.JSON()
			if err != nil {
				t.Fatal(err)
			}
			again, err := ParseConfig(data)
			if err != nil || !reflect.DeepEqual(again, got) {
				t.Fatalf("JSON round trip = %+v, %v", again, err)
			}
		})
	}
}

// TestParseConfigDefaults checks transformers' defaults for keys a
// config.json may leave out.
func TestParseConfigDefaults(t *testing.T) {
	var m map[string]any
	if err := json.Unmarshal([]byte(llama32Config), &m); err != nil {
		t.Fatal(err)
	}
	for _, k := range []string{"tie_word_embeddings", "max_position_embeddings", "num_key_value_heads", "head_dim",
		"rope_theta", "rms_norm_eps", "rope_scaling", "attention_bias", "eos_token_id", "bos_token_id", "hidden_act"} {
		delete(m, k)
	}
	data, err := json.Marshal(m)
	if err != nil {
		t.Fatal(err)
	}
	c, err := ParseConfig(data)
	if err != nil {
		t.Fatal(err)
	}
	want := Config{Arch: ArchLlama, VocabSize: 128256, HiddenSize: 2048, IntermediateSize: 8192, NumLayers: 16,
		NumHeads: 32, NumKVHeads: 32, HeadDim: 64, RopeTheta: 10000, RMSNormEps: 1e-6, MaxPositions: 2048, BOS: -1,
		TorchDType: "bfloat16"}
	if !reflect.DeepEqual(c, want) {
		t.Fatalf("ParseConfig =\n%+v\nwant\n%+v", c, want)
	}
}

// TestParseConfigNumParams checks the parameter count of Qwen2.5-0.5B
// (494,032,768, as published) from its config.
func TestParseConfigNumParams(t *testing.T) {
	c, err := ParseConfig([]byte(qwen25Config))
	if err != nil {
		t.Fatal(err)
	}
	if got := c.NumParams(); got != 494032768 {
		t.Fatalf("NumParams = %d, want 494032768", got)
	}
}

// edit returns qwen25Config with key set to v (deleted when v is nil).
func edit(t *testing.T, key string, v any) []byte {
	t.Helper()
	var m map[string]any
	if err := json.Unmarshal([]byte(qwen25Config), &m); err != nil {
		t.Fatal(err)
	}
	if v == nil {
		delete(m, key)
	} else {
		m[key] = v
	}
	data, err := json.Marshal(m)
	if err != nil {
		t.Fatal(err)
	}
	return data
}

func TestParseConfigRejects(t *testing.T) {
	tests := []struct {
		name string
		data func(t *testing.T) []byte
		msg  string
	}{
		{"not json", func(*testing.T) []byte { return []byte("{") }, "config.json"},
		{"array", func(*testing.T) []byte { return []byte("[]") }, "config.json"},
		{"unknown model_type", func(t *testing.T) []byte { return edit(t, "model_type", "gpt2") }, "model_type"},
		{"architecture mismatch", func(t *testing.T) []byte { return edit(t, "architectures", []string{"LlamaForCausalLM"}) }, "architecture"},
		{"missing hidden_size", func(t *testing.T) []byte { return edit(t, "hidden_size", nil) }, "hidden_size is missing"},
		{"zero positions", func(t *testing.T) []byte { return edit(t, "max_position_embeddings", 0) }, "max_position_embeddings"},
		{"zero layers", func(t *testing.T) []byte { return edit(t, "num_hidden_layers", 0) }, "num_hidden_layers"},
		{"negative vocab", func(t *testing.T) []byte { return edit(t, "vocab_size", -5) }, "vocab_size"},
		{"huge vocab", func(t *testing.T) []byte { return edit(t, "vocab_size", 1<<40) }, "vocab_size"},
		{"huge hidden", func(t *testing.T) []byte { return edit(t, "hidden_size", 1<<30) }, "hidden_size"},
		{"kv heads do not divide", func(t *testing.T) []byte { return edit(t, "num_key_value_heads", 3) }, "divide"},
		{"odd head dim", func(t *testing.T) []byte { return edit(t, "head_dim", 63) }, "odd"},
		{"sliding window", func(t *testing.T) []byte { return edit(t, "use_sliding_window", true) }, "sliding"},
		{"gelu", func(t *testing.T) []byte { return edit(t, "hidden_act", "gelu") }, "hidden_act"},
		{"eps zero", func(t *testing.T) []byte { return edit(t, "rms_norm_eps", 0) }, "rms_norm_eps"},
		{"theta negative", func(t *testing.T) []byte { return edit(t, "rope_theta", -1) }, "rope_theta"},
		{"eos out of vocab", func(t *testing.T) []byte { return edit(t, "eos_token_id", 1<<21) }, "eos_token_id"},
		{"eos string", func(t *testing.T) []byte { return edit(t, "eos_token_id", "x") }, "eos_token_id"},
		{"yarn", func(t *testing.T) []byte {
			return edit(t, "rope_scaling", map[string]any{"rope_type": "yarn", "factor": 4})
		}, `"yarn" is not supported`},
		{"llama3 missing field", func(t *testing.T) []byte {
			return edit(t, "rope_scaling", map[string]any{"rope_type": "llama3", "factor": 8, "low_freq_factor": 1})
		}, "high_freq_factor"},
		{"llama3 low above high", func(t *testing.T) []byte {
			return edit(t, "rope_scaling", map[string]any{"type": "llama3", "factor": 8, "low_freq_factor": 4,
				"high_freq_factor": 1, "original_max_position_embeddings": 8192})
		}, "low < high"},
		{"too large", func(*testing.T) []byte { return []byte(`{"x":"` + strings.Repeat("a", maxConfigBytes) + `"}`) }, "limit"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := ParseConfig(tt.data(t))
			if !errors.Is(err, ErrConfig) {
				t.Fatalf("ParseConfig = %v, want ErrConfig", err)
			}
			if !strings.Contains(err.Error(), tt.msg) {
				t.Fatalf("error %q does not mention %q", err, tt.msg)
			}
		})
	}
}

// TestInvFreqLlama3 checks the three bands of Llama 3 scaling on Llama 3.2's
// settings: high frequencies are kept, low ones divided by the factor, the
// band between interpolated (and monotone).
func TestInvFreqLlama3(t *testing.T) {
	c, err := ParseConfig([]byte(llama32Config))
	if err != nil {
		t.Fatal(err)
	}
	got := c.InvFreq()
	plain := c
	plain.RopeScaling = nil
	base := plain.InvFreq()
	if len(got) != 32 {
		t.Fatalf("%d frequencies", len(got))
	}
	for i := range got {
		wavelen := 2 * math.Pi / base[i]
		switch {
		case wavelen < 8192/4.0:
			if got[i] != base[i] {
				t.Fatalf("high frequency %d changed: %v -> %v", i, base[i], got[i])
			}
		case wavelen > 8192/1.0:
			if math.Abs(got[i]-base[i]/32) > 1e-18 {
				t.Fatalf("low frequency %d: %v, want %v", i, got[i], base[i]/32)
			}
		default:
			if !(got[i] < base[i] && got[i] > base[i]/32) {
				t.Fatalf("medium frequency %d = %v outside (%v, %v)", i, got[i], base[i]/32, base[i])
			}
		}
		if i > 0 && got[i] >= got[i-1] {
			t.Fatalf("frequencies not decreasing at %d", i)
		}
	}
}

// FuzzParseConfig feeds arbitrary bytes to the config.json decoder: it must
// not panic, and what it accepts must validate within the bounds.
func FuzzParseConfig(f *testing.F) {
	for _, s := range []string{qwen25Config, qwen3Config, llama32Config, "{}", "null", `{"model_type":"qwen2"}`} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		c, err := ParseConfig(data)
		if err != nil {
			if !errors.Is(err, ErrConfig) {
				t.Fatalf("error %v does not wrap ErrConfig", err)
			}
			return
		}
		if err := c.Validate(); err != nil {
			t.Fatalf("accepted config fails Validate: %v", err)
		}
		if c.NumParams() > maxParamElements {
			t.Fatalf("accepted %d parameters", c.NumParams())
		}
	})
}
