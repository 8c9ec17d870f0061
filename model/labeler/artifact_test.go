package labeler_test

import (
	"errors"
	"math/rand/v2"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/wsgrpo/wsgrpo/model/labeler"
	"github.com/wsgrpo/wsgrpo/model/ort/orttest"
)

// fitted returns a small model fitted on xor pairs of width d.
func fitted(t testing.TB, d int, reference string) *labeler.Model {
	t.Helper()
	cfg := labeler.DefaultConfig()
	cfg.Hidden, cfg.Epochs, cfg.Reference, cfg.Features = 8, 1, reference, labeler.FeaturesHidden
	m, _, err := labeler.FitPairs(orttest.Runtime(t), xorPairs(rand.New(rand.NewPCG(1, 1)), 4, 4, d), cfg, nil)
	if err != nil {
		t.Fatal(err)
	}
	return m
}

func TestSaveLoadRoundTrip(t *testing.T) {
	m := fitted(t, 8, "ref-test")
	dir := filepath.Join(t.TempDir(), "lbl")
	if err := labeler.Save(dir, m); err != nil {
		t.Fatal(err)
	}
	got, err := labeler.Load(dir)
	if err != nil {
		t.Fatal(err)
	}
	if got.ID() != m.ID() || !strings.HasPrefix(got.ID(), "lbl-") || len(got.ID()) != 16 {
		t.Fatalf("id %q after load, %q before", got.ID(), m.ID())
	}
	if !got.Meta().Created.Equal(m.Meta().Created) || got.Meta().Report != m.Meta().Report || got.Meta().Reference != "ref-test" {
		t.Errorf("meta %+v, want %+v", got.Meta(), m.Meta())
	}
	rng := rand.New(rand.NewPCG(5, 5))
	for range 20 {
		x := make([]float32, 8)
		for i := range x {
			x[i] = float32(rng.NormFloat64())
		}
		if a, b := m.Score(x), got.Score(x); a != b {
			t.Fatalf("score %v after load, %v before", b, a)
		}
	}
}

func TestLoadRefusesTamperedArtifact(t *testing.T) {
	m := fitted(t, 8, "")
	for _, tc := range []struct {
		name string
		edit func(meta string) string
		want error
	}{
		{"id", func(s string) string { return strings.Replace(s, m.ID(), "lbl-000000000000", 1) }, labeler.ErrArtifact},
		{"hidden", func(s string) string { return strings.Replace(s, `"hidden": 8`, `"hidden": 9`, 1) }, labeler.ErrModelSize},
		{"format", func(s string) string { return strings.Replace(s, labeler.ArtifactFormat, "other", 1) }, labeler.ErrArtifact},
		{"json", func(string) string { return "{" }, labeler.ErrArtifact},
	} {
		t.Run(tc.name, func(t *testing.T) {
			dir := t.TempDir()
			if err := labeler.Save(dir, m); err != nil {
				t.Fatal(err)
			}
			p := filepath.Join(dir, labeler.MetaFile)
			b, err := os.ReadFile(p)
			if err != nil {
				t.Fatal(err)
			}
			if err := os.WriteFile(p, []byte(tc.edit(string(b))), 0o644); err != nil {
				t.Fatal(err)
			}
			if _, err := labeler.Load(dir); !errors.Is(err, tc.want) {
				t.Fatalf("got %v, want %v", err, tc.want)
			}
		})
	}
}

func TestScorerRefusesWrongSize(t *testing.T) {
	rt := orttest.Runtime(t)
	f, err := labeler.NewFeaturizer(rt, tinyRef(t, 32, 1, 1), labeler.FeaturizerOptions{})
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	dir := t.TempDir()
	if err := labeler.Save(dir, fitted(t, 16, f.Reference())); err != nil {
		t.Fatal(err)
	}
	m, err := labeler.Load(dir)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := labeler.NewScorer(f, m); !errors.Is(err, labeler.ErrModelSize) {
		t.Fatalf("d_model 16 labeler on a d_model 32 policy: got %v, want ErrModelSize", err)
	}
	if _, err := labeler.NewScorer(f, fitted(t, 32, "ref-other")); !errors.Is(err, labeler.ErrReference) {
		t.Fatalf("labeler of another reference: got %v, want ErrReference", err)
	}
	if _, err := labeler.NewScorer(f, fitted(t, 32, f.Reference())); err != nil {
		t.Fatal(err)
	}
}

func TestScorerRefusesOtherFeatureKind(t *testing.T) {
	rt := orttest.Runtime(t)
	f, err := labeler.NewFeaturizer(rt, tinyRef(t, 32, 1, 1), labeler.FeaturizerOptions{Features: labeler.FeaturesBoth})
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	// A hidden-state model of the right width for hidden features only.
	if _, err := labeler.NewScorer(f, fitted(t, 32, f.Reference())); !errors.Is(err, labeler.ErrModelSize) {
		t.Fatalf("hidden-state labeler on a hidden+confidence featurizer: got %v, want ErrModelSize", err)
	}
	cfg := labeler.DefaultConfig()
	cfg.Hidden, cfg.Epochs, cfg.Reference, cfg.Features = 8, 1, f.Reference(), f.Features()
	m, _, err := labeler.FitPairs(rt, xorPairs(rand.New(rand.NewPCG(1, 1)), 4, 4, f.Width()), cfg, nil)
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	if err := labeler.Save(dir, m); err != nil {
		t.Fatal(err)
	}
	back, err := labeler.Load(dir)
	if err != nil {
		t.Fatal(err)
	}
	if back.Features() != labeler.FeaturesBoth || back.ID() != m.ID() {
		t.Fatalf("loaded features %q id %s, saved %q %s", back.Features(), back.ID(), m.Features(), m.ID())
	}
	if _, err := labeler.NewScorer(f, back); err != nil {
		t.Fatal(err)
	}
	bad := labeler.DefaultConfig()
	bad.Features = "logits"
	if err := bad.Validate(); !errors.Is(err, labeler.ErrConfig) {
		t.Fatalf("unknown feature kind: got %v, want ErrConfig", err)
	}
	if _, err := labeler.NewFeaturizer(rt, tinyRef(t, 32, 1, 1), labeler.FeaturizerOptions{Features: "logits"}); !errors.Is(err, labeler.ErrConfig) {
		t.Fatalf("featurizer of an unknown kind: got %v, want ErrConfig", err)
	}
}
