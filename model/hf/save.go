package hf

import (
	"encoding/binary"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"

	"github.com/wsgrpo/wsgrpo/model/checkpoint"
	"github.com/wsgrpo/wsgrpo/model/policy"
)

// SaveOptions tune Save.
type SaveOptions struct {
	// DType is the safetensors dtype written (DTypeBF16, DTypeF16 or
	// DTypeF32); empty means the checkpoint's DType, or F32 when that is
	// empty too.
	DType string
	// ShardBytes, when positive, starts a new shard file once a shard's
	// tensors reach this many bytes, and writes
	// model.safetensors.index.json; 0 writes one model.safetensors.
	ShardBytes int64
}

// Save writes ck to dir in Hugging Face layout: config.json (RawConfig
// unchanged, or one made from Config) and the weights under their Hugging
// Face names in model.safetensors, or in shards with an index. Each file is
// written to a temporary name and renamed into place. dir is created if
// needed.
func Save(dir string, ck *Checkpoint, o SaveOptions) error {
	if err := ck.Config.Validate(); err != nil {
		return err
	}
	if err := CheckWeights(ck.Config, ck.Weights); err != nil {
		return err
	}
	dt := o.DType
	if dt == "" {
		dt = ck.DType
	}
	if dt == "" {
		dt = DTypeF32
	}
	if dtypeSize(dt) == 0 {
		return fmt.Errorf("%w: cannot write dtype %q", ErrSafetensors, dt)
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return err
	}
	raw := ck.RawConfig
	if raw == nil {
		var err error
		if raw, err = ck.Config.JSON(); err != nil {
			return err
		}
	}
	if err := writeFileAtomic(filepath.Join(dir, ConfigFile), raw); err != nil {
		return err
	}
	var shards [][]string
	var size int64
	for _, s := range ck.Config.ParamSpecs() {
		n := s.NumElements() * int64(dtypeSize(dt))
		if len(shards) == 0 || (o.ShardBytes > 0 && size > 0 && size+n > o.ShardBytes) {
			shards = append(shards, nil)
			size = 0
		}
		shards[len(shards)-1] = append(shards[len(shards)-1], s.Name)
		size += n
	}
	if o.ShardBytes <= 0 {
		data, err := encodeSafetensors(ck.Weights, shards[0], dt)
		if err != nil {
			return err
		}
		return writeFileAtomic(filepath.Join(dir, WeightsFile), data)
	}
	weightMap := map[string]string{}
	var total int64
	for i, names := range shards {
		file := fmt.Sprintf("model-%05d-of-%05d.safetensors", i+1, len(shards))
		data, err := encodeSafetensors(ck.Weights, names, dt)
		if err != nil {
			return err
		}
		if err := writeFileAtomic(filepath.Join(dir, file), data); err != nil {
			return err
		}
		for _, n := range names {
			weightMap[n] = file
			total += int64(len(ck.Weights[n].Data) * dtypeSize(dt))
		}
	}
	ix, err := json.MarshalIndent(map[string]any{
		"metadata":   map[string]any{"total_size": total},
		"weight_map": weightMap,
	}, "", "  ")
	if err != nil {
		return err
	}
	return writeFileAtomic(filepath.Join(dir, IndexFile), ix)
}

// encodeSafetensors encodes the named tensors of w, in that order, as one
// safetensors file of dtype dt with metadata {"format": "pt"}.
func encodeSafetensors(w policy.Weights, names []string, dt string) ([]byte, error) {
	header := map[string]any{checkpoint.SafetensorsMetadataKey: map[string]string{"format": "pt"}}
	var off uint64
	for _, name := range names {
		if name == checkpoint.SafetensorsMetadataKey || name == "" {
			return nil, fmt.Errorf("%w: reserved tensor name %q", ErrSafetensors, name)
		}
		n := uint64(len(w[name].Data) * dtypeSize(dt))
		header[name] = checkpoint.SafetensorsEntry{DType: dt, Shape: append([]int64{}, w[name].Shape...), DataOffsets: []uint64{off, off + n}}
		off += n
	}
	h, err := json.Marshal(header)
	if err != nil {
		return nil, fmt.Errorf("%w: header: %v", ErrSafetensors, err)
	}
	for len(h)%8 != 0 {
		h = append(h, ' ')
	}
	out := make([]byte, 8, 8+uint64(len(h))+off)
	binary.LittleEndian.PutUint64(out, uint64(len(h)))
	out = append(out, h...)
	for _, name := range names {
		out = appendFloats(out, w[name].Data, dt)
	}
	return out, nil
}

// writeFileAtomic writes data to path through a temporary file in the same
// directory and a rename.
func writeFileAtomic(path string, data []byte) error {
	f, err := os.CreateTemp(filepath.Dir(path), "."+filepath.Base(path)+".tmp*")
	if err != nil {
		return err
	}
	tmp := f.Name()
	if _, err := f.Write(data); err != nil {
		_ = f.Close()
		_ = os.Remove(tmp)
		return err
	}
	if err := f.Close(); err != nil {
		_ = os.Remove(tmp)
		return err
	}
	if err := os.Rename(tmp, path); err != nil {
		_ = os.Remove(tmp)
		return err
	}
	return nil
}
