package tokenizer

import (
	"encoding/json"
	"fmt"
	"strings"
	"unicode/utf8"
)

// Special token ids of the character tokenizer. They come first in the
// vocabulary, followed by one id per character.
const (
	charPAD int32 = 0
	charBOS int32 = 1
	charEOS int32 = 2
	charUNK int32 = 3
	// numSpecial is the number of special ids before the first character.
	numSpecial = 4
)

// TypeChar is the "type" value of a character tokenizer's JSON form.
const TypeChar = "char"

// DefaultAlphabet is the character set of the built-in tasks: digits,
// letters, punctuation, space and newline.
const DefaultAlphabet = "0123456789" +
	"abcdefghijklmnopqrstuvwxyz" +
	"ABCDEFGHIJKLMNOPQRSTUVWXYZ" +
	" \n" +
	"+-*/=()<>.,:;?!'\"%$#&_[]{}^|~@\\`"

// Char is a character-level tokenizer: ids 0..3 are PAD, BOS, EOS and UNK,
// then one id per character of its alphabet. Characters outside the
// alphabet encode to UNK. It is safe for concurrent use.
type Char struct {
	alphabet []rune
	index    map[rune]int32
}

// charJSON is the serialised form of Char.
type charJSON struct {
	Type     string   `json:"type"`
	Specials []string `json:"specials"`
	Alphabet string   `json:"alphabet"`
}

// specialNames are the names of the special tokens in id order.
var specialNames = []string{"<pad>", "<bos>", "<eos>", "<unk>"}

// NewChar returns a character tokenizer over the given alphabet, which must
// be non-empty valid UTF-8 without repeated characters.
func NewChar(alphabet string) (*Char, error) {
	if alphabet == "" || !utf8.ValidString(alphabet) {
		return nil, fmt.Errorf("%w: empty or not UTF-8", ErrBadVocab)
	}
	c := &Char{index: make(map[rune]int32)}
	for _, r := range alphabet {
		if r == utf8.RuneError {
			return nil, fmt.Errorf("%w: replacement character", ErrBadVocab)
		}
		if _, dup := c.index[r]; dup {
			return nil, fmt.Errorf("%w: repeated character %q", ErrBadVocab, r)
		}
		c.index[r] = int32(numSpecial + len(c.alphabet))
		c.alphabet = append(c.alphabet, r)
	}
	return c, nil
}

// Default returns the character tokenizer over DefaultAlphabet.
func Default() *Char {
	c := &Char{index: make(map[rune]int32)}
	for _, r := range DefaultAlphabet {
		// DefaultAlphabet has no repeats; the package tests check that
		// NewChar accepts it.
		c.index[r] = int32(numSpecial + len(c.alphabet))
		c.alphabet = append(c.alphabet, r)
	}
	return c
}

// Encode returns one id per character of s; unknown characters become UNK.
func (c *Char) Encode(s string) []int32 {
	ids := make([]int32, 0, len(s))
	for _, r := range s {
		id, ok := c.index[r]
		if !ok {
			id = charUNK
		}
		ids = append(ids, id)
	}
	return ids
}

// Decode returns the text of ids. PAD, BOS and EOS decode to nothing, UNK
// and out-of-range ids to U+FFFD.
func (c *Char) Decode(ids []int32) string {
	var b strings.Builder
	for _, id := range ids {
		switch {
		case id == charPAD || id == charBOS || id == charEOS:
		case id >= numSpecial && int(id) < numSpecial+len(c.alphabet):
			b.WriteRune(c.alphabet[id-numSpecial])
		default:
			b.WriteRune(utf8.RuneError)
		}
	}
	return b.String()
}

// VocabSize returns the number of ids: the specials plus the alphabet.
func (c *Char) VocabSize() int { return numSpecial + len(c.alphabet) }

// BOS returns the beginning-of-sequence id.
func (c *Char) BOS() int32 { return charBOS }

// EOS returns the end-of-sequence id.
func (c *Char) EOS() int32 { return charEOS }

// PAD returns the padding id.
func (c *Char) PAD() int32 { return charPAD }

// UNK returns the id that characters outside the alphabet encode to.
func (c *Char) UNK() int32 { return charUNK }

// Alphabet returns the characters of the vocabulary in id order.
func (c *Char) Alphabet() string { return string(c.alphabet) }

// MarshalJSON writes the tokenizer as {"type":"char","specials":[...],"alphabet":"..."}.
func (c *Char) MarshalJSON() ([]byte, error) {
	return json.Marshal(charJSON{Type: TypeChar, Specials: specialNames, Alphabet: string(c.alphabet)})
}

// UnmarshalJSON reads the form MarshalJSON writes.
func (c *Char) UnmarshalJSON(data []byte) error {
	got, err := parseChar(data)
	if err != nil {
		return err
	}
	*c = *got
	return nil
}

// parseChar decodes and checks a character tokenizer description.
func parseChar(data []byte) (*Char, error) {
	var j charJSON
	if err := json.Unmarshal(data, &j); err != nil {
		return nil, fmt.Errorf("%w: %v", ErrBadJSON, err)
	}
	if j.Type != TypeChar {
		return nil, fmt.Errorf("%w: %q", ErrUnknownType, j.Type)
	}
	if len(j.Specials) != len(specialNames) {
		return nil, fmt.Errorf("%w: want %d special tokens, got %d", ErrBadVocab, len(specialNames), len(j.Specials))
	}
	for i, s := range j.Specials {
		if s != specialNames[i] {
			return nil, fmt.Errorf("%w: special token %d is %q, want %q", ErrBadVocab, i, s, specialNames[i])
		}
	}
	return NewChar(j.Alphabet)
}

// FromJSON decodes a tokenizer description written by a tokenizer's
// MarshalJSON, choosing the implementation by its "type" field.
func FromJSON(data []byte) (Tokenizer, error) {
	var head struct {
		Type string `json:"type"`
	}
	if err := json.Unmarshal(data, &head); err != nil {
		return nil, fmt.Errorf("%w: %v", ErrBadJSON, err)
	}
	switch head.Type {
	case TypeChar:
		return parseChar(data)
	default:
		return nil, fmt.Errorf("%w: %q", ErrUnknownType, head.Type)
	}
}
