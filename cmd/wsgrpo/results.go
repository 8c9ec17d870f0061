package main

import (
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"math"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"time"

	"github.com/spf13/cobra"
	"github.com/spf13/pflag"

	"github.com/wsgrpo/wsgrpo/model/checkpoint"
	"github.com/wsgrpo/wsgrpo/tracelog/report"
)

// resultsOptions configures `wsgrpo results`.
type resultsOptions struct {
	ConfigDir string
	Methods   []string
	Seeds     int
	Steps     int
	Eval      int
	Dir       string
	Out       string
	Ship      string
	// Compare, when set, receives `report --compare` plots of each
	// method's first seed against the last method's.
	Compare string
}

func newResultsCmd() *cobra.Command {
	var o resultsOptions
	cmd := &cobra.Command{
		Use:   "results [--methods grpo,drgrpo,length-penalty,wsgrpo] [--seeds 3] [--steps N] [--out FILE.md]",
		Short: "Train every method for several seeds and tabulate accuracy and length",
		Long: `Train each method (a testdata/configs/<method>.yaml: the same run but for
the shaper) for --seeds seeds, from the same base policy with the same
prompts, samples and steps, and tabulate the greedy arith test evaluation
after training (accuracy, mean completion tokens, mean steps, tokens per
correct answer, accuracy by number of operations), mean and spread over
seeds, beside the base policy. Runs go to --dir/<method>-s<seed>; a run that
completed before is read, not trained again, so an interrupted results run
continues where it stopped. --out writes the table as markdown; --ship DIR
copies the first seed's trained policy of each method to DIR/<method>.`,
		Example: `  wsgrpo results --seeds 3 --out runs/results/results.md        # make results
  wsgrpo results --seeds 1 --steps 3 --eval 20 --methods grpo,wsgrpo   # the short version in CI`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			base, log, err := setup(cmd)
			if err != nil {
				return err
			}
			base = base.withAutoThreads()
			if o.Seeds < 1 || len(o.Methods) == 0 || o.Steps < 0 || o.Eval < 0 {
				return fmt.Errorf("%w: --seeds >= 1, at least one method, --steps and --eval >= 0", ErrConfig)
			}
			if o.Seeds > maxSeeds || o.Steps > maxSteps || o.Eval > maxEvalPrompts {
				return fmt.Errorf("%w: --seeds %d, --steps %d, --eval %d: at most %d seeds, %d steps and %d prompts", ErrConfig,
					o.Seeds, o.Steps, o.Eval, maxSeeds, maxSteps, maxEvalPrompts)
			}
			var rows []methodResult
			first := map[string]Config{} // each method's seed-1 run
			for _, m := range o.Methods {
				path := filepath.Join(o.ConfigDir, m+".yaml")
				res := methodResult{Method: m}
				for seed := 1; seed <= o.Seeds; seed++ {
					cfg, err := methodConfig(path, base)
					if err != nil {
						return err
					}
					cfg.Run = fmt.Sprintf("%s-s%d", m, seed)
					cfg.Dir = filepath.Join(o.Dir, cfg.Run)
					cfg.Train.Seed, cfg.Sampler.Seed = uint64(seed), uint64(seed)
					cfg.Labeler.Fit.Seed = uint64(seed)
					if o.Steps > 0 {
						cfg.Train.Steps = o.Steps
					}
					if o.Eval > 0 {
						cfg.Train.EvalPrompts = o.Eval
					}
					if err := cfg.Validate(); err != nil {
						return fmt.Errorf("%s: %w", path, err)
					}
					st := readTrainState(cfg)
					if st.After == nil {
						out(cmd, "== %s, seed %d (%d steps) -> %s\n", m, seed, cfg.Train.Steps, cfg.RunDir())
						if err := runTrain(cmd, cfg, log, trainOptions{Force: true, Timeout: 10 * time.Minute, Start: time.Now()}); err != nil {
							return fmt.Errorf("%s seed %d: %w", m, seed, err)
						}
						st = readTrainState(cfg)
					} else {
						out(cmd, "== %s, seed %d: done before (%s)\n", m, seed, cfg.RunDir())
					}
					if st.After == nil || st.Before == nil {
						return fmt.Errorf("%w: %s holds no evaluation (train.eval_prompts must be > 0)", ErrIncomplete, filepath.Join(cfg.RunDir(), trainStateFile))
					}
					res.Runs = append(res.Runs, st)
					if seed == 1 {
						first[m] = cfg
					}
					if seed == 1 && o.Ship != "" {
						if err := shipPolicy(st.Policy, filepath.Join(o.Ship, m)); err != nil {
							return err
						}
					}
				}
				rows = append(rows, res)
			}
			if o.Compare != "" {
				if err := compareMethods(cmd, o, first, log); err != nil {
					return err
				}
			}
			w := cmd.OutOrStdout()
			doc := resultsMarkdown(rows)
			if o.Out != "" {
				if err := os.MkdirAll(filepath.Dir(o.Out), 0o755); err != nil {
					return err
				}
				if err := os.WriteFile(o.Out, []byte(doc), 0o644); err != nil {
					return err
				}
				js, err := json.MarshalIndent(rows, "", "  ")
				if err != nil {
					return err
				}
				if err := os.WriteFile(strings.TrimSuffix(o.Out, ".md")+".json", js, 0o644); err != nil {
					return err
				}
				out(cmd, "wrote %s (and .json)\n", o.Out)
			}
			_, err = io.WriteString(w, doc)
			return err
		},
	}
	addConfigFlags(cmd.Flags())
	f := cmd.Flags()
	f.StringVar(&o.ConfigDir, "config-dir", "testdata/configs", "directory of the <method>.yaml run configurations")
	f.StringSliceVar(&o.Methods, "methods", []string{"grpo", "drgrpo", "length-penalty", "wsgrpo"}, "methods (config names) to train")
	f.IntVar(&o.Seeds, "seeds", 3, "seeds per method")
	f.IntVar(&o.Steps, "steps", 0, "learner updates per run (0: the config's train.steps)")
	f.IntVar(&o.Eval, "eval", 0, "test prompts evaluated before and after (0: the config's train.eval_prompts)")
	f.StringVar(&o.Dir, "runs", "runs/results", "directory of the runs")
	f.StringVar(&o.Out, "out", "", "write the table here as markdown (and the data as .json beside it)")
	f.StringVar(&o.Compare, "compare", "", "write `report --compare` plots of each method's seed-1 run against the last method's to DIR/<method>-vs-<last>")
	f.StringVar(&o.Ship, "ship", "", "copy each method's seed-1 trained policy to DIR/<method>")
	return cmd
}

// compareMethods writes, for every method but the last, the report of its
// seed-1 run compared with the last method's seed-1 run (the plots of
// `wsgrpo report --compare`) to o.Compare/<method>-vs-<last>.
func compareMethods(cmd *cobra.Command, o resultsOptions, first map[string]Config, log *slog.Logger) error {
	ref := o.Methods[len(o.Methods)-1]
	opts := report.Options{HistogramBins: 20, AccuracyBins: 10, Logger: log}
	other, err := buildReport(cmd.Context(), first[ref], log, opts)
	if err != nil {
		return fmt.Errorf("report of %s: %w", first[ref].Run, err)
	}
	for _, m := range o.Methods[:len(o.Methods)-1] {
		base, err := buildReport(cmd.Context(), first[m], log, opts)
		if err != nil {
			return fmt.Errorf("report of %s: %w", first[m].Run, err)
		}
		dir := filepath.Join(o.Compare, m+"-vs-"+ref)
		if _, err := report.NewDocument(base, other).Write(dir); err != nil {
			return err
		}
		out(cmd, "compared %s with %s: %s\n", first[m].Run, first[ref].Run, dir)
	}
	return nil
}

// methodConfig loads a method's run configuration file with the command's
// settings that are not about the run (ORT, log) kept.
func methodConfig(path string, base Config) (Config, error) {
	fs := pflag.NewFlagSet("results", pflag.ContinueOnError)
	addConfigFlags(fs)
	if err := fs.Parse([]string{"--config", path}); err != nil {
		return Config{}, err
	}
	cfg, err := loadConfig(fs)
	if err != nil {
		return Config{}, fmt.Errorf("%s: %w", path, err)
	}
	cfg.ORT, cfg.Log, cfg.ClickHouseDSN = base.ORT, base.Log, base.ClickHouseDSN
	return cfg, nil
}

// shipPolicy copies a trained policy checkpoint to dir.
func shipPolicy(from, dir string) error {
	ck, err := checkpoint.Load(from)
	if err != nil {
		return fmt.Errorf("ship %s: %w", from, err)
	}
	return checkpoint.Save(dir, ck)
}

// methodResult is one method's runs, one per seed.
type methodResult struct {
	Method string       `json:"method"`
	Runs   []trainState `json:"runs"`
}

// meanSD returns the mean and the sample standard deviation of xs.
func meanSD(xs []float64) (float64, float64) {
	if len(xs) == 0 {
		return math.NaN(), math.NaN()
	}
	var m float64
	for _, x := range xs {
		m += x
	}
	m /= float64(len(xs))
	if len(xs) < 2 {
		return m, 0
	}
	var v float64
	for _, x := range xs {
		v += (x - m) * (x - m)
	}
	return m, math.Sqrt(v / float64(len(xs)-1))
}

// tokensPerCorrect is the completion tokens spent per correct answer.
func tokensPerCorrect(r *evalReport) float64 {
	if r.Accuracy == 0 {
		return math.Inf(1)
	}
	return r.MeanTokens / r.Accuracy
}

// resultsMarkdown tabulates the methods' evaluations after training beside
// the base policy's (the first run's evaluation before training): the
// sampled evaluation (train.eval_samples) when every run has one, then the
// greedy one.
func resultsMarkdown(rows []methodResult) string {
	var b strings.Builder
	sampled := len(rows) > 0
	for _, m := range rows {
		for _, r := range m.Runs {
			sampled = sampled && r.BeforeSampled != nil && r.AfterSampled != nil
		}
	}
	if sampled {
		first := rows[0].Runs[0].BeforeSampled
		fmt.Fprintf(&b, "Sampled: %d completions of each of %d arith test prompts at the training temperature; accuracy is pass@1 over the samples.\n\n", first.Samples, first.N)
		resultsTable(&b, rows, func(s trainState) *evalReport { return s.BeforeSampled }, func(s trainState) *evalReport { return s.AfterSampled })
		b.WriteString("\n")
	}
	b.WriteString("Greedy decoding on the arith test split.\n\n")
	resultsTable(&b, rows, func(s trainState) *evalReport { return s.Before }, func(s trainState) *evalReport { return s.After })
	b.WriteString("\nAfter training; mean ± sample standard deviation over seeds; the base policy row is over every run's evaluation before training (one per run).\n")
	return b.String()
}

// resultsTable writes one markdown table of the evaluations that before
// and after pick from each run.
func resultsTable(b *strings.Builder, rows []methodResult, before, after func(trainState) *evalReport) {
	ops := map[int]bool{}
	for _, m := range rows {
		for _, r := range m.Runs {
			for _, o := range after(r).ByOps {
				ops[o.Ops] = true
			}
		}
	}
	opList := make([]int, 0, len(ops))
	for o := range ops {
		opList = append(opList, o)
	}
	slices.Sort(opList)
	fmt.Fprintf(b, "| method | seeds | steps | accuracy | mean tokens | mean steps | tokens per correct |")
	for _, o := range opList {
		fmt.Fprintf(b, " %d ops |", o)
	}
	b.WriteString("\n|---|---|---|---|---|---|---|" + strings.Repeat("---|", len(opList)) + "\n")
	pm := func(xs []float64, scale float64, prec int) string {
		m, sd := meanSD(xs)
		return fmt.Sprintf("%.*f ± %.*f", prec, m*scale, prec, sd*scale)
	}
	line := func(name string, runs []trainState, trained int64, pick func(trainState) *evalReport) {
		var acc, tok, steps, tpc []float64
		byOps := map[int][]float64{}
		for _, r := range runs {
			e := pick(r)
			acc, tok, steps, tpc = append(acc, e.Accuracy), append(tok, e.MeanTokens), append(steps, e.MeanSteps), append(tpc, tokensPerCorrect(e))
			for _, o := range e.ByOps {
				byOps[o.Ops] = append(byOps[o.Ops], o.Accuracy)
			}
		}
		fmt.Fprintf(b, "| %s | %d | %d | %s%% | %s | %s | %s |", name, len(runs), trained, pm(acc, 100, 1), pm(tok, 1, 1), pm(steps, 1, 2), pm(tpc, 1, 1))
		for _, o := range opList {
			fmt.Fprintf(b, " %s%% |", pm(byOps[o], 100, 0))
		}
		b.WriteString("\n")
	}
	// Every run evaluated the same base policy before training: the base
	// row is the mean and spread of those evaluations (sampling makes them
	// differ), its "seeds" the number of them.
	var all []trainState
	for _, m := range rows {
		all = append(all, m.Runs...)
	}
	if len(all) > 0 {
		line("base policy", all, 0, before)
	}
	for _, m := range rows {
		line(m.Method, m.Runs, m.Runs[0].Steps, after)
	}
}
