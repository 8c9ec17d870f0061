package tasks

import "iter"

// Source yields the items of a task for one split, deterministically.
type Source interface {
	// Name is the task name every item carries in Item.Task.
	Name() string
	// Items yields the items of split in an order fixed by seed: the same
	// source, split and seed always yield the same sequence. A generated
	// source never ends (stop ranging when you have enough, or use Take);
	// a file-backed source ends after one pass over its items of the split.
	// An invalid split yields nothing.
	Items(split Split, seed uint64) iter.Seq[Item]
}

// Take returns the first n items of seq, or all of them if it ends sooner.
func Take(seq iter.Seq[Item], n int) []Item {
	if n <= 0 {
		return nil
	}
	out := make([]Item, 0, n)
	for it := range seq {
		out = append(out, it)
		if len(out) == n {
			break
		}
	}
	return out
}
