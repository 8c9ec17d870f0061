package learner

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"math"
	"slices"
	"sync"
	"testing"

	"github.com/apache/arrow-go/v18/arrow"

	"github.com/wsgrpo/wsgrpo/model/checkpoint"
	"github.com/wsgrpo/wsgrpo/model/ort"
	"github.com/wsgrpo/wsgrpo/model/policy"
	"github.com/wsgrpo/wsgrpo/model/tokenizer"
	"github.com/wsgrpo/wsgrpo/schemas"
	"github.com/wsgrpo/wsgrpo/stages/stage"
)

// store is an in-memory weight store: the learner's Publisher, which the
// command wires to the run's JetStream weight store.
type store struct {
	mu    sync.Mutex
	blobs map[int64][]byte
	fail  error
}

func (s *store) Latest(context.Context) (int64, bool, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if len(s.blobs) == 0 {
		return 0, false, nil
	}
	return slices.Max(slices.Collect(maps.Keys(s.blobs))), true, nil
}

func (s *store) Publish(_ context.Context, version int64, blob []byte) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.fail != nil {
		return s.fail
	}
	if s.blobs == nil {
		s.blobs = map[int64][]byte{}
	}
	if _, dup := s.blobs[version]; dup {
		return fmt.Errorf("version %d published twice", version)
	}
	s.blobs[version] = blob
	return nil
}

func (s *store) versions() []int64 {
	s.mu.Lock()
	defer s.mu.Unlock()
	return slices.Sorted(maps.Keys(s.blobs))
}

// tiny returns a small random policy over the character tokenizer.
func tiny(t testing.TB, seed uint64) *checkpoint.Checkpoint {
	t.Helper()
	tok := tokenizer.Default()
	c, err := checkpoint.New(policy.Config{VocabSize: tok.VocabSize(), DModel: 32, NLayers: 1, NHeads: 2, DFF: 64, MaxSeq: 32}, tok, seed)
	if err != nil {
		t.Fatal(err)
	}
	return c
}

// newLearner returns a learner over init that the test closes.
func newLearner(t testing.TB, rt *ort.Runtime, init *checkpoint.Checkpoint, pub Publisher, o Options) *Processor {
	t.Helper()
	p, err := New(context.Background(), rt, init, pub, o)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if err := p.Close(context.Background()); err != nil {
			t.Error(err)
		}
	})
	return p
}

// spec describes one group of labeled rows: the prompt, each completion's
// text and advantage, and the policy version they were sampled with.
type spec struct {
	step    int64
	prompt  string
	comps   []string
	advs    []float32
	version int64
	stepAdv bool
	mutate  func(i int, l *schemas.Labeled)
}

// oldLogprobs gives the sampler logprobs of completions; nil means -1 for
// every token.
type oldLogprobs func(prompt []int32, comp []int32) []float32

// build returns the rows of s.
func (s spec) build(t testing.TB, old oldLogprobs) []schemas.Labeled {
	t.Helper()
	tok := tokenizer.Default()
	pid := fmt.Sprintf("%s@%d", s.prompt, s.step)
	out := make([]schemas.Labeled, len(s.comps))
	prompt := append([]int32{tok.BOS()}, tok.Encode(s.prompt+"\n")...)
	for i, c := range s.comps {
		ids := append(tok.Encode(c), tok.EOS())
		lps := make([]float32, len(ids))
		for j := range lps {
			lps[j] = -1
		}
		if old != nil {
			lps = old(prompt, ids)
		}
		l := schemas.Labeled{}
		l.RunID, l.Step, l.PromptID, l.Task, l.Prompt.Prompt = "run", s.step, pid, "arith", s.prompt
		l.TrajectoryID = schemas.TrajectoryID("run", s.step, pid, int32(i))
		l.GroupID = schemas.GroupID("run", s.step, pid)
		l.SampleIndex, l.GroupSize, l.PolicyVersion = int32(i), int32(len(s.comps)), s.version
		l.Completion, l.CompletionTokenIDs, l.TokenLogprobs = c, ids, lps
		l.StepEnds = []int32{int32(len(ids) - 1)}
		l.Advantage = s.advs[i]
		if s.stepAdv {
			l.StepAdvantages = []float32{s.advs[i] / 2}
		}
		l.ShapedReward = s.advs[i]
		l.Correct = s.advs[i] > 0
		if s.mutate != nil {
			s.mutate(i, &l)
		}
		out[i] = l
	}
	return out
}

// batch encodes rows as a labeled record batch the test releases.
func batch(t testing.TB, rows []schemas.Labeled) arrow.RecordBatch {
	t.Helper()
	rec := schemas.NewLabeledBatch(nil, rows)
	t.Cleanup(rec.Release)
	return rec
}

// feed processes rows as one batch under ctx and fails the test on error.
func feed(ctx context.Context, t testing.TB, p *Processor, rows []schemas.Labeled) {
	t.Helper()
	if _, err := p.Process(ctx, batch(t, rows)); err != nil {
		t.Fatal(err)
	}
}

// completionLogprob returns log p(comp + EOS | BOS prompt \n) under c.
func completionLogprob(t testing.TB, rt *ort.Runtime, c *checkpoint.Checkpoint, prompt, comp string) float64 {
	t.Helper()
	s, err := newScorer(rt, builtin{c}, c.Tokenizer.PAD())
	if err != nil {
		t.Fatal(err)
	}
	defer func() { _ = s.Close() }()
	tok := tokenizer.Default()
	p := append([]int32{tok.BOS()}, tok.Encode(prompt+"\n")...)
	seq := append(append(slices.Clone(p), tok.Encode(comp)...), tok.EOS())
	lps, err := s.logprobs([][]int32{seq}, []int{len(p)})
	if err != nil {
		t.Fatal(err)
	}
	sum := 0.0
	for _, v := range lps[0] {
		sum += float64(v)
	}
	return sum
}

// policyLogprobs returns an oldLogprobs that scores with c (on-policy
// sampler logprobs).
func policyLogprobs(t testing.TB, rt *ort.Runtime, c *checkpoint.Checkpoint) oldLogprobs {
	t.Helper()
	s, err := newScorer(rt, builtin{c}, c.Tokenizer.PAD())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = s.Close() })
	return func(prompt, comp []int32) []float32 {
		lps, err := s.logprobs([][]int32{append(slices.Clone(prompt), comp...)}, []int{len(prompt)})
		if err != nil {
			t.Fatal(err)
		}
		return lps[0]
	}
}

// sameWeights fails unless a and b hold bitwise equal weights.
func sameWeights(t testing.TB, a, b *checkpoint.Checkpoint) {
	t.Helper()
	for name, pa := range a.Weights {
		pb := b.Weights[name]
		for i := range pa.Data {
			if math.Float32bits(pa.Data[i]) != math.Float32bits(pb.Data[i]) {
				t.Fatalf("%s[%d]: %v vs %v", name, i, pa.Data[i], pb.Data[i])
			}
		}
	}
}

// snapshot returns p's current policy.
func snapshot(t testing.TB, p *Processor) *checkpoint.Checkpoint {
	t.Helper()
	c, err := p.Snapshot()
	if err != nil {
		t.Fatal(err)
	}
	return c
}

// acks installs a deferral hook that records every batch's outcome.
type acks struct {
	mu   sync.Mutex
	got  []error // one per deferred batch, nil until acknowledged
	done []bool
}

func (a *acks) ctx(ctx context.Context) context.Context {
	return stage.WithDeferral(ctx, func() stage.Ack {
		a.mu.Lock()
		defer a.mu.Unlock()
		i := len(a.got)
		a.got = append(a.got, nil)
		a.done = append(a.done, false)
		return func(err error) {
			a.mu.Lock()
			defer a.mu.Unlock()
			if a.done[i] {
				return
			}
			a.done[i], a.got[i] = true, err
		}
	})
}

// state returns, per batch, "acked", "failed" or "open".
func (a *acks) state() []string {
	a.mu.Lock()
	defer a.mu.Unlock()
	out := make([]string, len(a.got))
	for i := range a.got {
		switch {
		case !a.done[i]:
			out[i] = "open"
		case a.got[i] == nil:
			out[i] = "acked"
		case errors.Is(a.got[i], stage.ErrUnavailable):
			out[i] = "handed-back"
		default:
			out[i] = "failed"
		}
	}
	return out
}

// errUnavailable is stage.ErrUnavailable (a function, so tables read it).
func errUnavailable() error { return stage.ErrUnavailable }
