// Package checkpoint saves and loads policies: a checkpoint directory holds
// config.json (the policy config and tokenizer) and model.safetensors (the
// weights, F32), and a single-blob form carries the same content for weight
// publishing. Everything read is validated; malformed input yields a
// sentinel error, never a panic.
package checkpoint

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"

	"github.com/wsgrpo/wsgrpo/model/policy"
	"github.com/wsgrpo/wsgrpo/model/tokenizer"
)

// File names inside a checkpoint directory.
const (
	ConfigFile  = "config.json"
	WeightsFile = "model.safetensors"
)

// Format and FormatVersion identify config.json files written by this
// package.
const (
	Format        = "wsgrpo-checkpoint"
	FormatVersion = 1
)

// maxConfigLen bounds config.json.
const maxConfigLen = 16 << 20

// Errors returned by this package; test with errors.Is.
var (
	// ErrSafetensors means model.safetensors is malformed (header length,
	// JSON, shapes or offsets).
	ErrSafetensors = errors.New("checkpoint: malformed safetensors")
	// ErrDType means a tensor has an element type other than F32.
	ErrDType = errors.New("checkpoint: unsupported tensor dtype")
	// ErrConfig means config.json is malformed, of another format or version,
	// or describes an invalid policy or tokenizer.
	ErrConfig = errors.New("checkpoint: invalid config")
	// ErrMismatch means the weights or tokenizer do not match the config.
	ErrMismatch = errors.New("checkpoint: weights do not match config")
	// ErrBlob means a checkpoint blob is truncated, has a wrong magic or
	// version, or inconsistent section lengths.
	ErrBlob = errors.New("checkpoint: malformed blob")
)

// Tokenizer is a tokenizer that can be written into config.json; the
// character tokenizer is one.
type Tokenizer interface {
	tokenizer.Tokenizer
	json.Marshaler
}

// Checkpoint is a policy: its architecture, tokenizer and weights, plus
// free-form metadata (for example the training step or policy version).
type Checkpoint struct {
	Config    policy.Config
	Tokenizer Tokenizer
	Weights   policy.Weights
	Metadata  map[string]string
}

// configJSON is the layout of config.json.
type configJSON struct {
	Format    string            `json:"format"`
	Version   int               `json:"version"`
	Policy    policy.Config     `json:"policy"`
	Tokenizer json.RawMessage   `json:"tokenizer"`
	Metadata  map[string]string `json:"metadata,omitempty"`
}

// Validate reports whether c is complete and self-consistent.
func (c *Checkpoint) Validate() error {
	if err := c.Config.Validate(); err != nil {
		return fmt.Errorf("%w: %w", ErrConfig, err)
	}
	if c.Tokenizer == nil {
		return fmt.Errorf("%w: no tokenizer", ErrConfig)
	}
	if v := c.Tokenizer.VocabSize(); v != c.Config.VocabSize {
		return fmt.Errorf("%w: tokenizer has %d ids, config vocab_size %d", ErrMismatch, v, c.Config.VocabSize)
	}
	if err := c.Weights.Check(c.Config); err != nil {
		return fmt.Errorf("%w: %w", ErrMismatch, err)
	}
	return nil
}

// encodeConfig returns the config.json bytes of c.
func (c *Checkpoint) encodeConfig() ([]byte, error) {
	tok, err := c.Tokenizer.MarshalJSON()
	if err != nil {
		return nil, fmt.Errorf("%w: tokenizer: %w", ErrConfig, err)
	}
	return json.MarshalIndent(configJSON{
		Format: Format, Version: FormatVersion, Policy: c.Config, Tokenizer: tok, Metadata: c.Metadata,
	}, "", "  ")
}

// decodeConfig parses config.json bytes into a checkpoint without weights.
func decodeConfig(data []byte) (*Checkpoint, error) {
	var cj configJSON
	if err := json.Unmarshal(data, &cj); err != nil {
		return nil, fmt.Errorf("%w: %w", ErrConfig, err)
	}
	if cj.Format != Format || cj.Version != FormatVersion {
		return nil, fmt.Errorf("%w: format %q version %d, want %q version %d", ErrConfig, cj.Format, cj.Version, Format, FormatVersion)
	}
	if err := cj.Policy.Validate(); err != nil {
		return nil, fmt.Errorf("%w: %w", ErrConfig, err)
	}
	tok, err := tokenizer.FromJSON(cj.Tokenizer)
	if err != nil {
		return nil, fmt.Errorf("%w: %w", ErrConfig, err)
	}
	mt, ok := tok.(Tokenizer)
	if !ok {
		return nil, fmt.Errorf("%w: tokenizer cannot be serialised", ErrConfig)
	}
	if mt.VocabSize() != cj.Policy.VocabSize {
		return nil, fmt.Errorf("%w: tokenizer has %d ids, config vocab_size %d", ErrMismatch, mt.VocabSize(), cj.Policy.VocabSize)
	}
	return &Checkpoint{Config: cj.Policy, Tokenizer: mt, Metadata: cj.Metadata}, nil
}

// Save writes c into dir (created if needed) as config.json and
// model.safetensors. Each file is written to a temporary name and renamed,
// so a reader never sees a half-written file.
func Save(dir string, c *Checkpoint) error {
	if err := c.Validate(); err != nil {
		return err
	}
	cfg, err := c.encodeConfig()
	if err != nil {
		return err
	}
	st, err := WriteSafetensors(c.Weights, nil)
	if err != nil {
		return err
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return fmt.Errorf("checkpoint: %w", err)
	}
	if err := writeFileAtomic(filepath.Join(dir, WeightsFile), st); err != nil {
		return err
	}
	return writeFileAtomic(filepath.Join(dir, ConfigFile), cfg)
}

// writeFileAtomic writes data to path via a temporary file and rename.
func writeFileAtomic(path string, data []byte) error {
	tmp := path + ".tmp"
	if err := os.WriteFile(tmp, data, 0o644); err != nil {
		return fmt.Errorf("checkpoint: %w", err)
	}
	if err := os.Rename(tmp, path); err != nil {
		return fmt.Errorf("checkpoint: %w", err)
	}
	return nil
}

// Load reads and validates the checkpoint in dir.
func Load(dir string) (*Checkpoint, error) {
	cfgData, err := readLimited(filepath.Join(dir, ConfigFile), maxConfigLen)
	if err != nil {
		return nil, err
	}
	c, err := decodeConfig(cfgData)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", ConfigFile, err)
	}
	st, err := os.ReadFile(filepath.Join(dir, WeightsFile))
	if err != nil {
		return nil, fmt.Errorf("checkpoint: %w", err)
	}
	if err := c.setWeights(st); err != nil {
		return nil, fmt.Errorf("%s: %w", WeightsFile, err)
	}
	return c, nil
}

// setWeights decodes safetensors data into c and checks it against c's
// config.
func (c *Checkpoint) setWeights(st []byte) error {
	w, _, err := ReadSafetensors(st)
	if err != nil {
		return err
	}
	if err := w.Check(c.Config); err != nil {
		return fmt.Errorf("%w: %w", ErrMismatch, err)
	}
	c.Weights = w
	return nil
}

// readLimited reads at most limit bytes of path, failing if it is longer.
func readLimited(path string, limit int64) ([]byte, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, fmt.Errorf("checkpoint: %w", err)
	}
	defer f.Close()
	data, err := io.ReadAll(io.LimitReader(f, limit+1))
	if err != nil {
		return nil, fmt.Errorf("checkpoint: %w", err)
	}
	if int64(len(data)) > limit {
		return nil, fmt.Errorf("%w: %s longer than %d bytes", ErrConfig, filepath.Base(path), limit)
	}
	return data, nil
}

// New returns a checkpoint with freshly initialised weights (policy.Init)
// for cfg and tok; cfg.VocabSize must equal tok.VocabSize().
func New(cfg policy.Config, tok Tokenizer, seed uint64) (*Checkpoint, error) {
	w, err := policy.Init(cfg, seed)
	if err != nil {
		return nil, fmt.Errorf("%w: %w", ErrConfig, err)
	}
	c := &Checkpoint{Config: cfg, Tokenizer: tok, Weights: w}
	if err := c.Validate(); err != nil {
		return nil, err
	}
	return c, nil
}
