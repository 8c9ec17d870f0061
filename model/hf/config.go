package hf

import (
	"encoding/json"
	"fmt"
	"math"
	"path/filepath"
)

// ConfigFile is the name of the configuration file in a checkpoint
// directory.
const ConfigFile = "config.json"

// Architectures this package reads, by config.json model_type.
const (
	ArchQwen2 = "qwen2"
	ArchQwen3 = "qwen3"
	ArchLlama = "llama"
)

// archClasses maps a model_type to the architectures class name that
// Hugging Face writes for it.
var archClasses = map[string]string{
	ArchQwen2: "Qwen2ForCausalLM",
	ArchQwen3: "Qwen3ForCausalLM",
	ArchLlama: "LlamaForCausalLM",
}

// Bounds on config fields: generous for real models (Llama 3.1 405B has
// hidden 16384, intermediate 53248, 126 layers), small enough that a hostile
// config.json cannot ask for absurd allocations.
const (
	maxConfigBytes   = 1 << 20
	maxVocab         = 1 << 20
	maxHidden        = 1 << 15
	maxIntermediate  = 1 << 17
	maxLayers        = 512
	maxHeads         = 1024
	maxHeadDim       = 1024
	maxPositions     = 1 << 24
	maxParamElements = 1 << 37 // 128 Gi float32 values
)

// Config is the architecture of a Hugging Face decoder checkpoint.
type Config struct {
	// Arch is the model_type: ArchQwen2, ArchQwen3 or ArchLlama.
	Arch string
	// VocabSize is the number of token ids (rows of the embedding).
	VocabSize int
	// HiddenSize is the width of the residual stream.
	HiddenSize int
	// IntermediateSize is the hidden width of each SwiGLU MLP.
	IntermediateSize int
	// NumLayers is the number of decoder layers.
	NumLayers int
	// NumHeads is the number of query heads.
	NumHeads int
	// NumKVHeads is the number of key/value heads; it divides NumHeads.
	NumKVHeads int
	// HeadDim is the width of one head (hidden_size/num_attention_heads
	// unless config.json sets head_dim).
	HeadDim int
	// RopeTheta is the rotary embedding base.
	RopeTheta float64
	// RopeScaling is the rotary frequency scaling; nil for none.
	RopeScaling *RopeScaling
	// RMSNormEps is the RMSNorm epsilon.
	RMSNormEps float64
	// TieWordEmbeddings makes the output projection the embedding matrix
	// (no lm_head.weight tensor).
	TieWordEmbeddings bool
	// QKVBias: the query, key and value projections have biases (always
	// for Qwen2; attention_bias for Llama and Qwen3).
	QKVBias bool
	// OBias: the output projection has a bias (attention_bias for Llama
	// and Qwen3; never for Qwen2).
	OBias bool
	// QKNorm: an RMSNorm over each query and key head before the rotary
	// embedding (Qwen3's q_norm and k_norm).
	QKNorm bool
	// MaxPositions is max_position_embeddings.
	MaxPositions int
	// BOS is bos_token_id, -1 when unset.
	BOS int
	// EOS holds eos_token_id (one id or a list); empty when unset.
	EOS []int
	// TorchDType is torch_dtype as written in config.json ("bfloat16",
	// "float16", "float32"), empty when unset.
	TorchDType string
}

// rawConfig is config.json as decoded; pointers tell a missing key from a
// zero value.
type rawConfig struct {
	Architectures     []string        `json:"architectures"`
	ModelType         string          `json:"model_type"`
	VocabSize         *int            `json:"vocab_size"`
	HiddenSize        *int            `json:"hidden_size"`
	IntermediateSize  *int            `json:"intermediate_size"`
	NumLayers         *int            `json:"num_hidden_layers"`
	NumHeads          *int            `json:"num_attention_heads"`
	NumKVHeads        *int            `json:"num_key_value_heads"`
	HeadDim           *int            `json:"head_dim"`
	RopeTheta         *float64        `json:"rope_theta"`
	RopeScaling       json.RawMessage `json:"rope_scaling"`
	RMSNormEps        *float64        `json:"rms_norm_eps"`
	TieWordEmbeddings *bool           `json:"tie_word_embeddings"`
	AttentionBias     *bool           `json:"attention_bias"`
	MLPBias           *bool           `json:"mlp_bias"`
	HiddenAct         string          `json:"hidden_act"`
	MaxPositions      *int            `json:"max_position_embeddings"`
	BOS               *int            `json:"bos_token_id"`
	EOS               json.RawMessage `json:"eos_token_id"`
	TorchDType        string          `json:"torch_dtype"`
	Dtype             string          `json:"dtype"`
	UseSlidingWindow  bool            `json:"use_sliding_window"`
	PartialRotary     *float64        `json:"partial_rotary_factor"`
	PretrainingTP     *int            `json:"pretraining_tp"`
}

// ReadConfig reads and validates dir/config.json.
func ReadConfig(dir string) (Config, error) {
	raw, err := readLimited(filepath.Join(dir, ConfigFile), maxConfigBytes)
	if err != nil {
		return Config{}, fmt.Errorf("%w: %w", ErrConfig, err)
	}
	return ParseConfig(raw)
}

// ParseConfig decodes and validates the contents of a config.json. It
// fails, wrapping ErrConfig, on malformed JSON, an unknown architecture, a
// missing or out-of-range size, or an option this package does not
// implement (sliding-window attention, MLP biases, partial rotary
// embeddings, an activation other than SiLU, an unknown rope_scaling type).
func ParseConfig(data []byte) (Config, error) {
	if len(data) > maxConfigBytes {
		return Config{}, fmt.Errorf("%w: %d bytes, limit %d", ErrConfig, len(data), maxConfigBytes)
	}
	var r rawConfig
	if err := json.Unmarshal(data, &r); err != nil {
		return Config{}, fmt.Errorf("%w: %s: %v", ErrConfig, ConfigFile, err)
	}
	c := Config{Arch: r.ModelType, BOS: -1, TorchDType: r.TorchDType}
	if c.TorchDType == "" {
		c.TorchDType = r.Dtype
	}
	if _, ok := archClasses[c.Arch]; !ok {
		return Config{}, fmt.Errorf("%w: model_type %q (architectures %q), want qwen2, qwen3 or llama", ErrConfig, r.ModelType, r.Architectures)
	}
	for _, a := range r.Architectures {
		if a != archClasses[c.Arch] {
			return Config{}, fmt.Errorf("%w: architecture %q for model_type %q, want %s", ErrConfig, a, c.Arch, archClasses[c.Arch])
		}
	}
	ints := []struct {
		name string
		p    *int
		dst  *int
	}{
		{"vocab_size", r.VocabSize, &c.VocabSize},
		{"hidden_size", r.HiddenSize, &c.HiddenSize},
		{"intermediate_size", r.IntermediateSize, &c.IntermediateSize},
		{"num_hidden_layers", r.NumLayers, &c.NumLayers},
		{"num_attention_heads", r.NumHeads, &c.NumHeads},
	}
	for _, f := range ints {
		if f.p == nil {
			return Config{}, fmt.Errorf("%w: %s is missing", ErrConfig, f.name)
		}
		*f.dst = *f.p
	}
	// transformers' defaults: 2048 positions for Llama, 32768 for Qwen.
	c.MaxPositions = 32768
	if c.Arch == ArchLlama {
		c.MaxPositions = 2048
	}
	if r.MaxPositions != nil {
		c.MaxPositions = *r.MaxPositions
	}
	c.NumKVHeads = c.NumHeads
	if r.NumKVHeads != nil {
		c.NumKVHeads = *r.NumKVHeads
	}
	if c.NumHeads > 0 {
		c.HeadDim = c.HiddenSize / c.NumHeads
	}
	if r.HeadDim != nil {
		c.HeadDim = *r.HeadDim
	}
	c.RopeTheta = 10000
	if r.RopeTheta != nil {
		c.RopeTheta = *r.RopeTheta
	}
	c.RMSNormEps = 1e-6
	if r.RMSNormEps != nil {
		c.RMSNormEps = *r.RMSNormEps
	}
	// transformers' Qwen2, Qwen3 and Llama configs default to untied
	// embeddings (the small Qwen releases set true explicitly).
	if r.TieWordEmbeddings != nil {
		c.TieWordEmbeddings = *r.TieWordEmbeddings
	}
	attnBias := r.AttentionBias != nil && *r.AttentionBias
	switch c.Arch {
	case ArchQwen2:
		c.QKVBias = true
	case ArchQwen3:
		c.QKVBias, c.OBias, c.QKNorm = attnBias, attnBias, true
	case ArchLlama:
		c.QKVBias, c.OBias = attnBias, attnBias
	}
	if r.BOS != nil {
		c.BOS = *r.BOS
	}
	eos, err := parseEOS(r.EOS)
	if err != nil {
		return Config{}, err
	}
	c.EOS = eos
	if err := checkUnsupported(r); err != nil {
		return Config{}, err
	}
	if c.RopeScaling, err = parseRopeScaling(r.RopeScaling); err != nil {
		return Config{}, err
	}
	if err := c.Validate(); err != nil {
		return Config{}, err
	}
	return c, nil
}

// checkUnsupported rejects config options the graphs do not implement.
func checkUnsupported(r rawConfig) error {
	switch {
	case r.UseSlidingWindow:
		return fmt.Errorf("%w: use_sliding_window is not supported", ErrConfig)
	case r.MLPBias != nil && *r.MLPBias:
		return fmt.Errorf("%w: mlp_bias is not supported", ErrConfig)
	case r.HiddenAct != "" && r.HiddenAct != "silu":
		return fmt.Errorf("%w: hidden_act %q, only silu is supported", ErrConfig, r.HiddenAct)
	case r.PartialRotary != nil && *r.PartialRotary != 1:
		return fmt.Errorf("%w: partial_rotary_factor %v is not supported", ErrConfig, *r.PartialRotary)
	case r.PretrainingTP != nil && *r.PretrainingTP > 1:
		return fmt.Errorf("%w: pretraining_tp %d is not supported", ErrConfig, *r.PretrainingTP)
	}
	return nil
}

// parseEOS reads eos_token_id: null, one id, or a list of ids.
func parseEOS(msg json.RawMessage) ([]int, error) {
	if len(msg) == 0 || string(msg) == "null" {
		return nil, nil
	}
	var one int
	if err := json.Unmarshal(msg, &one); err == nil {
		return []int{one}, nil
	}
	var many []int
	if err := json.Unmarshal(msg, &many); err != nil {
		return nil, fmt.Errorf("%w: eos_token_id %s: want an id or a list of ids", ErrConfig, msg)
	}
	return many, nil
}

// Validate reports whether c describes a graph this package can build,
// within the package's size bounds.
func (c Config) Validate() error {
	if _, ok := archClasses[c.Arch]; !ok {
		return fmt.Errorf("%w: architecture %q", ErrConfig, c.Arch)
	}
	checks := []struct {
		name     string
		v, limit int
	}{
		{"vocab_size", c.VocabSize, maxVocab},
		{"hidden_size", c.HiddenSize, maxHidden},
		{"intermediate_size", c.IntermediateSize, maxIntermediate},
		{"num_hidden_layers", c.NumLayers, maxLayers},
		{"num_attention_heads", c.NumHeads, maxHeads},
		{"num_key_value_heads", c.NumKVHeads, maxHeads},
		{"head_dim", c.HeadDim, maxHeadDim},
		{"max_position_embeddings", c.MaxPositions, maxPositions},
	}
	for _, ch := range checks {
		if ch.v < 1 || ch.v > ch.limit {
			return fmt.Errorf("%w: %s = %d, want 1..%d", ErrConfig, ch.name, ch.v, ch.limit)
		}
	}
	switch {
	case c.NumHeads%c.NumKVHeads != 0:
		return fmt.Errorf("%w: num_key_value_heads %d does not divide num_attention_heads %d", ErrConfig, c.NumKVHeads, c.NumHeads)
	case c.HeadDim%2 != 0:
		return fmt.Errorf("%w: head_dim %d is odd (rotary embeddings rotate pairs)", ErrConfig, c.HeadDim)
	case c.NumHeads*c.HeadDim > 4*maxHidden:
		return fmt.Errorf("%w: num_attention_heads·head_dim = %d, limit %d", ErrConfig, c.NumHeads*c.HeadDim, 4*maxHidden)
	case !finitePositive(c.RopeTheta) || c.RopeTheta > 1e12:
		return fmt.Errorf("%w: rope_theta %v", ErrConfig, c.RopeTheta)
	case !finitePositive(c.RMSNormEps) || c.RMSNormEps > 1:
		return fmt.Errorf("%w: rms_norm_eps %v, want (0,1]", ErrConfig, c.RMSNormEps)
	case c.BOS >= c.VocabSize:
		return fmt.Errorf("%w: bos_token_id %d outside vocab %d", ErrConfig, c.BOS, c.VocabSize)
	}
	for _, e := range c.EOS {
		if e < 0 || e >= c.VocabSize {
			return fmt.Errorf("%w: eos_token_id %d outside vocab %d", ErrConfig, e, c.VocabSize)
		}
	}
	if s := c.RopeScaling; s != nil {
		if err := s.validate(); err != nil {
			return err
		}
	}
	if n := c.NumParams(); n > maxParamElements {
		return fmt.Errorf("%w: %d parameters, limit %d", ErrConfig, n, int64(maxParamElements))
	}
	return nil
}

// finitePositive reports whether v is a finite number above zero.
func finitePositive(v float64) bool { return v > 0 && !math.IsInf(v, 0) && !math.IsNaN(v) }

// QDim returns NumHeads·HeadDim, the width of the query projection.
func (c Config) QDim() int { return c.NumHeads * c.HeadDim }

// KVDim returns NumKVHeads·HeadDim, the width of the key and value
// projections.
func (c Config) KVDim() int { return c.NumKVHeads * c.HeadDim }

// NumParams returns the number of weights of a model with config c.
func (c Config) NumParams() int64 {
	var n int64
	for _, s := range c.ParamSpecs() {
		n += s.NumElements()
	}
	return n
}

// JSON returns a config.json for c with the Hugging Face keys of its
// architecture, for checkpoints made in memory.
func (c Config) JSON() ([]byte, error) {
	m := map[string]any{
		"architectures":           []string{archClasses[c.Arch]},
		"model_type":              c.Arch,
		"vocab_size":              c.VocabSize,
		"hidden_size":             c.HiddenSize,
		"intermediate_size":       c.IntermediateSize,
		"num_hidden_layers":       c.NumLayers,
		"num_attention_heads":     c.NumHeads,
		"num_key_value_heads":     c.NumKVHeads,
		"head_dim":                c.HeadDim,
		"rope_theta":              c.RopeTheta,
		"rms_norm_eps":            c.RMSNormEps,
		"tie_word_embeddings":     c.TieWordEmbeddings,
		"max_position_embeddings": c.MaxPositions,
		"hidden_act":              "silu",
	}
	if c.Arch != ArchQwen2 {
		m["attention_bias"] = c.QKVBias
	}
	if c.BOS >= 0 {
		m["bos_token_id"] = c.BOS
	}
	switch len(c.EOS) {
	case 0:
	case 1:
		m["eos_token_id"] = c.EOS[0]
	default:
		m["eos_token_id"] = c.EOS
	}
	if c.TorchDType != "" {
		m["torch_dtype"] = c.TorchDType
	}
	if s := c.RopeScaling; s != nil {
		rs := map[string]any{"rope_type": s.Type, "factor": s.Factor}
		if s.Type == "llama3" {
			rs["low_freq_factor"] = s.LowFreqFactor
			rs["high_freq_factor"] = s.HighFreqFactor
			rs["original_max_position_embeddings"] = s.OriginalMaxPositions
		}
		m["rope_scaling"] = rs
	}
	return json.MarshalIndent(m, "", "  ")
}
