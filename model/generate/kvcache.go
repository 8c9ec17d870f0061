package generate

import "github.com/wsgrpo/wsgrpo/model/ort"

// kvCache keeps the past keys and values of one Generate call in Go memory
// that ONNX Runtime reads and writes in place. Each cache tensor has two
// buffers sized for the whole call: one holds the past fed to the next
// step, the other receives that step's present output, and the two swap
// after every step. The present values thus never pass through an extra
// copy (ONNX Runtime's Concat writes them straight into the buffer), and
// nothing is allocated per step.
//
// For a graph that updates its cache in place (signature.inPlace) each
// cache tensor has one buffer of the call's full length, fed as the past
// and bound as the present alike: ONNX Runtime writes only the new
// positions, and no step copies the cache.
type kvCache struct {
	sig   signature
	batch int64
	// n is the number of cached positions.
	n int64
	// capacity is the number of positions each buffer holds.
	capacity int64
	// cur[i] holds the past of cache tensor i, next[i] receives its present
	// (the same buffer when in place); tensor 2l is layer l's key, 2l+1 its
	// value.
	cur, next [][]float32
}

// newKVCache allocates buffers for batch rows of up to maxLen positions.
func newKVCache(sig signature, batch, maxLen int) *kvCache {
	c := &kvCache{sig: sig, batch: int64(batch), capacity: int64(maxLen)}
	size := int64(batch) * sig.heads * int64(maxLen) * sig.headDim
	for range 2 * sig.layers {
		cur := make([]float32, size)
		next := cur
		if !sig.inPlace {
			next = make([]float32, size)
		}
		c.cur, c.next = append(c.cur, cur), append(c.next, next)
	}
	return c
}

// tensor views the first positions of buf as a [B,H,positions,Dh] tensor.
func (c *kvCache) tensor(buf []float32, positions int64) *ort.Tensor {
	n := c.batch * c.sig.heads * positions * c.sig.headDim
	return ort.F32Tensor(buf[:n:n], c.batch, c.sig.heads, positions, c.sig.headDim)
}

// cacheTensorName returns the graph name (past or present prefix) of cache tensor i.
func cacheTensorName(i int, present bool) string {
	kind := "key"
	if i%2 == 1 {
		kind = "value"
	}
	if present {
		return presentName(i/2, kind)
	}
	return pastName(i/2, kind)
}

// feed adds the past inputs to in.
func (c *kvCache) feed(in map[string]*ort.Tensor) {
	n := c.n
	if c.sig.inPlace {
		n = c.capacity
	}
	for i, buf := range c.cur {
		in[cacheTensorName(i, false)] = c.tensor(buf, n)
	}
}

// outputs returns the present output buffers for a step over s new
// positions.
func (c *kvCache) outputs(s int) map[string]*ort.Tensor {
	n := c.n + int64(s)
	if c.sig.inPlace {
		n = c.capacity
	}
	out := make(map[string]*ort.Tensor, len(c.next))
	for i, buf := range c.next {
		out[cacheTensorName(i, true)] = c.tensor(buf, n)
	}
	return out
}

// advance makes the presents of a step over s positions the next past.
func (c *kvCache) advance(s int) {
	if !c.sig.inPlace {
		c.cur, c.next = c.next, c.cur
	}
	c.n += int64(s)
}
