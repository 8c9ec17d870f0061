package generate

import (
	"context"
	"fmt"
	"math"
	"math/rand/v2"
	"slices"
	"strings"

	"github.com/wsgrpo/wsgrpo/model/ort"
	"github.com/wsgrpo/wsgrpo/model/tokenizer"
)

// FinishReason says why a completion ended.
type FinishReason string

// Finish reasons.
const (
	// FinishEOS: the model produced the EOS token (included in Tokens).
	FinishEOS FinishReason = "eos"
	// FinishStop: the completion's text came to contain a stop string (the
	// token that completed it is included in Tokens).
	FinishStop FinishReason = "stop"
	// FinishLength: MaxNewTokens tokens were produced.
	FinishLength FinishReason = "length"
)

// Options control one Generate call.
type Options struct {
	// Temperature divides the logits before sampling; 0 means greedy.
	Temperature float64
	// TopP keeps the smallest set of most likely tokens whose probability
	// reaches TopP; 0 or 1 disables it.
	TopP float64
	// MaxNewTokens bounds each completion (at least 1).
	MaxNewTokens int
	// EOS ends a completion when sampled; a negative value disables it.
	EOS int32
	// ExtraEOS are further ids that end a completion like EOS (finish
	// reason FinishEOS): a Hugging Face model may list several
	// end-of-sequence ids. They may include PAD.
	ExtraEOS []int32
	// PAD fills left padding and finished rows; it must be a valid id.
	PAD int32
	// StopStrings end a completion once its decoded text contains one;
	// they need Tokenizer.
	StopStrings []string
	// Tokenizer decodes completions for StopStrings.
	Tokenizer tokenizer.Tokenizer
	// Seed makes sampling deterministic: row i draws from its own PCG
	// stream (Seed, i), so a row's tokens do not depend on other rows.
	Seed uint64
	// NoCache recomputes the whole sequence every step instead of using the
	// KV cache (the baseline; always the case for graphs without a cache).
	NoCache bool
}

// Completion is one sampled continuation.
type Completion struct {
	// Tokens are the generated ids, the final EOS or stop token included.
	Tokens []int32
	// Logprobs[i] is log π(Tokens[i] | prompt, Tokens[:i]) under the
	// policy itself: log_softmax of the logits at temperature 1, whatever
	// Temperature and TopP were used to sample. This is the π_old the
	// learner's importance ratios need.
	Logprobs []float32
	// Finish says why the completion ended.
	Finish FinishReason
}

// validate checks o.
func (o Options) validate(vocab int) error {
	switch {
	case o.Temperature < 0 || math.IsNaN(o.Temperature) || math.IsInf(o.Temperature, 0):
		return fmt.Errorf("%w: temperature %v", ErrOptions, o.Temperature)
	case o.TopP < 0 || o.TopP > 1 || math.IsNaN(o.TopP):
		return fmt.Errorf("%w: top_p %v, want [0,1]", ErrOptions, o.TopP)
	case o.MaxNewTokens < 1:
		return fmt.Errorf("%w: max_new_tokens %d", ErrOptions, o.MaxNewTokens)
	case len(o.StopStrings) > 0 && o.Tokenizer == nil:
		return fmt.Errorf("%w: stop strings need a tokenizer", ErrOptions)
	case o.PAD < 0 || (vocab > 0 && int(o.PAD) >= vocab):
		return fmt.Errorf("%w: pad id %d", ErrOptions, o.PAD)
	case o.EOS == o.PAD:
		// Both default to 0: an unset EOS would stop on the padding id.
		return fmt.Errorf("%w: EOS and PAD are both id %d; set Options.EOS to the tokenizer's EOS (tok.EOS()), or -1 to disable it", ErrOptions, o.EOS)
	}
	for _, s := range o.StopStrings {
		if s == "" {
			return fmt.Errorf("%w: empty stop string", ErrOptions)
		}
	}
	for _, id := range o.ExtraEOS {
		if id < 0 || (vocab > 0 && int(id) >= vocab) {
			return fmt.Errorf("%w: extra EOS id %d", ErrOptions, id)
		}
	}
	return nil
}

// isEOS reports whether tok ends a completion (EOS or one of ExtraEOS).
func (o Options) isEOS(tok int32) bool {
	return (o.EOS >= 0 && tok == o.EOS) || slices.Contains(o.ExtraEOS, tok)
}

// maxEOS is the largest id that ends a completion, -1 if none.
func (o Options) maxEOS() int {
	m := int(o.EOS)
	for _, id := range o.ExtraEOS {
		m = max(m, int(id))
	}
	return max(m, -1)
}

// row is the state of one sequence during decoding.
type row struct {
	prompt int // prompt length (real tokens)
	rng    *rand.Rand
	out    Completion
	done   bool
}

// Generate samples one completion per prompt. Prompts are left-padded into
// one batch; the batch decodes until every row has finished or ctx ends.
func (m *Model) Generate(ctx context.Context, prompts [][]int32, o Options) ([]Completion, error) {
	if err := o.validate(m.sig.vocabSize); err != nil {
		return nil, err
	}
	p := 0
	for i, pr := range prompts {
		if len(pr) == 0 {
			return nil, fmt.Errorf("%w: prompt %d is empty", ErrPrompt, i)
		}
		for _, id := range pr {
			if id < 0 || (m.sig.vocabSize > 0 && int(id) >= m.sig.vocabSize) {
				return nil, fmt.Errorf("%w: prompt %d has token id %d", ErrPrompt, i, id)
			}
		}
		p = max(p, len(pr))
	}
	if len(prompts) == 0 {
		return nil, fmt.Errorf("%w: no prompts", ErrPrompt)
	}
	// The last sampled token is never fed back, so the longest sequence
	// the model sees is p + MaxNewTokens - 1.
	if m.MaxSeq > 0 && p+o.MaxNewTokens-1 > m.MaxSeq {
		return nil, fmt.Errorf("%w: %d prompt + %d new tokens, limit %d", ErrTooLong, p, o.MaxNewTokens, m.MaxSeq)
	}
	cache := m.HasCache() && !o.NoCache
	sess, err := m.session(cache)
	if err != nil {
		return nil, err
	}
	d := newDecoder(m, sess, prompts, p, o, cache)
	return d.run(ctx)
}

// decoder runs one Generate call.
type decoder struct {
	m     *Model
	sess  *ort.Session
	o     Options
	cache bool
	rows  []*row
	// ids, mask and pos hold the whole padded batch so far, row-major with
	// row stride cap; n is the current length.
	ids, mask, pos []int64
	stride, n      int
	// kv holds the cache when decoding with it (nil otherwise).
	kv  *kvCache
	smp sampler
}

// newDecoder lays out the left-padded prompts.
func newDecoder(m *Model, sess *ort.Session, prompts [][]int32, p int, o Options, cache bool) *decoder {
	b := len(prompts)
	stride := p + o.MaxNewTokens
	d := &decoder{
		m: m, sess: sess, o: o, cache: cache,
		rows: make([]*row, b),
		ids:  make([]int64, b*stride), mask: make([]int64, b*stride), pos: make([]int64, b*stride),
		stride: stride, n: p,
		smp: sampler{temperature: o.Temperature, topP: o.TopP},
	}
	for i, pr := range prompts {
		d.rows[i] = &row{prompt: len(pr), rng: rand.New(rand.NewPCG(o.Seed, uint64(i)))}
		base := i * stride
		for j := 0; j < stride; j++ {
			d.ids[base+j] = int64(o.PAD)
		}
		off := p - len(pr)
		for j, id := range pr {
			d.ids[base+off+j] = int64(id)
			d.mask[base+off+j] = 1
			d.pos[base+off+j] = int64(j)
		}
	}
	if cache {
		d.kv = newKVCache(m.sig, b, stride)
	}
	return d
}

// window copies columns [lo,hi) of a batch array into a dense [B,hi-lo]
// tensor.
func (d *decoder) window(src []int64, lo, hi int) *ort.Tensor {
	b, w := len(d.rows), hi-lo
	out := make([]int64, b*w)
	for i := 0; i < b; i++ {
		copy(out[i*w:], src[i*d.stride+lo:i*d.stride+hi])
	}
	return ort.I64Tensor(out, int64(b), int64(w))
}

// step runs the graph on columns [lo, n) and returns the logits of column
// n-1 for every row, [B][V] flattened, and V.
func (d *decoder) step(lo int) ([]float32, int, error) {
	in := map[string]*ort.Tensor{inputIDs: d.window(d.ids, lo, d.n)}
	if d.m.sig.hasMask {
		in[inputMask] = d.window(d.mask, 0, d.n)
	}
	if d.m.sig.hasPos {
		in[inputPositions] = d.window(d.pos, lo, d.n)
	}
	if d.m.HasCache() {
		if !d.cache {
			// A cache graph used without its cache: feed an empty past.
			for l := 0; l < d.m.sig.layers; l++ {
				for _, kind := range []string{"key", "value"} {
					in[pastName(l, kind)] = ort.F32Tensor([]float32{}, int64(len(d.rows)), d.m.sig.heads, 0, d.m.sig.headDim)
				}
			}
		} else {
			d.kv.feed(in)
		}
	}
	var outs map[string]*ort.Tensor
	if d.cache {
		outs = d.kv.outputs(d.n - lo)
	}
	out, err := d.sess.RunInto(in, outs)
	if err != nil {
		return nil, 0, err
	}
	lg := out[outputLogits]
	if lg == nil || len(lg.Shape) != 3 || lg.Shape[0] != int64(len(d.rows)) || lg.Shape[1] != int64(d.n-lo) || lg.Shape[2] < 1 {
		return nil, 0, fmt.Errorf("%w: logits shape %v for a [%d,%d] input", ErrModel, shapeOf(lg), len(d.rows), d.n-lo)
	}
	if d.cache {
		d.kv.advance(d.n - lo)
	}
	s, v := int(lg.Shape[1]), int(lg.Shape[2])
	last := make([]float32, len(d.rows)*v)
	for i := range d.rows {
		copy(last[i*v:], lg.F32[(i*s+s-1)*v:(i*s+s)*v])
	}
	return last, v, nil
}

// shapeOf returns t's shape, or nil for a missing tensor.
func shapeOf(t *ort.Tensor) []int64 {
	if t == nil {
		return nil
	}
	return t.Shape
}

// run decodes until all rows finish.
func (d *decoder) run(ctx context.Context) ([]Completion, error) {
	lo := 0
	for t := 0; ; t++ {
		if err := ctx.Err(); err != nil {
			return nil, err
		}
		logits, v, err := d.step(lo)
		if err != nil {
			return nil, err
		}
		if v <= int(d.o.PAD) || v <= d.o.maxEOS() {
			return nil, fmt.Errorf("%w: vocabulary of %d ids has no id %d/%d", ErrOptions, v, d.o.PAD, d.o.maxEOS())
		}
		active := false
		for i, r := range d.rows {
			next := int64(d.o.PAD)
			if !r.done {
				d.sample(r, logits[i*v:(i+1)*v])
				next = int64(r.out.Tokens[len(r.out.Tokens)-1])
			}
			col := i*d.stride + d.n
			if col < (i+1)*d.stride {
				d.ids[col] = next
				if !r.done {
					d.mask[col] = 1
					d.pos[col] = int64(r.prompt + len(r.out.Tokens) - 1)
				}
			}
			active = active || !r.done
		}
		if !active {
			break
		}
		if d.cache {
			lo = d.n
		}
		d.n++
	}
	out := make([]Completion, len(d.rows))
	for i, r := range d.rows {
		out[i] = r.out
	}
	return out, nil
}

// sample draws r's next token from logits and updates its finish state.
func (d *decoder) sample(r *row, logits []float32) {
	tok := d.smp.pick(logits, r.rng)
	r.out.Tokens = append(r.out.Tokens, int32(tok))
	r.out.Logprobs = append(r.out.Logprobs, float32(logSoftmaxAt(logits, tok)))
	switch {
	case d.o.isEOS(int32(tok)):
		r.done, r.out.Finish = true, FinishEOS
	case d.stopped(r):
		r.done, r.out.Finish = true, FinishStop
	case len(r.out.Tokens) >= d.o.MaxNewTokens:
		r.done, r.out.Finish = true, FinishLength
	}
}

// stopped reports whether r's completion text contains a stop string.
func (d *decoder) stopped(r *row) bool {
	if len(d.o.StopStrings) == 0 {
		return false
	}
	text := d.o.Tokenizer.Decode(r.out.Tokens)
	for _, s := range d.o.StopStrings {
		if strings.Contains(text, s) {
			return true
		}
	}
	return false
}
