package tokenizer

import (
	"errors"
	"fmt"
	"slices"
	"strings"
)

// Prompt templates: the text a policy continues, with PromptPlaceholder
// standing for the prompt.
const (
	// DefaultPromptTemplate is the prompt followed by a newline (the
	// line-per-step reasoning starts on the next line).
	DefaultPromptTemplate = "{prompt}\n"
	// PromptPlaceholder is replaced by the prompt text in a template.
	PromptPlaceholder = "{prompt}"
)

// ErrPrompt is wrapped by PromptIDs' errors: the prompt cannot be turned
// into the tokens a policy is conditioned on.
var ErrPrompt = errors.New("prompt cannot be encoded")

// PromptIDs returns the tokens a policy is conditioned on for a prompt,
// BOS first when tok has one (a Hugging Face tokenizer without a BOS
// token, Qwen's, has BOS() == -1: then nothing is put in front): ids, when
// given (BOS is put in front unless they start with it; every id must be
// in tok's vocabulary), or else text through template
// (DefaultPromptTemplate when empty), which tok must encode exactly; BOS
// is not put in front of a text whose encoding starts with it already (a
// chat template that writes it). The result is a new slice. The sampler
// conditions on these ids and the learner scores completions in the same
// context, so both call it.
func PromptIDs(tok Tokenizer, template, text string, ids []int32) ([]int32, error) {
	bos := tok.BOS()
	if len(ids) > 0 {
		for _, id := range ids {
			if id < 0 || int(id) >= tok.VocabSize() {
				return nil, fmt.Errorf("%w: prompt token id %d outside the policy's vocabulary of %d", ErrPrompt, id, tok.VocabSize())
			}
		}
		return withBOS(bos, ids), nil
	}
	if text == "" {
		return nil, fmt.Errorf("%w: empty prompt", ErrPrompt)
	}
	if template == "" {
		template = DefaultPromptTemplate
	}
	full := strings.ReplaceAll(template, PromptPlaceholder, text)
	enc := tok.Encode(full)
	if tok.Decode(enc) != full && !decodesSpecial(tok, enc, full) {
		return nil, fmt.Errorf("%w: the policy's tokenizer cannot encode the prompt (characters outside its vocabulary)", ErrPrompt)
	}
	if len(enc) == 0 && bos < 0 {
		return nil, fmt.Errorf("%w: the prompt encodes to no token", ErrPrompt)
	}
	return withBOS(bos, enc), nil
}

// withBOS returns a copy of ids with bos in front, unless bos is negative
// (no BOS token) or ids start with it.
func withBOS(bos int32, ids []int32) []int32 {
	if bos < 0 || (len(ids) > 0 && ids[0] == bos) {
		return slices.Clone(ids)
	}
	return append([]int32{bos}, ids...)
}

// decodesSpecial reports whether enc spells text when special tokens keep
// their text: a chat template's turn markers encode to special ids, which
// Decode leaves out.
func decodesSpecial(tok Tokenizer, enc []int32, text string) bool {
	d, ok := tok.(interface{ DecodeWithSpecial([]int32) string })
	return ok && d.DecodeWithSpecial(enc) == text
}
