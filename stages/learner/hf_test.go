package learner

import (
	"errors"
	"slices"
	"testing"

	"github.com/wsgrpo/wsgrpo/model/hf"
	"github.com/wsgrpo/wsgrpo/model/hf/hftest"
	"github.com/wsgrpo/wsgrpo/model/optim"
	"github.com/wsgrpo/wsgrpo/model/ort/orttest"
	"github.com/wsgrpo/wsgrpo/model/tokenizer"
	"github.com/wsgrpo/wsgrpo/schemas"
	"github.com/wsgrpo/wsgrpo/stages/sampler"
)

// hfRows returns a group of rows of a Hugging Face model: s's prompt and
// completions encoded with tok (prompt token ids given), the model's EOS
// last, sampled with version.
func hfRows(t testing.TB, tok tokenizer.Tokenizer, s spec) []schemas.Labeled {
	t.Helper()
	s.mutate = func(i int, l *schemas.Labeled) {
		l.PromptTokenIDs = tok.Encode(s.prompt)
		l.CompletionTokenIDs = append(tok.Encode(s.comps[i]), hftest.EOS)
		l.TokenLogprobs = make([]float32, len(l.CompletionTokenIDs))
		for j := range l.TokenLogprobs {
			l.TokenLogprobs[j] = -6
		}
		l.StepEnds = []int32{int32(len(l.CompletionTokenIDs) - 1)}
	}
	return s.build(t, nil)
}

// TestLearnerHF trains a tiny Hugging Face model through hf.FullGraph:
// every update publishes a bundle the sampler's Loader reads, with new
// weights; the learner's checkpoint is in Hugging Face layout and a
// restarted learner resumes from it.
func TestLearnerHF(t *testing.T) {
	rt := orttest.Runtime(t)
	init := hftest.Bundle(t, 1, false)
	h, err := sampler.NewHF(init)
	if err != nil {
		t.Fatal(err)
	}
	pub := &store{}
	o := Options{GroupsPerStep: 1, MaxStaleness: 100, Dir: t.TempDir(), CheckpointEvery: 1, Optim: optim.Config{LR: 1e-2}}
	p, err := NewHF(t.Context(), rt, init, pub, o)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := p.Snapshot(); !errors.Is(err, ErrNotCheckpoint) {
		t.Fatalf("Snapshot: %v, want ErrNotCheckpoint", err)
	}
	for s := range int64(2) {
		feed(t.Context(), t, p, hfRows(t, h.Tokenizer, spec{step: s, prompt: "2+2=", comps: []string{"4", "57"}, advs: []float32{1, -1}, version: 1}))
	}
	if st := p.Stats(); st.Step != 2 || st.RowsTrained != 4 || !slices.Equal(pub.versions(), []int64{1, 2, 3}) {
		t.Fatalf("step %d, rows %d, versions %v; want 2 steps of 2 rows, versions 1-3", st.Step, st.RowsTrained, pub.versions())
	}
	first, err := hf.UnmarshalBundle(pub.blobs[1])
	if err != nil {
		t.Fatal(err)
	}
	last, err := hf.UnmarshalBundle(pub.blobs[3])
	if err != nil {
		t.Fatal(err)
	}
	if _, err := sampler.NewHF(last); err != nil {
		t.Fatalf("the published bundle does not load for sampling: %v", err)
	}
	changed := 0
	for _, n := range init.Checkpoint.Weights.Names() {
		if !slices.Equal(first.Checkpoint.Weights[n].Data, init.Checkpoint.Weights[n].Data) {
			t.Fatalf("version 1's %s is not the initial one", n)
		}
		if !slices.Equal(last.Checkpoint.Weights[n].Data, init.Checkpoint.Weights[n].Data) {
			changed++
		}
	}
	if changed == 0 {
		t.Fatal("no weight changed in two updates")
	}
	snap, err := p.SnapshotBundle()
	if err != nil || !slices.Equal(snap.Checkpoint.Weights[hf.ParamEmbed].Data, last.Checkpoint.Weights[hf.ParamEmbed].Data) {
		t.Fatalf("SnapshotBundle: %v, or not the last version's weights", err)
	}
	if err := p.Close(t.Context()); err != nil {
		t.Fatal(err)
	}
	// A restart resumes at step 2 from the Hugging Face checkpoint.
	q, err := NewHF(t.Context(), rt, init, pub, o)
	if err != nil {
		t.Fatal(err)
	}
	defer func() { _ = q.Close(t.Context()) }()
	if st := q.Stats(); st.Step != 2 || st.Version != 3 {
		t.Fatalf("resumed at step %d, version %d; want 2, 3", st.Step, st.Version)
	}
	again, err := q.SnapshotBundle()
	if err != nil || !slices.Equal(again.Checkpoint.Weights[hf.ParamEmbed].Data, last.Checkpoint.Weights[hf.ParamEmbed].Data) {
		t.Fatalf("resumed weights differ from the last version's (%v)", err)
	}
	if _, err := New(t.Context(), rt, tiny(t, 1), &store{}, Options{Dir: o.Dir}); !errors.Is(err, ErrCheckpoint) {
		t.Fatalf("a wsgrpo checkpoint over the Hugging Face learner's directory: %v, want ErrCheckpoint", err)
	}
}
