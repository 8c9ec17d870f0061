package sampler_test

import (
	"errors"
	"io/fs"
	"testing"
	"time"

	"github.com/wsgrpo/wsgrpo/model/hf"
	"github.com/wsgrpo/wsgrpo/model/hf/hftest"
	"github.com/wsgrpo/wsgrpo/model/ort/orttest"
	"github.com/wsgrpo/wsgrpo/model/tokenizer"
	"github.com/wsgrpo/wsgrpo/stages/sampler"
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
