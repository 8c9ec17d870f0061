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
