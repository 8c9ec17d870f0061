package checkpoint

import (
	"github.com/wsgrpo/wsgrpo/model/onnx"
	"github.com/wsgrpo/wsgrpo/model/policy"
)

// KVModel returns the encoded float32 KV-cache ONNX graph of c (see
// policy.KVGraph), ready for an ONNX Runtime session.
func (c *Checkpoint) KVModel() ([]byte, error) {
	m, err := policy.KVGraph(c.Config, c.Weights)
	if err != nil {
		return nil, err
	}
	return m.Marshal()
}

// InPlaceKVModel returns the encoded float32 KV-cache ONNX graph of c that
// updates a fixed-size cache in place (see policy.InPlaceKVGraph). It needs
// policy.InPlaceSupported(c.Config); otherwise the error wraps
// policy.ErrConfig.
func (c *Checkpoint) InPlaceKVModel() ([]byte, error) {
	m, err := policy.InPlaceKVGraph(c.Config, c.Weights)
	if err != nil {
		return nil, err
	}
	return m.Marshal()
}

// FullModel returns the encoded float32 full-sequence ONNX graph of c (see
// policy.FullGraph).
func (c *Checkpoint) FullModel() ([]byte, error) {
	m, err := policy.FullGraph(c.Config, c.Weights, onnx.Float)
	if err != nil {
		return nil, err
	}
	return m.Marshal()
}
