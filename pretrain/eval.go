package pretrain

import (
	"context"
	"fmt"
	"strconv"
	"strings"

	"github.com/wsgrpo/wsgrpo/model/checkpoint"
	"github.com/wsgrpo/wsgrpo/model/generate"
	"github.com/wsgrpo/wsgrpo/model/ort"
	"github.com/wsgrpo/wsgrpo/model/tokenizer"
	"github.com/wsgrpo/wsgrpo/stages/sampler"
	"github.com/wsgrpo/wsgrpo/stages/verifier"
	"github.com/wsgrpo/wsgrpo/tasks"
	"github.com/wsgrpo/wsgrpo/tasks/arith"
)

// evalBatch is the number of prompts decoded together in an evaluation.
const evalBatch = 64

// OpsResult is the greedy evaluation of the test expressions with one
// operation count.
type OpsResult struct {
	Ops int `json:"ops"`
	N   int `json:"n"`
	// Accuracy is the share whose last "A:" line holds the right value.
	Accuracy float64 `json:"accuracy"`
	// MeanTokens is the mean completion length in tokens (EOS excluded);
	// MinimalTokens the mean length of the minimal correct trace of the
	// same prompts; LengthRatio their ratio.
	MeanTokens    float64 `json:"mean_tokens"`
	MinimalTokens float64 `json:"minimal_tokens"`
	LengthRatio   float64 `json:"length_ratio"`
	// Truncated is the share that reached the token limit.
	Truncated float64 `json:"truncated"`
}

// Eval is a greedy evaluation on the test split.
type Eval struct {
	ByOps []OpsResult `json:"by_ops"`
	// Accuracy and LengthRatio are over every evaluated prompt.
	Accuracy    float64 `json:"accuracy"`
	LengthRatio float64 `json:"length_ratio"`
	N           int     `json:"n"`
}

// String is a one-line summary.
func (e Eval) String() string {
	var b strings.Builder
	fmt.Fprintf(&b, "accuracy %.1f%%, length %.2fx minimal (n %d):", 100*e.Accuracy, e.LengthRatio, e.N)
	for _, r := range e.ByOps {
		fmt.Fprintf(&b, " %d ops %.1f%% %.2fx;", r.Ops, 100*r.Accuracy, r.LengthRatio)
	}
	return strings.TrimSuffix(b.String(), ";")
}

// Evaluate decodes greedily n test-split prompts of each operation count in
// ops with the policy ck and scores them. The prompts are fixed by seed and
// the task configuration (its operation range is replaced by each count).
func Evaluate(ctx context.Context, rt *ort.Runtime, ck *checkpoint.Checkpoint, task arith.Config, n int, ops []int, seed uint64) (Eval, error) {
	m, err := generate.FromCheckpoint(rt, ck, nil)
	if err != nil {
		return Eval{}, err
	}
	defer func() { _ = m.Close() }()
	tok := ck.Tokenizer
	var out Eval
	var correct, tokens, minimal float64
	for _, k := range ops {
		tc := task
		tc.MinOps, tc.MaxOps = k, k
		t, err := arith.New(tc)
		if err != nil {
			return Eval{}, fmt.Errorf("%w: %d ops: %w", ErrConfig, k, err)
		}
		g := t.Generator(tasks.Test, seed)
		probs := make([]arith.Problem, n)
		for i := range probs {
			probs[i] = g.Next()
		}
		r := OpsResult{Ops: k, N: n}
		for lo := 0; lo < n; lo += evalBatch {
			chunk := probs[lo:min(n, lo+evalBatch)]
			prompts := make([][]int32, len(chunk))
			longest := 0
			for i, p := range chunk {
				prompts[i] = promptIDs(tok, p.Text)
				longest = max(longest, len(prompts[i]))
			}
			o := generate.Options{MaxNewTokens: ck.Config.MaxSeq - longest + 1, EOS: tok.EOS(), PAD: tok.PAD()}
			if o.MaxNewTokens < 1 {
				return Eval{}, fmt.Errorf("%w: a %d-op prompt leaves no room in max_seq %d", ErrConfig, k, ck.Config.MaxSeq)
			}
			comps, err := m.Generate(ctx, prompts, o)
			if err != nil {
				return Eval{}, err
			}
			for i, c := range comps {
				p := chunk[i]
				n := len(c.Tokens)
				if c.Finish == generate.FinishEOS {
					n--
				} else {
					r.Truncated++
				}
				r.MeanTokens += float64(n)
				r.MinimalTokens += float64(len(tok.Encode(t.MinimalTrace(p))))
				if v, ok := Answer(tok.Decode(c.Tokens)); ok && v == p.Answer {
					r.Accuracy++
				}
			}
		}
		correct += r.Accuracy
		tokens += r.MeanTokens
		minimal += r.MinimalTokens
		if n > 0 {
			r.LengthRatio = r.MeanTokens / r.MinimalTokens
			r.Accuracy /= float64(n)
			r.MeanTokens /= float64(n)
			r.MinimalTokens /= float64(n)
			r.Truncated /= float64(n)
		}
		out.ByOps = append(out.ByOps, r)
		out.N += n
	}
	if out.N > 0 {
		out.Accuracy = correct / float64(out.N)
		out.LengthRatio = tokens / minimal
	}
	return out, nil
}

// promptIDs is the sequence the policy continues for an expression: BOS
// and the sampler's prompt text, as in sampling.
func promptIDs(tok tokenizer.Tokenizer, expr string) []int32 {
	return append([]int32{tok.BOS()}, tok.Encode(sampler.Options{}.PromptText(expr))...)
}

// Answer reads the value of the last "A:" line of a completion, as the
// verifier stage does.
func Answer(completion string) (int64, bool) {
	v, err := strconv.ParseInt(verifier.ExtractArith(completion), 10, 64)
	return v, err == nil
}
