// Package segment splits a completion's tokens into reasoning steps. The
// sampler records the step boundaries of every rollout (StepEnds) and the
// labeler scores the prefixes that end at them, so both use this one
// segmenter.
package segment

import (
	"unicode"
	"unicode/utf8"
)

// Decoder turns token ids into text; tokenizer.Tokenizer satisfies it.
// Special tokens (BOS, EOS, PAD) decode to nothing.
type Decoder interface {
	Decode(ids []int32) string
}

// Lines returns the exclusive token offsets where each step of ids ends,
// one step per non-empty line: a token whose text holds a newline closes
// the line before it (the newline belongs to the step it ends), and a line
// of white space only is not a step. Text after the last newline that holds
// anything but white space is a final step ending at len(ids). Lines that
// begin and end inside one token join the step that token ends. The offsets
// are strictly increasing and at most len(ids); a completion without any
// non-blank text has no steps.
//
// Tokens are decoded one at a time, so a token that decodes to part of a
// multi-byte character (byte-level BPE) counts as content, never as a
// newline.
func Lines(tok Decoder, ids []int32) []int32 {
	var ends []int32
	content := false
	// end closes a step at offset e; a second line closed inside the same
	// token joins the step that token already ends.
	end := func(e int32) {
		if len(ends) == 0 || ends[len(ends)-1] < e {
			ends = append(ends, e)
		}
		content = false
	}
	for i := range ids {
		piece := tok.Decode(ids[i : i+1])
		for len(piece) > 0 {
			r, n := utf8.DecodeRuneInString(piece)
			piece = piece[n:]
			switch {
			case r == '\n':
				if content {
					end(int32(i + 1))
				}
			case r == utf8.RuneError && n == 1, !unicode.IsSpace(r):
				content = true
			}
		}
	}
	if content {
		end(int32(len(ids)))
	}
	return ends
}

// Texts returns the text of each step of ids given its ends (as Lines
// returns them): step k is ids[ends[k-1]:ends[k]] decoded. Ends out of
// order or past len(ids) are clipped.
func Texts(tok Decoder, ids []int32, ends []int32) []string {
	out := make([]string, 0, len(ends))
	start := int32(0)
	for _, e := range ends {
		e = min(max(e, start), int32(len(ids)))
		out = append(out, tok.Decode(ids[start:e]))
		start = e
	}
	return out
}
