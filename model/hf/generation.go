package hf

import (
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"path/filepath"
	"slices"
)

// GenerationConfigFile is the name of the sampling defaults beside
// config.json; its eos_token_id may list more ids than config.json's
// (Qwen3: <|im_end|> and <|endoftext|>).
const GenerationConfigFile = "generation_config.json"

// EOSIDs returns the ids that end a completion of the checkpoint in dir:
// config.json's eos_token_id (c.EOS) followed by those of
// generation_config.json not already listed, when that file exists. Each
// must be below c.VocabSize; a malformed file or an id outside the
// vocabulary wraps ErrConfig.
func EOSIDs(dir string, c Config) ([]int, error) {
	raw, err := readLimited(filepath.Join(dir, GenerationConfigFile), maxConfigBytes)
	switch {
	case errors.Is(err, fs.ErrNotExist):
		raw = nil
	case err != nil:
		return nil, fmt.Errorf("%w: %w", ErrConfig, err)
	}
	return eosIDs(c, raw)
}

// eosIDs is EOSIDs with the content of generation_config.json (nil when
// there is none).
func eosIDs(c Config, raw []byte) ([]int, error) {
	ids := append([]int(nil), c.EOS...)
	if raw == nil {
		return ids, nil
	}
	var r struct {
		EOS json.RawMessage `json:"eos_token_id"`
	}
	if err := json.Unmarshal(raw, &r); err != nil {
		return nil, fmt.Errorf("%w: %s: %v", ErrConfig, GenerationConfigFile, err)
	}
	more, err := parseEOS(r.EOS)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", GenerationConfigFile, err)
	}
	for _, id := range more {
		if id < 0 || id >= c.VocabSize {
			return nil, fmt.Errorf("%w: %s: eos_token_id %d outside vocab %d", ErrConfig, GenerationConfigFile, id, c.VocabSize)
		}
		if !slices.Contains(ids, id) {
			ids = append(ids, id)
		}
	}
	return ids, nil
}
