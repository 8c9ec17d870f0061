package sampler_test

import (
	"errors"
	"io/fs"
	"slices"
	"testing"
	"time"

	"github.com/wsgrpo/wsgrpo/model/hf"
	"github.com/wsgrpo/wsgrpo/model/hf/hftest"
	"github.com/wsgrpo/wsgrpo/model/ort/orttest"
	"github.com/wsgrpo/wsgrpo/model/tokenizer"
	"github.com/wsgrpo/wsgrpo/stages/sampler"
	"github.com/wsgrpo/wsgrpo/stages/stage"
)

// TestLoaderHF: the Loader samples Hugging Face bundles (hf.MarshalBundle)
// published as versions, with their BPE tokenizer, and swaps in a newer
// one as it does checkpoint blobs.
func TestLoaderHF(t *testing.T) {
	v := &versions{}
	v.put(1, hftest.Blob(t, 1, false))
	loader := sampler.NewLoader(orttest.Runtime(t), v, nil)
	p, err := sampler.New(loader, sampler.Options{Samples: 2, MaxNewTokens: 6}, nil)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = p.Close(t.Context()) })
	in := prompts(nil, "run", "1+2", "3*4")
	defer in.Release()
	seen := map[int64]bool{}
	deadline := time.Now().Add(60 * time.Second)
	for batch := 0; !seen[2]; batch++ {
		if batch == 1 {
			v.put(2, hftest.Blob(t, 2, false))
		}
		if time.Now().After(deadline) {
			t.Fatalf("version 2 never sampled; versions seen %v", seen)
		}
		rows := process(t, p, in)
		if len(rows) != 4 {
			t.Fatalf("%d rows, want 4", len(rows))
		}
		for _, r := range rows {
			if len(r.CompletionTokenIDs) == 0 || len(r.CompletionTokenIDs) > 6 {
				t.Fatalf("%d completion tokens", len(r.CompletionTokenIDs))
			}
			for _, id := range append(r.PromptTokenIDs, r.CompletionTokenIDs...) {
				if id < 0 || id >= hftest.Vocab {
					t.Fatalf("token id %d outside the model's vocabulary", id)
				}
			}
		}
		seen[rows[0].PolicyVersion] = true
	}
	if loader.Swaps() != 1 {
		t.Fatalf("%d swaps, want 1", loader.Swaps())
	}
}

// TestNewHFErrors: a bundle without tokenizer.json, a model whose
// vocabulary is smaller than its tokenizer's.
func TestNewHFErrors(t *testing.T) {
	noTok := hftest.Bundle(t, 1, false)
	delete(noTok.Files, tokenizer.TokenizerJSONFile)
	small := hftest.Bundle(t, 1, false)
	cfg := small.Checkpoint.Config
	cfg.VocabSize = 200
	small.Checkpoint = &hf.Checkpoint{Config: cfg, Weights: small.Checkpoint.Weights}
	for _, tc := range []struct {
		name string
		b    *hf.Bundle
		want error
	}{
		{"no tokenizer.json", noTok, fs.ErrNotExist},
		{"vocabulary smaller than the tokenizer's", small, sampler.ErrHFVocab},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if _, err := sampler.NewHF(tc.b); !errors.Is(err, tc.want) {
				t.Fatalf("err = %v, want %v", err, tc.want)
			}
		})
	}
}

// TestSamplerChat: with Options.Chat a Hugging Face policy samples each
// prompt inside its chat template (the user's turn, then the assistant's
// header), the rows carrying those prompt ids; a policy without a chat
// template dead-letters the batch (ErrChat, stage.ErrPermanent), and
// chat with a prompt template is refused.
func TestSamplerChat(t *testing.T) {
	chatHF, err := sampler.NewHF(hftest.Bundle(t, 1, true))
	if err != nil {
		t.Fatal(err)
	}
	tok := chatHF.Tokenizer
	for _, tc := range []struct {
		name string
		blob []byte
		want error
	}{
		{"chat template", hftest.Blob(t, 1, true), nil},
		{"Hugging Face model without a chat template", hftest.Blob(t, 1, false), sampler.ErrChat},
		{"wsgrpo checkpoint", blob(t, 1, 64), sampler.ErrChat},
	} {
		t.Run(tc.name, func(t *testing.T) {
			v := &versions{}
			v.put(1, tc.blob)
			p := newSampler(t, v, sampler.Options{Samples: 2, MaxNewTokens: 4, Chat: true})
			in := prompts(nil, "run", "1+2")
			defer in.Release()
			if tc.want != nil {
				outs, err := p.Process(t.Context(), in)
				if !errors.Is(err, tc.want) || !errors.Is(err, stage.ErrPermanent) || outs != nil {
					t.Fatalf("Process = %v, %v; want %v and stage.ErrPermanent", outs, err, tc.want)
				}
				return
			}
			want := tok.Encode("<|im_start|>user\n1+2<|im_end|>\n<|im_start|>assistant\n")
			for _, r := range process(t, p, in) {
				if !slices.Equal(r.PromptTokenIDs, want) {
					t.Fatalf("prompt ids %v, want %v (%q)", r.PromptTokenIDs, want, tok.Decode(r.PromptTokenIDs))
				}
			}
		})
	}
	if err := (sampler.Options{Chat: true, PromptTemplate: "Q: {prompt}\n"}).Validate(); !errors.Is(err, sampler.ErrOptions) {
		t.Fatalf("chat with a prompt template: %v, want ErrOptions", err)
	}
}
