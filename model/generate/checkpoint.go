package generate

import (
	"fmt"
	"log/slog"

	"github.com/wsgrpo/wsgrpo/model/checkpoint"
	"github.com/wsgrpo/wsgrpo/model/ort"
	"github.com/wsgrpo/wsgrpo/model/policy"
)

// CacheGraph selects the KV-cache graph FromCheckpointGraph builds.
type CacheGraph int

// KV-cache graphs of a checkpoint.
const (
	// CacheAuto is FromCheckpoint's choice: the in-place graph when the
	// policy allows it (policy.InPlaceSupported: a head size that is a
	// multiple of 16), else the concatenating one.
	CacheAuto CacheGraph = iota
	// CacheInPlace is policy.InPlaceKVGraph: a fixed-size cache that ONNX
	// Runtime updates in place (1.5-2× the tokens/s of CacheConcat at
	// d_model 128, docs/benchmarks/model.md).
	CacheInPlace
	// CacheConcat is policy.KVGraph: every step returns the cache grown by
	// the new positions.
	CacheConcat
)

// String returns the graph's name as the benchmarks print it.
func (g CacheGraph) String() string {
	switch g {
	case CacheAuto:
		return "auto"
	case CacheInPlace:
		return "inplace"
	case CacheConcat:
		return "concat"
	}
	return fmt.Sprintf("CacheGraph(%d)", int(g))
}

// FromCheckpoint builds the KV-cache graph of c (CacheAuto) and loads it,
// with MaxSeq set from c's config.
func FromCheckpoint(rt *ort.Runtime, c *checkpoint.Checkpoint, log *slog.Logger) (*Model, error) {
	return FromCheckpointGraph(rt, c, CacheAuto, log)
}

// FromCheckpointGraph is FromCheckpoint with the KV-cache graph chosen by
// kind. CacheInPlace for a policy that policy.InPlaceSupported rejects
// gives an error wrapping policy.ErrConfig; an unknown kind gives
// ErrOptions.
func FromCheckpointGraph(rt *ort.Runtime, c *checkpoint.Checkpoint, kind CacheGraph, log *slog.Logger) (*Model, error) {
	if kind == CacheAuto {
		kind = CacheConcat
		if policy.InPlaceSupported(c.Config) {
			kind = CacheInPlace
		}
	}
	var data []byte
	var err error
	switch kind {
	case CacheInPlace:
		data, err = c.InPlaceKVModel()
	case CacheConcat:
		data, err = c.KVModel()
	default:
		return nil, fmt.Errorf("%w: cache graph %v", ErrOptions, kind)
	}
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
// graph (as FromCheckpoint) and loads it: what a sampler does when a new
// policy version is published. It returns the checkpoint too, for its
// tokenizer and config.
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
