package tokenizer

import (
	"unicode/utf8"
)

// The GPT-2 byte map: byte-level BPE vocabularies spell every byte as one
// printable character, so that a token is a string of such characters. The
// printable bytes '!'..'~', '¡'..'¬' and '®'..'ÿ' stand for themselves; the
// 68 others (controls, space, DEL, NBSP, soft hyphen) become U+0100 upwards in
// byte order ("Ġ" is the space, "Ċ" the newline).
var (
	byteToRune [256]rune
	runeToByte = map[rune]byte{}
)

func init() {
	n := 0
	for b := 0; b < 256; b++ {
		if ('!' <= b && b <= '~') || (0xA1 <= b && b <= 0xAC) || (0xAE <= b && b <= 0xFF) {
			byteToRune[b] = rune(b)
		} else {
			byteToRune[b] = rune(256 + n)
			n++
		}
		runeToByte[byteToRune[b]] = byte(b)
	}
}

// byteLevelToRaw returns the bytes a byte-level token spells, and false if
// the token has a character outside the byte map.
func byteLevelToRaw(tok string) (string, bool) {
	out := make([]byte, 0, len(tok))
	for _, r := range tok {
		b, ok := runeToByte[r]
		if !ok {
			return "", false
		}
		out = append(out, b)
	}
	return string(out), true
}

// rawToByteLevel spells bytes with the byte map (the inverse of
// byteLevelToRaw).
func rawToByteLevel(raw string) string {
	out := make([]byte, 0, 2*len(raw))
	for i := 0; i < len(raw); i++ {
		out = utf8.AppendRune(out, byteToRune[raw[i]])
	}
	return string(out)
}

// appendUTF8Lossy appends b to dst as text, replacing each ill-formed
// sequence by U+FFFD the way the WHATWG Encoding standard's UTF-8 decoder
// does (one replacement per maximal subpart, as Python's "replace" and the
// browsers' TextDecoder): a truncated multi-byte sequence is one U+FFFD and
// the byte that cut it short is decoded afresh.
func appendUTF8Lossy(dst []byte, b []byte) []byte {
	if utf8.Valid(b) {
		return append(dst, b...)
	}
	for i := 0; i < len(b); {
		c := b[i]
		if c < 0x80 {
			dst = append(dst, c)
			i++
			continue
		}
		need, lo, hi := 0, byte(0x80), byte(0xBF)
		switch {
		case 0xC2 <= c && c <= 0xDF:
			need = 1
		case c == 0xE0:
			need, lo = 2, 0xA0
		case c == 0xED:
			need, hi = 2, 0x9F
		case 0xE1 <= c && c <= 0xEF:
			need = 2
		case c == 0xF0:
			need, lo = 3, 0x90
		case c == 0xF4:
			need, hi = 3, 0x8F
		case 0xF1 <= c && c <= 0xF3:
			need = 3
		default:
			dst = utf8.AppendRune(dst, utf8.RuneError)
			i++
			continue
		}
		j := i + 1
		ok := true
		for k := 0; k < need; k++ {
			if j >= len(b) || b[j] < lo || b[j] > hi {
				ok = false
				break
			}
			lo, hi = 0x80, 0xBF
			j++
		}
		if !ok {
			dst = utf8.AppendRune(dst, utf8.RuneError)
			i = j
			continue
		}
		dst = append(dst, b[i:j]...)
		i = j
	}
	return dst
}
