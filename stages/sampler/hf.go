package sampler

import (
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"slices"

	"github.com/wsgrpo/wsgrpo/model/generate"
	"github.com/wsgrpo/wsgrpo/model/hf"
	"github.com/wsgrpo/wsgrpo/model/ort"
	"github.com/wsgrpo/wsgrpo/model/tokenizer"
)

// Errors of NewHF.
var (
	// ErrHFVocab means a Hugging Face model's vocabulary (its embedding
	// rows) does not cover the ids of its tokenizer.
	ErrHFVocab = errors.New("the model's vocabulary does not cover its tokenizer")
	// ErrHFTokenizer means a Hugging Face model's tokenizer is missing or
	// has no id to pad with.
	ErrHFTokenizer = errors.New("the model's tokenizer is unusable")
)

// HF is a Hugging Face model read for sampling: the bundle (checkpoint
// and files), its byte-level BPE tokenizer and the ids that end a
// completion.
type HF struct {
	// Bundle is the model.
	Bundle *hf.Bundle
	// Tokenizer is the bundle's tokenizer.json (and tokenizer_config.json).
	Tokenizer *tokenizer.BPE
	// EOS: the tokenizer's EOS, then config.json's and
	// generation_config.json's eos_token_id.
	EOS []int32
	// MaxSeq is the longest sequence the sampling graph takes.
	MaxSeq int
}

// NewHF reads the tokenizer of b and checks that it fits the model: every
// tokenizer id must be a row of the embedding (ErrHFVocab), and the
// tokenizer must have an id to pad with (ErrHFTokenizer). A bundle without
// tokenizer.json is an error wrapping ErrHFTokenizer and fs.ErrNotExist.
func NewHF(b *hf.Bundle) (*HF, error) {
	js, ok := b.Files[tokenizer.TokenizerJSONFile]
	if !ok {
		return nil, fmt.Errorf("%w: no %s: %w", ErrHFTokenizer, tokenizer.TokenizerJSONFile, fs.ErrNotExist)
	}
	tok, err := tokenizer.NewBPE(js, b.Files[tokenizer.TokenizerConfigFile])
	if err != nil {
		return nil, fmt.Errorf("the tokenizer: %w", err)
	}
	cfg := b.Checkpoint.Config
	if tok.VocabSize() > cfg.VocabSize {
		return nil, fmt.Errorf("%w: the tokenizer has ids up to %d, the model's vocab_size is %d", ErrHFVocab, tok.VocabSize()-1, cfg.VocabSize)
	}
	if tok.PAD() < 0 {
		return nil, fmt.Errorf("%w: it names no pad_token and has no special token to pad with", ErrHFTokenizer)
	}
	ids, err := b.EOSIDs()
	if err != nil {
		return nil, err
	}
	var eos []int32
	if e := tok.EOS(); e >= 0 {
		eos = append(eos, e)
	}
	for _, id := range ids {
		if !slices.Contains(eos, int32(id)) {
			eos = append(eos, int32(id))
		}
	}
	return &HF{Bundle: b, Tokenizer: tok, EOS: eos, MaxSeq: HFMaxSeq(cfg)}, nil
}

// HFMaxSeq is the longest sequence wsgrpo runs a Hugging Face model of
// config c on: its max_position_embeddings, at most hf.DefaultMaxSeq.
func HFMaxSeq(c hf.Config) int { return min(hf.DefaultMaxSeq, c.MaxPositions) }

// Load builds the model's sampling graph (hf.SamplingGraph: ONNX
// Runtime's fused kernels when the head size allows) in rt and opens its
// session (Prepare). A model of any size loads: the weights go to ONNX
// Runtime from memory (generate.LoadGraph), with no serialised copy.
func (h *HF) Load(rt *ort.Runtime, log *slog.Logger) (*generate.Model, error) {
	ck := h.Bundle.Checkpoint
	g, err := hf.SamplingGraph(ck.Config, ck.Weights, hf.GraphOptions{MaxSeq: h.MaxSeq})
	if err != nil {
		return nil, err
	}
	m, err := generate.LoadGraph(rt, g, log)
	if err != nil {
		return nil, err
	}
	m.MaxSeq = h.MaxSeq
	if err := m.Prepare(); err != nil {
		_ = m.Close()
		return nil, fmt.Errorf("create session: %w", err)
	}
	return m, nil
}
