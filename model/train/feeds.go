package train

import (
	"github.com/wsgrpo/wsgrpo/model/onnx"
	"github.com/wsgrpo/wsgrpo/model/ort"
)

// GraphInputs returns the feeds that g declares as inputs, dropping the
// others (such as position_ids for a graph that computes positions
// itself), so one batch of feeds serves graphs of different signatures.
func GraphInputs(g *onnx.Graph, feeds map[string]*ort.Tensor) map[string]*ort.Tensor {
	out := make(map[string]*ort.Tensor, len(feeds))
	for _, in := range g.Inputs {
		if t, ok := feeds[in.Name]; ok {
			out[in.Name] = t
		}
	}
	return out
}
