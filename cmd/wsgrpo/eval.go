package main

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"os"
	"slices"
	"sync"
	"time"

	"github.com/apache/arrow-go/v18/arrow"
	"github.com/spf13/cobra"

	"github.com/wsgrpo/wsgrpo/model/checkpoint"
	"github.com/wsgrpo/wsgrpo/prompts"
	"github.com/wsgrpo/wsgrpo/schemas"
	"github.com/wsgrpo/wsgrpo/stages/sampler"
	"github.com/wsgrpo/wsgrpo/tasks"
	"github.com/wsgrpo/wsgrpo/tasks/arith"
	"github.com/wsgrpo/wsgrpo/tasks/dataset"
)

// evalSink is the durable consumer of an eval run's verified stream that
// scores it.
const evalSink = "eval"

// evalOptions configures `wsgrpo eval`.
type evalOptions struct {
	Model       string
	Task        string
	Data        string
	DataTask    string
	N           int
	Ops         int
	Samples     int
	Temperature float64
	Seed        uint64
	JSON        bool
	NoLog       bool
	Force       bool
	Chat        bool
	Timeout     time.Duration
}

func newEvalCmd() *cobra.Command {
	var o evalOptions
	cmd := &cobra.Command{
		Use:   "eval --model DIR (--task arith | --data FILE.jsonl) [--samples K] [--temperature T] [--chat] [--json]",
		Short: "Evaluate a policy: accuracy, completion length, steps and truncation",
		Long: `Evaluate a policy checkpoint through the real sampler and verifier stages: an
embedded run without a labeler or learner (prompt source -> sampler -> verifier
-> logger), so that wsgrpo report and wsgrpo sql work on its trajectories.

Prompts come from the arith test split (--task arith, --n of them, --ops to fix
the number of operations) or from a JSONL file (--data: {"prompt", "answer"}
lines, GSM8K "#### 42" answers accepted; bad lines are reported and left out).
Each prompt is sampled --samples times. Accuracy is pass@1 averaged over the
samples. A prompt the policy's tokenizer cannot encode counts as wrong.
The default temperature is 0 (greedy) with --samples 1, else 1.

--model takes a wsgrpo checkpoint or a Hugging Face checkpoint directory
(config.json with model_type qwen2, qwen3 or llama, model.safetensors or
shards, tokenizer.json and tokenizer_config.json), sampled on ONNX Runtime
in this process; a completion ends on any of the model's EOS ids
(tokenizer, config.json, generation_config.json), or after
sampler.max_new_tokens (default 256 for a Hugging Face model). --chat puts
each prompt in the model's chat template as the user's turn.

--json prints one object: accuracy, mean_tokens, mean_steps, truncated, n
(prompts), samples, prompt_errors, and by_ops for arith.`,
		Example: `  wsgrpo eval --model testdata/base --task arith --n 200
  wsgrpo eval --model runs/base --task arith --ops 5 --samples 4 --json
  wsgrpo eval --model testdata/base --data testdata/tasks/gsm8k_sample.jsonl --data-task gsm8k
  wsgrpo eval --model ~/models/Qwen2.5-0.5B-Instruct --task arith --n 20 --chat`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			cfg, log, err := setup(cmd)
			if err != nil {
				return err
			}
			cfg = cfg.withAutoThreads()
			if !cmd.Flags().Changed("run") && os.Getenv("WSGRPO_RUN") == "" {
				cfg.Run = "eval-" + time.Now().UTC().Format("20060102-150405")
			}
			if !cmd.Flags().Changed("temperature") && o.Samples > 1 {
				o.Temperature = 1
			}
			return runEval(cmd, cfg, log, o)
		},
	}
	addConfigFlags(cmd.Flags())
	f := cmd.Flags()
	f.StringVar(&o.Model, "model", "", "policy checkpoint directory: wsgrpo's, or a Hugging Face one (Qwen2, Qwen3, Llama)")
	f.StringVar(&o.Task, "task", "", "built-in task: arith (its test split)")
	f.StringVar(&o.Data, "data", "", "JSONL dataset file instead of --task")
	f.StringVar(&o.DataTask, "data-task", "dataset", "task name of --data items (selects the verifier's extractor: dataset or gsm8k)")
	f.IntVar(&o.N, "n", 200, "prompts to evaluate (with --data: at most this many; 0: all)")
	f.IntVar(&o.Ops, "ops", 0, "with --task arith: only expressions with this many operations (0: the task's range)")
	f.IntVar(&o.Samples, "samples", 1, "completions per prompt (K)")
	f.Float64Var(&o.Temperature, "temperature", 0, "sampling temperature (0: greedy; default 1 when --samples > 1)")
	f.Uint64Var(&o.Seed, "seed", 1, "which prompts (arith) or their order (--data), and the sampling seed")
	f.BoolVar(&o.JSON, "json", false, "print one JSON object")
	f.BoolVar(&o.NoLog, "no-log", false, "do not write the trajectory log")
	f.BoolVar(&o.Force, "force", false, "replace an existing run directory of the same run id")
	f.BoolVar(&o.Chat, "chat", false, "put each prompt in the model's chat template (Hugging Face models)")
	f.DurationVar(&o.Timeout, "timeout", 5*time.Minute, "give up when no completion arrives for this long")
	return cmd
}

// evalSource resolves --task / --data into a task source and prompt count.
func evalSource(cmd *cobra.Command, o evalOptions) (tasks.Source, int, error) {
	switch {
	case (o.Task == "") == (o.Data == ""):
		return nil, 0, fmt.Errorf("%w: give --task arith or --data FILE.jsonl (one of them)", ErrConfig)
	case o.N < 0 || o.Samples < 1 || o.Temperature < 0 || o.Ops < 0 || o.Timeout <= 0:
		return nil, 0, fmt.Errorf("%w: --n must be >= 0, --samples >= 1, --temperature >= 0, --ops >= 0, --timeout > 0", ErrConfig)
	case o.N > maxEvalPrompts || o.Samples > maxSamples || o.Temperature > maxTemperature:
		return nil, 0, fmt.Errorf("%w: --n %d, --samples %d, --temperature %g: at most %d prompts, %d samples and temperature %d", ErrConfig,
			o.N, o.Samples, o.Temperature, maxEvalPrompts, maxSamples, maxTemperature)
	case o.Task != "" && o.Task != arith.Name:
		return nil, 0, fmt.Errorf("%w: unknown task %q (built in: %s; or give --data FILE.jsonl)", ErrConfig, o.Task, arith.Name)
	}
	if o.Task != "" {
		tc := arith.DefaultConfig()
		if o.Ops > 0 {
			tc.MinOps, tc.MaxOps = o.Ops, o.Ops
		}
		t, err := arith.New(tc)
		if err != nil {
			return nil, 0, fmt.Errorf("%w: --ops %d: %w", ErrConfig, o.Ops, err)
		}
		if o.N == 0 {
			return nil, 0, fmt.Errorf("%w: --n 0 means every prompt, which the generated arith task does not have", ErrConfig)
		}
		return t, o.N, nil
	}
	res, err := dataset.Load(o.Data, dataset.Options{})
	if err != nil {
		return nil, 0, err
	}
	for i, b := range res.Bad {
		if i == 5 {
			fmt.Fprintf(cmd.ErrOrStderr(), "warning: %d more bad lines\n", len(res.Bad)-5)
			break
		}
		fmt.Fprintf(cmd.ErrOrStderr(), "warning: %s: %v (left out)\n", o.Data, b)
	}
	d, err := dataset.New(dataset.Config{Name: o.DataTask, Split: tasks.Test}, res.Records)
	if err != nil {
		return nil, 0, fmt.Errorf("%w: %w", ErrConfig, err)
	}
	n := d.Len(tasks.Test)
	if n == 0 {
		return nil, 0, fmt.Errorf("%w: %s holds no usable prompt (%d bad lines)", ErrConfig, o.Data, len(res.Bad))
	}
	if o.N > 0 {
		n = min(n, o.N)
	}
	return d, n, nil
}

// verifiedSink collects an eval run's verified rows, one per trajectory.
type verifiedSink struct {
	mu   sync.Mutex
	rows map[string]schemas.Verified
}

// Process records the rows of in.
func (s *verifiedSink) Process(_ context.Context, in arrow.RecordBatch) ([]arrow.RecordBatch, error) {
	rows, err := schemas.ReadVerified(in)
	if err != nil {
		return nil, err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, r := range rows {
		s.rows[r.TrajectoryID] = r
	}
	return nil, nil
}

func (s *verifiedSink) count() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return len(s.rows)
}

func (s *verifiedSink) all() []schemas.Verified {
	s.mu.Lock()
	defer s.mu.Unlock()
	out := make([]schemas.Verified, 0, len(s.rows))
	for _, r := range s.rows {
		out = append(out, r)
	}
	slices.SortFunc(out, func(a, b schemas.Verified) int {
		if c := cmpStr(a.PromptID, b.PromptID); c != 0 {
			return c
		}
		return int(a.SampleIndex - b.SampleIndex)
	})
	return out
}

func cmpStr(a, b string) int {
	switch {
	case a < b:
		return -1
	case a > b:
		return 1
	}
	return 0
}

func runEval(cmd *cobra.Command, cfg Config, log *slog.Logger, o evalOptions) (err error) {
	ctx, cancel := context.WithCancel(cmd.Context())
	defer cancel()
	if o.Model == "" {
		return fmt.Errorf("%w: give --model DIR (a checkpoint directory, e.g. testdata/base or wsgrpo pretrain's --out)", ErrConfig)
	}
	src, n, err := evalSource(cmd, o)
	if err != nil {
		return err
	}
	if cfg.Sampler.Chat = cfg.Sampler.Chat || o.Chat; cfg.Sampler.Chat {
		if err := checkChat(o.Model, "--chat"); err != nil {
			return err
		}
	}
	pol, maxSeq, err := loadEvalModel(o)
	if err != nil {
		return err
	}
	if cfg.NATS == "" {
		used := runDirUsed(cfg.RunDir())
		if used && !o.Force {
			return fmt.Errorf("%w: run directory %s exists (an eval run starts fresh: give another --run, or --force to replace it)", ErrConfig, cfg.RunDir())
		}
		release, err := claimRunDir(cfg)
		if err != nil {
			return err
		}
		defer release()
		if used {
			if err := clearRunDir(cfg.RunDir()); err != nil {
				return err
			}
		}
	}
	cfg.Sampler.Samples = o.Samples
	cfg.Sampler.Greedy = o.Temperature == 0
	cfg.Sampler.Temperature = o.Temperature
	cfg.Sampler.Seed = o.Seed
	if cfg.Sampler.MaxNewTokens == 0 && maxSeq > 0 {
		cfg.Sampler.MaxNewTokens = maxSeq // the sampler caps it to the context
	}
	start := time.Now()
	rows, err := sampleRunPolicy(ctx, cfg, log, pol, src, prompts.Config{PerStep: n, Steps: 1, Split: tasks.Test, Seed: o.Seed}, !o.NoLog, true, o.Timeout)
	if err != nil {
		return err
	}
	rep := scoreEval(rows, n, o.Samples)
	rep.Model, rep.Run, rep.Seconds = o.Model, cfg.Run, time.Since(start).Seconds()
	return printEval(cmd.OutOrStdout(), rep, o.JSON, !o.NoLog, cfg)
}

// loadEvalModel loads --model, whichever its layout, and returns what to
// sample with and the default of sampler.max_new_tokens (0: the
// sampler's).
func loadEvalModel(o evalOptions) (runPolicy, int, error) {
	layout, err := detectModelLayout(o.Model)
	if err != nil {
		return runPolicy{}, 0, err
	}
	if layout == layoutHF {
		m, err := loadHFModel(o.Model)
		if err != nil {
			return runPolicy{}, 0, err
		}
		return runPolicy{hf: m}, 0, nil
	}
	ck, err := checkpoint.Load(o.Model)
	if err != nil {
		return runPolicy{}, 0, fmt.Errorf("load --model %s: %w", o.Model, err)
	}
	blob, err := checkpoint.Marshal(ck)
	if err != nil {
		return runPolicy{}, 0, err
	}
	return runPolicy{blob: blob}, ck.Config.MaxSeq, nil
}

// evalReport is what `wsgrpo eval` prints.
type evalReport struct {
	Model        string      `json:"model"`
	Run          string      `json:"run"`
	N            int         `json:"n"`
	Samples      int         `json:"samples"`
	Accuracy     float64     `json:"accuracy"`
	MeanTokens   float64     `json:"mean_tokens"`
	MeanSteps    float64     `json:"mean_steps"`
	Truncated    float64     `json:"truncated"`
	PromptErrors int         `json:"prompt_errors"`
	ByOps        []evalByOps `json:"by_ops,omitempty"`
	Seconds      float64     `json:"seconds"`
}

// evalByOps is the arith breakdown by number of operations.
type evalByOps struct {
	Ops        int     `json:"ops"`
	N          int     `json:"n"`
	Accuracy   float64 `json:"accuracy"`
	MeanTokens float64 `json:"mean_tokens"`
}

// scoreEval averages the verified rows of n prompts x k samples.
func scoreEval(rows []schemas.Verified, n, k int) evalReport {
	rep := evalReport{N: n, Samples: k}
	prompts := map[string]bool{}
	byOps := map[int]*evalByOps{}
	for _, r := range rows {
		tokens := len(r.CompletionTokenIDs)
		if r.FinishReason == "eos" && tokens > 0 {
			tokens-- // the EOS token is not reasoning
		}
		if r.Correct {
			rep.Accuracy++
		}
		rep.MeanTokens += float64(tokens)
		rep.MeanSteps += float64(len(r.StepEnds))
		if r.FinishReason == "length" {
			rep.Truncated++
		}
		if r.FinishReason == sampler.FinishPromptError && !prompts[r.PromptID] {
			prompts[r.PromptID] = true
			rep.PromptErrors++
		}
		if r.Task == arith.Name {
			if e, err := arith.Parse(r.Prompt.Prompt); err == nil {
				b := byOps[e.Ops()]
				if b == nil {
					b = &evalByOps{Ops: e.Ops()}
					byOps[e.Ops()] = b
				}
				b.N++
				b.MeanTokens += float64(tokens)
				if r.Correct {
					b.Accuracy++
				}
			}
		}
	}
	if m := float64(len(rows)); m > 0 {
		rep.Accuracy /= m
		rep.MeanTokens /= m
		rep.MeanSteps /= m
		rep.Truncated /= m
	}
	for _, b := range byOps {
		b.Accuracy /= float64(b.N)
		b.MeanTokens /= float64(b.N)
		b.N /= k // prompts, not completions
		rep.ByOps = append(rep.ByOps, *b)
	}
	slices.SortFunc(rep.ByOps, func(a, b evalByOps) int { return a.Ops - b.Ops })
	return rep
}

func printEval(w io.Writer, rep evalReport, asJSON, logged bool, cfg Config) error {
	if asJSON {
		return json.NewEncoder(w).Encode(rep)
	}
	fmt.Fprintf(w, "eval of %s: %d prompts x %d samples (run %s, %.1fs)\n", rep.Model, rep.N, rep.Samples, rep.Run, rep.Seconds)
	fmt.Fprintf(w, "  accuracy (pass@1):   %.1f%%\n", 100*rep.Accuracy)
	fmt.Fprintf(w, "  mean tokens:         %.1f\n", rep.MeanTokens)
	fmt.Fprintf(w, "  mean steps:          %.2f\n", rep.MeanSteps)
	fmt.Fprintf(w, "  truncated:           %.1f%%\n", 100*rep.Truncated)
	if rep.PromptErrors > 0 {
		fmt.Fprintf(w, "  prompt errors:       %d (the policy cannot sample them; counted as wrong)\n", rep.PromptErrors)
	}
	for _, b := range rep.ByOps {
		fmt.Fprintf(w, "  %d ops: %5.1f%%, %.1f tokens (n %d)\n", b.Ops, 100*b.Accuracy, b.MeanTokens, b.N)
	}
	if logged {
		fmt.Fprintf(w, "  trajectories:        wsgrpo sql --run %s \"SELECT avg(correct), avg(completion_tokens) FROM trajectories_dedup\"\n", cfg.RunDir())
	}
	return nil
}
