// Package tasks is the common face of wsgrpo's task families: an Item (one
// prompt with its reference answer), a Split (train or test), and a Source
// that yields the items of a split in an order fixed by a seed. The built-in
// arith family (package tasks/arith) and datasets read from JSONL files
// (package tasks/dataset) both satisfy Source, so the prompt source and
// evaluation can use either.
//
// Splits are decided by content, not by seed: SplitOf hashes an item's
// canonical text, so an item of the test split can never be drawn for
// training whatever seeds the two sides use.
package tasks
