package tokenizer

import (
	"errors"
	"slices"
	"testing"
)

func TestPromptIDs(t *testing.T) {
	tok := Default()
	bos := tok.BOS()
	enc := tok.Encode("2+3\n")
	for _, tc := range []struct {
		name     string
		template string
		text     string
		ids      []int32
		want     []int32
	}{
		{"text through the default template", "", "2+3", nil, append([]int32{bos}, enc...)},
		{"text through a template", "{prompt}\n", "2+3", nil, append([]int32{bos}, enc...)},
		{"ids get BOS", "", "ignored", enc, append([]int32{bos}, enc...)},
		{"ids that start with BOS keep it once", "", "", append([]int32{bos}, enc...), append([]int32{bos}, enc...)},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got, err := PromptIDs(tok, tc.template, tc.text, tc.ids)
			if err != nil || !slices.Equal(got, tc.want) {
				t.Fatalf("PromptIDs = %v, %v; want %v", got, err, tc.want)
			}
			if len(tc.ids) > 0 && &got[0] == &tc.ids[0] {
				t.Fatal("the result aliases the given ids")
			}
		})
	}
	for _, tc := range []struct {
		name string
		text string
		ids  []int32
	}{
		{"empty", "", nil},
		{"characters outside the vocabulary", "¿2+3?", nil},
		{"id outside the vocabulary", "", []int32{int32(tok.VocabSize())}},
		{"negative id", "", []int32{-1}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if got, err := PromptIDs(tok, "", tc.text, tc.ids); !errors.Is(err, ErrPrompt) {
				t.Fatalf("PromptIDs = %v, %v; want ErrPrompt", got, err)
			}
		})
	}
}

// TestPromptIDsBOS checks the BOS rules with byte-level BPE tokenizers: a
// Qwen-like one without BOS (BOS() == -1 is never put in front) and a
// Llama-like one whose chat template writes BOS itself (not doubled).
func TestPromptIDsBOS(t *testing.T) {
	added := []map[string]any{special("<|endoftext|>"), special("<|im_start|>"), special("<|im_end|>"), special("<bos>")}
	qwen := newTiny(t, tinySpec{added: added, config: map[string]any{"bos_token": nil, "eos_token": "<|im_end|>", "pad_token": "<|endoftext|>"}})
	llama := newTiny(t, tinySpec{added: added, config: map[string]any{"bos_token": "<bos>", "eos_token": "<|im_end|>"}})
	if qwen.BOS() != -1 || llama.BOS() < 0 {
		t.Fatalf("BOS ids %d and %d, want -1 and an id", qwen.BOS(), llama.BOS())
	}
	chat := "<|im_start|>user\n{prompt}<|im_end|>\n<|im_start|>assistant\n"
	bos := llama.BOS()
	for _, tc := range []struct {
		name     string
		tok      *BPE
		template string
		text     string
		ids      []int32
		want     []int32
	}{
		{"no BOS: text", qwen, "", "2+3", nil, qwen.Encode("2+3\n")},
		{"no BOS: ids", qwen, "", "", []int32{50, 51}, []int32{50, 51}},
		{"no BOS: chat template with special tokens", qwen, chat, "2+3", nil, qwen.Encode("<|im_start|>user\n2+3<|im_end|>\n<|im_start|>assistant\n")},
		{"BOS: text", llama, "", "2+3", nil, append([]int32{bos}, llama.Encode("2+3\n")...)},
		{"BOS: a template that writes it", llama, "<bos>" + chat, "2+3", nil, llama.Encode("<bos><|im_start|>user\n2+3<|im_end|>\n<|im_start|>assistant\n")},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got, err := PromptIDs(tc.tok, tc.template, tc.text, tc.ids)
			if err != nil || !slices.Equal(got, tc.want) {
				t.Fatalf("PromptIDs = %v, %v; want %v", got, err, tc.want)
			}
			if slices.Contains(got, -1) {
				t.Fatalf("PromptIDs = %v holds -1", got)
			}
		})
	}
	if got, err := PromptIDs(qwen, "", "", nil); !errors.Is(err, ErrPrompt) {
		t.Fatalf("empty prompt without BOS: %v, %v; want ErrPrompt", got, err)
	}
}
