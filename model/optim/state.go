package optim

import (
	"encoding/binary"
	"fmt"
	"math"
)

// stateMagic starts every serialized AdamW state ("WSAW" + format 1).
var stateMagic = []byte{'W', 'S', 'A', 'W', 1}

// MarshalBinary encodes the step count and both moments of every parameter
// (with their names and sizes) in a little-endian binary form. Hyperparameters
// are not included: they come from the learner's configuration.
func (o *AdamW) MarshalBinary() ([]byte, error) {
	n := len(stateMagic) + 12
	for i, p := range o.params {
		n += 4 + len(p.Name) + 8 + 8*len(o.m[i])
	}
	b := make([]byte, 0, n)
	b = append(b, stateMagic...)
	b = binary.LittleEndian.AppendUint64(b, uint64(o.step))
	b = binary.LittleEndian.AppendUint32(b, uint32(len(o.params)))
	for i, p := range o.params {
		b = binary.LittleEndian.AppendUint32(b, uint32(len(p.Name)))
		b = append(b, p.Name...)
		b = binary.LittleEndian.AppendUint64(b, uint64(p.Size))
		for _, x := range o.m[i] {
			b = binary.LittleEndian.AppendUint32(b, math.Float32bits(x))
		}
		for _, x := range o.v[i] {
			b = binary.LittleEndian.AppendUint32(b, math.Float32bits(x))
		}
	}
	return b, nil
}

// UnmarshalBinary restores state written by MarshalBinary into an optimizer
// built for the same parameters (same names and sizes, in order); anything
// else gives ErrState and leaves o unchanged.
func (o *AdamW) UnmarshalBinary(b []byte) error {
	r := reader{b: b}
	if magic := r.next(len(stateMagic)); magic == nil || string(magic) != string(stateMagic) {
		return fmt.Errorf("%w: not an AdamW state (bad header)", ErrState)
	}
	step := r.u64()
	count := r.u32()
	if r.err || count != uint64(len(o.params)) {
		return fmt.Errorf("%w: state holds %d parameters, optimizer has %d", ErrState, count, len(o.params))
	}
	if step > math.MaxInt64 {
		return fmt.Errorf("%w: step %d out of range", ErrState, step)
	}
	m := make([][]float32, len(o.params))
	v := make([][]float32, len(o.params))
	for i, p := range o.params {
		nameLen := r.u32()
		name := r.next(int(min(nameLen, uint64(len(b)))))
		size := r.u64()
		if r.err || string(name) != p.Name || size != uint64(p.Size) {
			return fmt.Errorf("%w: entry %d is %q size %d, optimizer expects %q size %d", ErrState, i, name, size, p.Name, p.Size)
		}
		m[i], v[i] = r.floats(p.Size), r.floats(p.Size)
		if r.err {
			return fmt.Errorf("%w: truncated moments for %q", ErrState, p.Name)
		}
	}
	if len(r.b) != 0 {
		return fmt.Errorf("%w: %d trailing bytes", ErrState, len(r.b))
	}
	o.step, o.m, o.v = int64(step), m, v
	return nil
}

// reader consumes little-endian fields, remembering the first short read.
type reader struct {
	b   []byte
	err bool
}

func (r *reader) next(n int) []byte {
	if r.err || n < 0 || n > len(r.b) {
		r.err = true
		return nil
	}
	out := r.b[:n]
	r.b = r.b[n:]
	return out
}

func (r *reader) u32() uint64 {
	if b := r.next(4); b != nil {
		return uint64(binary.LittleEndian.Uint32(b))
	}
	return 0
}

func (r *reader) u64() uint64 {
	if b := r.next(8); b != nil {
		return binary.LittleEndian.Uint64(b)
	}
	return 0
}

func (r *reader) floats(n int) []float32 {
	b := r.next(4 * n)
	if b == nil {
		return nil
	}
	out := make([]float32, n)
	for i := range out {
		out[i] = math.Float32frombits(binary.LittleEndian.Uint32(b[4*i:]))
	}
	return out
}
