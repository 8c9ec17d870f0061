package sampler

import (
	"context"
	"errors"
	"fmt"
	"hash/fnv"
	"log/slog"
	"slices"
	"time"

	"github.com/apache/arrow-go/v18/arrow"
	"github.com/apache/arrow-go/v18/arrow/memory"

	"github.com/wsgrpo/wsgrpo/model/generate"
	"github.com/wsgrpo/wsgrpo/model/segment"
	"github.com/wsgrpo/wsgrpo/model/tokenizer"
	"github.com/wsgrpo/wsgrpo/schemas"
	"github.com/wsgrpo/wsgrpo/stages/stage"
)

// FinishPromptError is the finish reason of a row whose prompt could not be
// sampled (see the package documentation); eos, stop and length come from
// generate.
const FinishPromptError = "prompt_error"

// Processor samples rollout groups for prompt batches. It satisfies
// stage.Processor and stage.Closer, and is safe for concurrent use.
type Processor struct {
	policies Policies
	opts     Options
	mem      memory.Allocator
	log      *slog.Logger
}

// New returns a sampler drawing policies from p. mem allocates the output
// batches (nil: memory.DefaultAllocator).
func New(p Policies, o Options, mem memory.Allocator) (*Processor, error) {
	if p == nil {
		return nil, fmt.Errorf("%w: no policy source", ErrOptions)
	}
	if err := o.Validate(); err != nil {
		return nil, err
	}
	o = o.withDefaults()
	if mem == nil {
		mem = memory.DefaultAllocator
	}
	return &Processor{policies: p, opts: o, mem: mem, log: o.Logger}, nil
}

// request is one row to sample: a prompt and which sample of its group.
type request struct {
	prompt *schemas.Prompt
	sample int32
	ids    []int32 // BOS + prompt tokens; nil when the prompt cannot be sampled
	reason string  // why not
}

// Process samples Options.Samples completions for every prompt of in with
// one policy version and returns them as one rollout batch, prompt by
// prompt in input order.
func (s *Processor) Process(ctx context.Context, in arrow.RecordBatch) ([]arrow.RecordBatch, error) {
	if k, err := schemas.KindOf(in); err != nil || k != schemas.KindPrompt {
		return nil, fmt.Errorf("sampler: %w: a %q batch, the sampler reads prompt batches (%v)", schemas.ErrWrongKind, k, err)
	}
	prompts, err := schemas.ReadPrompts(in)
	if err != nil {
		return nil, fmt.Errorf("sampler: %w", err)
	}
	pol, release, err := s.policies.Acquire(ctx)
	if err != nil {
		return nil, fmt.Errorf("sampler: %w", err)
	}
	defer release()
	template, err := s.promptTemplate(pol)
	if err != nil {
		return nil, fmt.Errorf("sampler: %w: %w", stage.ErrPermanent, err)
	}

	reqs := make([]request, 0, len(prompts)*s.opts.Samples)
	for i := range prompts {
		ids, reason := s.encode(pol, template, &prompts[i])
		if reason != "" {
			s.log.Warn("prompt cannot be sampled; its group gets empty completions", "prompt_id", prompts[i].PromptID, "reason", reason)
		}
		for k := range s.opts.Samples {
			reqs = append(reqs, request{prompt: &prompts[i], sample: int32(k), ids: ids, reason: reason})
		}
	}
	rows := make([]schemas.Rollout, len(reqs))
	var todo []int
	for i := range reqs {
		rows[i] = s.row(pol, &reqs[i])
		if reqs[i].ids != nil {
			todo = append(todo, i)
		}
	}
	for len(todo) > 0 {
		n := min(len(todo), s.opts.MaxBatch)
		if err := s.sample(ctx, pol, reqs, rows, todo[:n]); err != nil {
			return nil, err
		}
		todo = todo[n:]
	}
	return []arrow.RecordBatch{schemas.NewRolloutBatch(s.mem, rows)}, nil
}

// chatTemplater is a tokenizer with a chat template: a Hugging Face
// model's (tokenizer.BPE).
type chatTemplater interface {
	ChatPromptTemplate() (string, error)
}

// promptTemplate returns the template prompts without token ids are
// sampled through with pol: its chat template's with Options.Chat,
// Options.PromptTemplate otherwise. An error wraps ErrChat.
func (s *Processor) promptTemplate(pol *Policy) (string, error) {
	if !s.opts.Chat {
		return s.opts.withDefaults().PromptTemplate, nil
	}
	ct, ok := pol.Tokenizer.(chatTemplater)
	if !ok {
		return "", fmt.Errorf("%w: policy version %d has a %T, which has no chat template (chat is for Hugging Face models; turn it off for a wsgrpo checkpoint)", ErrChat, pol.Version, pol.Tokenizer)
	}
	t, err := ct.ChatPromptTemplate()
	if err != nil {
		return "", fmt.Errorf("%w: policy version %d: %w", ErrChat, pol.Version, err)
	}
	return t, nil
}

// encode returns the prompt's token ids (BOS first) through template, or
// why it cannot be sampled.
func (s *Processor) encode(pol *Policy, template string, p *schemas.Prompt) ([]int32, string) {
	ids, err := tokenizer.PromptIDs(pol.Tokenizer, template, p.Prompt, p.PromptTokenIDs)
	if err != nil {
		return nil, err.Error()
	}
	if pol.MaxSeq > 0 && len(ids) >= pol.MaxSeq {
		return nil, fmt.Sprintf("prompt of %d tokens leaves no room in the model's context of %d", len(ids), pol.MaxSeq)
	}
	return ids, ""
}

// row fills the columns of a rollout known before sampling.
func (s *Processor) row(pol *Policy, r *request) schemas.Rollout {
	p := *r.prompt
	out := schemas.Rollout{
		Prompt:        p,
		TrajectoryID:  schemas.TrajectoryID(p.RunID, p.Step, p.PromptID, r.sample),
		GroupID:       schemas.GroupID(p.RunID, p.Step, p.PromptID),
		SampleIndex:   r.sample,
		GroupSize:     int32(s.opts.Samples),
		PolicyVersion: pol.Version,
	}
	if r.ids != nil {
		out.PromptTokenIDs = r.ids
	}
	if r.ids == nil {
		out.FinishReason = FinishPromptError
		out.Completion = ""
	}
	return out
}

// sample decodes the requests at idx together and fills their rows.
func (s *Processor) sample(ctx context.Context, pol *Policy, reqs []request, rows []schemas.Rollout, idx []int) error {
	prompts := make([][]int32, len(idx))
	longest := 0
	for i, j := range idx {
		prompts[i] = reqs[j].ids
		longest = max(longest, len(reqs[j].ids))
	}
	maxNew := s.opts.MaxNewTokens
	if pol.MaxSeq > 0 {
		// The last sampled token is never fed back.
		maxNew = min(maxNew, pol.MaxSeq-longest+1)
	}
	first, more := eos(pol, s.opts.IgnoreEOS)
	o := generate.Options{
		Temperature:  s.opts.Temperature,
		TopP:         s.opts.TopP,
		MaxNewTokens: maxNew,
		EOS:          first,
		ExtraEOS:     more,
		PAD:          pol.Tokenizer.PAD(),
		StopStrings:  s.opts.StopStrings,
		Tokenizer:    pol.Tokenizer,
		Seed:         s.seed(rows[idx[0]].TrajectoryID, pol.Version),
	}
	start := time.Now()
	comps, err := pol.Model.Generate(ctx, prompts, o)
	if err != nil {
		if errors.Is(err, generate.ErrOptions) || errors.Is(err, generate.ErrPrompt) || errors.Is(err, generate.ErrTooLong) {
			// The sampler checked prompts and lengths: this is a bug or
			// a model that disagrees with its checkpoint config.
			return fmt.Errorf("sampler: version %d: %w", pol.Version, err)
		}
		return fmt.Errorf("sampler: decode with version %d: %w", pol.Version, err)
	}
	ms := float64(time.Since(start).Microseconds()) / 1e3
	for i, j := range idx {
		c := comps[i]
		r := &rows[j]
		r.CompletionTokenIDs = c.Tokens
		r.TokenLogprobs = c.Logprobs
		r.Completion = pol.Tokenizer.Decode(c.Tokens)
		r.StepEnds = segment.Lines(pol.Tokenizer, c.Tokens)
		r.FinishReason = string(c.Finish)
		r.SampleMs = ms
	}
	return nil
}

// seed derives a chunk's sampling seed from its first trajectory and the
// version, so that a redelivered batch samples the same completions.
func (s *Processor) seed(first string, version int64) uint64 {
	h := fnv.New64a()
	_, _ = h.Write([]byte(first))
	return h.Sum64() ^ s.opts.Seed ^ uint64(version)*0x9e3779b97f4a7c15
}

// Close releases the policy source when it holds resources (a Loader,
// Fixed).
func (s *Processor) Close(context.Context) error {
	if c, ok := s.policies.(interface{ Close() error }); ok {
		return c.Close()
	}
	return nil
}

// eos returns the end-of-sequence id to stop at (-1 for none) and the
// further ids that end a completion too; ignore disables them all. The
// first is an id other than the padding id (generate refuses EOS == PAD,
// the mark of an unset EOS); a PAD in the set stops as one of the others.
func eos(pol *Policy, ignore bool) (int32, []int32) {
	switch {
	case ignore:
		return -1, nil
	case len(pol.EOS) == 0:
		return pol.Tokenizer.EOS(), nil
	}
	pad := pol.Tokenizer.PAD()
	for i, id := range pol.EOS {
		if id != pad {
			rest := append(slices.Clone(pol.EOS[:i]), pol.EOS[i+1:]...)
			return id, rest
		}
	}
	return -1, slices.Clone(pol.EOS)
}
