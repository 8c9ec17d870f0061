package tasks

import (
	"errors"
	"fmt"
	"hash/fnv"
)

// ErrUnknownSplit means a split name is neither "train" nor "test".
var ErrUnknownSplit = errors.New("tasks: unknown split")

// Split names a disjoint part of a task: items for training or for testing.
type Split string

// The two splits.
const (
	// Train is the split that training draws prompts from.
	Train Split = "train"
	// Test is the held-out split that evaluation draws from.
	Test Split = "test"
)

// Valid reports whether s is Train or Test.
func (s Split) Valid() bool { return s == Train || s == Test }

// String returns the split's name.
func (s Split) String() string { return string(s) }

// ParseSplit returns the Split named by s ("train" or "test").
func ParseSplit(s string) (Split, error) {
	if sp := Split(s); sp.Valid() {
		return sp, nil
	}
	return "", fmt.Errorf("%w: %q (want %q or %q)", ErrUnknownSplit, s, Train, Test)
}

// SplitOf assigns key (an item's canonical text) to a split by its 64-bit
// FNV-1a hash, passed through the MurmurHash3 64-bit finaliser (FNV-1a alone
// leaves the top bits of short, similar keys poorly mixed): Test when the
// result, read as a fraction of 2^64, falls below testShare, Train otherwise. The assignment depends on nothing but key and
// testShare, so it is the same in every process, run and seed; a testShare
// of 0 or less puts everything in Train, 1 or more everything in Test.
func SplitOf(key string, testShare float64) Split {
	h := fnv.New64a()
	_, _ = h.Write([]byte(key)) // a hash.Hash never fails to write
	// The top 53 bits as a float64 fraction in [0, 1).
	frac := float64(fmix64(h.Sum64())>>11) / (1 << 53)
	if frac < testShare {
		return Test
	}
	return Train
}

// fmix64 is the MurmurHash3 64-bit finaliser: a fixed bijection that spreads
// every input bit over every output bit.
func fmix64(k uint64) uint64 {
	k ^= k >> 33
	k *= 0xff51afd7ed558ccd
	k ^= k >> 33
	k *= 0xc4ceb9fe1a85ec53
	k ^= k >> 33
	return k
}
