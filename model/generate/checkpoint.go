package generate

import (
	"log/slog"

	"github.com/wsgrpo/wsgrpo/model/checkpoint"
	"github.com/wsgrpo/wsgrpo/model/ort"
)

// FromCheckpoint builds the KV-cache graph of c and loads it, with MaxSeq
// set from c's config.
func FromCheckpoint(rt *ort.Runtime, c *checkpoint.Checkpoint, log *slog.Logger) (*Model, error) {
	data, err := c.KVModel()
	if err != nil {
		return nil, err
	}
	m, err := Load(rt, data, log)
	if err != nil {
		return nil, err
	}
	m.MaxSeq = c.Config.MaxSeq
	return m, nil
}

// FromBlob decodes a checkpoint blob (checkpoint.Marshal), builds its KV
// graph and loads it: what a sampler does when a new policy version is
// published. It returns the checkpoint too, for its tokenizer and config.
func FromBlob(rt *ort.Runtime, blob []byte, log *slog.Logger) (*Model, *checkpoint.Checkpoint, error) {
	c, err := checkpoint.Unmarshal(blob)
	if err != nil {
		return nil, nil, err
	}
	m, err := FromCheckpoint(rt, c, log)
	if err != nil {
		return nil, nil, err
	}
	return m, c, nil
}
