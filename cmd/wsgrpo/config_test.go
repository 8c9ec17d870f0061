package main

import (
	"errors"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"testing"
	"time"

	"github.com/spf13/pflag"

	"github.com/wsgrpo/wsgrpo/pipeline"
)

func loadWith(t *testing.T, args []string) (Config, error) {
	t.Helper()
	fs := pflag.NewFlagSet("test", pflag.ContinueOnError)
	addConfigFlags(fs)
	if err := fs.Parse(args); err != nil {
		t.Fatal(err)
	}
	return loadConfig(fs)
}

func writeYAML(t *testing.T, text string) string {
	t.Helper()
	p := filepath.Join(t.TempDir(), "run.yaml")
	if err := os.WriteFile(p, []byte(text), 0o644); err != nil {
		t.Fatal(err)
	}
	return p
}

func TestConfigPrecedence(t *testing.T) {
	file := writeYAML(t, "run: fromfile\nrunner:\n  concurrency: 3\n  ack_wait: 45s\nlog:\n  level: warn\n")
	tests := []struct {
		name  string
		env   map[string]string
		args  []string
		check func(t *testing.T, c Config)
	}{
		{"defaults", nil, nil, func(t *testing.T, c Config) {
			if c.Run != "default" || c.Runner.Concurrency != 1 || c.Log.Level != "info" || c.RunDir() != filepath.Join("runs", "default") {
				t.Fatalf("%+v", c)
			}
		}},
		{"file over defaults", nil, []string{"--config", file}, func(t *testing.T, c Config) {
			if c.Run != "fromfile" || c.Runner.Concurrency != 3 || c.Runner.AckWait != 45*time.Second || c.Log.Level != "warn" {
				t.Fatalf("%+v", c)
			}
		}},
		{"env over file", map[string]string{"WSGRPO_RUNNER_CONCURRENCY": "5", "WSGRPO_RUN": "fromenv"}, []string{"--config", file}, func(t *testing.T, c Config) {
			if c.Run != "fromenv" || c.Runner.Concurrency != 5 || c.Log.Level != "warn" {
				t.Fatalf("%+v", c)
			}
		}},
		{"flags over env", map[string]string{"WSGRPO_RUNNER_CONCURRENCY": "5"}, []string{"--config", file, "--runner-concurrency", "7", "--ort-provider", "cuda"}, func(t *testing.T, c Config) {
			if c.Runner.Concurrency != 7 || c.ORT.Provider != "cuda" || c.Run != "fromfile" {
				t.Fatalf("%+v", c)
			}
		}},
		{"unrelated env ignored", map[string]string{"WSGRPO_HOME": "/x", "WSGRPO_NOPE": "1"}, nil, func(t *testing.T, c Config) {
			if c.Run != "default" {
				t.Fatalf("%+v", c)
			}
		}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			for k, v := range tc.env {
				t.Setenv(k, v)
			}
			c, err := loadWith(t, tc.args)
			if err != nil {
				t.Fatal(err)
			}
			tc.check(t, c)
		})
	}
}

func TestConfigRunDirectory(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "exp7")
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "run.yaml"), []byte("runner:\n  max_deliver: 9\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	c, err := loadWith(t, []string{"--run", dir})
	if err != nil {
		t.Fatal(err)
	}
	if c.Run != "exp7" || c.RunDir() != dir || c.Runner.MaxDeliver != 9 {
		t.Fatalf("%+v", c)
	}
}

func TestConfigErrors(t *testing.T) {
	tests := []struct {
		name string
		yaml string
		args []string
	}{
		{"unknown file key", "runner:\n  concurency: 2\n", nil},
		{"malformed yaml", "run: [unclosed\n", nil},
		{"missing file", "", []string{"--config", "/nonexistent/run.yaml"}},
		{"bad run id", "", []string{"--run", "has space"}},
		{"missing run directory", "", []string{"--run", "/nonexistent/run7"}},
		{"bad level", "", []string{"--log-level", "verbose"}},
		{"bad format", "", []string{"--log-format", "xml"}},
		{"zero concurrency", "", []string{"--runner-concurrency", "0"}},
		{"fetch too big", "", []string{"--runner-fetch-size", "9"}},
		{"short ack wait", "", []string{"--runner-ack-wait", "10ms"}},
		{"bad provider", "", []string{"--ort-provider", "tpu"}},
		{"bad duration in file", "runner:\n  ack_wait: soon\n", nil},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			args := tc.args
			if tc.yaml != "" {
				args = append(args, "--config", writeYAML(t, tc.yaml))
			}
			if _, err := loadWith(t, args); !errors.Is(err, ErrConfig) {
				t.Fatalf("err = %v, want ErrConfig", err)
			}
		})
	}
}

// FuzzConfigFile loads arbitrary bytes as the YAML configuration file: the
// result is a valid Config or an ErrConfig, never a panic.
func FuzzConfigFile(f *testing.F) {
	f.Add([]byte("run: a\nrunner:\n  concurrency: 2\n  ack_wait: 30s\n"))
	f.Add([]byte("log: {level: debug, format: json}\nort: {provider: cuda, threads: 4}\n"))
	f.Add([]byte("runner: [1, 2]\n"))
	f.Add([]byte("\x00\xff: &a [*a]\n"))
	f.Fuzz(func(t *testing.T, data []byte) {
		p := filepath.Join(t.TempDir(), "run.yaml")
		if err := os.WriteFile(p, data, 0o644); err != nil {
			t.Fatal(err)
		}
		c, err := loadWith(t, []string{"--config", p})
		if err != nil {
			if !errors.Is(err, ErrConfig) {
				t.Fatalf("error does not wrap ErrConfig: %v", err)
			}
			return
		}
		if err := c.Validate(); err != nil {
			t.Fatalf("loaded config does not validate: %v", err)
		}
	})
}

func TestConfigStageOverrides(t *testing.T) {
	file := writeYAML(t, "runner:\n  concurrency: 2\n  max_deliver: 7\nstages:\n  logger:\n    concurrency: 8\n    ack_wait: 90s\n")
	c, err := loadWith(t, []string{"--config", file})
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		stage       string
		concurrency int
		ackWait     time.Duration
	}{
		{pipeline.StageLogger, 8, 90 * time.Second},
		{pipeline.StageSampler, 2, pipeline.DefaultAckWait},
	}
	for _, tc := range tests {
		t.Run(tc.stage, func(t *testing.T) {
			rc := c.runnerConfig(pipeline.RunnerConfig{Stage: tc.stage})
			if rc.Concurrency != tc.concurrency || rc.AckWait != tc.ackWait || rc.MaxDeliver != 7 {
				t.Fatalf("%s: %+v", tc.stage, rc)
			}
		})
	}
	// Without a stages.logger.concurrency, the logger runs at least
	// LoggerMinConcurrency workers; an explicit setting wins, even a
	// smaller one.
	for _, tc := range []struct {
		name, yaml string
		want       int
	}{
		{"default", "run: x\n", LoggerMinConcurrency},
		{"runner below the floor", "runner:\n  concurrency: 3\n", LoggerMinConcurrency},
		{"runner above the floor", "runner:\n  concurrency: 12\n", 12},
		{"stage setting", "stages:\n  logger:\n    concurrency: 1\n", 1},
	} {
		t.Run("logger "+tc.name, func(t *testing.T) {
			c, err := loadWith(t, []string{"--config", writeYAML(t, tc.yaml)})
			if err != nil {
				t.Fatal(err)
			}
			if got := c.runnerConfig(pipeline.RunnerConfig{Stage: pipeline.StageLogger}).Concurrency; got != tc.want {
				t.Fatalf("logger concurrency %d, want %d", got, tc.want)
			}
			if got := c.runnerConfig(pipeline.RunnerConfig{Stage: pipeline.StageSampler}).Concurrency; got != c.Runner.Concurrency {
				t.Fatalf("sampler concurrency %d, want the runner's %d", got, c.Runner.Concurrency)
			}
		})
	}
	for name, text := range map[string]string{
		"unknown stage": "stages:\n  samplr:\n    concurrency: 2\n",
		"unknown field": "stages:\n  logger:\n    workers: 2\n",
		"bad value":     "stages:\n  logger:\n    fetch_size: 99\n",
	} {
		t.Run(name, func(t *testing.T) {
			if _, err := loadWith(t, []string{"--config", writeYAML(t, text)}); !errors.Is(err, ErrConfig) {
				t.Fatalf("err = %v, want ErrConfig", err)
			}
		})
	}
}

// TestPretrainConfigFile loads the shipped pretraining configuration: every
// key is known, the values arrive, and the result validates.
func TestPretrainConfigFile(t *testing.T) {
	c, err := loadWith(t, []string{"--config", "../../testdata/configs/pretrain.yaml"})
	if err != nil {
		t.Fatal(err)
	}
	p := c.Pretrain
	if p.Steps != 5000 || p.Batch != 64 || p.LR != 0.003 || !p.Task.ReverseResults || p.Task.Overthink.Share != 0.75 ||
		p.Policy.DModel != 128 || p.Policy.MaxSeq != 512 || len(p.EvalOps) != 4 || c.ORT.Threads != 2 {
		t.Fatalf("pretrain config %+v, ort %+v", p, c.ORT)
	}
	if err := p.Validate(); err != nil {
		t.Fatal(err)
	}
	if _, err := loadWith(t, []string{"--config", writeYAML(t, "pretrain:\n  task:\n    min_opps: 2\n")}); !errors.Is(err, ErrConfig) {
		t.Fatalf("misspelt pretrain key: %v", err)
	}
}

// TestExampleConfigs loads every configuration shipped in testdata/configs:
// a key that is misspelt or no longer exists fails here.
func TestExampleConfigs(t *testing.T) {
	files, err := filepath.Glob("../../testdata/configs/*.yaml")
	if err != nil || len(files) < 2 {
		t.Fatalf("configs %v, %v", files, err)
	}
	for _, f := range files {
		t.Run(filepath.Base(f), func(t *testing.T) {
			c, err := loadWith(t, []string{"--config", f})
			if err != nil {
				t.Fatal(err)
			}
			if err := c.Validate(); err != nil {
				t.Fatal(err)
			}
		})
	}
}

// TestConfigErrorsAllAtOnce: a configuration with several bad values is
// refused with one error naming every one of them.
func TestConfigErrorsAllAtOnce(t *testing.T) {
	path := writeYAML(t, `log:
  level: loud
runner:
  fetch_size: 99
train:
  steps: 0
shaping:
  shaper: best-of-n
learner:
  aggregation: median
`)
	_, err := loadWith(t, []string{"--config", path})
	if !errors.Is(err, ErrConfig) {
		t.Fatalf("err = %v, want ErrConfig", err)
	}
	for _, key := range []string{"log.level", "runner.fetch_size", "train.steps", "shaping", "learner"} {
		if !strings.Contains(err.Error(), key) {
			t.Errorf("the error does not name %s:\n%v", key, err)
		}
	}
}

// TestStageThreads: ort.stage_threads overrides ort.threads for the named
// stage only, and names a stage that runs ONNX Runtime.
func TestStageThreads(t *testing.T) {
	c, err := loadWith(t, []string{"--config", writeYAML(t, "ort:\n  threads: 1\n  stage_threads:\n    learner: 2\n")})
	if err != nil {
		t.Fatal(err)
	}
	if got := c.stageORTConfig("learner").IntraOpThreads; got != 2 {
		t.Errorf("learner threads %d, want 2", got)
	}
	if got := c.stageORTConfig("sampler").IntraOpThreads; got != 1 {
		t.Errorf("sampler threads %d, want 1", got)
	}
	for _, bad := range []string{"ort:\n  stage_threads:\n    critic: 2\n", "ort:\n  stage_threads:\n    learner: 0\n"} {
		if _, err := loadWith(t, []string{"--config", writeYAML(t, bad)}); !errors.Is(err, ErrConfig) || !strings.Contains(err.Error(), "ort.stage_threads") {
			t.Errorf("%q: err = %v, want ErrConfig naming ort.stage_threads", bad, err)
		}
	}
}

// TestAutoThreads: ort.threads 0 resolves to the cores (up to 4) when the
// stages take turns (train.ahead 1) and to 1 when they overlap; a set
// value stays.
func TestAutoThreads(t *testing.T) {
	c := DefaultConfig()
	if got, want := c.withAutoThreads().ORT.Threads, min(runtime.NumCPU(), maxAutoThreads); got != want {
		t.Errorf("ahead 1: %d threads, want %d", got, want)
	}
	c.Train.Ahead = 2
	if got := c.withAutoThreads().ORT.Threads; got != 1 {
		t.Errorf("ahead 2: %d threads, want 1", got)
	}
	c.ORT.Threads = 3
	if got := c.withAutoThreads().ORT.Threads; got != 3 {
		t.Errorf("set to 3: %d threads", got)
	}
}

// TestModelFlags: --model, --data, --data-task and --chat (train, stage,
// source) set their keys over the file's; unset, they leave the file's
// values; a flag of the same name elsewhere (eval's --model) sets nothing.
func TestModelFlags(t *testing.T) {
	file := writeYAML(t, "train:\n  model: from/file\n  data_task: gsm8k\nsampler:\n  chat: true\n")
	load := func(t *testing.T, add func(*pflag.FlagSet), args ...string) Config {
		t.Helper()
		fs := pflag.NewFlagSet("test", pflag.ContinueOnError)
		addConfigFlags(fs)
		add(fs)
		if err := fs.Parse(args); err != nil {
			t.Fatal(err)
		}
		c, err := loadConfig(fs)
		if err != nil {
			t.Fatal(err)
		}
		return c
	}
	for _, tc := range []struct {
		name  string
		add   func(*pflag.FlagSet)
		args  []string
		model string
		data  string
		task  string
		chat  bool
	}{
		{"file", addModelFlags, []string{"--config", file}, "from/file", "", "gsm8k", true},
		{"flags over file", addModelFlags, []string{"--config", file, "--model", "from/flag", "--data", "q.jsonl", "--data-task", "dataset", "--chat=false"}, "from/flag", "q.jsonl", "dataset", false},
		{"defaults", addModelFlags, nil, "testdata/base", "", "dataset", false},
		{"a plain flag of the same name", func(fs *pflag.FlagSet) { fs.String("model", "", "") }, []string{"--model", "elsewhere"}, "testdata/base", "", "dataset", false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c := load(t, tc.add, tc.args...)
			if c.Train.Model != tc.model || c.Train.Data != tc.data || c.Train.DataTask != tc.task || c.Sampler.Chat != tc.chat {
				t.Fatalf("train.model %q, train.data %q, train.data_task %q, sampler.chat %v; want %q, %q, %q, %v",
					c.Train.Model, c.Train.Data, c.Train.DataTask, c.Sampler.Chat, tc.model, tc.data, tc.task, tc.chat)
			}
		})
	}
	if _, err := loadWith(t, []string{"--config", writeYAML(t, "sampler:\n  chat: true\n  prompt_template: \"Q: {prompt}\\n\"\n")}); !errors.Is(err, ErrConfig) || !strings.Contains(err.Error(), "chat") {
		t.Fatalf("chat with a prompt template: %v, want ErrConfig", err)
	}
}
