package sampler

import (
	"errors"
	"fmt"
	"log/slog"
	"math"
	"strings"

	"github.com/wsgrpo/wsgrpo/model/tokenizer"
)

// Errors of the sampler's options.
var (
	// ErrOptions is returned by Options.Validate for settings that cannot
	// work.
	ErrOptions = errors.New("sampler: invalid options")
	// ErrChat means Options.Chat is set but the policy cannot put a prompt
	// in a chat template (it has none, or it does not keep the prompt as
	// it is); the batch is dead-lettered (stage.ErrPermanent).
	ErrChat = errors.New("sampler: chat is set, but the policy cannot put prompts in a chat template")
)

// Option defaults.
const (
	DefaultSamples      = 8
	DefaultTemperature  = 1.0
	DefaultMaxNewTokens = 256
	DefaultMaxBatch     = 64
	// DefaultPromptTemplate turns a prompt into the text the policy
	// continues: the prompt on its own line. The built-in base policy was
	// pretrained with it.
	DefaultPromptTemplate = tokenizer.DefaultPromptTemplate
	// promptPlaceholder is replaced by the prompt text in PromptTemplate.
	promptPlaceholder = tokenizer.PromptPlaceholder
)

// Options configure a sampler. Zero fields take the defaults.
type Options struct {
	// Samples is G, the completions sampled per prompt (default 8).
	Samples int
	// Temperature divides the logits (default 1). Set Greedy for 0.
	Temperature float64
	// Greedy samples the most likely token (temperature 0), e.g. for eval.
	Greedy bool
	// TopP keeps the smallest set of most likely tokens whose probability
	// reaches TopP; 0 or 1 disables it.
	TopP float64
	// MaxNewTokens bounds each completion (default 256); it is lowered
	// for a batch whose longest prompt leaves less room in the model's
	// context.
	MaxNewTokens int
	// StopStrings end a completion once its text contains one.
	StopStrings []string
	// IgnoreEOS samples every completion to MaxNewTokens (or a stop
	// string), as fixed-length measurements need.
	IgnoreEOS bool
	// MaxBatch bounds the rows decoded together (default 64).
	MaxBatch int
	// PromptTemplate is the text the policy continues, with {prompt}
	// standing for the prompt (default DefaultPromptTemplate). It is used
	// when a prompt row carries no prompt token ids; BOS is prepended.
	PromptTemplate string
	// Chat puts each prompt in the policy's chat template as the user's
	// turn, followed by the header of the assistant's
	// (tokenizer.BPE.ChatPromptTemplate): what a Hugging Face chat model
	// continues. It takes the place of PromptTemplate, which must then be
	// empty. A policy whose tokenizer has no chat template cannot sample
	// with it: its batches are dead-lettered, with that reason.
	Chat bool
	// Seed makes sampling reproducible: a redelivered batch samples the
	// same completions with the same version.
	Seed uint64
	// Logger receives warnings about prompts that cannot be sampled; nil
	// discards.
	Logger *slog.Logger
}

// withDefaults fills zero fields.
func (o Options) withDefaults() Options {
	if o.Samples == 0 {
		o.Samples = DefaultSamples
	}
	if o.Temperature == 0 && !o.Greedy {
		o.Temperature = DefaultTemperature
	}
	if o.Greedy {
		o.Temperature = 0
	}
	if o.MaxNewTokens == 0 {
		o.MaxNewTokens = DefaultMaxNewTokens
	}
	if o.MaxBatch == 0 {
		o.MaxBatch = DefaultMaxBatch
	}
	if o.PromptTemplate == "" {
		o.PromptTemplate = DefaultPromptTemplate
	}
	if o.Logger == nil {
		o.Logger = slog.New(slog.DiscardHandler)
	}
	return o
}

// Validate reports settings that cannot work, after defaults.
func (o Options) Validate() error {
	if o.Chat && o.PromptTemplate != "" {
		return fmt.Errorf("%w: a prompt template and chat both set (chat uses the model's chat template; keep one)", ErrOptions)
	}
	o = o.withDefaults()
	switch {
	case o.Samples < 1:
		return fmt.Errorf("%w: samples %d (want at least 1)", ErrOptions, o.Samples)
	case o.Temperature < 0 || math.IsNaN(o.Temperature) || math.IsInf(o.Temperature, 0):
		return fmt.Errorf("%w: temperature %v", ErrOptions, o.Temperature)
	case o.TopP < 0 || o.TopP > 1 || math.IsNaN(o.TopP):
		return fmt.Errorf("%w: top_p %v (want 0..1)", ErrOptions, o.TopP)
	case o.MaxNewTokens < 1:
		return fmt.Errorf("%w: max_new_tokens %d (want at least 1)", ErrOptions, o.MaxNewTokens)
	case o.MaxBatch < 1:
		return fmt.Errorf("%w: max_batch %d (want at least 1)", ErrOptions, o.MaxBatch)
	case !strings.Contains(o.PromptTemplate, promptPlaceholder):
		return fmt.Errorf("%w: prompt template %q has no %s", ErrOptions, o.PromptTemplate, promptPlaceholder)
	}
	for _, s := range o.StopStrings {
		if s == "" {
			return fmt.Errorf("%w: an empty stop string", ErrOptions)
		}
	}
	return nil
}

// PromptText returns the text the policy continues for prompt p through
// PromptTemplate (with Chat the template is the policy's, which Options
// alone does not know: see tokenizer.BPE.ChatPromptTemplate).
func (o Options) PromptText(p string) string {
	return strings.ReplaceAll(o.withDefaults().PromptTemplate, promptPlaceholder, p)
}
