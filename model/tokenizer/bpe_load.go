package tokenizer

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
)

// Errors returned when reading a Hugging Face tokenizer. Each is wrapped
// with the detail (which field, which value), so test them with errors.Is.
var (
	// ErrMalformed means tokenizer.json or tokenizer_config.json is not
	// what a Hugging Face tokenizer file must be: invalid JSON (then
	// ErrBadJSON is wrapped too), a missing vocabulary, a merge of tokens
	// outside the vocabulary, an id given to two tokens.
	ErrMalformed = errors.New("tokenizer: malformed Hugging Face tokenizer")
	// ErrUnsupported means the file is well formed but uses a component
	// this package does not implement; the message names it (for example
	// "model type WordPiece" or "normalizer NFKC").
	ErrUnsupported = errors.New("tokenizer: unsupported Hugging Face tokenizer")
)

// File names of a Hugging Face model directory.
const (
	// TokenizerJSONFile holds the vocabulary, merges and pipeline.
	TokenizerJSONFile = "tokenizer.json"
	// TokenizerConfigFile holds the special tokens' roles and the chat
	// template.
	TokenizerConfigFile = "tokenizer_config.json"
)

// hfFile is the part of tokenizer.json this package reads.
type hfFile struct {
	AddedTokens  []hfAddedToken `json:"added_tokens"`
	Normalizer   *hfComponent   `json:"normalizer"`
	PreTokenizer *hfComponent   `json:"pre_tokenizer"`
	Decoder      *hfComponent   `json:"decoder"`
	Model        *hfModel       `json:"model"`
}

// hfAddedToken is one entry of "added_tokens".
type hfAddedToken struct {
	ID         *int64 `json:"id"`
	Content    string `json:"content"`
	SingleWord bool   `json:"single_word"`
	LStrip     bool   `json:"lstrip"`
	RStrip     bool   `json:"rstrip"`
	Normalized *bool  `json:"normalized"`
	Special    bool   `json:"special"`
}

// hfComponent is a normalizer, pre-tokenizer or decoder: a "type" and the
// fields of that type.
type hfComponent struct {
	Type           string         `json:"type"`
	Normalizers    []*hfComponent `json:"normalizers"`
	PreTokenizers  []*hfComponent `json:"pretokenizers"`
	Decoders       []*hfComponent `json:"decoders"`
	Pattern        *hfPattern     `json:"pattern"`
	Behavior       string         `json:"behavior"`
	Invert         bool           `json:"invert"`
	AddPrefixSpace bool           `json:"add_prefix_space"`
	UseRegex       *bool          `json:"use_regex"`
}

// hfPattern is a Split pattern: a regular expression or a literal string.
type hfPattern struct {
	Regex  *string `json:"Regex"`
	String *string `json:"String"`
}

// hfModel is "model": a BPE vocabulary and merges.
type hfModel struct {
	Type                    string           `json:"type"`
	Dropout                 *float64         `json:"dropout"`
	UnkToken                *string          `json:"unk_token"`
	ContinuingSubwordPrefix *string          `json:"continuing_subword_prefix"`
	EndOfWordSuffix         *string          `json:"end_of_word_suffix"`
	ByteFallback            bool             `json:"byte_fallback"`
	IgnoreMerges            bool             `json:"ignore_merges"`
	Vocab                   map[string]int64 `json:"vocab"`
	Merges                  json.RawMessage  `json:"merges"`
}

// hfConfig is the part of tokenizer_config.json this package reads.
type hfConfig struct {
	BOS                     json.RawMessage   `json:"bos_token"`
	EOS                     json.RawMessage   `json:"eos_token"`
	PAD                     json.RawMessage   `json:"pad_token"`
	UNK                     json.RawMessage   `json:"unk_token"`
	AddBOS                  *bool             `json:"add_bos_token"`
	AdditionalSpecialTokens []json.RawMessage `json:"additional_special_tokens"`
	ChatTemplate            json.RawMessage   `json:"chat_template"`
}

// LoadBPEDir reads a Hugging Face model directory's tokenizer.json and,
// when present, tokenizer_config.json (special-token roles and the chat
// template).
func LoadBPEDir(dir string) (*BPE, error) {
	data, err := os.ReadFile(filepath.Join(dir, TokenizerJSONFile))
	if err != nil {
		return nil, fmt.Errorf("tokenizer: %w", err)
	}
	cfg, err := os.ReadFile(filepath.Join(dir, TokenizerConfigFile))
	if errors.Is(err, os.ErrNotExist) {
		cfg = nil
	} else if err != nil {
		return nil, fmt.Errorf("tokenizer: %w", err)
	}
	t, err := NewBPE(data, cfg)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", dir, err)
	}
	return t, nil
}

// NewBPE builds a byte-level BPE tokenizer from the bytes of a
// tokenizer.json and, if not nil, of the tokenizer_config.json beside it.
// Errors wrap ErrMalformed or ErrUnsupported.
func NewBPE(tokenizerJSON, tokenizerConfig []byte) (*BPE, error) {
	var f hfFile
	if err := json.Unmarshal(tokenizerJSON, &f); err != nil {
		return nil, fmt.Errorf("%w: %s: %w: %w", ErrMalformed, TokenizerJSONFile, ErrBadJSON, err)
	}
	var cfg hfConfig
	if tokenizerConfig != nil {
		if err := json.Unmarshal(tokenizerConfig, &cfg); err != nil {
			return nil, fmt.Errorf("%w: %s: %w: %w", ErrMalformed, TokenizerConfigFile, ErrBadJSON, err)
		}
	}
	t := &BPE{}
	if f.Model != nil {
		// Ids are dense in real files; a bound keeps a hostile file from
		// making the id tables huge.
		t.maxID = int64(len(f.Model.Vocab)+len(f.AddedTokens)) + sparseIDs
	}
	if err := t.loadModel(f.Model); err != nil {
		return nil, err
	}
	if err := t.loadAdded(f.AddedTokens); err != nil {
		return nil, err
	}
	var err error
	if t.nfc, err = loadNormalizer(f.Normalizer); err != nil {
		return nil, err
	}
	if t.pre, err = loadPreTokenizer(f.PreTokenizer); err != nil {
		return nil, err
	}
	if err := checkDecoder(f.Decoder); err != nil {
		return nil, err
	}
	t.buildAddedMatchers()
	if err := t.loadConfig(&cfg); err != nil {
		return nil, err
	}
	t.cache.init()
	return t, nil
}

// sparseIDs is how far past the number of tokens an id may go.
const sparseIDs = 1 << 16

// loadModel reads the vocabulary and merges of a byte-level BPE model.
func (t *BPE) loadModel(m *hfModel) error {
	if m == nil {
		return fmt.Errorf("%w: no \"model\"", ErrMalformed)
	}
	if m.Type == "" && len(m.Merges) > 0 {
		m.Type = "BPE" // files of old tokenizers versions omit it
	}
	if m.Type != "BPE" {
		return fmt.Errorf("%w: model type %q (only byte-level BPE is)", ErrUnsupported, m.Type)
	}
	switch {
	case m.Dropout != nil && *m.Dropout > 0:
		return fmt.Errorf("%w: BPE dropout %g", ErrUnsupported, *m.Dropout)
	case m.ContinuingSubwordPrefix != nil && *m.ContinuingSubwordPrefix != "":
		return fmt.Errorf("%w: BPE continuing_subword_prefix %q", ErrUnsupported, *m.ContinuingSubwordPrefix)
	case m.EndOfWordSuffix != nil && *m.EndOfWordSuffix != "":
		return fmt.Errorf("%w: BPE end_of_word_suffix %q", ErrUnsupported, *m.EndOfWordSuffix)
	case m.ByteFallback:
		return fmt.Errorf("%w: BPE byte_fallback (a SentencePiece-style model, not byte-level)", ErrUnsupported)
	case len(m.Vocab) == 0:
		return fmt.Errorf("%w: empty model vocabulary", ErrMalformed)
	}
	t.ignoreMerges = m.IgnoreMerges
	size := 0
	for tok, id := range m.Vocab {
		if id < 0 || id >= t.maxID {
			return fmt.Errorf("%w: token %q has id %d (ids must be dense from 0)", ErrMalformed, tok, id)
		}
		size = max(size, int(id)+1)
	}
	t.tokens = make([]string, size)
	t.raw = make([]string, size)
	t.known = make([]bool, size)
	t.rawVocab = make(map[string]int32, len(m.Vocab))
	t.vocab = make(map[string]int32, len(m.Vocab))
	for tok, id := range m.Vocab {
		if t.known[id] {
			return fmt.Errorf("%w: id %d given to both %q and %q", ErrMalformed, id, t.tokens[id], tok)
		}
		t.known[id], t.tokens[id] = true, tok
		t.vocab[tok] = int32(id)
		if raw, ok := byteLevelToRaw(tok); ok {
			t.raw[id] = raw
			t.rawVocab[raw] = int32(id)
		} else {
			// Not spelt with the byte map: no byte-level text encodes to
			// it; it decodes to its characters, as the HF decoders do
			// with characters they cannot map.
			t.raw[id] = tok
		}
	}
	for b := 0; b < 256; b++ {
		id, ok := t.rawVocab[string([]byte{byte(b)})]
		if !ok {
			id = -1
		}
		t.byteIDs[b] = id
	}
	if m.UnkToken != nil {
		id, ok := t.vocab[*m.UnkToken]
		if !ok {
			return fmt.Errorf("%w: unk_token %q not in the vocabulary", ErrMalformed, *m.UnkToken)
		}
		t.unk = id
	} else {
		t.unk = -1
	}
	return t.loadMerges(m.Merges)
}

// loadMerges reads "merges" in either form: ["a b", ...] (tokenizers
// before 0.20) or [["a", "b"], ...]. A later duplicate of a pair takes
// its rank, as in the Hugging Face implementations.
func (t *BPE) loadMerges(raw json.RawMessage) error {
	trimmed := bytes.TrimSpace(raw)
	if len(trimmed) == 0 || bytes.Equal(trimmed, []byte("null")) {
		t.merges = map[uint64]merge{}
		return nil
	}
	var pairs [][2]string
	inner := bytes.TrimSpace(bytes.TrimPrefix(trimmed, []byte("[")))
	if len(inner) > 0 && inner[0] == '"' {
		var lines []string
		if err := json.Unmarshal(trimmed, &lines); err != nil {
			return fmt.Errorf("%w: merges: %w: %w", ErrMalformed, ErrBadJSON, err)
		}
		pairs = make([][2]string, len(lines))
		for i, l := range lines {
			a, b, ok := strings.Cut(l, " ")
			if !ok || strings.Contains(b, " ") {
				return fmt.Errorf("%w: merge %d %q is not two tokens separated by one space", ErrMalformed, i, l)
			}
			pairs[i] = [2]string{a, b}
		}
	} else {
		var lists [][]string
		if err := json.Unmarshal(trimmed, &lists); err != nil {
			return fmt.Errorf("%w: merges: %w: %w", ErrMalformed, ErrBadJSON, err)
		}
		pairs = make([][2]string, len(lists))
		for i, l := range lists {
			if len(l) != 2 {
				return fmt.Errorf("%w: merge %d has %d tokens, want 2", ErrMalformed, i, len(l))
			}
			pairs[i] = [2]string{l[0], l[1]}
		}
	}
	t.merges = make(map[uint64]merge, len(pairs))
	for rank, p := range pairs {
		a, okA := t.vocab[p[0]]
		b, okB := t.vocab[p[1]]
		c, okC := t.vocab[p[0]+p[1]]
		if !okA || !okB || !okC {
			return fmt.Errorf("%w: merge %d (%q %q) uses or makes a token outside the vocabulary", ErrMalformed, rank, p[0], p[1])
		}
		t.merges[pairKey(a, b)] = merge{rank: int32(rank), id: c}
	}
	return nil
}

// loadAdded reads "added_tokens": they get their ids (beyond the model's
// vocabulary or replacing an entry of it) and are split out of the text
// before the pipeline runs.
func (t *BPE) loadAdded(list []hfAddedToken) error {
	for i, a := range list {
		if a.ID == nil || *a.ID < 0 || *a.ID >= t.maxID {
			return fmt.Errorf("%w: added token %d (%q) has no valid id", ErrMalformed, i, a.Content)
		}
		if a.Content == "" {
			return fmt.Errorf("%w: added token %d has empty content", ErrMalformed, i)
		}
		id := int32(*a.ID)
		for int(id) >= len(t.tokens) {
			t.tokens = append(t.tokens, "")
			t.raw = append(t.raw, "")
			t.known = append(t.known, false)
		}
		if old := t.tokens[id]; t.known[id] && old != a.Content {
			// The token at this id is replaced: the HF implementations
			// let the added token win.
			if t.vocab[old] == id {
				delete(t.vocab, old)
			}
			if raw, ok := byteLevelToRaw(old); ok && t.rawVocab[raw] == id {
				delete(t.rawVocab, raw)
			}
		}
		t.known[id], t.tokens[id], t.raw[id] = true, a.Content, a.Content
		t.vocab[a.Content] = id
		if raw, ok := byteLevelToRaw(a.Content); ok {
			t.rawVocab[raw] = id
		}
		normalized := !a.Special
		if a.Normalized != nil {
			normalized = *a.Normalized
		}
		t.added = append(t.added, addedToken{
			content: a.Content, id: id, special: a.Special, lstrip: a.LStrip,
			rstrip: a.RStrip, singleWord: a.SingleWord, normalized: normalized,
		})
	}
	return nil
}

// loadConfig reads the roles of the special tokens and the chat template
// from tokenizer_config.json (cfg is empty when there is none).
func (t *BPE) loadConfig(cfg *hfConfig) error {
	t.bos, t.eos, t.pad = -1, -1, -1
	t.special = map[int32]bool{}
	for _, a := range t.added {
		if a.special {
			t.special[a.id] = true
		}
	}
	for _, f := range []struct {
		name string
		raw  json.RawMessage
		dst  *int32
	}{{"bos_token", cfg.BOS, &t.bos}, {"eos_token", cfg.EOS, &t.eos}, {"pad_token", cfg.PAD, &t.pad}, {"unk_token", cfg.UNK, nil}} {
		name, err := tokenName(f.raw)
		if err != nil {
			return fmt.Errorf("%w: %s %s: %w", ErrMalformed, TokenizerConfigFile, f.name, err)
		}
		if name == "" {
			continue
		}
		id, ok := t.vocab[name]
		if !ok {
			return fmt.Errorf("%w: %s %s %q is not a token", ErrMalformed, TokenizerConfigFile, f.name, name)
		}
		t.special[id] = true
		if f.dst != nil {
			*f.dst = id
		}
	}
	for _, raw := range cfg.AdditionalSpecialTokens {
		name, err := tokenName(raw)
		if err != nil {
			return fmt.Errorf("%w: %s additional_special_tokens: %w", ErrMalformed, TokenizerConfigFile, err)
		}
		if id, ok := t.vocab[name]; ok {
			t.special[id] = true
		}
	}
	if t.pad < 0 {
		t.pad = t.fallbackPAD()
	}
	t.addBOS = t.bos >= 0 && (cfg.AddBOS == nil || *cfg.AddBOS)
	tmpl, err := chatTemplateSource(cfg.ChatTemplate)
	if err != nil {
		return err
	}
	t.chatTemplate = tmpl
	return nil
}

// fallbackPAD chooses the padding id of a model without a pad_token (see
// PAD).
func (t *BPE) fallbackPAD() int32 {
	for _, name := range []string{"<|finetune_right_pad_id|>", "<|end_of_text|>", "<|endoftext|>"} {
		if id, ok := t.vocab[name]; ok && id != t.eos && id != t.bos {
			return id
		}
	}
	best := int32(-1)
	for id := range t.special {
		if id != t.eos && id != t.bos && id > best {
			best = id
		}
	}
	if best >= 0 {
		return best
	}
	return t.eos
}

// tokenName reads a special token entry of tokenizer_config.json: null, a
// string, or an AddedToken object with "content".
func tokenName(raw json.RawMessage) (string, error) {
	raw = bytes.TrimSpace(raw)
	if len(raw) == 0 || bytes.Equal(raw, []byte("null")) {
		return "", nil
	}
	var s string
	if raw[0] == '"' {
		if err := json.Unmarshal(raw, &s); err != nil {
			return "", err
		}
		return s, nil
	}
	var obj struct {
		Content string `json:"content"`
	}
	if err := json.Unmarshal(raw, &obj); err != nil {
		return "", err
	}
	return obj.Content, nil
}

// chatTemplateSource reads "chat_template": a string, or a list of
// {"name", "template"} of which "default" is used.
func chatTemplateSource(raw json.RawMessage) (string, error) {
	raw = bytes.TrimSpace(raw)
	if len(raw) == 0 || bytes.Equal(raw, []byte("null")) {
		return "", nil
	}
	if raw[0] == '"' {
		var s string
		if err := json.Unmarshal(raw, &s); err != nil {
			return "", fmt.Errorf("%w: chat_template: %w", ErrMalformed, err)
		}
		return s, nil
	}
	var named []struct {
		Name     string `json:"name"`
		Template string `json:"template"`
	}
	if err := json.Unmarshal(raw, &named); err != nil {
		return "", fmt.Errorf("%w: chat_template is neither a string nor a list of named templates: %w", ErrMalformed, err)
	}
	for _, n := range named {
		if n.Name == "default" {
			return n.Template, nil
		}
	}
	return "", nil
}

// loadNormalizer accepts no normalizer, NFC, or a Sequence of those; it
// reports whether NFC applies.
func loadNormalizer(c *hfComponent) (bool, error) {
	if c == nil {
		return false, nil
	}
	switch c.Type {
	case "NFC":
		return true, nil
	case "Sequence":
		nfc := false
		for _, n := range c.Normalizers {
			one, err := loadNormalizer(n)
			if err != nil {
				return false, err
			}
			nfc = nfc || one
		}
		return nfc, nil
	}
	return false, fmt.Errorf("%w: normalizer %q (only NFC is)", ErrUnsupported, c.Type)
}

// checkDecoder accepts the ByteLevel decoder (or none, or a Sequence of
// ByteLevel): Decode always undoes the byte map.
func checkDecoder(c *hfComponent) error {
	if c == nil {
		return nil
	}
	switch c.Type {
	case "ByteLevel":
		return nil
	case "Sequence":
		for _, d := range c.Decoders {
			if err := checkDecoder(d); err != nil {
				return err
			}
		}
		return nil
	}
	return fmt.Errorf("%w: decoder %q (only ByteLevel is)", ErrUnsupported, c.Type)
}
