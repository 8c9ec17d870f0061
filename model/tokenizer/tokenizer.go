// Package tokenizer turns text into token ids and back. It defines the
// Tokenizer interface the sampler, verifier and learner share, and a
// character-level tokenizer for wsgrpo's built-in arithmetic and reasoning
// tasks that serialises to JSON inside a checkpoint directory.
package tokenizer

import "errors"

// Tokenizer maps text to token ids and back.
type Tokenizer interface {
	// Encode returns the ids of s, without BOS or EOS.
	Encode(s string) []int32
	// Decode returns the text of ids; special tokens decode to nothing.
	Decode(ids []int32) string
	// VocabSize is the number of distinct ids (the model's vocabulary).
	VocabSize() int
	// BOS is the beginning-of-sequence id.
	BOS() int32
	// EOS is the end-of-sequence id.
	EOS() int32
	// PAD is the padding id.
	PAD() int32
}

// Errors returned when decoding a tokenizer description.
var (
	// ErrBadJSON means the tokenizer description is not valid JSON.
	ErrBadJSON = errors.New("tokenizer: malformed JSON")
	// ErrUnknownType means the description names a tokenizer kind this
	// package does not know.
	ErrUnknownType = errors.New("tokenizer: unknown tokenizer type")
	// ErrBadVocab means the vocabulary is empty, has duplicates or invalid
	// characters, or collides with the special tokens.
	ErrBadVocab = errors.New("tokenizer: invalid vocabulary")
)
