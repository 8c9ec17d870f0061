package tokenizer

import (
	"slices"
	"strings"
	"unicode"
	"unicode/utf8"

	"golang.org/x/text/unicode/norm"
)

// addedToken is one entry of tokenizer.json's "added_tokens" with the
// flags that govern how it is found in text.
type addedToken struct {
	content    string
	id         int32
	special    bool
	lstrip     bool // absorbs the whitespace before it
	rstrip     bool // absorbs the whitespace after it
	singleWord bool // only matches between non-word characters
	normalized bool // matched in the normalised text
}

// segment is a piece of text (id -1) or an added token (id >= 0).
type segment struct {
	text string
	id   int32
}

// addedMatcher finds added tokens in text: leftmost first, the longest
// among those starting at the same place, as the Hugging Face splitters.
type addedMatcher struct {
	pats    []addedPattern
	byFirst [256][]int // indices into pats by first byte, longest first
	firsts  string     // the distinct first bytes
}

// addedPattern is the text an added token is matched as.
type addedPattern struct {
	text string
	tok  *addedToken
}

// buildAddedMatchers makes the matchers of tokens found before and after
// normalisation (all are "before" when there is no normaliser).
func (t *BPE) buildAddedMatchers() {
	var raw, normed []addedPattern
	for i := range t.added {
		a := &t.added[i]
		if a.normalized && t.nfc {
			normed = append(normed, addedPattern{text: norm.NFC.String(a.content), tok: a})
		} else {
			raw = append(raw, addedPattern{text: a.content, tok: a})
		}
	}
	t.rawAdded = newAddedMatcher(raw)
	if len(normed) > 0 {
		t.normAdded = newAddedMatcher(normed)
	}
}

// newAddedMatcher indexes pats by first byte.
func newAddedMatcher(pats []addedPattern) *addedMatcher {
	m := &addedMatcher{pats: pats}
	var firsts []byte
	for i, p := range pats {
		b := p.text[0]
		if m.byFirst[b] == nil {
			firsts = append(firsts, b)
		}
		m.byFirst[b] = append(m.byFirst[b], i)
	}
	for b := range m.byFirst {
		slices.SortStableFunc(m.byFirst[b], func(i, j int) int { return len(pats[j].text) - len(pats[i].text) })
	}
	m.firsts = string(firsts)
	return m
}

// next returns the leftmost match at or after from (start, end, token), or
// start -1.
func (m *addedMatcher) next(s string, from int) (int, int, *addedToken) {
	for i := from; i < len(s); {
		var j int
		if len(m.firsts) == 1 {
			j = strings.IndexByte(s[i:], m.firsts[0])
		} else {
			j = strings.IndexAny(s[i:], m.firsts)
		}
		if j < 0 {
			return -1, -1, nil
		}
		i += j
		for _, k := range m.byFirst[s[i]] {
			if strings.HasPrefix(s[i:], m.pats[k].text) {
				return i, i + len(m.pats[k].text), m.pats[k].tok
			}
		}
		i++
	}
	return -1, -1, nil
}

// split cuts s into text and added tokens, appending to dst. As in the
// Hugging Face tokenizers, a single_word token is only taken when the
// characters around it are not alphanumeric, lstrip and rstrip make the
// token absorb the whitespace on that side, and a match that fails its
// single_word test is left as text.
func (m *addedMatcher) split(s string, dst []segment) []segment {
	if m == nil || len(m.pats) == 0 {
		return append(dst, segment{text: s, id: -1})
	}
	done := 0 // s[:done] is in dst
	for from := 0; from < len(s); {
		start, end, tok := m.next(s, from)
		if start < 0 {
			break
		}
		from = end
		if tok.singleWord && (endsWithWordChar(s[:start]) || startsWithWordChar(s[end:])) {
			continue
		}
		if tok.lstrip {
			start = max(done, len(strings.TrimRightFunc(s[:start], unicode.IsSpace)))
		}
		if tok.rstrip {
			end = len(s) - len(strings.TrimLeftFunc(s[end:], unicode.IsSpace))
			from = end
		}
		if start > done {
			dst = append(dst, segment{text: s[done:start], id: -1})
		}
		dst = append(dst, segment{id: tok.id})
		done = end
	}
	if done < len(s) {
		dst = append(dst, segment{text: s[done:], id: -1})
	}
	return dst
}

// endsWithWordChar reports whether s ends with a letter or number.
func endsWithWordChar(s string) bool {
	r, n := utf8.DecodeLastRuneInString(s)
	return n > 0 && isWordChar(r)
}

// startsWithWordChar reports whether s starts with a letter or number.
func startsWithWordChar(s string) bool {
	r, n := utf8.DecodeRuneInString(s)
	return n > 0 && isWordChar(r)
}

// isWordChar is Rust's char::is_alphanumeric, which the HF single_word
// test uses.
func isWordChar(r rune) bool {
	return unicode.IsLetter(r) || unicode.IsNumber(r) || unicode.Is(unicode.Other_Alphabetic, r)
}
