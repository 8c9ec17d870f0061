package main

import (
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"math/rand/v2"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/wsgrpo/wsgrpo/model/hf"
	"github.com/wsgrpo/wsgrpo/model/hf/hftest"
	"github.com/wsgrpo/wsgrpo/model/labeler"
	"github.com/wsgrpo/wsgrpo/model/ort/orttest"
	"github.com/wsgrpo/wsgrpo/model/tokenizer"
	"github.com/wsgrpo/wsgrpo/tracelog/chtest"
)

// hfLabelerArtifact fits a preference model on random pairs of the
// features of the Hugging Face model in dir (the kind train fits by
// default) and returns the directory it is saved in: a labeler.artifact
// for a ws-grpo run of a random model, which a warm-up could not fit (it
// solves no prompt).
func hfLabelerArtifact(t *testing.T, model string) string {
	t.Helper()
	rt := orttest.Runtime(t)
	fc := labeler.DefaultConfig()
	f, err := referenceFeaturizer(rt, model, "", labeler.FeaturizerOptions{Features: fc.Features})
	if err != nil {
		t.Fatal(err)
	}
	defer func() { _ = f.Close() }()
	rng := rand.New(rand.NewPCG(1, 2))
	draw := func() []float32 {
		v := make([]float32, f.Width())
		for i := range v {
			v[i] = float32(rng.NormFloat64())
		}
		return v
	}
	var pairs []labeler.Pair
	for g := range 4 {
		for range 4 {
			pairs = append(pairs, labeler.Pair{Group: fmt.Sprintf("g%d", g), Pos: draw(), Neg: draw()})
		}
	}
	fc.Hidden, fc.Epochs, fc.Reference, fc.Features = 8, 1, f.Reference(), f.Features()
	m, _, err := labeler.FitPairs(rt, pairs, fc, nil)
	if err != nil {
		t.Fatal(err)
	}
	dir := filepath.Join(t.TempDir(), "labeler")
	if err := labeler.Save(dir, m); err != nil {
		t.Fatal(err)
	}
	return dir
}

// TestTrainHF trains a tiny random Hugging Face checkpoint (Qwen3, the
// byte-level test tokenizer, bf16 on disk) for two updates end to end,
// with the grpo shaper and with ws-grpo (a preference model fitted on the
// model's features, labeler.artifact): embedded NATS, the sampler stage
// sampling the published bundles in ONNX Runtime, the labeler scoring
// prefixes with the model's features, the learner training through
// hf.FullGraph, the trajectory log. Versions advance, the trained policy
// is saved in Hugging Face layout with its tokenizer, its weights differ
// from the initial ones, and `wsgrpo eval --model` samples it.
func TestTrainHF(t *testing.T) {
	t.Setenv("WSGRPO_CHDB_LIB", chtest.Library(t))
	orttest.Runtime(t)
	model := writeHFModel(t, tinyHFTokenizer(t, false), 0, 1)
	for _, shaper := range []string{"grpo", "ws-grpo"} {
		t.Run(shaper, func(t *testing.T) {
			trainHF(t, model, shaper)
		})
	}
}

// trainHF is TestTrainHF with one shaper.
func trainHF(t *testing.T, model, shaper string) {
	dir := filepath.Join(t.TempDir(), "run")
	cfg := filepath.Join(t.TempDir(), "run.yaml")
	extra := ""
	if shaper == "ws-grpo" {
		extra = "labeler:\n  artifact: " + hfLabelerArtifact(t, model) + "\n"
	}
	// A random model solves no arith prompt: under grpo every advantage
	// is 0, so the weight decay is what surely moves the weights (the
	// stage test, stages/learner's TestLearnerHF, trains on non-zero
	// advantages).
	yaml := fmt.Sprintf(`run: hftrain
sampler:
  samples: 4
  max_new_tokens: 12
train:
  model: %s
  steps: 2
  prompts_per_step: 2
  eval_prompts: 2
  eval_samples: 0
shaping:
  shaper: %s
learner:
  max_staleness: 2
  checkpoint_every: 1
  weight_decay: 0.1
  lr: 0.001
%s`, model, shaper, extra)
	if err := os.WriteFile(cfg, []byte(yaml), 0o644); err != nil {
		t.Fatal(err)
	}
	got, err := execute(t, newTrainCmd(), "--config", cfg, "--dir", dir)
	if err != nil {
		t.Fatalf("%v\n%s", err, got)
	}
	for _, want := range []string{"before: greedy accuracy", "training run", "last step:", "greedy test eval:", "trained policy:"} {
		if !strings.Contains(got, want) {
			t.Errorf("summary lacks %q:\n%s", want, got)
		}
	}
	steps, err := execute(t, newSQLCmd(), "--run", dir, "--format", "csv",
		"SELECT count(), max(step), min(policy_version) > 1, max(policy_version) FROM steps_dedup WHERE run_id = 'hftrain' AND skipped = 0")
	if err != nil || !strings.Contains(steps, "2,2,1,3") {
		t.Fatalf("steps table: %v\n%s", err, steps)
	}
	rows, err := execute(t, newSQLCmd(), "--run", dir, "--format", "csv",
		"SELECT count(), countIf(shaper = '"+shaper+"'), countIf(labeler != '') FROM trajectories_dedup WHERE run_id = 'hftrain'")
	if err != nil {
		t.Fatalf("%v\n%s", err, rows)
	}
	var n, shaped, labeled int
	if _, err := fmt.Sscanf(lastLine(rows), "%d,%d,%d", &n, &shaped, &labeled); err != nil || n < 2*2*4 || shaped != n {
		t.Fatalf("trajectory log: %v %q; want >= 16 rows, all shaped by %s", err, rows, shaper)
	}
	if want := map[bool]int{true: n}[shaper == "ws-grpo"]; labeled != want {
		t.Fatalf("%d of %d rows carry a labeler, want %d", labeled, n, want)
	}

	policy := filepath.Join(dir, "policy")
	trained, err := hf.LoadBundle(policy)
	if err != nil {
		t.Fatalf("trained policy: %v", err)
	}
	for _, f := range []string{tokenizer.TokenizerJSONFile, tokenizer.TokenizerConfigFile, hf.GenerationConfigFile} {
		if _, ok := trained.Files[f]; !ok {
			t.Errorf("the trained policy lacks %s", f)
		}
	}
	init, err := hf.Load(model)
	if err != nil {
		t.Fatal(err)
	}
	changed := 0
	for _, name := range init.Weights.Names() {
		if !slices.Equal(init.Weights[name].Data, trained.Checkpoint.Weights[name].Data) {
			changed++
		}
	}
	if changed == 0 {
		t.Fatal("training changed no weight")
	}
	if layout, err := detectModelLayout(policy); err != nil || layout != layoutHF {
		t.Fatalf("the trained policy is a %v (%v), want a Hugging Face checkpoint", layout, err)
	}
	out, err := execute(t, newEvalCmd(), "--model", policy, "--task", "arith", "--n", "2", "--json", "--run", "hfeval", "--dir", filepath.Join(t.TempDir(), "eval"))
	if err != nil {
		t.Fatalf("eval of the trained policy: %v\n%s", err, out)
	}
	var rep evalReport
	if err := json.Unmarshal([]byte(out), &rep); err != nil || rep.N != 2 || rep.PromptErrors != 0 || rep.MeanTokens <= 0 {
		t.Fatalf("eval of the trained policy: %v %s", err, out)
	}
}

// TestTrainHFRefusesBadModel: a Hugging Face train.model whose tokenizer
// does not fit it is refused up front, with ErrConfig, naming train.model.
func TestTrainHFRefusesBadModel(t *testing.T) {
	t.Setenv("WSGRPO_CHDB_LIB", chtest.Library(t))
	tok := tinyHFTokenizer(t, false)
	noTokenizer := writeHFModel(t, tok, 0, 1)
	if err := os.Remove(filepath.Join(noTokenizer, tokenizer.TokenizerJSONFile)); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		name  string
		model string
		want  error
	}{
		{"vocabulary smaller than the tokenizer's", writeHFModel(t, tok, 200, 1), ErrModelVocab},
		{"no tokenizer.json", noTokenizer, fs.ErrNotExist},
	} {
		t.Run(tc.name, func(t *testing.T) {
			cfg := filepath.Join(t.TempDir(), "run.yaml")
			if err := os.WriteFile(cfg, []byte("run: hfbad\nshaping:\n  shaper: grpo\ntrain:\n  model: "+tc.model+"\n"), 0o644); err != nil {
				t.Fatal(err)
			}
			_, err := execute(t, newTrainCmd(), "--config", cfg, "--dir", filepath.Join(t.TempDir(), "run"))
			if !errors.Is(err, tc.want) || !errors.Is(err, ErrConfig) || !strings.Contains(err.Error(), "train.model") {
				t.Fatalf("err = %v, want %v and ErrConfig naming train.model", err, tc.want)
			}
		})
	}
}

// TestTrainGSM8KChat is the paper's setting on a user's machine, in
// miniature: `wsgrpo train --model DIR --data gsm8k.jsonl --chat` with a
// tiny random Hugging Face chat model and GSM8K's own file format
// ("question", "answer" ending in "#### N"). The flags set train.model,
// train.data, train.data_task and sampler.chat over the config file's
// values; every logged row is a GSM8K item whose prompt ids the sampler
// put in the model's chat template.
func TestTrainGSM8KChat(t *testing.T) {
	t.Setenv("WSGRPO_CHDB_LIB", chtest.Library(t))
	orttest.Runtime(t)
	model := writeHFModel(t, tinyHFTokenizer(t, true), 0, 1)
	data := filepath.Join(t.TempDir(), "gsm8k.jsonl")
	var lines []string
	for i := range 6 {
		q := fmt.Sprintf("%d hens lay %d eggs. How many?", i+2, i+3)
		lines = append(lines, fmt.Sprintf(`{"question": %q, "answer": "%d*%d = <<%d*%d=%d>>%d\n#### %d"}`, q, i+2, i+3, i+2, i+3, (i+2)*(i+3), (i+2)*(i+3), (i+2)*(i+3)))
	}
	if err := os.WriteFile(data, []byte(strings.Join(lines, "\n")+"\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	cfg := filepath.Join(t.TempDir(), "run.yaml")
	if err := os.WriteFile(cfg, []byte(`run: gsm8k
sampler:
  samples: 2
  max_new_tokens: 8
train:
  model: not-this-one
  steps: 2
  prompts_per_step: 2
shaping:
  shaper: grpo
learner:
  max_staleness: 2
`), 0o644); err != nil {
		t.Fatal(err)
	}
	dir := filepath.Join(t.TempDir(), "run")
	got, err := execute(t, newTrainCmd(), "--config", cfg, "--dir", dir, "--model", model, "--data", data, "--data-task", "gsm8k", "--chat")
	if err != nil {
		t.Fatalf("%v\n%s", err, got)
	}
	if !strings.Contains(got, "trained policy:") || !strings.Contains(got, "--data TEST.jsonl --data-task gsm8k --chat") {
		t.Errorf("summary lacks the trained policy and how to evaluate it on GSM8K-format data:\n%s", got)
	}
	rows, err := execute(t, newSQLCmd(), "--run", dir, "--format", "csv",
		fmt.Sprintf("SELECT count(), countIf(task = 'gsm8k'), countIf(prompt LIKE '%% hens lay %%'), countIf(prompt_token_ids[1] = %d) FROM trajectories_dedup WHERE run_id = 'gsm8k'", hftest.Start))
	if err != nil {
		t.Fatalf("%v\n%s", err, rows)
	}
	var n, gsm, hens, chat int
	if _, err := fmt.Sscanf(lastLine(rows), "%d,%d,%d,%d", &n, &gsm, &hens, &chat); err != nil || n < 2*2*2 || gsm != n || hens != n || chat != n {
		t.Fatalf("trajectory log: %v %q; want >= 8 rows, every one a gsm8k item in the chat template", err, rows)
	}
}

// TestTrainChatRefused: --chat on a model that cannot put prompts in a chat
// template is refused before the run starts, with ErrConfig naming
// sampler.chat.
func TestTrainChatRefused(t *testing.T) {
	for _, tc := range []struct {
		name, model string
		want        error
	}{
		{"no chat template", writeHFModel(t, tinyHFTokenizer(t, false), 0, 1), tokenizer.ErrNoChatTemplate},
		{"wsgrpo checkpoint", tinyModel(t), ErrConfig},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := execute(t, newTrainCmd(), "--run", "chatbad", "--dir", filepath.Join(t.TempDir(), "run"), "--model", tc.model, "--chat", "--steps", "1")
			if !errors.Is(err, tc.want) || !errors.Is(err, ErrConfig) || !strings.Contains(err.Error(), "sampler.chat") {
				t.Fatalf("err = %v, want %v and ErrConfig naming sampler.chat", err, tc.want)
			}
		})
	}
}
