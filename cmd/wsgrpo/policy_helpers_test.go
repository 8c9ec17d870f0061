package main

import (
	"path/filepath"
	"testing"

	"github.com/wsgrpo/wsgrpo/model/checkpoint"
	"github.com/wsgrpo/wsgrpo/model/ort/orttest"
	"github.com/wsgrpo/wsgrpo/model/policy"
	"github.com/wsgrpo/wsgrpo/model/tokenizer"
)

// testPolicy returns a random policy with the character tokenizer: d_model
// dModel (two heads, one layer unless layers says more), maxSeq positions.
// It skips the test when ONNX Runtime is missing, as every user of it
// samples.
func testPolicy(t testing.TB, dModel, layers, maxSeq int, seed uint64) *checkpoint.Checkpoint {
	t.Helper()
	orttest.Runtime(t)
	tok := tokenizer.Default()
	c, err := checkpoint.New(policy.Config{VocabSize: tok.VocabSize(), DModel: dModel, NLayers: max(layers, 1), NHeads: 2, DFF: 2 * dModel, MaxSeq: maxSeq}, tok, seed)
	if err != nil {
		t.Fatal(err)
	}
	return c
}

// testBlob is testPolicy as a weight-store blob.
func testBlob(t testing.TB, dModel, layers, maxSeq int, seed uint64) []byte {
	t.Helper()
	b, err := checkpoint.Marshal(testPolicy(t, dModel, layers, maxSeq, seed))
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// tinyModel saves a small random policy and returns its directory.
func tinyModel(t *testing.T) string {
	t.Helper()
	dir := filepath.Join(t.TempDir(), "model")
	if err := checkpoint.Save(dir, testPolicy(t, 16, 1, 40, 3)); err != nil {
		t.Fatal(err)
	}
	return dir
}
