package tokenizer

import (
	"fmt"
	"strings"
	"unicode/utf8"

	"github.com/dlclark/regexp2"
)

// preTokenizer cuts normalised text into the pieces BPE merges within.
// Pieces are substrings of the text, emitted in order; their bytes are
// what the byte-level model spells with the byte map.
type preTokenizer interface {
	split(s string, emit func(piece string))
}

// gpt2Pattern is the ByteLevel pre-tokenizer's own regular expression,
// used when its use_regex is true.
const gpt2Pattern = `'s|'t|'re|'ve|'m|'ll|'d| ?\p{L}+| ?\p{N}+| ?[^\s\p{L}\p{N}]+|\s+(?!\S)|\s+`

// loadPreTokenizer builds the pre-tokenizer of tokenizer.json. It must end
// in (or be) ByteLevel; before it may come Split pre-tokenizers with the
// Isolated or Removed behaviour.
func loadPreTokenizer(c *hfComponent) (preTokenizer, error) {
	if c == nil {
		return nil, fmt.Errorf("%w: no pre_tokenizer (a byte-level BPE needs ByteLevel)", ErrUnsupported)
	}
	var parts []*hfComponent
	if c.Type == "Sequence" {
		parts = c.PreTokenizers
	} else {
		parts = []*hfComponent{c}
	}
	if len(parts) == 0 || parts[len(parts)-1] == nil || parts[len(parts)-1].Type != "ByteLevel" {
		return nil, fmt.Errorf("%w: pre_tokenizer does not end in ByteLevel (only byte-level BPE is supported)", ErrUnsupported)
	}
	var seq sequencePre
	for _, p := range parts {
		if p == nil {
			return nil, fmt.Errorf("%w: null pre-tokenizer in a Sequence", ErrMalformed)
		}
		switch p.Type {
		case "Split":
			s, err := newSplitPre(p)
			if err != nil {
				return nil, err
			}
			seq = append(seq, s)
		case "ByteLevel":
			if p != parts[len(parts)-1] {
				return nil, fmt.Errorf("%w: ByteLevel pre-tokenizer before the end of the Sequence", ErrUnsupported)
			}
			if p.AddPrefixSpace {
				seq = append(seq, prefixSpacePre{})
			}
			if p.UseRegex == nil || *p.UseRegex {
				re, err := compilePattern(gpt2Pattern)
				if err != nil {
					return nil, err
				}
				seq = append(seq, &splitPre{re: re, removed: false})
			}
		default:
			return nil, fmt.Errorf("%w: pre-tokenizer %q (only Split and ByteLevel are)", ErrUnsupported, p.Type)
		}
	}
	if len(seq) == 1 {
		return seq[0], nil
	}
	return seq, nil
}

// sequencePre applies pre-tokenizers in turn, each to the pieces of the
// one before.
type sequencePre []preTokenizer

func (s sequencePre) split(text string, emit func(string)) {
	if len(s) == 0 {
		emit(text)
		return
	}
	s[0].split(text, func(piece string) { s[1:].split(piece, emit) })
}

// prefixSpacePre is ByteLevel's add_prefix_space: a piece that does not
// start with a space gets one.
type prefixSpacePre struct{}

func (prefixSpacePre) split(text string, emit func(string)) {
	if !strings.HasPrefix(text, " ") {
		text = " " + text
	}
	emit(text)
}

// splitPre is the Split pre-tokenizer: each match of the pattern is a
// piece (Isolated) or dropped (Removed); the text between matches is a
// piece too.
type splitPre struct {
	re      *regexp2.Regexp // nil with a literal pattern
	literal string
	scan    *knownScanner // hand-written matcher of a known pattern
	removed bool
}

// newSplitPre builds a Split pre-tokenizer.
func newSplitPre(c *hfComponent) (*splitPre, error) {
	if c.Invert {
		return nil, fmt.Errorf("%w: Split pre-tokenizer with invert", ErrUnsupported)
	}
	s := &splitPre{}
	switch strings.ToLower(c.Behavior) {
	case "isolated":
	case "removed":
		s.removed = true
	default:
		return nil, fmt.Errorf("%w: Split behavior %q (only Isolated and Removed are)", ErrUnsupported, c.Behavior)
	}
	switch {
	case c.Pattern == nil:
		return nil, fmt.Errorf("%w: Split pre-tokenizer without a pattern", ErrMalformed)
	case c.Pattern.Regex != nil:
		if sc := knownPattern(*c.Pattern.Regex); sc != nil {
			s.scan = sc
			return s, nil
		}
		re, err := compilePattern(*c.Pattern.Regex)
		if err != nil {
			return nil, err
		}
		s.re = re
	case c.Pattern.String != nil && *c.Pattern.String != "":
		s.literal = *c.Pattern.String
	default:
		return nil, fmt.Errorf("%w: Split pattern is neither Regex nor a non-empty String", ErrMalformed)
	}
	return s, nil
}

// compilePattern compiles a tokenizer.json regular expression (written
// for Oniguruma) with regexp2, which has the lookahead the GPT-style
// patterns need. \s, \p{L} and \p{N} mean the same in both (\s is
// Unicode White_Space); case-insensitive groups over ASCII letters are
// spelt out, as Hugging Face's JS tokenizers do, so that no Unicode case
// folding creeps in.
func compilePattern(pattern string) (*regexp2.Regexp, error) {
	re, err := regexp2.Compile(asciiFold(pattern), regexp2.None)
	if err != nil {
		return nil, fmt.Errorf("%w: Split regex %q: %w", ErrUnsupported, pattern, err)
	}
	return re, nil
}

// asciiFold rewrites each (?i:...) group without character classes into a
// plain group whose ASCII letters are classes of both cases:
// (?i:'s) becomes (?:'[sS]). Groups it cannot rewrite are left as they are.
func asciiFold(p string) string {
	var out strings.Builder
	for {
		i := strings.Index(p, "(?i:")
		if i < 0 {
			out.WriteString(p)
			return out.String()
		}
		out.WriteString(p[:i])
		body, rest, ok := foldGroup(p[i+len("(?i:"):])
		if !ok {
			out.WriteString("(?i:")
			p = p[i+len("(?i:"):]
			continue
		}
		out.WriteString("(?:")
		out.WriteString(body)
		p = rest
	}
}

// foldGroup rewrites the body of a (?i: group up to and including its
// closing parenthesis; it fails on character classes and nested groups.
func foldGroup(p string) (body, rest string, ok bool) {
	var b strings.Builder
	for i := 0; i < len(p); i++ {
		c := p[i]
		switch {
		case c == '\\':
			if i+1 >= len(p) {
				return "", "", false
			}
			_, n := utf8.DecodeRuneInString(p[i+1:])
			if strings.IndexByte("pPxu", p[i+1]) >= 0 && strings.HasPrefix(p[i+2:], "{") {
				// \p{L}, \x{41}: the braces' letters are not literals.
				if end := strings.IndexByte(p[i:], '}'); end > 0 {
					n = end - 1
				}
			}
			b.WriteString(p[i : i+1+n])
			i += n
		case c == '[' || c == '(':
			return "", "", false
		case c == ')':
			b.WriteByte(')')
			return b.String(), p[i+1:], true
		case 'a' <= c && c <= 'z' || 'A' <= c && c <= 'Z':
			lo, up := c|0x20, c&^0x20
			b.WriteString("[" + string(lo) + string(up) + "]")
		default:
			b.WriteByte(c)
		}
	}
	return "", "", false
}

func (s *splitPre) split(text string, emit func(string)) {
	switch {
	case s.scan != nil:
		s.scan.split(text, emit)
	case s.re != nil:
		s.splitRegexp(text, emit)
	default:
		s.splitLiteral(text, emit)
	}
}

// splitRegexp splits at the regular expression's matches.
func (s *splitPre) splitRegexp(text string, emit func(string)) {
	runes := []rune(text)
	// regexp2 reports rune offsets; walk the text alongside to get bytes.
	bytePos, runePos := 0, 0
	toByte := func(r int) int {
		for runePos < r {
			_, n := utf8.DecodeRuneInString(text[bytePos:])
			bytePos += n
			runePos++
		}
		return bytePos
	}
	last := 0
	m, err := s.re.FindRunesMatch(runes)
	for err == nil && m != nil {
		start := toByte(m.Index)
		end := toByte(m.Index + m.Length)
		if start > last {
			emit(text[last:start])
		}
		if end > start && !s.removed {
			emit(text[start:end])
		}
		last = end
		m, err = s.re.FindNextMatch(m)
	}
	if last < len(text) {
		emit(text[last:])
	}
}

// splitLiteral splits at the occurrences of a literal string.
func (s *splitPre) splitLiteral(text string, emit func(string)) {
	for {
		i := strings.Index(text, s.literal)
		if i < 0 {
			break
		}
		if i > 0 {
			emit(text[:i])
		}
		if !s.removed {
			emit(s.literal)
		}
		text = text[i+len(s.literal):]
	}
	if text != "" {
		emit(text)
	}
}
