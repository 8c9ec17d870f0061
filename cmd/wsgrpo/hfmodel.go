package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"path/filepath"

	"github.com/wsgrpo/wsgrpo/model/checkpoint"
	"github.com/wsgrpo/wsgrpo/model/hf"
	"github.com/wsgrpo/wsgrpo/model/labeler"
	"github.com/wsgrpo/wsgrpo/model/ort"
	"github.com/wsgrpo/wsgrpo/model/tokenizer"
	"github.com/wsgrpo/wsgrpo/pipeline"
	"github.com/wsgrpo/wsgrpo/stages/sampler"
	"github.com/wsgrpo/wsgrpo/stages/stage"
)

// Errors of --model directories; they come wrapped with ErrConfig.
var (
	// ErrModelDir means a --model directory is neither a wsgrpo checkpoint
	// nor a Hugging Face one.
	ErrModelDir = errors.New("not a model directory")
	// ErrModelVocab means a Hugging Face model's vocabulary (its
	// embedding rows) does not cover the ids of its tokenizer.
	ErrModelVocab = sampler.ErrHFVocab
)

// modelLayout is the kind of checkpoint a --model directory holds.
type modelLayout int

// Checkpoint layouts.
const (
	// layoutWsgrpo is wsgrpo's own checkpoint (wsgrpo pretrain, train):
	// config.json of format "wsgrpo-checkpoint" and model.safetensors.
	layoutWsgrpo modelLayout = iota + 1
	// layoutHF is a Hugging Face checkpoint: config.json with a
	// model_type (qwen2, qwen3, llama), safetensors, tokenizer.json.
	layoutHF
)

// String names the layout as messages say it.
func (l modelLayout) String() string {
	switch l {
	case layoutWsgrpo:
		return "wsgrpo checkpoint"
	case layoutHF:
		return "Hugging Face checkpoint"
	}
	return fmt.Sprintf("modelLayout(%d)", int(l))
}

// maxModelConfigBytes bounds the config.json detectModelLayout reads.
const maxModelConfigBytes = 16 << 20

// detectModelLayout tells which checkpoint layout dir holds, from its
// config.json: wsgrpo's ("format": "wsgrpo-checkpoint") or Hugging Face's
// (a "model_type"). Anything else is an error wrapping ErrConfig and
// ErrModelDir that says what was found.
func detectModelLayout(dir string) (modelLayout, error) {
	notModel := func(why string) error {
		return fmt.Errorf("%w: %w: --model %s: %s; want a wsgrpo checkpoint (wsgrpo pretrain's --out) or a Hugging Face checkpoint directory (config.json with model_type qwen2, qwen3 or llama, *.safetensors, tokenizer.json)",
			ErrConfig, ErrModelDir, dir, why)
	}
	st, err := os.Stat(dir)
	switch {
	case errors.Is(err, os.ErrNotExist):
		return 0, notModel("no such directory")
	case err != nil:
		return 0, notModel(err.Error())
	case !st.IsDir():
		return 0, notModel("not a directory")
	}
	f, err := os.Open(filepath.Join(dir, hf.ConfigFile))
	if errors.Is(err, os.ErrNotExist) {
		return 0, notModel("no " + hf.ConfigFile)
	}
	if err != nil {
		return 0, notModel(err.Error())
	}
	defer func() { _ = f.Close() }()
	data, err := io.ReadAll(io.LimitReader(f, maxModelConfigBytes))
	if err != nil {
		return 0, notModel(err.Error())
	}
	var probe struct {
		Format    string `json:"format"`
		ModelType string `json:"model_type"`
	}
	if err := json.Unmarshal(data, &probe); err != nil {
		return 0, notModel(hf.ConfigFile + " is not a JSON object")
	}
	switch {
	case probe.Format == checkpoint.Format:
		return layoutWsgrpo, nil
	case probe.ModelType != "":
		return layoutHF, nil
	case probe.Format != "":
		return 0, notModel(fmt.Sprintf("%s has format %q", hf.ConfigFile, probe.Format))
	}
	return 0, notModel(hf.ConfigFile + " has neither a wsgrpo format nor a Hugging Face model_type")
}

// loadTrainModel reads the model in dir, which the message calls what
// (train.model), and returns the blob a run publishes as version 1:
// checkpoint.Marshal of a wsgrpo checkpoint, hf.MarshalBundle of a Hugging
// Face model. A directory of neither layout is an error wrapping ErrConfig
// and ErrModelDir, a Hugging Face model whose tokenizer does not fit it
// one wrapping ErrConfig (see loadHFModel).
func loadTrainModel(dir, what string) ([]byte, error) {
	layout, err := detectModelLayout(dir)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", what, err)
	}
	if layout == layoutHF {
		m, err := loadHFModel(dir)
		if err != nil {
			return nil, fmt.Errorf("%s: %w", what, err)
		}
		blob, err := hf.MarshalBundle(m.Bundle)
		if err != nil {
			return nil, fmt.Errorf("%s %s: %w", what, dir, err)
		}
		return blob, nil
	}
	ck, err := checkpoint.Load(dir)
	if err != nil {
		return nil, fmt.Errorf("load %s %s: %w", what, dir, err)
	}
	return checkpoint.Marshal(ck)
}

// referenceFeaturizer opens the featurizer (model/labeler) of the
// reference policy in dir: labeler.NewHFFeaturizer for a Hugging Face
// model, labeler.NewFeaturizer otherwise. Errors loading it name it "the
// reference policy " + what + dir.
func referenceFeaturizer(rt *ort.Runtime, dir, what string, o labeler.FeaturizerOptions) (*labeler.Featurizer, error) {
	if layout, err := detectModelLayout(dir); err == nil && layout == layoutHF {
		m, err := loadHFModel(dir)
		if err != nil {
			return nil, fmt.Errorf("load the reference policy %s%s: %w", what, dir, err)
		}
		return labeler.NewHFFeaturizer(rt, m.Bundle.Checkpoint, m.MaxSeq, m.Tokenizer.PAD(), o)
	}
	ref, err := checkpoint.Load(dir)
	if err != nil {
		return nil, fmt.Errorf("load the reference policy %s%s: %w", what, dir, err)
	}
	return labeler.NewFeaturizer(rt, ref, o)
}

// savePolicyBlob writes a published policy version into dir: a Hugging
// Face bundle in Hugging Face layout (float32 weights, the tokenizer
// files beside them), a checkpoint blob as a wsgrpo checkpoint.
func savePolicyBlob(dir string, blob []byte) error {
	if hf.IsBundle(blob) {
		b, err := hf.UnmarshalBundle(blob)
		if err != nil {
			return err
		}
		return b.Save(dir, hf.SaveOptions{DType: hf.DTypeF32})
	}
	ck, err := checkpoint.Unmarshal(blob)
	if err != nil {
		return err
	}
	return checkpoint.Save(dir, ck)
}

// hfModel is a Hugging Face checkpoint directory read for sampling
// (sampler.HF: the bundle of checkpoint and tokenizer files, the
// byte-level BPE tokenizer and the ids that end a completion).
type hfModel struct {
	dir string
	*sampler.HF
}

// loadHFModel reads the checkpoint and tokenizer of dir and checks that
// they fit each other: every tokenizer id must be a row of the model's
// embedding (ErrModelVocab), and the tokenizer must have an id to pad
// with.
func loadHFModel(dir string) (*hfModel, error) {
	b, err := hf.LoadBundle(dir)
	if err != nil {
		return nil, fmt.Errorf("%w: --model %s: %w", ErrConfig, dir, err)
	}
	h, err := sampler.NewHF(b)
	if err != nil {
		return nil, fmt.Errorf("%w: --model %s: %w", ErrConfig, dir, err)
	}
	return &hfModel{dir: dir, HF: h}, nil
}

// checkChat checks up front that the model in dir can sample with chat
// (sampler.chat; what names the setting in messages): a Hugging Face
// model whose tokenizer_config.json has a chat template that keeps a user
// turn's text as it is. Otherwise the error wraps ErrConfig and says so;
// without this check the sampler would dead-letter every batch
// (sampler.ErrChat).
func checkChat(dir, what string) error {
	layout, err := detectModelLayout(dir)
	if err != nil {
		return fmt.Errorf("%s: %w", what, err)
	}
	if layout != layoutHF {
		return fmt.Errorf("%w: %s needs a Hugging Face model with a chat template; %s is a %v (its tokenizer has none: turn %s off)", ErrConfig, what, dir, layout, what)
	}
	tok, err := tokenizer.LoadBPEDir(dir)
	if err != nil {
		return fmt.Errorf("%w: %s: --model %s: %w", ErrConfig, what, dir, err)
	}
	if _, err := tok.ChatPromptTemplate(); err != nil {
		return fmt.Errorf("%w: %s: --model %s: %w", ErrConfig, what, dir, err)
	}
	return nil
}

// policy builds the model's sampling graph in rt (sampler.HF.Load) and
// returns it as policy version 1, ready to sample.
func (m *hfModel) policy(rt *ort.Runtime, log *slog.Logger) (sampler.Policy, error) {
	gm, err := m.Load(rt, log)
	if err != nil {
		return sampler.Policy{}, err
	}
	return sampler.Policy{Version: 1, Model: gm, Tokenizer: m.Tokenizer, MaxSeq: m.MaxSeq, EOS: m.EOS}, nil
}

// samplerStage is the sampler stage over m: the stage table's sampler
// with the policy loaded here (sampler.Fixed) instead of read from the
// run's weight store.
func (m *hfModel) samplerStage() stageDef {
	return stageDef{
		name: pipeline.StageSampler, positions: []string{pipeline.StageSampler},
		usage: "samples a Hugging Face model loaded in this process",
		build: func(_ context.Context, env stageEnv) (stage.Processor, error) {
			rt, err := env.runtime()
			if err != nil {
				return nil, err
			}
			pol, err := m.policy(rt, env.log)
			if err != nil {
				return nil, fmt.Errorf("--model %s: %w", m.dir, err)
			}
			o := env.cfg.samplerOptions(env.log)
			p, err := sampler.New(sampler.NewFixed(pol), o, nil)
			if err != nil {
				_ = pol.Model.Close()
				return nil, err
			}
			cfg := m.Bundle.Checkpoint.Config
			env.log.Info("sampling a Hugging Face model", "model", m.dir, "arch", cfg.Arch,
				"params", cfg.NumParams(), "max_seq", m.MaxSeq, "eos", m.EOS, "chat", o.Chat)
			return p, nil
		},
	}
}
