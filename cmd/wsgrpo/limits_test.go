package main

import (
	"errors"
	"reflect"
	"strings"
	"testing"
	"time"
)

// TestConfigLimits: a numeric setting out of its range is refused with an
// error that names it, from the file, the environment or a flag.
func TestConfigLimits(t *testing.T) {
	for _, tc := range []struct {
		key  string // the setting, and what the error must name
		yaml string
		args []string
		env  [2]string
	}{
		{key: "ort.threads -1", args: []string{"--ort-threads", "-1"}},
		{key: "ort.threads 100000", yaml: "ort:\n  threads: 100000\n"},
		{key: "ort.device_id 100000", args: []string{"--ort-device-id", "100000"}},
		{key: "ort.stage_threads.learner 0", yaml: "ort:\n  stage_threads:\n    learner: 0\n"},
		{key: "ort.stage_threads.sampler 5000", yaml: "ort:\n  stage_threads:\n    sampler: 5000\n"},
		{key: "runner.concurrency -1", args: []string{"--runner-concurrency", "-1"}},
		{key: "runner.concurrency 100000", env: [2]string{"WSGRPO_RUNNER_CONCURRENCY", "100000"}},
		{key: "runner.fetch_size -1", args: []string{"--runner-fetch-size", "-1"}},
		{key: "runner.max_deliver -1", args: []string{"--runner-max-deliver", "-1"}},
		{key: "runner.max_deliver 1000000", args: []string{"--runner-max-deliver", "1000000"}},
		{key: "runner.ack_wait -1s", args: []string{"--runner-ack-wait", "-1s"}},
		{key: "runner.ack_wait 1000h0m0s", args: []string{"--runner-ack-wait", "1000h"}},
		{key: "stages.logger.concurrency -1", yaml: "stages:\n  logger:\n    concurrency: -1\n"},
		{key: "stages.sampler.fetch_size 9", yaml: "stages:\n  sampler:\n    fetch_size: 9\n"},
		{key: "stages.learner.max_deliver -2", yaml: "stages:\n  learner:\n    max_deliver: -2\n"},
		{key: "stages.verifier.ack_wait 10ms", yaml: "stages:\n  verifier:\n    ack_wait: 10ms\n"},
		{key: "sampler.samples 100000", yaml: "sampler:\n  samples: 100000\n"},
		{key: "sampler.max_new_tokens 10000000", yaml: "sampler:\n  max_new_tokens: 10000000\n"},
		{key: "sampler.max_batch 10000000", yaml: "sampler:\n  max_batch: 10000000\n"},
		{key: "sampler.temperature 1e+06", yaml: "sampler:\n  temperature: 1000000\n"},
		{key: "train.steps 1000000000", yaml: "train:\n  steps: 1000000000\n"},
		{key: "train.prompts_per_step 1000000", yaml: "train:\n  prompts_per_step: 1000000\n"},
		{key: "train.ahead 1000", yaml: "train:\n  ahead: 1000\n"},
		{key: "train.prompt_batch 1000000", yaml: "train:\n  prompt_batch: 1000000\n"},
		{key: "train.warmup_steps 1000000000", yaml: "train:\n  warmup_steps: 1000000000\n"},
		{key: "train.eval_prompts 1000000000", yaml: "train:\n  eval_prompts: 1000000000\n"},
		{key: "train.eval_samples 100000", yaml: "train:\n  eval_samples: 100000\n"},
		{key: "train.eval_max_ops 1000", yaml: "train:\n  eval_max_ops: 1000\n"},
		{key: "learner.groups_per_step 1000000", yaml: "learner:\n  groups_per_step: 1000000\n"},
		{key: "learner.micro_batch 1000000", yaml: "learner:\n  micro_batch: 1000000\n"},
		{key: "learner.max_staleness 1000000000", yaml: "learner:\n  max_staleness: 1000000000\n"},
		{key: "learner.checkpoint_every 1000000", yaml: "learner:\n  checkpoint_every: 1000000\n"},
		{key: "learner.keep_checkpoints 1000000", yaml: "learner:\n  keep_checkpoints: 1000000\n"},
		{key: "learner.lock_ttl 1000h0m0s", yaml: "learner:\n  lock_ttl: 1000h\n"},
		{key: "labeler.fit.hidden 1000000", yaml: "labeler:\n  fit:\n    hidden: 1000000\n"},
		{key: "labeler.fit.epochs 1000000000", yaml: "labeler:\n  fit:\n    epochs: 1000000000\n"},
		{key: "labeler.fit.batch_size 10000000", yaml: "labeler:\n  fit:\n    batch_size: 10000000\n"},
		{key: "labeler.fit.max_pairs_per_group 1000000", yaml: "labeler:\n  fit:\n    max_pairs_per_group: 1000000\n"},
		{key: "labeler.pending_max_age 10000h0m0s", yaml: "labeler:\n  pending_max_age: 10000h\n"},
		{key: "pretrain.steps 1000000000", yaml: "pretrain:\n  steps: 1000000000\n"},
		{key: "pretrain.batch 1000000", yaml: "pretrain:\n  batch: 1000000\n"},
		{key: "pretrain.eval_prompts 1000000000", yaml: "pretrain:\n  eval_prompts: 1000000000\n"},
		{key: "pretrain: invalid configuration: steps -1", yaml: "pretrain:\n  steps: -1\n"},
	} {
		t.Run(strings.Fields(tc.key)[0], func(t *testing.T) {
			args := tc.args
			if tc.yaml != "" {
				args = append(args, "--config", writeYAML(t, tc.yaml))
			}
			if tc.env[0] != "" {
				t.Setenv(tc.env[0], tc.env[1])
			}
			_, err := loadWith(t, args)
			if !errors.Is(err, ErrConfig) || !strings.Contains(err.Error(), tc.key) {
				t.Fatalf("err = %v, want ErrConfig naming %q", err, tc.key)
			}
		})
	}
}

// negativeAllowed are the numeric settings for which a negative value
// means something.
var negativeAllowed = map[string]string{
	"learner.clip_norm": "a negative clip norm turns clipping off",
}

// TestConfigRefusesNegatives sets every numeric setting of Config, one at
// a time, to -1 (-1s for a duration): Validate refuses each, except those
// for which a negative value means something. A setting added later is
// covered without a new case.
func TestConfigRefusesNegatives(t *testing.T) {
	var keys []string
	base := DefaultConfig()
	numericFields(reflect.ValueOf(&base).Elem(), "", func(key string, _ reflect.Value) { keys = append(keys, key) })
	if len(keys) < 50 {
		t.Fatalf("found only %d numeric settings: the walk is broken", len(keys))
	}
	for _, key := range keys {
		t.Run(key, func(t *testing.T) {
			c := DefaultConfig()
			numericFields(reflect.ValueOf(&c).Elem(), "", func(k string, f reflect.Value) {
				if k != key {
					return
				}
				switch {
				case f.Type() == reflect.TypeFor[time.Duration]():
					f.SetInt(int64(-time.Second))
				case f.CanInt():
					f.SetInt(-1)
				case f.CanFloat():
					f.SetFloat(-1)
				}
			})
			err := c.Validate()
			if why, ok := negativeAllowed[key]; ok {
				if err != nil {
					t.Errorf("%s -1 refused (%v), but %s", key, err, why)
				}
				return
			}
			if !errors.Is(err, ErrConfig) {
				t.Errorf("%s -1: Validate = %v, want ErrConfig", key, err)
			}
		})
	}
}

// numericFields calls f with the key and value of every signed integer,
// float and duration field under v (its koanf key), recursively. Seeds,
// unsigned, cannot be negative.
func numericFields(v reflect.Value, prefix string, f func(key string, field reflect.Value)) {
	for i := range v.NumField() {
		sf := v.Type().Field(i)
		key := sf.Tag.Get("koanf")
		if !sf.IsExported() || key == "" {
			continue
		}
		if prefix != "" {
			key = prefix + "." + key
		}
		switch fv := v.Field(i); {
		case fv.Kind() == reflect.Struct:
			numericFields(fv, key, f)
		case fv.CanInt(), fv.CanFloat():
			f(key, fv)
		}
	}
}
