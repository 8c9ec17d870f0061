package policy

import "fmt"

// Batch is a padded batch of token sequences in the layout the policy
// graphs take: row-major [Rows, Len] int64 ids and attention mask, and the
// position ids the KV graph takes (the full graph derives them from the
// mask).
type Batch struct {
	Rows, Len int
	IDs       []int64
	Mask      []int64
	Positions []int64
	// Offset[i] is the index in row i of the sequence's first token (the
	// amount of left padding; 0 for right padding).
	Offset []int
}

// NewBatch pads seqs to a common length with pad. Left padding puts the
// padding before each sequence (as sampling needs), right padding after (as
// scoring and training use). Positions count real tokens from 0; padding
// gets position 0 and mask 0. Every sequence must be non-empty and at most
// maxSeq long.
func NewBatch(seqs [][]int32, pad int32, left bool, maxSeq int) (*Batch, error) {
	if len(seqs) == 0 {
		return nil, fmt.Errorf("%w: no sequences", ErrBatch)
	}
	n := 0
	for i, s := range seqs {
		if len(s) == 0 {
			return nil, fmt.Errorf("%w: sequence %d is empty", ErrBatch, i)
		}
		n = max(n, len(s))
	}
	if n > maxSeq {
		return nil, fmt.Errorf("%w: sequence of %d tokens, limit %d", ErrBatch, n, maxSeq)
	}
	b := &Batch{
		Rows: len(seqs), Len: n,
		IDs: make([]int64, len(seqs)*n), Mask: make([]int64, len(seqs)*n), Positions: make([]int64, len(seqs)*n),
		Offset: make([]int, len(seqs)),
	}
	for i, s := range seqs {
		row := i * n
		for j := range n {
			b.IDs[row+j] = int64(pad)
		}
		if left {
			b.Offset[i] = n - len(s)
		}
		for j, id := range s {
			k := row + b.Offset[i] + j
			b.IDs[k] = int64(id)
			b.Mask[k] = 1
			b.Positions[k] = int64(j)
		}
	}
	return b, nil
}
