package tokenizer

import (
	"encoding/json"
	"errors"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
)

func TestBPEMerges(t *testing.T) {
	helloMerges := [][2]string{{"l", "l"}, {"h", "e"}, {"he", "ll"}, {"hell", "o"}, {" ", "w"}, {"o", "r"}}
	tests := []struct {
		name string
		spec tinySpec
		text string
		want []string
	}{
		{"pairs", tinySpec{merges: helloMerges}, "hello world", []string{"hello", " w", "or", "l", "d"}},
		{"strings", tinySpec{merges: helloMerges, stringMerges: true}, "hello world", []string{"hello", " w", "or", "l", "d"}},
		// Rank decides, not position: "b c" (rank 0) beats "a b".
		{"lowest rank first", tinySpec{merges: [][2]string{{"b", "c"}, {"a", "b"}}}, "abc", []string{"a", "bc"}},
		{"other order", tinySpec{merges: [][2]string{{"a", "b"}, {"b", "c"}}}, "abc", []string{"ab", "c"}},
		// Equal ranks merge leftmost first: "aaa" -> "aa" "a".
		{"leftmost among equals", tinySpec{merges: [][2]string{{"a", "a"}}}, "aaa", []string{"aa", "a"}},
		{"chain", tinySpec{merges: [][2]string{{"a", "a"}, {"aa", "aa"}}}, "aaaaa", []string{"aaaa", "a"}},
		// ignore_merges: a pre-token in the vocabulary is taken whole even
		// though no merge makes it.
		{"ignore_merges", tinySpec{extra: []string{"xyz"}, ignoreMerges: true}, "xyz", []string{"xyz"}},
		{"merges not ignored", tinySpec{extra: []string{"xyz"}}, "xyz", []string{"x", "y", "z"}},
		{"bytes of non-ASCII", tinySpec{}, "é", []string{"\xc3", "\xa9"}},
		{"pre-tokens", tinySpec{}, "a  1\n", []string{"a", " ", " ", "1", "\n"}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			tok := newTiny(t, tc.spec)
			ids := tok.Encode(tc.text)
			if got := tokenStrings(t, tok, ids); !slices.Equal(got, tc.want) {
				t.Errorf("Encode(%q) = %q, want %q", tc.text, got, tc.want)
			}
			if got := tok.Decode(ids); got != tc.text {
				t.Errorf("Decode = %q, want %q", got, tc.text)
			}
		})
	}
}

func TestBPEAddedTokens(t *testing.T) {
	tests := []struct {
		name  string
		added []map[string]any
		nfc   bool
		text  string
		want  []string
	}{
		{"split out", []map[string]any{special("<s>")}, false, "a<s>b", []string{"a", "<s>", "b"}},
		{"longest wins", []map[string]any{special("<s>"), special("<s>x")}, false, "<s>x<s>", []string{"<s>x", "<s>"}},
		{"lstrip", []map[string]any{special("<m>", "lstrip")}, false, "a  <m> b", []string{"a", "<m>", " b"}},
		{"rstrip", []map[string]any{special("<m>", "rstrip")}, false, "a <m>  b", []string{"a ", "<m>", "b"}},
		{"single_word alone", []map[string]any{special("ab", "single_word")}, false, "x ab y", []string{"x ", "ab", " y"}},
		{"single_word inside a word", []map[string]any{special("ab", "single_word")}, false, "xab", []string{"xab"}},
		// A normalized token is matched after NFC: "e\u0301" finds "é".
		{"normalized", []map[string]any{{"content": "é", "special": false, "normalized": true}}, true, "e\u0301!", []string{"é", "!"}},
		{"not normalized", []map[string]any{special("é")}, true, "e\u0301", []string{"é"}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			spec := tinySpec{added: tc.added}
			if tc.nfc {
				spec.normalizer = map[string]any{"type": "NFC"}
			}
			tok := newTiny(t, spec)
			if got := segments(tok, tok.Encode(tc.text)); !slices.Equal(got, tc.want) {
				t.Errorf("Encode(%q) = %q, want %q", tc.text, got, tc.want)
			}
		})
	}
}

// segments shows ids as the added tokens' content and the text of each
// run of other tokens between them.
func segments(tok *BPE, ids []int32) []string {
	var out []string
	run := []int32{}
	flush := func() {
		if len(run) > 0 {
			out = append(out, tok.DecodeWithSpecial(run))
			run = run[:0]
		}
	}
	for _, id := range ids {
		if int(id) >= 256 {
			flush()
			out = append(out, tok.DecodeWithSpecial([]int32{id}))
		} else {
			run = append(run, id)
		}
	}
	flush()
	return out
}

func TestBPESpecialRoles(t *testing.T) {
	added := []map[string]any{special("<|endoftext|>"), special("<|im_end|>"), special("<bos>"),
		{"content": "<think>", "special": false, "normalized": false}}
	tests := []struct {
		name          string
		config        map[string]any
		bos, eos, pad string
		addsBOS       bool
	}{
		{"qwen-like", map[string]any{"bos_token": nil, "eos_token": "<|im_end|>", "pad_token": "<|endoftext|>"}, "", "<|im_end|>", "<|endoftext|>", false},
		{"llama-like", map[string]any{"bos_token": "<bos>", "eos_token": map[string]any{"content": "<|im_end|>", "__type": "AddedToken"}}, "<bos>", "<|im_end|>", "<|endoftext|>", true},
		{"add_bos_token false", map[string]any{"bos_token": "<bos>", "add_bos_token": false}, "<bos>", "", "<|endoftext|>", false},
		{"no config", nil, "", "", "<|endoftext|>", false},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			tok := newTiny(t, tinySpec{added: added, config: tc.config})
			for _, r := range []struct {
				role string
				id   int32
				want string
			}{{"BOS", tok.BOS(), tc.bos}, {"EOS", tok.EOS(), tc.eos}, {"PAD", tok.PAD(), tc.pad}} {
				want := int32(-1)
				if r.want != "" {
					want, _ = tok.TokenID(r.want)
				}
				if r.id != want {
					t.Errorf("%s = %d, want %d (%q)", r.role, r.id, want, r.want)
				}
			}
			if tok.HasBOS() != (tc.bos != "") || tok.AddsBOS() != tc.addsBOS {
				t.Errorf("HasBOS %v AddsBOS %v", tok.HasBOS(), tok.AddsBOS())
			}
			think, _ := tok.TokenID("<think>")
			end, _ := tok.TokenID("<|im_end|>")
			ids := []int32{think, end}
			if got := tok.Decode(ids); got != "<think>" {
				t.Errorf("Decode skips only special tokens: got %q", got)
			}
			if got := tok.DecodeWithSpecial(ids); got != "<think><|im_end|>" {
				t.Errorf("DecodeWithSpecial = %q", got)
			}
			if !tok.IsSpecial(end) || tok.IsSpecial(think) || !slices.Contains(tok.SpecialIDs(), end) {
				t.Errorf("special ids %v", tok.SpecialIDs())
			}
			if tok.VocabSize() != 256+len(added) {
				t.Errorf("VocabSize %d", tok.VocabSize())
			}
		})
	}
}

func TestBPEErrors(t *testing.T) {
	good, _ := tinyJSON(t, tinySpec{merges: [][2]string{{"a", "b"}}})
	edit := func(f func(doc map[string]any)) []byte {
		var doc map[string]any
		if err := json.Unmarshal(good, &doc); err != nil {
			t.Fatal(err)
		}
		f(doc)
		b, err := json.Marshal(doc)
		if err != nil {
			t.Fatal(err)
		}
		return b
	}
	model := func(doc map[string]any) map[string]any { return doc["model"].(map[string]any) }
	tests := []struct {
		name   string
		json   []byte
		config []byte
		want   []error
		detail string
	}{
		{"not JSON", []byte(`{"model": `), nil, []error{ErrMalformed, ErrBadJSON}, "tokenizer.json"},
		{"config not JSON", good, []byte(`[`), []error{ErrMalformed, ErrBadJSON}, "tokenizer_config.json"},
		{"no model", edit(func(d map[string]any) { delete(d, "model") }), nil, []error{ErrMalformed}, "model"},
		{"WordPiece", edit(func(d map[string]any) { model(d)["type"] = "WordPiece" }), nil, []error{ErrUnsupported}, "WordPiece"},
		{"byte_fallback", edit(func(d map[string]any) { model(d)["byte_fallback"] = true }), nil, []error{ErrUnsupported}, "byte_fallback"},
		{"empty vocab", edit(func(d map[string]any) { model(d)["vocab"] = map[string]any{} }), nil, []error{ErrMalformed}, "vocabulary"},
		{"merge outside vocab", edit(func(d map[string]any) { model(d)["merges"] = []any{"x q"} }), nil, []error{ErrMalformed}, "merge 0"},
		{"merge not a pair", edit(func(d map[string]any) { model(d)["merges"] = []any{[]any{"a"}} }), nil, []error{ErrMalformed}, "2"},
		{"merge string", edit(func(d map[string]any) { model(d)["merges"] = []any{"ab"} }), nil, []error{ErrMalformed}, "one space"},
		{"NFKC", edit(func(d map[string]any) { d["normalizer"] = map[string]any{"type": "NFKC"} }), nil, []error{ErrUnsupported}, "NFKC"},
		{"Metaspace", edit(func(d map[string]any) { d["pre_tokenizer"] = map[string]any{"type": "Metaspace"} }), nil, []error{ErrUnsupported}, "ByteLevel"},
		{"Digits", edit(func(d map[string]any) {
			d["pre_tokenizer"] = map[string]any{"type": "Sequence", "pretokenizers": []any{map[string]any{"type": "Digits"}, map[string]any{"type": "ByteLevel"}}}
		}), nil, []error{ErrUnsupported}, "Digits"},
		{"bad regex", edit(func(d map[string]any) {
			d["pre_tokenizer"].(map[string]any)["pretokenizers"].([]any)[0].(map[string]any)["pattern"] = map[string]any{"Regex": "(a"}
		}), nil, []error{ErrUnsupported}, "regex"},
		{"Contiguous", edit(func(d map[string]any) {
			d["pre_tokenizer"].(map[string]any)["pretokenizers"].([]any)[0].(map[string]any)["behavior"] = "Contiguous"
		}), nil, []error{ErrUnsupported}, "Contiguous"},
		{"WordPiece decoder", edit(func(d map[string]any) { d["decoder"] = map[string]any{"type": "WordPiece"} }), nil, []error{ErrUnsupported}, "decoder"},
		{"added without id", edit(func(d map[string]any) { d["added_tokens"] = []any{map[string]any{"content": "<x>"}} }), nil, []error{ErrMalformed}, "id"},
		{"unknown eos", good, []byte(`{"eos_token": "<nope>"}`), []error{ErrMalformed}, "eos_token"},
		{"bad chat_template", good, []byte(`{"chat_template": 3}`), []error{ErrMalformed}, "chat_template"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			_, err := NewBPE(tc.json, tc.config)
			if err == nil {
				t.Fatal("no error")
			}
			for _, w := range tc.want {
				if !errors.Is(err, w) {
					t.Errorf("error %q does not wrap %q", err, w)
				}
			}
			if !strings.Contains(err.Error(), tc.detail) {
				t.Errorf("error %q does not say %q", err, tc.detail)
			}
		})
	}
}

func TestAppendUTF8Lossy(t *testing.T) {
	tests := []struct{ in, want string }{
		{"abc", "abc"},
		{"\xe2\x82", "\ufffd"},
		{"\xe2\x82A", "\ufffdA"},
		{"\xe2\x82\xac", "€"},
		{"\xff\xfe", "\ufffd\ufffd"},
		{"\xed\xa0\x80", "\ufffd\ufffd\ufffd"},
		{"\xf0\x9f\x98", "\ufffd"},
		{"\xf0\x9f\x98\x80\xf0", "😀\ufffd"},
		{"\xc0\xaf", "\ufffd\ufffd"},
		{"\xf4\x90\x80\x80", "\ufffd\ufffd\ufffd\ufffd"},
		{"\xe0\x80", "\ufffd\ufffd"},
		{"\xc3", "\ufffd"},
		{"\xc3\xe2\x82\xac", "\ufffd€"},
	}
	for _, tc := range tests {
		t.Run(tc.in, func(t *testing.T) {
			if got := string(appendUTF8Lossy(nil, []byte(tc.in))); got != tc.want {
				t.Errorf("got %q, want %q", got, tc.want)
			}
		})
	}
}

func TestASCIIFold(t *testing.T) {
	tests := []struct{ in, want string }{
		{`(?i:'s|'t)|x`, `(?:'[sS]|'[tT])|x`},
		{`a(?i:\p{L}b)`, `a(?:\p{L}[bB])`},
		{`(?i:[a-z])`, `(?i:[a-z])`},
		{`no groups`, `no groups`},
	}
	for _, tc := range tests {
		t.Run(tc.in, func(t *testing.T) {
			if got := asciiFold(tc.in); got != tc.want {
				t.Errorf("got %q, want %q", got, tc.want)
			}
		})
	}
}

func TestBPEByteMap(t *testing.T) {
	seen := map[rune]bool{}
	for b := 0; b < 256; b++ {
		r := byteToRune[b]
		if seen[r] {
			t.Fatalf("rune %q used twice", r)
		}
		seen[r] = true
	}
	for _, tc := range []struct {
		b    byte
		want rune
	}{{' ', 'Ġ'}, {'\n', 'Ċ'}, {'a', 'a'}, {0, 'Ā'}, {0xAD, 'Ń'}} {
		if got := byteToRune[tc.b]; got != tc.want {
			t.Errorf("byte %#x -> %q, want %q", tc.b, got, tc.want)
		}
	}
}

func TestBPEConcurrentEncode(t *testing.T) {
	tok := newTiny(t, tinySpec{merges: [][2]string{{"a", "b"}, {"ab", "c"}, {" ", "ab"}}})
	texts := []string{"abc abc", "ab ab ab", "cab abc a", "ééé abc"}
	want := make([][]int32, len(texts))
	for i, s := range texts {
		want[i] = tok.Encode(s)
	}
	var wg sync.WaitGroup
	errs := make(chan string, 8)
	for g := range 8 {
		wg.Go(func() {
			for i := range 200 {
				k := (g + i) % len(texts)
				if got := tok.Encode(texts[k]); !slices.Equal(got, want[k]) {
					errs <- texts[k]
					return
				}
			}
		})
	}
	wg.Wait()
	close(errs)
	for s := range errs {
		t.Errorf("concurrent Encode(%q) differs", s)
	}
}

func TestBPEPreTokenizers(t *testing.T) {
	byteLevel := func(prefix, regex bool) map[string]any {
		return map[string]any{"type": "ByteLevel", "add_prefix_space": prefix, "use_regex": regex}
	}
	split := func(pattern map[string]any, behavior string) map[string]any {
		return map[string]any{"type": "Split", "pattern": pattern, "behavior": behavior, "invert": false}
	}
	seq := func(p ...any) map[string]any { return map[string]any{"type": "Sequence", "pretokenizers": p} }
	tests := []struct {
		name string
		pre  any
		text string
		want []string
	}{
		{"GPT-2 regex of ByteLevel", byteLevel(false, true), "Hello world's  12!", []string{"Hello", " world", "'s", " ", " 12", "!"}},
		{"add_prefix_space", byteLevel(true, true), "Hi", []string{" Hi"}},
		{"ByteLevel alone keeps the text whole", byteLevel(false, false), "a b", []string{"a b"}},
		{"Llama 3 digits", seq(split(map[string]any{"Regex": Llama3Pattern}, "Isolated"), byteLevel(false, false)), "1234567", []string{"123", "456", "7"}},
		{"Qwen digits", seq(split(map[string]any{"Regex": Qwen2Pattern}, "Isolated"), byteLevel(false, false)), "123", []string{"1", "2", "3"}},
		{"other regex by regexp2", seq(split(map[string]any{"Regex": `\d+(?=x)`}, "Isolated"), byteLevel(false, false)), "a12x3", []string{"a", "12", "x3"}},
		{"literal Removed", seq(split(map[string]any{"String": "--"}, "Removed"), byteLevel(false, false)), "a--b--", []string{"a", "b"}},
		{"literal Isolated", seq(split(map[string]any{"String": "--"}, "Isolated"), byteLevel(false, false)), "a--b", []string{"a", "--", "b"}},
		{"regex Removed", seq(split(map[string]any{"Regex": `\s+`}, "removed"), byteLevel(false, false)), "a  b\tc", []string{"a", "b", "c"}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			tok := newTiny(t, tinySpec{preTokenizer: tc.pre})
			var got []string
			tok.pre.split(tc.text, func(p string) { got = append(got, p) })
			if !slices.Equal(got, tc.want) {
				t.Errorf("pieces %q, want %q", got, tc.want)
			}
		})
	}
}

func TestLoadBPEDir(t *testing.T) {
	tj, cj := tinyJSON(t, tinySpec{merges: [][2]string{{"h", "i"}}, added: []map[string]any{special("</s>")}, config: map[string]any{"eos_token": "</s>"}})
	tests := []struct {
		name    string
		files   map[string][]byte
		wantErr error
	}{
		{"both files", map[string][]byte{TokenizerJSONFile: tj, TokenizerConfigFile: cj}, nil},
		{"no config", map[string][]byte{TokenizerJSONFile: tj}, nil},
		{"no tokenizer.json", map[string][]byte{TokenizerConfigFile: cj}, os.ErrNotExist},
		{"bad tokenizer.json", map[string][]byte{TokenizerJSONFile: []byte("{")}, ErrMalformed},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			dir := t.TempDir()
			for name, data := range tc.files {
				if err := os.WriteFile(filepath.Join(dir, name), data, 0o600); err != nil {
					t.Fatal(err)
				}
			}
			tok, err := LoadBPEDir(dir)
			if tc.wantErr != nil {
				if !errors.Is(err, tc.wantErr) || !strings.Contains(err.Error(), dir) {
					t.Fatalf("error %v, want %v naming %s", err, tc.wantErr, dir)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if got := tok.Decode(tok.Encode("hi")); got != "hi" {
				t.Errorf("round trip %q", got)
			}
		})
	}
}
