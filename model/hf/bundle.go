package hf

import (
	"encoding/binary"
	"errors"
	"fmt"
	"io/fs"
	"math"
	"path/filepath"
	"slices"

	"github.com/wsgrpo/wsgrpo/model/policy"
)

// BundleMagic opens every bundle blob (MarshalBundle); BundleVersion
// follows it. The magic differs from a wsgrpo checkpoint blob's
// (checkpoint.BlobMagic) in its last two bytes, so that a reader tells
// the two apart by their first eight bytes (IsBundle).
const (
	BundleMagic   = "WSGRPOHF"
	BundleVersion = 1
)

// BundleFiles are the files beside config.json and the weights that a
// bundle carries when the directory has them: the tokenizer and the
// sampling defaults.
var BundleFiles = []string{
	"tokenizer.json",
	"tokenizer_config.json",
	GenerationConfigFile,
	"special_tokens_map.json",
}

// ErrBundle means a bundle blob is truncated, has a wrong magic or
// version, or inconsistent lengths.
var ErrBundle = errors.New("hf: malformed bundle")

// Limits of a bundle blob's file section.
const (
	maxBundleFiles    = 64
	maxBundleFileName = 256
	maxBundleFileLen  = 256 << 20
)

// Bundle is a Hugging Face model as one value: the checkpoint and the
// files beside it that sampling needs (the tokenizer's, the generation
// config). It is what a training run publishes as a policy version of a
// Hugging Face model.
type Bundle struct {
	// Checkpoint is the config and the weights.
	Checkpoint *Checkpoint
	// Files maps the names of BundleFiles present in the model's
	// directory to their contents.
	Files map[string][]byte
}

// LoadBundle reads the checkpoint in dir (Load) and those of BundleFiles
// that dir holds.
func LoadBundle(dir string) (*Bundle, error) {
	ck, err := Load(dir)
	if err != nil {
		return nil, err
	}
	b := &Bundle{Checkpoint: ck, Files: map[string][]byte{}}
	for _, name := range BundleFiles {
		data, err := readLimited(filepath.Join(dir, name), maxBundleFileLen)
		switch {
		case errors.Is(err, fs.ErrNotExist):
			continue
		case err != nil:
			return nil, fmt.Errorf("%w: %w", ErrConfig, err)
		}
		b.Files[name] = data
	}
	return b, nil
}

// Save writes b to dir in Hugging Face layout: Save of the checkpoint
// (with o) and its files beside it.
func (b *Bundle) Save(dir string, o SaveOptions) error {
	if err := Save(dir, b.Checkpoint, o); err != nil {
		return err
	}
	for _, name := range sortedKeys(b.Files) {
		if err := writeFileAtomic(filepath.Join(dir, name), b.Files[name]); err != nil {
			return err
		}
	}
	return nil
}

// EOSIDs is the package function EOSIDs for the bundle: config.json's
// eos_token_id and those of its generation_config.json.
func (b *Bundle) EOSIDs() ([]int, error) {
	return eosIDs(b.Checkpoint.Config, b.Files[GenerationConfigFile])
}

// WithWeights returns a bundle of the same config and files with weights
// w (shared, not copied).
func (b *Bundle) WithWeights(w policy.Weights) *Bundle {
	ck := *b.Checkpoint
	ck.Weights = w
	return &Bundle{Checkpoint: &ck, Files: b.Files}
}

// IsBundle reports whether blob starts like a bundle blob.
func IsBundle(blob []byte) bool {
	return len(blob) >= len(BundleMagic) && string(blob[:len(BundleMagic)]) == BundleMagic
}

// MarshalBundle encodes b as one blob: BundleMagic, BundleVersion
// (uint32), config.json (the checkpoint's RawConfig, or one made from its
// Config) and the files, each as a uint32 name length, the name, a uint64
// length and the content, preceded by their count (uint32), then the
// weights as float32 in the order of Config.ParamSpecs. All integers are
// little-endian.
func MarshalBundle(b *Bundle) ([]byte, error) {
	ck := b.Checkpoint
	if err := ck.Config.Validate(); err != nil {
		return nil, err
	}
	if err := CheckWeights(ck.Config, ck.Weights); err != nil {
		return nil, err
	}
	raw := ck.RawConfig
	if raw == nil {
		var err error
		if raw, err = ck.Config.JSON(); err != nil {
			return nil, err
		}
	}
	files := map[string][]byte{ConfigFile: raw}
	for name, data := range b.Files {
		if name == ConfigFile {
			return nil, fmt.Errorf("%w: file %q", ErrBundle, name)
		}
		files[name] = data
	}
	size := len(BundleMagic) + 8 + 4*int(ck.Config.NumParams())
	for name, data := range files {
		size += 12 + len(name) + len(data)
	}
	out := make([]byte, 0, size)
	out = append(out, BundleMagic...)
	out = binary.LittleEndian.AppendUint32(out, BundleVersion)
	out = binary.LittleEndian.AppendUint32(out, uint32(len(files)))
	for _, name := range sortedKeys(files) {
		out = binary.LittleEndian.AppendUint32(out, uint32(len(name)))
		out = append(out, name...)
		out = binary.LittleEndian.AppendUint64(out, uint64(len(files[name])))
		out = append(out, files[name]...)
	}
	for _, s := range ck.Config.ParamSpecs() {
		for _, v := range ck.Weights[s.Name].Data {
			out = binary.LittleEndian.AppendUint32(out, math.Float32bits(v))
		}
	}
	return out, nil
}

// UnmarshalBundle decodes a blob written by MarshalBundle. The checkpoint's
// DType is DTypeF32. Errors wrap ErrBundle or ErrConfig.
func UnmarshalBundle(blob []byte) (*Bundle, error) {
	if !IsBundle(blob) {
		return nil, fmt.Errorf("%w: bad magic", ErrBundle)
	}
	rest := blob[len(BundleMagic):]
	u32 := func() (uint32, error) {
		if len(rest) < 4 {
			return 0, fmt.Errorf("%w: truncated", ErrBundle)
		}
		v := binary.LittleEndian.Uint32(rest)
		rest = rest[4:]
		return v, nil
	}
	v, err := u32()
	if err != nil {
		return nil, err
	}
	if v != BundleVersion {
		return nil, fmt.Errorf("%w: version %d, want %d", ErrBundle, v, BundleVersion)
	}
	n, err := u32()
	if err != nil {
		return nil, err
	}
	if n > maxBundleFiles {
		return nil, fmt.Errorf("%w: %d files", ErrBundle, n)
	}
	files := make(map[string][]byte, n)
	for range n {
		l, err := u32()
		if err != nil {
			return nil, err
		}
		if l == 0 || l > maxBundleFileName || int(l) > len(rest) {
			return nil, fmt.Errorf("%w: file name length %d", ErrBundle, l)
		}
		name := string(rest[:l])
		rest = rest[l:]
		if len(rest) < 8 {
			return nil, fmt.Errorf("%w: truncated", ErrBundle)
		}
		size := binary.LittleEndian.Uint64(rest)
		rest = rest[8:]
		if size > maxBundleFileLen || size > uint64(len(rest)) {
			return nil, fmt.Errorf("%w: file %q of %d bytes exceeds the blob", ErrBundle, name, size)
		}
		if _, dup := files[name]; dup || name != filepath.Base(name) {
			return nil, fmt.Errorf("%w: file name %q", ErrBundle, name)
		}
		files[name] = slices.Clone(rest[:size])
		rest = rest[size:]
	}
	raw, ok := files[ConfigFile]
	if !ok {
		return nil, fmt.Errorf("%w: no %s", ErrBundle, ConfigFile)
	}
	delete(files, ConfigFile)
	cfg, err := ParseConfig(raw)
	if err != nil {
		return nil, err
	}
	if want := 4 * uint64(cfg.NumParams()); uint64(len(rest)) != want {
		return nil, fmt.Errorf("%w: %d bytes of weights, the config wants %d", ErrBundle, len(rest), want)
	}
	w := make(policy.Weights)
	for _, s := range cfg.ParamSpecs() {
		data := make([]float32, s.NumElements())
		for i := range data {
			data[i] = math.Float32frombits(binary.LittleEndian.Uint32(rest[4*i:]))
		}
		rest = rest[4*len(data):]
		w[s.Name] = policy.Param{Shape: slices.Clone(s.Shape), Data: data}
	}
	ck := &Checkpoint{Config: cfg, RawConfig: raw, Weights: w, DType: DTypeF32}
	return &Bundle{Checkpoint: ck, Files: files}, nil
}

// sortedKeys returns m's keys in order.
func sortedKeys(m map[string][]byte) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	return keys
}
