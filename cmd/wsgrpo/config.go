package main

import (
	"cmp"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"runtime"
	"slices"
	"strings"
	"time"

	"github.com/knadh/koanf/parsers/yaml"
	"github.com/knadh/koanf/providers/env/v2"
	"github.com/knadh/koanf/providers/file"
	"github.com/knadh/koanf/providers/posflag"
	"github.com/knadh/koanf/providers/structs"
	"github.com/knadh/koanf/v2"
	"github.com/spf13/pflag"

	"github.com/wsgrpo/wsgrpo/model/ort"
	"github.com/wsgrpo/wsgrpo/model/shaping"
	"github.com/wsgrpo/wsgrpo/pipeline"
	"github.com/wsgrpo/wsgrpo/pretrain"
	"github.com/wsgrpo/wsgrpo/stages/sampler"
	"github.com/wsgrpo/wsgrpo/tracelog"
)

// ErrConfig wraps every configuration error.
var ErrConfig = errors.New("invalid configuration")

// Config is the configuration shared by every wsgrpo command. Values come,
// lowest precedence first, from the defaults, a YAML file (--config),
// WSGRPO_* environment variables (WSGRPO_RUNNER_CONCURRENCY sets
// runner.concurrency) and command-line flags.
type Config struct {
	// Run is the run id; streams, buckets and log rows are named after it.
	Run string `koanf:"run"`
	// Dir is the run directory: embedded NATS storage, chDB data, checkpoints.
	// Default: runs/<run>.
	Dir string `koanf:"dir"`
	// NATS is the URL of an external NATS server; empty starts one in-process.
	NATS string `koanf:"nats"`
	// NATSAuth is how this process authenticates to the external NATS
	// server and verifies it: TLS files, and a user and password or an
	// nkey seed (see natsauth.go and `wsgrpo nats-config`).
	NATSAuth NATSAuthConfig `koanf:"nats_auth"`
	// ClickHouseDSN selects the ClickHouse server for the trajectory log;
	// empty uses embedded chDB under Dir.
	ClickHouseDSN string `koanf:"clickhouse_dsn"`
	// NoLabeler marks a run without a labeler stage (e.g. an eval run):
	// verified batches are the end of the line, there is no labeled
	// stream, and the logger stage logs the verified stream (rows with
	// labeled = 0) through its own durable consumer. It sets the run's
	// stream layout (pipeline.Topology.NoLabeler), so every process of
	// the run must agree: put no_labeler: true in the run's run.yaml, or
	// pass --no-labeler to each `wsgrpo stage`, `train` and `replay`.
	NoLabeler bool `koanf:"no_labeler"`
	// Metrics is the address to serve Prometheus metrics on ("" = off).
	Metrics string `koanf:"metrics"`
	// Log configures log output.
	Log LogConfig `koanf:"log"`
	// Runner tunes every stage runner of this process.
	Runner RunnerConfig `koanf:"runner"`
	// Stages overrides Runner for single stages by name (sampler, verifier,
	// labeler, learner, logger): stages: {logger: {concurrency: 8}}. Zero
	// fields keep the Runner value.
	Stages map[string]RunnerConfig `koanf:"stages"`
	// ORT configures ONNX Runtime.
	ORT ORTConfig `koanf:"ort"`
	// Sampler configures the sampler stage.
	Sampler SamplerConfig `koanf:"sampler"`
	// Pretrain configures `wsgrpo pretrain` (the base policy).
	Pretrain pretrain.Config `koanf:"pretrain"`
	// Train configures what `wsgrpo train` trains on and for how long.
	Train TrainConfig `koanf:"train"`
	// Shaping selects the reward shaper (ws-grpo or a GRPO-family
	// baseline) and its parameters.
	Shaping shaping.Config `koanf:"shaping"`
	// Labeler configures the preference model and the labeler stage.
	Labeler LabelerConfig `koanf:"labeler"`
	// Learner configures the learner stage.
	Learner LearnerConfig `koanf:"learner"`
}

// SamplerConfig configures the sampler stage (stages/sampler). Zero
// fields take the sampler's defaults.
type SamplerConfig struct {
	Samples      int      `koanf:"samples"`        // G: completions per prompt (8)
	Temperature  float64  `koanf:"temperature"`    // 1; see greedy
	Greedy       bool     `koanf:"greedy"`         // temperature 0
	TopP         float64  `koanf:"top_p"`          // 0 or 1: off
	MaxNewTokens int      `koanf:"max_new_tokens"` // 256
	Stop         []string `koanf:"stop"`           // stop strings
	MaxBatch     int      `koanf:"max_batch"`      // rows decoded together (64)
	Seed         uint64   `koanf:"seed"`           // sampling seed
	// Chat puts each prompt in train.model's chat template as the user's
	// turn, followed by the assistant's header (a Hugging Face model with
	// a chat template in tokenizer_config.json). Flag --chat.
	Chat bool `koanf:"chat"`
	// PromptTemplate is the text the policy continues, {prompt} standing
	// for the prompt (default "{prompt}\n", the built-in base policy's);
	// not with chat.
	PromptTemplate string `koanf:"prompt_template"`
}

// samplerOptions returns the sampler stage's options for c.
func (c Config) samplerOptions(log *slog.Logger) sampler.Options {
	s := c.Sampler
	return sampler.Options{
		Samples: s.Samples, Temperature: s.Temperature, Greedy: s.Greedy, TopP: s.TopP,
		MaxNewTokens: s.MaxNewTokens, StopStrings: s.Stop, MaxBatch: s.MaxBatch, Seed: s.Seed, Logger: log,
		Chat: s.Chat, PromptTemplate: s.PromptTemplate,
	}
}

// groupSize is G, the completions the sampler samples per prompt.
func (c Config) groupSize() int {
	if c.Sampler.Samples > 0 {
		return c.Sampler.Samples
	}
	return sampler.DefaultSamples
}

// LogConfig configures log/slog output.
type LogConfig struct {
	Level  string `koanf:"level"`  // debug, info, warn, error
	Format string `koanf:"format"` // text or json
}

// RunnerConfig holds the stage-runner settings a user tunes.
type RunnerConfig struct {
	Concurrency int           `koanf:"concurrency"`
	FetchSize   int           `koanf:"fetch_size"`
	AckWait     time.Duration `koanf:"ack_wait"`
	MaxDeliver  int           `koanf:"max_deliver"`
}

// ORTConfig selects the ONNX Runtime library and execution provider.
type ORTConfig struct {
	Library     string `koanf:"library"`
	Provider    string `koanf:"provider"` // cpu or cuda
	DeviceID    int    `koanf:"device_id"`
	RequireCUDA bool   `koanf:"require_cuda"`
	// Threads is ONNX Runtime's intra-op thread count; 0 is auto (see
	// Config.withAutoThreads).
	Threads int `koanf:"threads"`
	// StageThreads overrides Threads for single stages by name:
	// ort: {stage_threads: {learner: 2}}.
	StageThreads map[string]int `koanf:"stage_threads"`
}

// DefaultConfig returns the configuration used when nothing is set.
func DefaultConfig() Config {
	return Config{
		Run:    "default",
		Log:    LogConfig{Level: "info", Format: "text"},
		Runner: RunnerConfig{Concurrency: 1, FetchSize: 1, AckWait: pipeline.DefaultAckWait, MaxDeliver: pipeline.DefaultMaxDeliver},
		ORT:    ORTConfig{Provider: "cpu"},

		Pretrain: pretrain.DefaultConfig(),
		Train:    DefaultTrainConfig(),
		Shaping:  shaping.DefaultConfig(),
		Labeler:  DefaultLabelerConfig(),
		Learner:  DefaultLearnerConfig(),
	}
}

// Validate reports every problem with c at once (errors.Join), each naming
// its key and what is allowed; every one wraps ErrConfig.
func (c Config) Validate() error {
	var errs []error
	add := func(err error) {
		if err != nil {
			errs = append(errs, err)
		}
	}
	if err := pipeline.ValidateName(c.Run); err != nil {
		add(fmt.Errorf("%w: run: %w", ErrConfig, err))
	}
	switch c.Log.Level {
	case "debug", "info", "warn", "error":
	default:
		add(fmt.Errorf("%w: log.level %q (want debug, info, warn or error)", ErrConfig, c.Log.Level))
	}
	switch c.Log.Format {
	case "text", "json":
	default:
		add(fmt.Errorf("%w: log.format %q (want text or json)", ErrConfig, c.Log.Format))
	}
	add(c.NATSAuth.validate())
	// The numeric settings' ranges (limits.go), then each section's own
	// checks.
	c.checkLimits(add)
	if err := c.samplerOptions(nil).Validate(); err != nil {
		add(fmt.Errorf("%w: sampler: %w", ErrConfig, err))
	}
	for _, name := range sortedKeys(c.Stages) {
		if !slices.Contains(stageNames, name) {
			add(fmt.Errorf("%w: stages.%s: unknown stage (known: %s)", ErrConfig, name, strings.Join(stageNames, ", ")))
		}
	}
	if err := c.ortConfig().Validate(); err != nil {
		add(fmt.Errorf("%w: ort: %w", ErrConfig, err))
	}
	for _, name := range sortedKeys(c.ORT.StageThreads) {
		if !slices.Contains(stageNames, name) || name == pipeline.StageLogger {
			add(fmt.Errorf("%w: ort.stage_threads.%s: not a stage that runs ONNX Runtime (sampler, verifier, labeler, learner)", ErrConfig, name))
		}
	}
	add(c.Train.Validate())
	if err := c.Shaping.Validate(); err != nil {
		add(fmt.Errorf("%w: shaping: %w", ErrConfig, err))
	}
	add(c.Labeler.Validate())
	if err := c.learnerOptions(nil).Validate(); err != nil {
		add(fmt.Errorf("%w: learner: %w", ErrConfig, err))
	}
	return errors.Join(errs...)
}

// RunDir returns the run directory (Dir, or runs/<run>).
func (c Config) RunDir() string {
	if c.Dir != "" {
		return c.Dir
	}
	return filepath.Join("runs", c.Run)
}

// maxAutoThreads caps ort.threads "auto" (0).
const maxAutoThreads = 4

// withAutoThreads resolves ort.threads 0 ("auto") for a command that runs
// its stages in one process (train, eval, pretrain). With train.ahead 1
// (the default, synchronous) the stages take turns, so each may use every
// core, up to maxAutoThreads; with train.ahead 2 or more the sampler and
// the learner run at once and one thread each is best. Measured in a real
// 12-update run on 2 cores (Zen 4, docs/BENCHMARKS.md): ahead 1 took
// 18-23 s with 2 threads against 28-30 s with 1; ahead 2 took 20 s with 1
// thread against 29 s with 2. A `wsgrpo stage` process keeps 1 thread per
// stage unless ort.threads or ort.stage_threads says otherwise, since
// stage processes run side by side.
func (c Config) withAutoThreads() Config {
	if c.ORT.Threads == 0 {
		c.ORT.Threads = min(runtime.NumCPU(), maxAutoThreads)
		if c.Train.Ahead > 1 {
			c.ORT.Threads = 1
		}
	}
	return c
}

// stageORTConfig is ortConfig with the stage's own thread count, if set.
func (c Config) stageORTConfig(stage string) ort.Config {
	oc := c.ortConfig()
	if n, ok := c.ORT.StageThreads[stage]; ok && n > 0 {
		oc.IntraOpThreads = n
	}
	return oc
}

func (c Config) ortConfig() ort.Config {
	oc := ort.DefaultConfig()
	oc.LibraryPath = c.ORT.Library
	oc.Provider = c.ORT.Provider
	oc.DeviceID = c.ORT.DeviceID
	oc.RequireCUDA = c.ORT.RequireCUDA
	if c.ORT.Threads > 0 {
		oc.IntraOpThreads = c.ORT.Threads
	}
	return oc
}

// logConfig selects the trajectory log: the ClickHouse server at
// ClickHouseDSN, or embedded chDB in the run directory.
func (c Config) logConfig(log *slog.Logger) tracelog.Config {
	tc := tracelog.Config{DSN: c.ClickHouseDSN, Logger: log}
	if tc.DSN == "" {
		tc.Dir = tracelog.EmbeddedDir(c.RunDir())
	}
	return tc
}

// topology returns the JetStream layout of the run: with a labeler, or
// without one when NoLabeler is set.
func (c Config) topology() (pipeline.Topology, error) {
	t, err := pipeline.NewTopology(c.Run)
	if err != nil {
		return t, fmt.Errorf("%w: %w", ErrConfig, err)
	}
	t.NoLabeler = c.NoLabeler
	return t, nil
}

// addLayoutFlags registers the flags of the run's stream layout, for the
// commands that create or join a run's streams (train, stage, replay).
func addLayoutFlags(fs *pflag.FlagSet) {
	fs.Bool("no-labeler", false, "the run has no labeler stage (e.g. eval): the logger logs the verified stream; every process of the run must agree (config key no_labeler)")
}

// LoggerMinConcurrency is the logger stage's least number of workers
// unless stages.logger.concurrency sets it.
const LoggerMinConcurrency = 8

// stageNames are the stages a Stages override may name.
var stageNames = []string{pipeline.StageSampler, pipeline.StageVerifier, pipeline.StageLabeler, pipeline.StageLearner, pipeline.StageLogger}

// runnerConfig applies the user's runner settings, and the stage's own
// overrides, to a stage's wiring.
func (c Config) runnerConfig(rc pipeline.RunnerConfig) pipeline.RunnerConfig {
	r := c.Runner
	o, ok := c.Stages[rc.Stage]
	if rc.Stage == pipeline.StageLogger && o.Concurrency == 0 {
		// The logger's workers mostly wait on INSERTs, and concurrent
		// batches share one (group commit): one worker would insert
		// every 64-row message alone.
		r.Concurrency = max(r.Concurrency, LoggerMinConcurrency)
	}
	if ok {
		r.Concurrency = cmp.Or(o.Concurrency, r.Concurrency)
		r.FetchSize = cmp.Or(o.FetchSize, r.FetchSize)
		r.AckWait = cmp.Or(o.AckWait, r.AckWait)
		r.MaxDeliver = cmp.Or(o.MaxDeliver, r.MaxDeliver)
	}
	rc.Concurrency = r.Concurrency
	rc.FetchSize = r.FetchSize
	rc.AckWait = r.AckWait
	rc.MaxDeliver = r.MaxDeliver
	return rc
}

// addConfigFlags registers the flags that map onto Config keys. Flag names
// are the koanf keys with "." and "_" written as "-".
func addConfigFlags(fs *pflag.FlagSet) {
	d := DefaultConfig()
	fs.String("config", "", "YAML configuration file")
	fs.String("run", d.Run, "run id, or a run directory (one wsgrpo made, or one holding run.yaml)")
	fs.String("dir", "", "run directory (default runs/<run>)")
	fs.String("nats", "", "external NATS URL (default: embedded server in the run directory)")
	addNATSAuthFlags(fs)
	fs.String("clickhouse-dsn", "", "ClickHouse server DSN for the trajectory log (default: embedded chDB)")
	fs.String("metrics", "", "serve Prometheus metrics on this address, e.g. :9090")
	fs.String("log-level", d.Log.Level, "log level: debug, info, warn, error")
	fs.String("log-format", d.Log.Format, "log format: text or json")
	fs.Int("runner-concurrency", d.Runner.Concurrency, "workers per stage in this process")
	fs.Int("runner-fetch-size", d.Runner.FetchSize, "messages per pull (1..8)")
	fs.Duration("runner-ack-wait", d.Runner.AckWait, "redelivery timeout without an ack or heartbeat")
	fs.Int("runner-max-deliver", d.Runner.MaxDeliver, "attempts before a batch is dead-lettered")
	fs.String("ort-library", "", "path to libonnxruntime.so (default: WSGRPO_ORT_LIB or the make setup cache)")
	fs.String("ort-provider", d.ORT.Provider, "ONNX Runtime execution provider: cpu or cuda")
	fs.Int("ort-device-id", 0, "CUDA device id")
	fs.Bool("ort-require-cuda", false, "fail instead of falling back to CPU when CUDA cannot load")
	fs.Int("ort-threads", d.ORT.Threads, "ONNX Runtime intra-op threads (0: auto, the cores up to 4 for train/eval/pretrain, 1 for a stage process)")
}

// configKeyAnnotation is the pflag annotation that names the koanf key a
// command's own flag sets (addModelFlags): it wins over flagKeys, so the
// same flag name may mean a key in one command and nothing in another.
const configKeyAnnotation = "wsgrpo-config-key"

// addModelFlags adds the flags of train and stage that name what a run
// trains: --model (train.model), --data (train.data), --data-task
// (train.data_task) and --chat (sampler.chat).
func addModelFlags(fs *pflag.FlagSet) {
	d := DefaultConfig()
	for _, f := range []struct{ name, key, usage, def string }{
		{"model", "train.model", "starting policy: a wsgrpo checkpoint or a Hugging Face checkpoint directory (Qwen2, Qwen3, Llama)", d.Train.Model},
		{"data", "train.data", "JSONL dataset to train on instead of arith: {\"prompt\", \"answer\"} or GSM8K's {\"question\", \"answer\": \"... #### N\"} lines", ""},
		{"data-task", "train.data_task", "task name of --data items (selects the verifier's extractor: dataset or gsm8k)", d.Train.DataTask},
	} {
		fs.String(f.name, f.def, f.usage)
		_ = fs.SetAnnotation(f.name, configKeyAnnotation, []string{f.key})
	}
	fs.Bool("chat", false, "put each prompt in the model's chat template as the user's turn (Hugging Face models; sampler.chat)")
	_ = fs.SetAnnotation("chat", configKeyAnnotation, []string{"sampler.chat"})
}

// flagKeys maps flag names to koanf keys.
var flagKeys = map[string]string{
	"clickhouse-dsn":     "clickhouse_dsn",
	"no-labeler":         "no_labeler",
	"log-level":          "log.level",
	"log-format":         "log.format",
	"runner-concurrency": "runner.concurrency",
	"runner-fetch-size":  "runner.fetch_size",
	"runner-ack-wait":    "runner.ack_wait",
	"runner-max-deliver": "runner.max_deliver",
	"ort-library":        "ort.library",
	"ort-provider":       "ort.provider",
	"ort-device-id":      "ort.device_id",
	"ort-require-cuda":   "ort.require_cuda",
	"ort-threads":        "ort.threads",
}

// envKeys maps WSGRPO_* variables to koanf keys: the first "_" after a
// section name becomes ".", e.g. WSGRPO_RUNNER_FETCH_SIZE -> runner.fetch_size.
func envKey(k string) string {
	k = strings.ToLower(strings.TrimPrefix(k, "WSGRPO_"))
	for _, section := range []string{"nats_auth_", "log_", "runner_", "ort_", "sampler_", "train_", "shaping_", "labeler_", "learner_"} {
		if strings.HasPrefix(k, section) {
			return strings.TrimSuffix(section, "_") + "." + strings.TrimPrefix(k, section)
		}
	}
	return k
}

// isStageKey reports whether key is stages.<name>.<runner field> or
// ort.stage_threads.<name>; the stage name itself is checked by Validate.
func isStageKey(key string) bool {
	parts := strings.Split(key, ".")
	if len(parts) == 3 && parts[0] == "ort" && parts[1] == "stage_threads" {
		return true
	}
	if len(parts) != 3 || parts[0] != "stages" {
		return false
	}
	switch parts[2] {
	case "concurrency", "fetch_size", "ack_wait", "max_deliver":
		return true
	}
	return false
}

// loadConfig builds the Config for a command from defaults, file, env and
// flags. A --run naming an existing directory with a run.yaml uses that
// directory and file; see resolveRun for what --run may name.
func loadConfig(fs *pflag.FlagSet) (Config, error) {
	k := koanf.New(".")
	if err := k.Load(structs.Provider(DefaultConfig(), "koanf"), nil); err != nil {
		return Config{}, fmt.Errorf("%w: defaults: %w", ErrConfig, err)
	}
	path, _ := fs.GetString("config")
	if run, _ := fs.GetString("run"); path == "" && run != "" {
		if st, err := os.Stat(filepath.Join(run, "run.yaml")); err == nil && !st.IsDir() {
			path = filepath.Join(run, "run.yaml")
		}
	}
	known := map[string]bool{}
	for _, key := range k.Keys() {
		known[key] = true
	}
	if path != "" {
		fk := koanf.New(".")
		if err := fk.Load(file.Provider(path), yaml.Parser()); err != nil {
			return Config{}, fmt.Errorf("%w: config file %s: %w", ErrConfig, path, err)
		}
		// A misspelt key would otherwise be ignored without a word.
		var unknown []string
		for _, key := range fk.Keys() {
			if !known[key] && !isStageKey(key) {
				unknown = append(unknown, key)
			}
		}
		if len(unknown) > 0 {
			return Config{}, fmt.Errorf("%w: config file %s: unknown keys %s (known keys: %s)", ErrConfig, path, strings.Join(unknown, ", "), strings.Join(k.Keys(), ", "))
		}
		if err := k.Merge(fk); err != nil {
			return Config{}, fmt.Errorf("%w: config file %s: %w", ErrConfig, path, err)
		}
	}
	// Environment variables that are not configuration keys are ignored.
	if err := k.Load(env.Provider(".", env.Opt{
		Prefix: "WSGRPO_",
		TransformFunc: func(key, v string) (string, any) {
			key = envKey(key)
			if !known[key] {
				return "", nil
			}
			return key, v
		},
	}), nil); err != nil {
		return Config{}, fmt.Errorf("%w: environment: %w", ErrConfig, err)
	}
	if err := k.Load(posflag.ProviderWithFlag(fs, ".", k, func(f *pflag.Flag) (string, any) {
		if f.Name == "config" {
			return "", nil
		}
		key, ok := flagKeys[f.Name]
		if k := f.Annotations[configKeyAnnotation]; len(k) == 1 {
			key, ok = k[0], true
		}
		if !ok {
			key, ok = natsAuthFlagKeys[f.Name]
		}
		if !ok {
			key = f.Name
		}
		if !known[key] {
			return "", nil
		}
		return key, posflag.FlagVal(fs, f)
	}), nil); err != nil {
		return Config{}, fmt.Errorf("%w: flags: %w", ErrConfig, err)
	}
	var c Config
	if err := k.UnmarshalWithConf("", &c, koanf.UnmarshalConf{Tag: "koanf"}); err != nil {
		return Config{}, fmt.Errorf("%w: %w", ErrConfig, err)
	}
	// --run may name a run directory: its base name is the run id.
	if err := resolveRun(&c, "--run"); err != nil {
		return Config{}, err
	}
	return c, c.Validate()
}
