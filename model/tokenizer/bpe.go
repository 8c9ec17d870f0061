package tokenizer

import (
	"slices"

	"golang.org/x/text/unicode/norm"
)

// BPE is a byte-level BPE tokenizer read from a Hugging Face tokenizer.json
// (Qwen2, Qwen3, Llama 3 and other GPT-2-style vocabularies): added and
// special tokens are split out of the text first, the rest is NFC
// normalised when the file says so, cut into pre-tokens by the file's Split
// regular expression, spelt as bytes and merged lowest rank first. Its
// output equals the Hugging Face tokenizers' with add_special_tokens=false
// (the post-processor's BOS is not added; see AddsBOS).
//
// A model without a BOS token (Qwen2, Qwen3) has BOS() == -1: callers
// must not prepend it (HasBOS tells). EOS is likewise -1 when
// tokenizer_config.json names none; PAD falls back to another special
// token (see PAD). Text that is not valid UTF-8 is encoded byte by byte and
// decodes with U+FFFD in place of the ill-formed bytes. It is safe for
// concurrent use.
type BPE struct {
	tokens   []string         // id -> token as in the file ("" for holes)
	raw      []string         // id -> the bytes it decodes to
	known    []bool           // id -> whether the id is a token
	vocab    map[string]int32 // token as in the file -> id (added tokens win)
	rawVocab map[string]int32 // byte-map spelling undone -> id
	byteIDs  [256]int32       // id of each single byte's token, -1 if none
	merges   map[uint64]merge // pairKey(left, right) -> rank and result
	maxID    int64            // ids must be below it (see sparseIDs)

	ignoreMerges bool // a pre-token that is a token is not merged
	nfc          bool // NFC normaliser
	unk          int32
	pre          preTokenizer

	added        []addedToken
	rawAdded     *addedMatcher // added tokens matched before normalising
	normAdded    *addedMatcher // added tokens matched after normalising
	special      map[int32]bool
	bos, eos     int32
	pad          int32
	addBOS       bool
	chatTemplate string
	chat         chatOnce

	cache wordCache
}

var _ Tokenizer = (*BPE)(nil)

// Encode returns the ids of s, without BOS or EOS. Added and special
// tokens written in s (such as "<|im_start|>") encode to their ids.
func (t *BPE) Encode(s string) []int32 {
	return t.AppendEncode(make([]int32, 0, len(s)/3+1), s)
}

// AppendEncode appends the ids of s to dst and returns the extended slice.
func (t *BPE) AppendEncode(dst []int32, s string) []int32 {
	for _, seg := range t.rawAdded.split(s, nil) {
		if seg.id >= 0 {
			dst = append(dst, seg.id)
			continue
		}
		text := seg.text
		if t.nfc && !norm.NFC.IsNormalString(text) {
			text = norm.NFC.String(text)
		}
		if t.normAdded == nil {
			dst = t.encodeText(dst, text)
			continue
		}
		for _, sub := range t.normAdded.split(text, nil) {
			if sub.id >= 0 {
				dst = append(dst, sub.id)
			} else {
				dst = t.encodeText(dst, sub.text)
			}
		}
	}
	return dst
}

// encodeText appends the ids of normalised text free of added tokens.
func (t *BPE) encodeText(dst []int32, text string) []int32 {
	if text == "" {
		return dst
	}
	t.pre.split(text, func(piece string) {
		dst = t.encodeWord(dst, piece)
	})
	return dst
}

// Decode returns the text of ids. Special tokens decode to nothing, other
// added tokens to their content, and the bytes of the rest are read as
// UTF-8 with each ill-formed sequence replaced by U+FFFD (as the Hugging
// Face decoders do). Unknown ids are skipped. No clean-up of spaces is
// applied (clean_up_tokenization_spaces would break round trips).
func (t *BPE) Decode(ids []int32) string { return t.decode(ids, true) }

// DecodeWithSpecial is Decode that keeps special tokens' text.
func (t *BPE) DecodeWithSpecial(ids []int32) string { return t.decode(ids, false) }

// decode undoes the byte map of ids, skipping special tokens if asked.
func (t *BPE) decode(ids []int32, skipSpecial bool) string {
	buf := make([]byte, 0, 4*len(ids))
	for _, id := range ids {
		if id < 0 || int(id) >= len(t.raw) || !t.known[id] {
			continue
		}
		if skipSpecial && t.special[id] {
			continue
		}
		buf = append(buf, t.raw[id]...)
	}
	// A complete token between partial sequences cannot join them: the
	// added tokens' text is valid UTF-8, so one lossy pass over all the
	// bytes equals decoding each run of model tokens on its own.
	return string(appendUTF8Lossy(make([]byte, 0, len(buf)), buf))
}

// VocabSize is one more than the largest token id. A model's embedding
// matrix may be larger (Qwen pads it to a multiple of 128).
func (t *BPE) VocabSize() int { return len(t.tokens) }

// BOS is the id of tokenizer_config.json's bos_token, or -1 when the model
// has none (Qwen2, Qwen3): then nothing must be prepended.
func (t *BPE) BOS() int32 { return t.bos }

// HasBOS reports whether the model has a BOS token.
func (t *BPE) HasBOS() bool { return t.bos >= 0 }

// AddsBOS reports whether the Hugging Face tokenizer puts BOS in front of
// an encoded text (Llama 3: yes; Qwen: no BOS at all). Chat templates
// write the BOS themselves, so a rendered chat needs none added.
func (t *BPE) AddsBOS() bool { return t.addBOS }

// EOS is the id of tokenizer_config.json's eos_token (Qwen3:
// <|im_end|>, Llama 3.1 Instruct: <|eot_id|>), or -1 if it names none.
func (t *BPE) EOS() int32 { return t.eos }

// PAD is the id of tokenizer_config.json's pad_token. A model that names
// none (Llama 3) pads with "<|finetune_right_pad_id|>", else
// "<|end_of_text|>" or "<|endoftext|>", else its last special token that
// is neither BOS nor EOS, else EOS: padded positions are masked, and the
// generator wants PAD to differ from EOS. It is -1 only without any of
// these.
func (t *BPE) PAD() int32 { return t.pad }

// TokenID returns the id of a token as spelt in tokenizer.json (byte-map
// characters, "Ġthe"; added tokens by their content, "<|im_end|>").
func (t *BPE) TokenID(token string) (int32, bool) {
	id, ok := t.vocab[token]
	return id, ok
}

// Token returns the token of id as spelt in tokenizer.json.
func (t *BPE) Token(id int32) (string, bool) {
	if id < 0 || int(id) >= len(t.tokens) || !t.known[id] {
		return "", false
	}
	return t.tokens[id], true
}

// IsSpecial reports whether id is a special token (skipped by Decode).
func (t *BPE) IsSpecial(id int32) bool { return t.special[id] }

// SpecialIDs returns the ids of the special tokens, in increasing order.
func (t *BPE) SpecialIDs() []int32 {
	ids := make([]int32, 0, len(t.special))
	for id := range t.special {
		ids = append(ids, id)
	}
	slices.Sort(ids)
	return ids
}

// ChatTemplate returns the Jinja source of tokenizer_config.json's
// chat_template ("" if none).
func (t *BPE) ChatTemplate() string { return t.chatTemplate }
