package checkpoint

import (
	"encoding/binary"
	"fmt"
)

// BlobMagic opens every checkpoint blob; BlobVersion follows it.
const (
	BlobMagic   = "WSGRPOCK"
	BlobVersion = 1
)

// blobHeaderLen is magic + version (uint32) + config length (uint32).
const blobHeaderLen = len(BlobMagic) + 8

// Marshal encodes c as one blob: BlobMagic, BlobVersion and the config.json
// length as little-endian uint32s, config.json, then model.safetensors.
func Marshal(c *Checkpoint) ([]byte, error) {
	if err := c.Validate(); err != nil {
		return nil, err
	}
	cfg, err := c.encodeConfig()
	if err != nil {
		return nil, err
	}
	st, err := WriteSafetensors(c.Weights, nil)
	if err != nil {
		return nil, err
	}
	out := make([]byte, 0, blobHeaderLen+len(cfg)+len(st))
	out = append(out, BlobMagic...)
	out = binary.LittleEndian.AppendUint32(out, BlobVersion)
	out = binary.LittleEndian.AppendUint32(out, uint32(len(cfg)))
	out = append(out, cfg...)
	return append(out, st...), nil
}

// Unmarshal decodes and validates a blob written by Marshal. Errors wrap
// ErrBlob, ErrConfig, ErrSafetensors, ErrDType or ErrMismatch.
func Unmarshal(blob []byte) (*Checkpoint, error) {
	if len(blob) < blobHeaderLen {
		return nil, fmt.Errorf("%w: %d bytes, shorter than the header", ErrBlob, len(blob))
	}
	if string(blob[:len(BlobMagic)]) != BlobMagic {
		return nil, fmt.Errorf("%w: bad magic %q", ErrBlob, blob[:len(BlobMagic)])
	}
	rest := blob[len(BlobMagic):]
	if v := binary.LittleEndian.Uint32(rest); v != BlobVersion {
		return nil, fmt.Errorf("%w: version %d, want %d", ErrBlob, v, BlobVersion)
	}
	n := uint64(binary.LittleEndian.Uint32(rest[4:]))
	rest = rest[8:]
	if n > maxConfigLen || n > uint64(len(rest)) {
		return nil, fmt.Errorf("%w: config length %d exceeds blob", ErrBlob, n)
	}
	c, err := decodeConfig(rest[:n])
	if err != nil {
		return nil, err
	}
	if err := c.setWeights(rest[n:]); err != nil {
		return nil, err
	}
	return c, nil
}
