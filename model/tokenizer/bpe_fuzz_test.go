package tokenizer

import (
	"errors"
	"slices"
	"strings"
	"sync"
	"testing"
	"unicode/utf8"

	"github.com/dlclark/regexp2"
	"golang.org/x/text/unicode/norm"
)

// scannerSeeds are texts that exercise every alternative of the known
// patterns.
var scannerSeeds = []string{
	"", "Hello world", "it's IT'S we'Ve they'LL I'm he'd 'x", "12345 678",
	"  leading and trailing  ", "a\n\n  b", "x\r\n\r\ny", "\t\tword", " \t\n \u00a0z",
	"!!!\n\n", " ++--\r\n", "\ufeffBOM\ufeff", "café naïve", "e\u0301\u0301",
	"日本語のテキスト", "😀👍🏽 emoji", "١٢٣ ½ Ⅻ", "\u3000\u2003x", "a\u0085b",
	"    \n        deeply()\n", "x" + strings.Repeat(" ", 50) + "y", "'", "' s",
	"\xff\xfe bad utf8 \xc3", "'\xff", "\u2028\u2029",
}

// compiled holds the known patterns compiled by regexp2, once.
var compiled sync.Map // pattern -> *regexp2.Regexp

// regexpPieces splits text with the regexp2 engine.
func regexpPieces(tb testing.TB, pattern, text string) []string {
	tb.Helper()
	v, ok := compiled.Load(pattern)
	if !ok {
		re, err := compilePattern(pattern)
		if err != nil {
			tb.Fatal(err)
		}
		v, _ = compiled.LoadOrStore(pattern, re)
	}
	re := v.(*regexp2.Regexp)
	var out []string
	(&splitPre{re: re}).split(text, func(p string) { out = append(out, p) })
	return out
}

// scannerPieces splits text with the hand-written scanner.
func scannerPieces(pattern, text string) []string {
	var out []string
	knownPattern(pattern).split(text, func(p string) { out = append(out, p) })
	return out
}

func TestKnownScannerMatchesRegexp(t *testing.T) {
	for _, pattern := range []string{Qwen2Pattern, Llama3Pattern} {
		for _, text := range scannerSeeds {
			t.Run(text, func(t *testing.T) {
				want := regexpPieces(t, pattern, text)
				if got := scannerPieces(pattern, text); !slices.Equal(got, want) {
					t.Errorf("pattern %.20q: scanner %q, regexp2 %q", pattern, got, want)
				}
			})
		}
	}
}

// FuzzKnownScanner holds the hand-written scanner equal to regexp2 on
// the Qwen2 and Llama 3 patterns.
func FuzzKnownScanner(f *testing.F) {
	for _, s := range scannerSeeds {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, text string) {
		for _, pattern := range []string{Qwen2Pattern, Llama3Pattern} {
			want := regexpPieces(t, pattern, text)
			if got := scannerPieces(pattern, text); !slices.Equal(got, want) {
				t.Fatalf("text %q: scanner %q, regexp2 %q", text, got, want)
			}
		}
	})
}

// FuzzNewBPE feeds arbitrary bytes to the tokenizer.json reader: it must
// return a tokenizer or an error wrapping ErrMalformed or ErrUnsupported,
// never panic; a tokenizer it returns must encode and decode.
func FuzzNewBPE(f *testing.F) {
	good, cfg := tinyJSON(f, tinySpec{
		merges: [][2]string{{"a", "b"}, {"ab", "c"}}, added: []map[string]any{special("<s>")},
		config: map[string]any{"eos_token": "<s>", "chat_template": "{{ messages[0].content }}"},
	})
	f.Add(good, cfg)
	f.Add([]byte(`{"model":{"type":"BPE","vocab":{"a":0,"b":1,"ab":2},"merges":["a b"]},"pre_tokenizer":{"type":"ByteLevel"}}`), []byte(nil))
	f.Add([]byte(`{"model":{"vocab":{"a":0},"merges":[["a","a"]]}}`), []byte(`{}`))
	f.Add([]byte(`{"model":{"type":"BPE","vocab":{"a":-1}}}`), []byte(`{"bos_token":{"content":"a"}}`))
	f.Add([]byte(`[]`), []byte(`null`))
	f.Fuzz(func(t *testing.T, tokJSON, cfgJSON []byte) {
		tok, err := NewBPE(tokJSON, cfgJSON)
		if err != nil {
			if !errors.Is(err, ErrMalformed) && !errors.Is(err, ErrUnsupported) {
				t.Fatalf("error wraps neither ErrMalformed nor ErrUnsupported: %v", err)
			}
			return
		}
		ids := tok.Encode("abc <s> é\n")
		_ = tok.Decode(ids)
		_ = tok.DecodeWithSpecial(append(ids, -1, 1<<30))
		_, _ = tok.RenderChat([]ChatMessage{{Role: "user", Content: "hi"}}, true)
	})
}

// FuzzBPEEncode checks the round trip Decode(Encode(s)) == NFC(s) for
// valid UTF-8 (with added tokens, through DecodeWithSpecial), on a
// tokenizer with merges, NFC and special tokens.
func FuzzBPEEncode(f *testing.F) {
	tok := newTiny(f, tinySpec{
		merges:     [][2]string{{"t", "h"}, {"th", "e"}, {" ", "the"}, {"i", "n"}, {"1", "2"}, {"\xc3", "\xa9"}},
		normalizer: map[string]any{"type": "NFC"},
		added:      []map[string]any{special("<|im_end|>"), {"content": "<think>", "special": false, "normalized": true}},
	})
	for _, s := range scannerSeeds {
		f.Add(s)
	}
	f.Add("the <|im_end|> in <think>12")
	f.Fuzz(func(t *testing.T, s string) {
		ids := tok.Encode(s)
		if !utf8.ValidString(s) {
			_ = tok.Decode(ids)
			return
		}
		want := norm.NFC.String(s)
		if got := tok.DecodeWithSpecial(ids); got != want {
			t.Fatalf("DecodeWithSpecial(Encode(%q)) = %q, want %q", s, got, want)
		}
		if !strings.Contains(want, "<|im_end|>") {
			if got := tok.Decode(ids); got != want {
				t.Fatalf("Decode(Encode(%q)) = %q, want %q", s, got, want)
			}
		}
	})
}
