package hf

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"sort"
	"strings"

	"github.com/wsgrpo/wsgrpo/model/policy"
)

// File names of the weights in a checkpoint directory.
const (
	WeightsFile = "model.safetensors"
	IndexFile   = "model.safetensors.index.json"
)

// maxIndexBytes bounds model.safetensors.index.json.
const maxIndexBytes = 64 << 20

// Checkpoint is a Hugging Face decoder checkpoint in memory.
type Checkpoint struct {
	// Config is the parsed config.json.
	Config Config
	// RawConfig is config.json as read; Save writes it back unchanged.
	// It may be nil for a checkpoint made in memory.
	RawConfig []byte
	// Weights maps the Hugging Face tensor names of Config.ParamSpecs to
	// float32 data.
	Weights policy.Weights
	// DType is the safetensors dtype of the embedding on disk (DTypeBF16,
	// DTypeF16 or DTypeF32); Save uses it unless told otherwise.
	DType string
}

// index is model.safetensors.index.json.
type index struct {
	WeightMap map[string]string `json:"weight_map"`
}

// ignorable reports whether a tensor that no graph uses may be skipped:
// rotary inverse-frequency buffers older exports carry, and lm_head.weight
// when the embeddings are tied.
func ignorable(c Config, name string) bool {
	return strings.HasSuffix(name, ".rotary_emb.inv_freq") || (c.TieWordEmbeddings && name == ParamLMHead)
}

// Load reads a checkpoint directory: config.json, and model.safetensors or
// the shards model.safetensors.index.json lists. Tensors are converted to
// float32. A missing, unexpected or wrongly shaped tensor is an error
// wrapping ErrWeights; a malformed file wraps ErrSafetensors or ErrConfig.
func Load(dir string) (*Checkpoint, error) {
	raw, err := readLimited(filepath.Join(dir, ConfigFile), maxConfigBytes)
	if err != nil {
		return nil, fmt.Errorf("%w: %w", ErrConfig, err)
	}
	cfg, err := ParseConfig(raw)
	if err != nil {
		return nil, err
	}
	files, owner, err := weightFiles(dir)
	if err != nil {
		return nil, err
	}
	opened := make(map[string]*stFile, len(files))
	defer func() {
		for _, f := range opened {
			f.close()
		}
	}()
	where := map[string]*stFile{}
	for _, name := range files {
		f, err := openSafetensors(filepath.Join(dir, name))
		if err != nil {
			return nil, err
		}
		opened[name] = f
		for t := range f.hdr.Tensors {
			if prev, dup := where[t]; dup {
				return nil, fmt.Errorf("%w: tensor %q in both %s and %s", ErrSafetensors, t, prev.path, f.path)
			}
			if owner != nil && owner[t] != name {
				return nil, fmt.Errorf("%w: tensor %q is in %s, the index says %q", ErrSafetensors, t, name, owner[t])
			}
			where[t] = f
		}
	}
	for t, file := range owner {
		if where[t] == nil {
			return nil, fmt.Errorf("%w: the index puts tensor %q in %s, which does not hold it", ErrSafetensors, t, file)
		}
	}
	ck := &Checkpoint{Config: cfg, RawConfig: raw, Weights: policy.Weights{}}
	specs := cfg.ParamSpecs()
	known := make(map[string]bool, len(specs))
	for _, s := range specs {
		known[s.Name] = true
	}
	names := make([]string, 0, len(where))
	for t := range where {
		names = append(names, t)
	}
	sort.Strings(names)
	for _, t := range names {
		if !known[t] && !ignorable(cfg, t) {
			return nil, fmt.Errorf("%w: unexpected tensor %q in %s", ErrWeights, t, where[t].path)
		}
	}
	for _, s := range specs {
		f := where[s.Name]
		if f == nil {
			return nil, fmt.Errorf("%w: missing tensor %q", ErrWeights, s.Name)
		}
		e := f.hdr.Tensors[s.Name]
		if !sameShape(e.Shape, s.Shape) {
			return nil, fmt.Errorf("%w: tensor %q has shape %v, config wants %v", ErrWeights, s.Name, e.Shape, s.Shape)
		}
		data, err := f.read(s.Name)
		if err != nil {
			return nil, err
		}
		ck.Weights[s.Name] = policy.Param{Shape: append([]int64(nil), s.Shape...), Data: data}
		if s.Name == ParamEmbed {
			ck.DType = e.DType
		}
	}
	return ck, nil
}

// weightFiles returns the safetensors files of dir: the shards of the index
// (and which file each tensor is in), or the single model.safetensors.
func weightFiles(dir string) ([]string, map[string]string, error) {
	data, err := readLimited(filepath.Join(dir, IndexFile), maxIndexBytes)
	if errors.Is(err, fs.ErrNotExist) {
		return []string{WeightsFile}, nil, nil
	}
	if err != nil {
		return nil, nil, fmt.Errorf("%w: %w", ErrSafetensors, err)
	}
	owner, err := parseIndex(data)
	if err != nil {
		return nil, nil, err
	}
	seen := map[string]bool{}
	var files []string
	for _, f := range owner {
		if !seen[f] {
			seen[f] = true
			files = append(files, f)
		}
	}
	sort.Strings(files)
	return files, owner, nil
}

// parseIndex decodes model.safetensors.index.json into tensor name -> shard
// file. Shard names must be plain file names in the directory ending in
// .safetensors.
func parseIndex(data []byte) (map[string]string, error) {
	var ix index
	if err := json.Unmarshal(data, &ix); err != nil {
		return nil, fmt.Errorf("%w: %s: %v", ErrSafetensors, IndexFile, err)
	}
	if len(ix.WeightMap) == 0 {
		return nil, fmt.Errorf("%w: %s has no weight_map", ErrSafetensors, IndexFile)
	}
	for t, f := range ix.WeightMap {
		if f != filepath.Base(f) || strings.ContainsAny(f, `/\`) || !strings.HasSuffix(f, ".safetensors") || f == ".safetensors" {
			return nil, fmt.Errorf("%w: %s: tensor %q in shard %q: want a .safetensors file name in the directory", ErrSafetensors, IndexFile, t, f)
		}
	}
	return ix.WeightMap, nil
}

// readLimited reads a file of at most limit bytes.
func readLimited(path string, limit int64) ([]byte, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer func() { _ = f.Close() }()
	data, err := io.ReadAll(io.LimitReader(f, limit+1))
	if err != nil {
		return nil, err
	}
	if int64(len(data)) > limit {
		return nil, fmt.Errorf("%s is larger than %d bytes", path, limit)
	}
	return data, nil
}
