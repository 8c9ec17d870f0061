package tokenizer

import (
	"encoding/json"
	"strings"
	"testing"
)

// tinySpec describes a small byte-level BPE tokenizer.json for tests: the
// 256 byte tokens (ids 0..255 in byte order), then one token per merge
// result in merge order, then the added tokens.
type tinySpec struct {
	merges       [][2]string // raw (not byte-mapped) pairs
	stringMerges bool        // write merges as "a b" strings
	extra        []string    // raw tokens without a merge
	ignoreMerges bool
	normalizer   any
	pattern      string // Split regex ("" for Qwen2Pattern)
	preTokenizer any    // replaces the Split + ByteLevel sequence
	added        []map[string]any
	config       map[string]any
}

// tinyJSON returns the tokenizer.json and tokenizer_config.json of spec.
func tinyJSON(tb testing.TB, spec tinySpec) (tokJSON, cfgJSON []byte) {
	tb.Helper()
	vocab := map[string]int{}
	for b := 0; b < 256; b++ {
		vocab[rawToByteLevel(string([]byte{byte(b)}))] = b
	}
	var merges []any
	for _, m := range spec.merges {
		a, b := rawToByteLevel(m[0]), rawToByteLevel(m[1])
		if _, ok := vocab[a+b]; !ok {
			vocab[a+b] = len(vocab)
		}
		if spec.stringMerges {
			merges = append(merges, a+" "+b)
		} else {
			merges = append(merges, []string{a, b})
		}
	}
	for _, e := range spec.extra {
		vocab[rawToByteLevel(e)] = len(vocab)
	}
	pattern := spec.pattern
	if pattern == "" {
		pattern = Qwen2Pattern
	}
	added := spec.added
	for i, a := range added {
		if _, ok := a["id"]; !ok {
			a["id"] = len(vocab) + i
		}
	}
	pre := any(map[string]any{"type": "Sequence", "pretokenizers": []any{
		map[string]any{"type": "Split", "pattern": map[string]any{"Regex": pattern}, "behavior": "Isolated", "invert": false},
		map[string]any{"type": "ByteLevel", "add_prefix_space": false, "trim_offsets": false, "use_regex": false},
	}})
	if spec.preTokenizer != nil {
		pre = spec.preTokenizer
	}
	doc := map[string]any{
		"version":       "1.0",
		"added_tokens":  added,
		"normalizer":    spec.normalizer,
		"pre_tokenizer": pre,
		"decoder":       map[string]any{"type": "ByteLevel"},
		"model": map[string]any{
			"type": "BPE", "ignore_merges": spec.ignoreMerges, "vocab": vocab, "merges": merges,
		},
	}
	var err error
	if tokJSON, err = json.Marshal(doc); err != nil {
		tb.Fatal(err)
	}
	if spec.config != nil {
		if cfgJSON, err = json.Marshal(spec.config); err != nil {
			tb.Fatal(err)
		}
	}
	return tokJSON, cfgJSON
}

// newTiny builds the tokenizer of spec.
func newTiny(tb testing.TB, spec tinySpec) *BPE {
	tb.Helper()
	tj, cj := tinyJSON(tb, spec)
	tok, err := NewBPE(tj, cj)
	if err != nil {
		tb.Fatal(err)
	}
	return tok
}

// tokenStrings returns the raw text of each id, for readable failures.
func tokenStrings(tb testing.TB, tok *BPE, ids []int32) []string {
	tb.Helper()
	out := make([]string, len(ids))
	for i, id := range ids {
		out[i] = tok.raw[id]
	}
	return out
}

// special returns an added-token entry.
func special(content string, flags ...string) map[string]any {
	m := map[string]any{"content": content, "special": true, "normalized": false,
		"lstrip": false, "rstrip": false, "single_word": false}
	for _, f := range flags {
		if v, ok := strings.CutPrefix(f, "!"); ok {
			m[v] = false
		} else {
			m[f] = true
		}
	}
	return m
}
