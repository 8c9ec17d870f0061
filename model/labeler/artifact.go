package labeler

import (
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"

	"github.com/wsgrpo/wsgrpo/model/checkpoint"
	"github.com/wsgrpo/wsgrpo/model/policy"
)

// Artifact files inside a labeler directory, and the format they declare.
const (
	MetaFile        = "labeler.json"
	WeightsFile     = "labeler.safetensors"
	ArtifactFormat  = "wsgrpo-labeler"
	artifactVersion = 1
)

// metaFile is the JSON content of MetaFile.
type metaFile struct {
	Format  string `json:"format"`
	Version int    `json:"version"`
	Meta
}

// Save writes m into dir (created if needed) as MetaFile and WeightsFile
// (F32 safetensors). Each file is written to a temporary name and renamed,
// so a reader never sees a half-written file.
func Save(dir string, m *Model) error {
	d, h := int64(m.meta.DModel), int64(m.meta.Hidden)
	w, err := checkpoint.WriteSafetensors(policy.Weights{
		WeightW1: {Shape: []int64{d, h}, Data: m.w1},
		WeightB1: {Shape: []int64{h}, Data: m.b1},
		WeightW2: {Shape: []int64{h, 1}, Data: m.w2},
		WeightB2: {Shape: []int64{1}, Data: []float32{m.b2}},
	}, map[string]string{"format": ArtifactFormat, "id": m.meta.ID})
	if err != nil {
		return err
	}
	meta, err := json.MarshalIndent(metaFile{Format: ArtifactFormat, Version: artifactVersion, Meta: m.meta}, "", "  ")
	if err != nil {
		return err
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return err
	}
	if err := writeAtomic(filepath.Join(dir, WeightsFile), w); err != nil {
		return err
	}
	return writeAtomic(filepath.Join(dir, MetaFile), append(meta, '\n'))
}

func writeAtomic(path string, data []byte) error {
	tmp := path + ".tmp"
	if err := os.WriteFile(tmp, data, 0o644); err != nil {
		return err
	}
	return os.Rename(tmp, path)
}

// Load reads and checks the labeler saved in dir: the format and version,
// the weights' shapes against the metadata (ErrModelSize), and the stored
// id against the content (ErrArtifact), so that a labeler whose weights
// were changed cannot pass for another.
func Load(dir string) (*Model, error) {
	raw, err := os.ReadFile(filepath.Join(dir, MetaFile))
	if err != nil {
		return nil, err
	}
	var mf metaFile
	if err := json.Unmarshal(raw, &mf); err != nil {
		return nil, fmt.Errorf("%w: %s: %w", ErrArtifact, MetaFile, err)
	}
	if mf.Format != ArtifactFormat || mf.Version != artifactVersion {
		return nil, fmt.Errorf("%w: %s is format %q version %d, want %q version %d", ErrArtifact, MetaFile, mf.Format, mf.Version, ArtifactFormat, artifactVersion)
	}
	if mf.Activation != Activation {
		return nil, fmt.Errorf("%w: activation %q, this build has %q", ErrArtifact, mf.Activation, Activation)
	}
	data, err := os.ReadFile(filepath.Join(dir, WeightsFile))
	if err != nil {
		return nil, err
	}
	w, _, err := checkpoint.ReadSafetensors(data)
	if err != nil {
		return nil, fmt.Errorf("%w: %w", ErrArtifact, err)
	}
	if len(w) != 4 {
		return nil, fmt.Errorf("%w: %d tensors, want 4", ErrArtifact, len(w))
	}
	get := func(name string) ([]float32, error) {
		p, ok := w[name]
		if !ok {
			return nil, fmt.Errorf("%w: no tensor %q", ErrArtifact, name)
		}
		return p.Data, nil
	}
	var ws [4][]float32
	for i, name := range []string{WeightW1, WeightB1, WeightW2, WeightB2} {
		if ws[i], err = get(name); err != nil {
			return nil, err
		}
	}
	if len(ws[3]) != 1 {
		return nil, fmt.Errorf("%w: %s has %d values", ErrModelSize, WeightB2, len(ws[3]))
	}
	stored := mf.ID
	m, err := newModel(mf.Meta, ws[0], ws[1], ws[2], ws[3][0])
	if err != nil {
		return nil, err
	}
	if m.meta.ID != stored {
		return nil, fmt.Errorf("%w: id %s in %s, the content hashes to %s", ErrArtifact, stored, MetaFile, m.meta.ID)
	}
	return m, nil
}
