// Package sampling measures the sampler stage against raw decoding: how many
// tokens and rollouts per second stages/sampler produces from prompt
// batches (Arrow in and out, step segmentation, policy versions from a
// Loader, new versions published while it runs), beside
// generate.Model.Generate on the same prompts with the same options, with
// the same number of workers, in the same run. `wsgrpo bench sampler`
// prints it.
package sampling

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"sync/atomic"
	"time"

	"github.com/apache/arrow-go/v18/arrow"

	"github.com/wsgrpo/wsgrpo/model/checkpoint"
	"github.com/wsgrpo/wsgrpo/model/generate"
	"github.com/wsgrpo/wsgrpo/model/ort"
	"github.com/wsgrpo/wsgrpo/model/policy"
	"github.com/wsgrpo/wsgrpo/model/tokenizer"
	"github.com/wsgrpo/wsgrpo/schemas"
	"github.com/wsgrpo/wsgrpo/stages/sampler"
)

// ErrOptions is returned for options that cannot be measured.
var ErrOptions = errors.New("sampling: invalid options")

// Options say what to measure. Zero fields take the defaults.
type Options struct {
	DModel, Layers int // policy shape (128, 4)
	Prompts        int // prompts per batch (8)
	Samples        int // G per prompt (8): a batch decodes Prompts*Samples rows
	NewTokens      int // max new tokens per completion (256)
	Batches        int // prompt batches per measurement (4)
	Workers        int // concurrent Process (or Generate) calls (1)
	// SwapEvery publishes a new policy version this often while the
	// sampler runs (0: never).
	SwapEvery time.Duration
}

func (o *Options) defaults() error {
	def := func(v *int, d int) {
		if *v == 0 {
			*v = d
		}
	}
	def(&o.DModel, 128)
	def(&o.Layers, 4)
	def(&o.Prompts, 8)
	def(&o.Samples, 8)
	def(&o.NewTokens, 256)
	def(&o.Batches, 4)
	def(&o.Workers, 1)
	if o.DModel < 1 || o.Layers < 1 || o.Prompts < 1 || o.Samples < 1 || o.NewTokens < 1 || o.Batches < 1 || o.Workers < 1 || o.SwapEvery < 0 {
		return fmt.Errorf("%w: %+v", ErrOptions, *o)
	}
	return nil
}

// Result is one measurement of the sampler beside raw decoding.
type Result struct {
	Options Options
	// Sampler figures: generated tokens and rollouts per second of wall
	// time over all batches.
	Tokens, Rollouts         int
	Elapsed                  time.Duration
	TokensPerSec, RolloutsPS float64
	// Versions is how many distinct policy versions the rollouts carry;
	// Swaps how many times the loader swapped one in.
	Versions, Swaps int
	// Raw decoding of the same prompts with the same options.
	RawTokens       int
	RawElapsed      time.Duration
	RawTokensPerSec float64
}

// Ratio is the sampler's tokens/s over raw decoding's.
func (r Result) Ratio() float64 {
	if r.RawTokensPerSec == 0 {
		return 0
	}
	return r.TokensPerSec / r.RawTokensPerSec
}

// versions is an in-memory weight store for the measurement.
type versions struct {
	mu     sync.Mutex
	blobs  [][]byte // version i+1
	latest int64
}

func (v *versions) Latest(context.Context) (int64, error) {
	v.mu.Lock()
	defer v.mu.Unlock()
	return v.latest, nil
}

func (v *versions) Get(_ context.Context, version int64) ([]byte, error) {
	v.mu.Lock()
	defer v.mu.Unlock()
	if version < 1 || version > int64(len(v.blobs)) {
		return nil, fmt.Errorf("%w: no version %d", ErrOptions, version)
	}
	return v.blobs[version-1], nil
}

func (v *versions) publish() bool {
	v.mu.Lock()
	defer v.mu.Unlock()
	if v.latest >= int64(len(v.blobs)) {
		return false
	}
	v.latest++
	return true
}

// Run measures the sampler, then raw decoding, on rt.
func Run(ctx context.Context, rt *ort.Runtime, o Options) (Result, error) {
	if err := o.defaults(); err != nil {
		return Result{}, err
	}
	tok := tokenizer.Default()
	prompts := make([]schemas.Prompt, o.Prompts)
	for i := range prompts {
		prompts[i] = schemas.Prompt{RunID: "bench", PromptID: fmt.Sprintf("p%d", i), Task: "arith",
			Prompt: fmt.Sprintf("(%d+%d)*%d-%d", 10+i, 25+2*i, 3+i%5, 7*i%90)}
	}
	maxPrompt := 0
	// EOS is ignored on both sides: every row decodes NewTokens tokens, so
	// tokens/s does not depend on when random weights happen to end rows.
	so := sampler.Options{Samples: o.Samples, MaxNewTokens: o.NewTokens, MaxBatch: o.Prompts * o.Samples, IgnoreEOS: true}
	for _, p := range prompts {
		maxPrompt = max(maxPrompt, len(tok.Encode(so.PromptText(p.Prompt)))+1)
	}
	cfg := policy.Config{VocabSize: tok.VocabSize(), DModel: o.DModel, NLayers: o.Layers, NHeads: 4, DFF: 4 * o.DModel, MaxSeq: maxPrompt + o.NewTokens}
	// Versions to swap in are made before the clock starts.
	nVersions := 1
	if o.SwapEvery > 0 {
		nVersions = 1 + 8
	}
	store := &versions{}
	for i := range nVersions {
		c, err := checkpoint.New(cfg, tok, uint64(i+1))
		if err != nil {
			return Result{}, err
		}
		b, err := checkpoint.Marshal(c)
		if err != nil {
			return Result{}, err
		}
		store.blobs = append(store.blobs, b)
	}
	store.publish()
	loader := sampler.NewLoader(rt, store, nil)
	proc, err := sampler.New(loader, so, nil)
	if err != nil {
		return Result{}, err
	}
	defer func() { _ = proc.Close(ctx) }()
	batch := schemas.NewPromptBatch(nil, prompts)
	defer batch.Release()
	// Warm up: load version 1 and open its session outside the clock.
	if _, err := processOnce(ctx, proc, batch); err != nil {
		return Result{}, err
	}

	res := Result{Options: o}
	seen := map[int64]bool{}
	var mu sync.Mutex
	var tokens, rollouts atomic.Int64
	stopSwaps := make(chan struct{})
	var swapper sync.WaitGroup
	if o.SwapEvery > 0 {
		swapper.Go(func() {
			t := time.NewTicker(o.SwapEvery)
			defer t.Stop()
			for {
				select {
				case <-stopSwaps:
					return
				case <-t.C:
					store.publish()
				}
			}
		})
	}
	start := time.Now()
	err = eachWorker(o, func() error {
		rows, err := processOnce(ctx, proc, batch)
		if err != nil {
			return err
		}
		n := 0
		mu.Lock()
		for _, r := range rows {
			n += len(r.CompletionTokenIDs)
			seen[r.PolicyVersion] = true
		}
		mu.Unlock()
		tokens.Add(int64(n))
		rollouts.Add(int64(len(rows)))
		return nil
	})
	res.Elapsed = time.Since(start)
	close(stopSwaps)
	swapper.Wait()
	if err != nil {
		return Result{}, err
	}
	res.Tokens, res.Rollouts = int(tokens.Load()), int(rollouts.Load())
	res.TokensPerSec = float64(res.Tokens) / res.Elapsed.Seconds()
	res.RolloutsPS = float64(res.Rollouts) / res.Elapsed.Seconds()
	res.Versions, res.Swaps = len(seen), loader.Swaps()

	// Raw decoding: the same rows, prompts and options straight into
	// Generate, with the same seeds the sampler used.
	m, _, err := generate.FromBlob(rt, store.blobs[0], nil)
	if err != nil {
		return Result{}, err
	}
	defer func() { _ = m.Close() }()
	ids := make([][]int32, 0, o.Prompts*o.Samples)
	for _, p := range prompts {
		enc := append([]int32{tok.BOS()}, tok.Encode(so.PromptText(p.Prompt))...)
		for range o.Samples {
			ids = append(ids, enc)
		}
	}
	gopts := generate.Options{Temperature: 1, MaxNewTokens: o.NewTokens, EOS: -1, PAD: tok.PAD(), Tokenizer: tok, Seed: 1}
	if _, err := m.Generate(ctx, ids, gopts); err != nil { // session warm-up
		return Result{}, err
	}
	var rawTokens atomic.Int64
	start = time.Now()
	err = eachWorker(o, func() error {
		out, err := m.Generate(ctx, ids, gopts)
		if err != nil {
			return err
		}
		n := 0
		for _, c := range out {
			n += len(c.Tokens)
		}
		rawTokens.Add(int64(n))
		return nil
	})
	res.RawElapsed = time.Since(start)
	if err != nil {
		return Result{}, err
	}
	res.RawTokens = int(rawTokens.Load())
	res.RawTokensPerSec = float64(res.RawTokens) / res.RawElapsed.Seconds()
	return res, nil
}

// eachWorker runs fn o.Batches times spread over o.Workers goroutines and
// returns the first error.
func eachWorker(o Options, fn func() error) error {
	var next atomic.Int64
	errs := make(chan error, o.Workers)
	var wg sync.WaitGroup
	for range o.Workers {
		wg.Go(func() {
			for next.Add(1) <= int64(o.Batches) {
				if err := fn(); err != nil {
					errs <- err
					return
				}
			}
		})
	}
	wg.Wait()
	close(errs)
	return <-errs
}

// processOnce runs one prompt batch through the sampler.
func processOnce(ctx context.Context, p *sampler.Processor, in arrow.RecordBatch) ([]schemas.Rollout, error) {
	outs, err := p.Process(ctx, in)
	if err != nil {
		return nil, err
	}
	defer func() {
		for _, o := range outs {
			o.Release()
		}
	}()
	var rows []schemas.Rollout
	for _, o := range outs {
		r, err := schemas.ReadRollouts(o)
		if err != nil {
			return nil, err
		}
		rows = append(rows, r...)
	}
	return rows, nil
}
