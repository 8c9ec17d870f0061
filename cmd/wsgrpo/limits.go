package main

import (
	"fmt"
	"math"
	"slices"
	"time"

	"github.com/wsgrpo/wsgrpo/pipeline"
)

// Upper bounds of numeric settings. A value above one is a mistake (a
// misplaced digit, bytes written for megabytes) that would exhaust memory,
// threads or patience long before it did anything useful, so Validate
// refuses it, naming the key and the bound.
const (
	maxConcurrency  = 256                 // runner workers per stage and process
	maxMaxDeliver   = 1000                // deliveries of one batch
	maxWait         = 24 * time.Hour      // ack_wait, lock_ttl
	maxThreads      = 256                 // ONNX Runtime threads
	maxDeviceID     = 255                 // CUDA device
	maxSamples      = 1024                // completions per prompt
	maxTokens       = 1 << 16             // tokens of one completion
	maxBatchRows    = 1 << 16             // rows decoded, trained or fitted together; prompts per step
	maxTemperature  = 100                 // sampling temperature
	maxSteps        = 10_000_000          // training and pretraining steps
	maxEvalPrompts  = 1_000_000           // prompts of an evaluation
	maxAhead        = 64                  // steps of prompts published ahead
	maxCheckpoints  = 10_000              // learner checkpoints kept; steps between them
	maxStaleness    = 1_000_000           // policy versions a row may lag
	maxEpochs       = 1_000_000           // preference-model epochs
	maxHidden       = 1 << 16             // preference-model width
	maxPendingAge   = 30 * 24 * time.Hour // labeler.pending_max_age
	maxSeeds        = 1000                // seeds per method of `wsgrpo results`
	noLowerBound    = math.MinInt64       // the setting's own package checks its lower bound
	noDurationLower = time.Duration(math.MinInt64)
)

// rangeCheck is a numeric setting (an integer count or a duration) and its
// allowed range. A lo of noLowerBound or noDurationLower means only hi
// applies.
type rangeCheck[T int64 | time.Duration] struct {
	key       string
	v, lo, hi T
	zero      string // what 0 means when 0 is allowed below lo ("" when it is not)
}

// intCheck and durationCheck are the two kinds of setting checked.
type (
	intCheck      = rangeCheck[int64]
	durationCheck = rangeCheck[time.Duration]
)

func (k rangeCheck[T]) err() error {
	switch {
	case k.zero != "" && k.v == 0, k.v >= k.lo && k.v <= k.hi:
		return nil
	case int64(k.lo) == math.MinInt64:
		return fmt.Errorf("%w: %s %v must be at most %v", ErrConfig, k.key, k.v, k.hi)
	case k.zero != "":
		return fmt.Errorf("%w: %s %v must be %v..%v, or 0 (%s)", ErrConfig, k.key, k.v, k.lo, k.hi, k.zero)
	default:
		return fmt.Errorf("%w: %s %v must be %v..%v", ErrConfig, k.key, k.v, k.lo, k.hi)
	}
}

// checkLimits adds an error for every numeric setting of c outside its
// range: the runner's and the stages' overrides, ONNX Runtime's, and the
// upper bounds of the sizes and counts whose lower bounds the sections'
// own Validate methods check.
func (c Config) checkLimits(add func(error)) {
	ints := []intCheck{
		{key: "runner.concurrency", v: int64(c.Runner.Concurrency), lo: 1, hi: maxConcurrency},
		{key: "runner.fetch_size", v: int64(c.Runner.FetchSize), lo: 1, hi: pipeline.MaxFetch},
		{key: "runner.max_deliver", v: int64(c.Runner.MaxDeliver), lo: 1, hi: maxMaxDeliver},
		{key: "ort.threads", v: int64(c.ORT.Threads), lo: 1, hi: maxThreads, zero: "auto"},
		{key: "ort.device_id", v: int64(c.ORT.DeviceID), lo: noLowerBound, hi: maxDeviceID},
		{key: "sampler.samples", v: int64(c.Sampler.Samples), lo: noLowerBound, hi: maxSamples},
		{key: "sampler.max_new_tokens", v: int64(c.Sampler.MaxNewTokens), lo: noLowerBound, hi: maxTokens},
		{key: "sampler.max_batch", v: int64(c.Sampler.MaxBatch), lo: noLowerBound, hi: maxBatchRows},
		{key: "train.steps", v: int64(c.Train.Steps), lo: noLowerBound, hi: maxSteps},
		{key: "train.prompts_per_step", v: int64(c.Train.PromptsPerStep), lo: noLowerBound, hi: maxBatchRows},
		{key: "train.ahead", v: int64(c.Train.Ahead), lo: noLowerBound, hi: maxAhead},
		{key: "train.prompt_batch", v: int64(c.Train.PromptBatch), lo: noLowerBound, hi: maxBatchRows},
		{key: "train.warmup_steps", v: int64(c.Train.WarmupSteps), lo: noLowerBound, hi: maxSteps},
		{key: "train.eval_prompts", v: int64(c.Train.EvalPrompts), lo: noLowerBound, hi: maxEvalPrompts},
		{key: "train.eval_samples", v: int64(c.Train.EvalSamples), lo: noLowerBound, hi: maxSamples},
		{key: "learner.groups_per_step", v: int64(c.Learner.GroupsPerStep), lo: noLowerBound, hi: maxBatchRows},
		{key: "learner.micro_batch", v: int64(c.Learner.MicroBatch), lo: noLowerBound, hi: maxBatchRows},
		{key: "learner.max_staleness", v: c.Learner.MaxStaleness, lo: noLowerBound, hi: maxStaleness},
		{key: "learner.checkpoint_every", v: int64(c.Learner.CheckpointEvery), lo: noLowerBound, hi: maxCheckpoints},
		{key: "learner.keep_checkpoints", v: int64(c.Learner.KeepCheckpoints), lo: noLowerBound, hi: maxCheckpoints},
		{key: "labeler.fit.hidden", v: int64(c.Labeler.Fit.Hidden), lo: noLowerBound, hi: maxHidden},
		{key: "labeler.fit.epochs", v: int64(c.Labeler.Fit.Epochs), lo: noLowerBound, hi: maxEpochs},
		{key: "labeler.fit.batch_size", v: int64(c.Labeler.Fit.BatchSize), lo: noLowerBound, hi: maxBatchRows},
		{key: "labeler.fit.max_pairs_per_group", v: int64(c.Labeler.Fit.MaxPairsPerGroup), lo: noLowerBound, hi: maxBatchRows},
		{key: "pretrain.steps", v: int64(c.Pretrain.Steps), lo: noLowerBound, hi: maxSteps},
		{key: "pretrain.batch", v: int64(c.Pretrain.Batch), lo: noLowerBound, hi: maxBatchRows},
		{key: "pretrain.warmup", v: int64(c.Pretrain.Warmup), lo: noLowerBound, hi: maxSteps},
		{key: "pretrain.eval_every", v: int64(c.Pretrain.EvalEvery), lo: noLowerBound, hi: maxSteps},
		{key: "pretrain.eval_prompts", v: int64(c.Pretrain.EvalPrompts), lo: noLowerBound, hi: maxEvalPrompts},
	}
	durations := []durationCheck{
		{key: "runner.ack_wait", v: c.Runner.AckWait, lo: time.Second, hi: maxWait},
		{key: "learner.lock_ttl", v: c.Learner.LockTTL, lo: time.Second, hi: maxWait},
		{key: "labeler.pending_max_age", v: c.Labeler.PendingMaxAge, lo: noDurationLower, hi: maxPendingAge},
	}
	for _, name := range sortedKeys(c.Stages) {
		sc, p := c.Stages[name], "stages."+name+"."
		ints = append(ints,
			intCheck{key: p + "concurrency", v: int64(sc.Concurrency), lo: 1, hi: maxConcurrency, zero: "runner.concurrency"},
			intCheck{key: p + "fetch_size", v: int64(sc.FetchSize), lo: 1, hi: pipeline.MaxFetch, zero: "runner.fetch_size"},
			intCheck{key: p + "max_deliver", v: int64(sc.MaxDeliver), lo: 1, hi: maxMaxDeliver, zero: "runner.max_deliver"})
		durations = append(durations, durationCheck{key: p + "ack_wait", v: sc.AckWait, lo: time.Second, hi: maxWait, zero: "runner.ack_wait"})
	}
	for _, name := range sortedKeys(c.ORT.StageThreads) {
		ints = append(ints, intCheck{key: "ort.stage_threads." + name, v: int64(c.ORT.StageThreads[name]), lo: 1, hi: maxThreads})
	}
	for _, k := range ints {
		add(k.err())
	}
	for _, k := range durations {
		add(k.err())
	}
	if t := c.Sampler.Temperature; t > maxTemperature {
		add(fmt.Errorf("%w: sampler.temperature %g must be at most %d", ErrConfig, t, maxTemperature))
	}
	if c.Train.EvalMaxOps > c.Train.Arith.MaxOps && c.Train.Data == "" {
		ac := c.Train.Arith
		ac.MaxOps = c.Train.EvalMaxOps
		if err := ac.Validate(); err != nil {
			add(fmt.Errorf("%w: train.eval_max_ops %d: %w", ErrConfig, c.Train.EvalMaxOps, err))
		}
	}
	if err := c.Pretrain.Validate(); err != nil {
		add(fmt.Errorf("%w: pretrain: %w", ErrConfig, err))
	}
}

// sortedKeys returns m's keys in order, so that errors come out the same
// way every time.
func sortedKeys[V any](m map[string]V) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	return keys
}
