package sampler_test

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/apache/arrow-go/v18/arrow"
	"github.com/apache/arrow-go/v18/arrow/memory"

	"github.com/wsgrpo/wsgrpo/model/checkpoint"
	"github.com/wsgrpo/wsgrpo/model/generate"
	"github.com/wsgrpo/wsgrpo/model/ort/orttest"
	"github.com/wsgrpo/wsgrpo/model/policy"
	"github.com/wsgrpo/wsgrpo/model/segment"
	"github.com/wsgrpo/wsgrpo/model/tokenizer"
	"github.com/wsgrpo/wsgrpo/schemas"
	"github.com/wsgrpo/wsgrpo/stages/sampler"
	"github.com/wsgrpo/wsgrpo/stages/stage"
)

// versions is an in-memory weight store: the sampler's own Versions
// interface, which the command wires to the run's JetStream weight store.
type versions struct {
	mu    sync.Mutex
	blobs map[int64][]byte
	gets  int
}

func (v *versions) put(version int64, blob []byte) {
	v.mu.Lock()
	defer v.mu.Unlock()
	if v.blobs == nil {
		v.blobs = map[int64][]byte{}
	}
	v.blobs[version] = blob
}

func (v *versions) Latest(context.Context) (int64, error) {
	v.mu.Lock()
	defer v.mu.Unlock()
	var latest int64
	for k := range v.blobs {
		latest = max(latest, k)
	}
	if latest == 0 {
		return 0, errors.New("no version published")
	}
	return latest, nil
}

func (v *versions) Get(_ context.Context, version int64) ([]byte, error) {
	v.mu.Lock()
	defer v.mu.Unlock()
	v.gets++
	b, ok := v.blobs[version]
	if !ok {
		return nil, fmt.Errorf("version %d not found", version)
	}
	return b, nil
}

// blob returns a tiny random policy checkpoint.
func blob(t testing.TB, seed uint64, maxSeq int) []byte {
	t.Helper()
	tok := tokenizer.Default()
	c, err := checkpoint.New(policy.Config{VocabSize: tok.VocabSize(), DModel: 16, NLayers: 1, NHeads: 2, DFF: 32, MaxSeq: maxSeq}, tok, seed)
	if err != nil {
		t.Fatal(err)
	}
	b, err := checkpoint.Marshal(c)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func prompts(mem memory.Allocator, run string, texts ...string) arrow.RecordBatch {
	ps := make([]schemas.Prompt, len(texts))
	for i, s := range texts {
		ps[i] = schemas.Prompt{RunID: run, Step: 3, PromptID: fmt.Sprintf("p%d", i), Task: "arith", Prompt: s, ReferenceAnswer: "1"}
	}
	return schemas.NewPromptBatch(mem, ps)
}

func newSampler(t *testing.T, v sampler.Versions, o sampler.Options) *sampler.Processor {
	t.Helper()
	p, err := sampler.New(sampler.NewLoader(orttest.Runtime(t), v, nil), o, nil)
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

func process(t *testing.T, p *sampler.Processor, in arrow.RecordBatch) []schemas.Rollout {
	t.Helper()
	outs, err := p.Process(t.Context(), in)
	if err != nil {
		t.Fatal(err)
	}
	if len(outs) != 1 {
		t.Fatalf("%d outputs, want 1", len(outs))
	}
	defer outs[0].Release()
	if k, err := schemas.KindOf(outs[0]); err != nil || k != schemas.KindRollout {
		t.Fatalf("output kind %q, %v", k, err)
	}
	rows, err := schemas.ReadRollouts(outs[0])
	if err != nil {
		t.Fatal(err)
	}
	return rows
}

func TestSamplerGroups(t *testing.T) {
	mem := memory.NewCheckedAllocator(memory.NewGoAllocator())
	defer mem.AssertSize(t, 0)
	v := &versions{}
	v.put(1, blob(t, 1, 48))
	const g = 3
	p := newSampler(t, v, sampler.Options{Samples: g, MaxNewTokens: 12})
	in := prompts(mem, "run", "17+25", "(3*4)-2")
	defer in.Release()
	rows := process(t, p, in)
	if len(rows) != 2*g {
		t.Fatalf("%d rows, want %d", len(rows), 2*g)
	}
	tok := tokenizer.Default()
	for i, r := range rows {
		pi, k := i/g, int32(i%g)
		want := fmt.Sprintf("p%d", pi)
		if r.PromptID != want || r.SampleIndex != k || r.RunID != "run" || r.Step != 3 || r.Task != "arith" {
			t.Errorf("row %d: prompt %s sample %d, want %s sample %d", i, r.PromptID, r.SampleIndex, want, k)
		}
		if r.TrajectoryID != schemas.TrajectoryID("run", 3, want, k) || r.GroupID != schemas.GroupID("run", 3, want) {
			t.Errorf("row %d: ids %s %s", i, r.TrajectoryID, r.GroupID)
		}
		if r.PolicyVersion != 1 {
			t.Errorf("row %d: version %d", i, r.PolicyVersion)
		}
		if n := len(r.CompletionTokenIDs); n == 0 || n > 12 || len(r.TokenLogprobs) != n {
			t.Errorf("row %d: %d tokens, %d logprobs", i, n, len(r.TokenLogprobs))
		}
		for _, lp := range r.TokenLogprobs {
			if lp > 0 {
				t.Errorf("row %d: logprob %v > 0", i, lp)
			}
		}
		if r.Completion != tok.Decode(r.CompletionTokenIDs) {
			t.Errorf("row %d: completion text does not match its tokens", i)
		}
		if !slices.Equal(r.StepEnds, segment.Lines(tok, r.CompletionTokenIDs)) {
			t.Errorf("row %d: step ends %v", i, r.StepEnds)
		}
		if !slices.Contains([]string{"eos", "stop", "length"}, r.FinishReason) || r.SampleMs <= 0 {
			t.Errorf("row %d: finish %q, sample ms %v", i, r.FinishReason, r.SampleMs)
		}
	}
	// A redelivered batch samples the same completions.
	again := process(t, p, in)
	for i := range rows {
		if !slices.Equal(rows[i].CompletionTokenIDs, again[i].CompletionTokenIDs) {
			t.Fatalf("row %d differs on redelivery", i)
		}
	}
}

func TestSamplerPromptErrors(t *testing.T) {
	v := &versions{}
	v.put(1, blob(t, 1, 24))
	p := newSampler(t, v, sampler.Options{Samples: 2, MaxNewTokens: 4})
	long := "1+1+1+1+1+1+1+1+1+1+1+1+1"
	in := prompts(nil, "run", "1+2", "", "3×4", long)
	defer in.Release()
	rows := process(t, p, in)
	if len(rows) != 8 {
		t.Fatalf("%d rows", len(rows))
	}
	for i, r := range rows {
		bad := i >= 2
		if got := r.FinishReason == sampler.FinishPromptError; got != bad {
			t.Errorf("row %d (%q): finish %q", i, r.Prompt.Prompt, r.FinishReason)
		}
		if bad && (r.Completion != "" || len(r.CompletionTokenIDs) != 0) {
			t.Errorf("row %d: a prompt error row has a completion", i)
		}
		if !bad && len(r.CompletionTokenIDs) == 0 {
			t.Errorf("row %d: no completion", i)
		}
	}
}

func TestSamplerErrors(t *testing.T) {
	in := prompts(nil, "run", "1+2")
	defer in.Release()
	t.Run("no version yet", func(t *testing.T) {
		p := newSampler(t, &versions{}, sampler.Options{Samples: 1, MaxNewTokens: 2})
		_, err := p.Process(t.Context(), in)
		if stage.Classify(err) != stage.ClassUnavailable {
			t.Fatalf("err = %v (class %q), want unavailable", err, stage.Classify(err))
		}
	})
	t.Run("corrupt version", func(t *testing.T) {
		v := &versions{}
		v.put(1, []byte("not a checkpoint"))
		p := newSampler(t, v, sampler.Options{Samples: 1, MaxNewTokens: 2})
		if _, err := p.Process(t.Context(), in); stage.Classify(err) != stage.ClassUnavailable {
			t.Fatalf("err = %v, want unavailable", err)
		}
	})
	t.Run("not a prompt batch", func(t *testing.T) {
		v := &versions{}
		v.put(1, blob(t, 1, 24))
		p := newSampler(t, v, sampler.Options{Samples: 1, MaxNewTokens: 2})
		ro := schemas.NewRolloutBatch(nil, []schemas.Rollout{{TrajectoryID: "x"}})
		defer ro.Release()
		if _, err := p.Process(t.Context(), ro); stage.Classify(err) != stage.ClassInvalid {
			t.Fatalf("err = %v, want invalid", err)
		}
	})
	t.Run("options", func(t *testing.T) {
		for _, o := range []sampler.Options{{Samples: -1}, {TopP: 2}, {MaxNewTokens: -3}, {PromptTemplate: "no placeholder"}, {StopStrings: []string{""}}} {
			if err := o.Validate(); !errors.Is(err, sampler.ErrOptions) {
				t.Errorf("%+v: %v", o, err)
			}
		}
	})
}

// TestSamplerVersionSwap publishes a new version while batches are being
// sampled: the loader builds it in the background, every batch samples
// with one version, and later batches carry the new one.
func TestSamplerVersionSwap(t *testing.T) {
	v := &versions{}
	v.put(1, blob(t, 1, 32))
	loader := sampler.NewLoader(orttest.Runtime(t), v, nil)
	p, err := sampler.New(loader, sampler.Options{Samples: 4, MaxNewTokens: 6}, nil)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = p.Close(context.Background()) })
	in := prompts(nil, "run", "1+2", "3*4")
	defer in.Release()
	seen := map[int64]bool{}
	deadline := time.Now().Add(30 * time.Second)
	for batch := 0; !seen[2]; batch++ {
		if batch == 2 {
			v.put(2, blob(t, 2, 32))
		}
		if time.Now().After(deadline) {
			t.Fatalf("version 2 never sampled; versions seen %v", seen)
		}
		rows := process(t, p, in)
		for _, r := range rows {
			if r.PolicyVersion != rows[0].PolicyVersion {
				t.Fatalf("batch %d mixes versions %d and %d", batch, rows[0].PolicyVersion, r.PolicyVersion)
			}
		}
		seen[rows[0].PolicyVersion] = true
	}
	if loader.Swaps() != 1 {
		t.Fatalf("%d swaps, want 1", loader.Swaps())
	}
}

// TestSamplerCatchesUp: a version one newer than the loader's is built in
// the background while sampling goes on with the current one, but a
// loader that fell further behind than its lag bound (an idle sampler
// while the learner published several versions, or a load that failed)
// loads the newest before it samples: rows that stale would be dropped by
// the learner. With lag 0 every batch is sampled with the newest version.
func TestSamplerCatchesUp(t *testing.T) {
	v := &versions{}
	v.put(1, blob(t, 1, 32))
	loader := sampler.NewLoader(orttest.Runtime(t), v, nil)
	p, err := sampler.New(loader, sampler.Options{Samples: 2, MaxNewTokens: 4}, nil)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = p.Close(context.Background()) })
	in := prompts(nil, "run", "1+2")
	defer in.Release()
	version := func() int64 {
		t.Helper()
		return process(t, p, in)[0].PolicyVersion
	}
	if got := version(); got != 1 {
		t.Fatalf("first batch sampled with version %d, want 1", got)
	}
	for _, tc := range []struct {
		name    string
		publish []int64 // versions published before the batch
		maxLag  int64
		min     int64 // the oldest version the batch may be sampled with
	}{
		{"two behind", []int64{2, 3}, sampler.DefaultMaxLag, 3},
		{"one behind", []int64{4}, sampler.DefaultMaxLag, 3},
		{"lag 0", []int64{5}, 0, 5},
		{"three behind", []int64{6, 7, 8}, sampler.DefaultMaxLag, 8},
	} {
		loader.SetMaxLag(tc.maxLag)
		for _, n := range tc.publish {
			v.put(n, blob(t, uint64(n), 32))
		}
		newest := tc.publish[len(tc.publish)-1]
		if got := version(); got < tc.min || got > newest {
			t.Fatalf("%s: batch sampled with version %d, want %d..%d", tc.name, got, tc.min, newest)
		}
	}
}

// TestSamplerFixed samples with a policy loaded in the process (Fixed,
// what eval does for a Hugging Face model) whose EOS set holds more than
// the tokenizer's EOS: a completion ends on any of them.
func TestSamplerFixed(t *testing.T) {
	rt := orttest.Runtime(t)
	tok := tokenizer.Default()
	c, err := checkpoint.Unmarshal(blob(t, 1, 48))
	if err != nil {
		t.Fatal(err)
	}
	fixed := func(eos []int32) *sampler.Fixed {
		t.Helper()
		m, err := generate.FromCheckpoint(rt, c, nil)
		if err != nil {
			t.Fatal(err)
		}
		return sampler.NewFixed(sampler.Policy{Version: 7, Model: m, Tokenizer: tok, MaxSeq: c.Config.MaxSeq, EOS: eos})
	}
	in := prompts(nil, "run", "17+25", "(3*4)-2")
	defer in.Release()
	o := sampler.Options{Samples: 1, Greedy: true, MaxNewTokens: 10, IgnoreEOS: true}
	sample := func(f *sampler.Fixed, o sampler.Options) []schemas.Rollout {
		t.Helper()
		p, err := sampler.New(f, o, nil)
		if err != nil {
			t.Fatal(err)
		}
		rows := process(t, p, in)
		if err := p.Close(t.Context()); err != nil {
			t.Fatal(err)
		}
		if _, _, err := f.Acquire(t.Context()); !errors.Is(err, sampler.ErrClosed) {
			t.Fatalf("Acquire after Close: %v, want ErrClosed", err)
		}
		return rows
	}
	base := sample(fixed(nil), o)
	for i, r := range base {
		if r.PolicyVersion != 7 || len(r.CompletionTokenIDs) != 10 || r.FinishReason != "length" {
			t.Fatalf("row %d: version %d, %d tokens, finish %s", i, r.PolicyVersion, len(r.CompletionTokenIDs), r.FinishReason)
		}
	}
	stop := base[0].CompletionTokenIDs[2]
	o.IgnoreEOS = false
	set := []int32{tok.PAD(), stop, tok.EOS()}
	rows := sample(fixed(set), o)
	r := rows[0]
	n := len(r.CompletionTokenIDs)
	if r.FinishReason != "eos" || n > 3 || !slices.Contains(set, r.CompletionTokenIDs[n-1]) {
		t.Fatalf("row 0: %v finish %s, want it to end on an id of %v by token 3", r.CompletionTokenIDs, r.FinishReason, set)
	}
}
