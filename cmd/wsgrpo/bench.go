package main

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"os"
	"slices"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"

	"github.com/wsgrpo/wsgrpo/bench/decode"
	"github.com/wsgrpo/wsgrpo/bench/logstore"
	"github.com/wsgrpo/wsgrpo/bench/peak"
	"github.com/wsgrpo/wsgrpo/bench/reload"
	"github.com/wsgrpo/wsgrpo/bench/trainstep"
	"github.com/wsgrpo/wsgrpo/bench/transport"
	"github.com/wsgrpo/wsgrpo/model/onnx"
	"github.com/wsgrpo/wsgrpo/model/ort"
	"github.com/wsgrpo/wsgrpo/model/policy"
	"github.com/wsgrpo/wsgrpo/tracelog"
)

// benchSuite is one group of measurements of `wsgrpo bench`.
type benchSuite struct {
	name string
	help string
	run  func(ctx context.Context, b *benchEnv) error
}

// benchEnv is what every suite gets.
type benchEnv struct {
	cfg   Config
	log   *slog.Logger
	w     io.Writer
	quick bool
	// rss adds the learner's peak-RSS measurement to the learner suite.
	rss bool
	// pin gives the pipeline suite's sampler processes CPUs of their own.
	pin bool
	// ahead is the pipeline suite's in-run train.ahead (0: 2).
	ahead int
	// passes is how many alone/in-run pairs the pipeline suite pools
	// (0: 1).
	passes int
	rt     *ort.Runtime
	// samplerRollouts is the sampler suite's best rollouts/s in this
	// invocation (0 when it did not run), the verifier suite's yardstick.
	samplerRollouts float64
}

func (b *benchEnv) runtime() (*ort.Runtime, error) {
	if b.rt != nil {
		return b.rt, nil
	}
	rt, err := ort.Init(b.cfg.ortConfig(), b.log)
	b.rt = rt
	return rt, err
}

// table starts an aligned table with the given header.
func (b *benchEnv) table(title string, header ...string) *tabwriter.Writer {
	fmt.Fprintf(b.w, "\n## %s\n", title)
	tw := tabwriter.NewWriter(b.w, 2, 4, 2, ' ', 0)
	fmt.Fprintln(tw, strings.Join(header, "\t"))
	return tw
}

var benchSuites = []benchSuite{
	{"transport", "pipeline hop cost and throughput vs an in-process Go channel", benchTransport},
	{"decode", "sampling tokens/s: in-place KV cache, concatenating KV cache, full recompute; memory-bound estimate", benchDecode},
	{"session", "time to turn a weight blob into a ready ONNX Runtime session", benchSession},
	{"sampler", "sampler stage tokens/s and rollouts/s vs raw decode, with version swaps", benchSampler},
	{"verifier", "verifier rows/s, beside the sampler's rollouts/s when that suite ran first", benchVerifier},
	{"labeler", "labeler stage rows/s (ws-grpo, grpo) vs the raw featurizer forward pass; preference-model fit pairs/s", benchLabeler},
	{"learner", "learner stage update split and tokens/s vs the raw training step, KL on and off (--rss: peak RSS at d_model 256)", benchLearner},
	{"train", "training step time and GFLOP/s vs this machine's fp32 peak", benchTrain},
	{"pretrain", "pretrain tokens/s vs the raw training step at the same shape", benchPretrain},
	{"pipeline", "sampler tokens/s inside a whole multi-process run vs alone, 1/2/4 sampler processes; end-to-end rollouts/s and trained tokens/s (minutes)", benchPipeline},
	{"tracelog", "trajectory-log insert rows/s (embedded chDB, and the server with --clickhouse-dsn)", benchTracelog},
}

func newBenchCmd() *cobra.Command {
	var quick, rss, pin bool
	var ahead, passes int
	names := make([]string, len(benchSuites))
	var help strings.Builder
	for i, s := range benchSuites {
		names[i] = s.name
		fmt.Fprintf(&help, "  %-10s %s\n", s.name, s.help)
	}
	cmd := &cobra.Command{
		Use:   "bench [suite ...]",
		Short: "Measure the figures in docs/BENCHMARKS.md, each beside its baseline",
		Long: "Run benchmark suites (all when none is named):\n" + help.String() +
			"\nGo benchmarks (go test -bench) measure the same code paths; see docs/BENCHMARKS.md.",
		RunE: func(cmd *cobra.Command, args []string) error {
			cfg, log, err := setup(cmd)
			if err != nil {
				return err
			}
			if len(args) == 0 {
				args = names
			}
			for _, a := range args {
				if !slices.Contains(names, a) {
					return fmt.Errorf("%w: unknown suite %q (have %s)", ErrConfig, a, strings.Join(names, ", "))
				}
			}
			if ahead < 1 || passes < 1 {
				return fmt.Errorf("%w: --ahead %d and --passes %d must be at least 1", ErrConfig, ahead, passes)
			}
			env := &benchEnv{cfg: cfg, log: log, w: cmd.OutOrStdout(), quick: quick, rss: rss, pin: pin, ahead: ahead, passes: passes}
			host, _ := os.Hostname()
			out(cmd, "# wsgrpo bench (%s, %s)\n", host, time.Now().UTC().Format(time.RFC3339))
			for _, s := range benchSuites {
				if slices.Contains(args, s.name) {
					if err := s.run(cmd.Context(), env); err != nil {
						return fmt.Errorf("bench %s: %w", s.name, err)
					}
				}
			}
			return nil
		},
	}
	addConfigFlags(cmd.Flags())
	cmd.Flags().BoolVar(&quick, "quick", false, "smaller sizes and fewer repetitions (a smoke run, not for the docs)")
	cmd.Flags().BoolVar(&pin, "pin", false, "pipeline suite: run the sampler processes on CPUs of their own and every other process on the rest (taskset; only where there are more CPUs than samplers), so that in-run against alone measures the pipeline, not CPU sharing")
	cmd.Flags().IntVar(&ahead, "ahead", 2, "pipeline suite: train.ahead of the in-run passes (learner.max_staleness follows it); 2 is what a run uses, a value of the run's steps lets the samplers run unthrottled by the learner")
	cmd.Flags().IntVar(&passes, "passes", 1, "pipeline suite: alone and in-run passes to alternate and pool for each sampler count (one pass's efficiency moves by about 0.1 on a 2-vCPU VM)")
	cmd.Flags().BoolVar(&rss, "rss", false, "learner suite: also measure the learner's peak RSS at d_model 256, one child process per micro-batch size")
	return cmd
}

// benchPolicy is the policy shape the model suites measure: a vocabulary of
// 96 and an MLP 4 times d_model wide.
func benchPolicy(dModel, layers int) policy.Config {
	cfg := policy.DefaultConfig(96)
	cfg.DModel, cfg.NLayers, cfg.DFF = dModel, layers, 4*dModel
	return cfg
}

func benchTransport(ctx context.Context, b *benchEnv) error {
	batches := 200
	if b.quick {
		batches = 20
	}
	tw := b.table("transport: one hop, rollout batches of 512 tokens",
		"measurement", "rows/batch", "workers", "msg KiB", "per batch", "rows/s", "MB/s")
	row := func(r transport.Result, rows, workers int) {
		fmt.Fprintf(tw, "%s\t%d\t%d\t%.0f\t%s\t%.0f\t%.1f\n", r.Name, rows, workers, float64(r.MsgBytes)/1024,
			r.PerBatch.Round(time.Microsecond), r.RowsPerSec, r.BytesPerSec/1e6)
	}
	for _, rows := range []int{64, 256} {
		o := transport.Options{Rows: rows, Tokens: 512, Batches: batches}
		r, err := transport.RoundTrip(ctx, o)
		if err != nil {
			return err
		}
		row(r, rows, 1)
	}
	for _, workers := range []int{1, 3} {
		o := transport.Options{Rows: 64, Tokens: 512, Batches: batches, Workers: workers}
		r, err := transport.Hop(ctx, o)
		if err != nil {
			return err
		}
		row(r, 64, workers)
		c, err := transport.ChannelHop(ctx, o)
		if err != nil {
			return err
		}
		row(c, 64, workers)
	}
	return tw.Flush()
}

// decodeBandwidthBytes is the buffer size of the decode suite's copy
// bandwidth measurement: eight times a 32 MiB last-level cache.
const decodeBandwidthBytes = 256 << 20

func benchDecode(_ context.Context, b *benchEnv) error {
	rt, err := b.runtime()
	if err != nil {
		return err
	}
	newTokens, rounds, bwSize := 256, 5, decodeBandwidthBytes
	if b.quick {
		newTokens, rounds, bwSize = 32, 2, 16<<20
	}
	cpu, err := peak.ReadCPUInfo("")
	if err != nil {
		return err
	}
	// Decoding runs on one ONNX Runtime thread: its bound is one core's.
	bw, err := decode.Bandwidth(bwSize, 5, 1)
	if err != nil {
		return err
	}
	fmt.Fprintf(b.w, "CPU: %s (family %d, model %#x: %s), %d logical CPUs\n", cpu.Model, cpu.Family, cpu.ModelID, cpu.Microarch(), cpu.LogicalCPUs)
	fmt.Fprintf(b.w, "memory bandwidth, one thread, %d MiB copy: %.1f GB/s (the bound below)\n", bwSize>>20, bw/1e9)
	tw := b.table(fmt.Sprintf("decode: batch 16, %d new tokens, 4 layers, %d alternating rounds (full recompute: 1)", newTokens, rounds),
		"d_model", "graph", "tok/s median", "min-max", "vs concat", "MB moved/step", "bound tok/s", "% of bound")
	for _, d := range []int{128, 256} {
		cfg := benchPolicy(d, 4)
		kv, err := decode.Compare(rt, cfg, 16, newTokens, []decode.Graph{decode.InPlace, decode.Concat}, rounds)
		if err != nil {
			return err
		}
		full, err := decode.Compare(rt, cfg, 16, newTokens, []decode.Graph{decode.Full}, 1)
		if err != nil {
			return err
		}
		kv[decode.Full] = full[decode.Full]
		base := median(kv[decode.Concat])
		for _, g := range decode.Graphs {
			tps := kv[g]
			med := median(tps)
			traffic := "-\t-\t-"
			if tr, err := decode.TrafficOf(cfg, 16, decode.PromptLen, newTokens, g); err == nil {
				bound := tr.Bound(16*newTokens, bw)
				traffic = fmt.Sprintf("%.1f\t%.0f\t%.0f%%", tr.Total()/float64(tr.Steps)/1e6, bound, 100*med/bound)
			}
			fmt.Fprintf(tw, "%d\t%s\t%.0f\t%.0f-%.0f\t%.2fx\t%s\n", d, g, med, slices.Min(tps), slices.Max(tps), med/base, traffic)
		}
	}
	return tw.Flush()
}

// median returns the median of xs (not empty).
func median(xs []float64) float64 {
	s := slices.Sorted(slices.Values(xs))
	if len(s)%2 == 1 {
		return s[len(s)/2]
	}
	return (s[len(s)/2-1] + s[len(s)/2]) / 2
}

func benchSession(_ context.Context, b *benchEnv) error {
	rt, err := b.runtime()
	if err != nil {
		return err
	}
	tw := b.table("session: weight version -> ready sampler session", "d_model", "layers", "graph", "model MiB", "new session")
	for _, d := range []int{128, 256} {
		cfg := benchPolicy(d, 4)
		w, err := policy.Init(cfg, 1)
		if err != nil {
			return err
		}
		for _, g := range []struct {
			name  string
			build func(policy.Config, policy.Weights) (*onnx.Model, error)
		}{{"kv in place", policy.InPlaceKVGraph}, {"kv concat", policy.KVGraph}} {
			m, err := g.build(cfg, w)
			if err != nil {
				return err
			}
			blob, err := m.Marshal()
			if err != nil {
				return err
			}
			n := 20
			if b.quick {
				n = 3
			}
			dt, err := reload.Session(rt, blob, n)
			if err != nil {
				return err
			}
			fmt.Fprintf(tw, "%d\t%d\t%s\t%.1f\t%s\n", d, cfg.NLayers, g.name, float64(len(blob))/(1<<20), dt.Round(10*time.Microsecond))
		}
	}
	return tw.Flush()
}

func benchTrain(_ context.Context, b *benchEnv) error {
	rt, err := b.runtime()
	if err != nil {
		return err
	}
	pk, err := peak.Peak(peak.Config{ORT: b.cfg.ortConfig()}, b.log)
	if err != nil {
		return err
	}
	// Rates are compared against the measured FMA peak (best width, all
	// CPUs), with the theoretical figure beside it.
	peakName := "measured peak"
	if pk.MeasuredPeakGFLOPs() == 0 {
		peakName = "theoretical peak (no FMA kernel ran)"
	}
	fmt.Fprintf(b.w, "\nfp32 peak, %s (%s), %d usable CPUs:\n", pk.CPU.Model, pk.Microarch, pk.UsableCPUs)
	for _, f := range pk.FMA {
		fmt.Fprintf(b.w, "  FMA kernel %s\n", f)
	}
	if best := pk.BestFMA(); best.Threads > 1 && best.Scaling() < 0.9 {
		fmt.Fprintf(b.w, "  warning: the %d-thread FMA figure is %.0f%% of %d × the one-core figure: other processes held CPUs "+
			"(or threads share cores), so the %% of measured peak below are too high; rerun on a quiet machine\n",
			best.Threads, 100*best.Scaling(), best.Threads)
	}
	fmt.Fprintf(b.w, "  measured peak %.1f GFLOP/s; theoretical %.1f GFLOP/s (cpuinfo clock: %s; measured clock: %s)\n",
		pk.MeasuredPeakGFLOPs(), pk.TheoreticalPeakGFLOPs(), pk.Widest, pk.Boost)
	fmt.Fprintf(b.w, "measured ONNX Runtime GEMM %dx%d on %d threads: %.1f GFLOP/s (%.0f%% of %s, %.0f%% of theoretical)\n",
		pk.GEMM.N, pk.GEMM.N, pk.GEMM.Threads, pk.GEMM.GFLOPs, 100*pk.GEMM.GFLOPs/pk.PeakGFLOPs(), peakName,
		100*pk.GEMM.GFLOPs/pk.TheoreticalPeakGFLOPs())
	threads := b.cfg.ortConfig().IntraOpThreads
	tw := b.table(fmt.Sprintf("train: GRPO step on 32x128 tokens, d_model 128, %d ORT thread(s) (--ort-threads)", threads),
		"layers", "step", "fastest", "CPU/step", "GFLOP/step", "step GFLOP/s", "ORT fwd+bwd GFLOP/s", "matmul kernels GFLOP/s", "% of "+peakName+" (step / fwd+bwd / matmul)", "% of theoretical")
	for _, layers := range []int{2, 4} {
		cfg := benchPolicy(128, layers)
		cfg.MaxSeq = 128
		steps, prof := 5, 2
		if b.quick {
			steps, prof = 1, 1
		}
		r, err := trainstep.Run(rt, trainstep.Options{Policy: cfg, Batch: 32, Seq: 128, Warmup: 1, Steps: steps, ProfileSteps: prof}, b.log)
		if err != nil {
			return err
		}
		pct := func(g float64) float64 { return 100 * g / pk.PeakGFLOPs() }
		theo := func(g float64) float64 { return 100 * g / pk.TheoreticalPeakGFLOPs() }
		fmt.Fprintf(tw, "%d\t%s\t%s\t%s\t%.1f\t%.1f\t%.1f\t%.1f\t%.0f%% / %.0f%% / %.0f%%\t%.0f%% / %.0f%% / %.0f%%\n", layers, r.StepTime.Round(time.Millisecond),
			r.MinStepTime.Round(time.Millisecond), r.CPUPerStep.Round(time.Millisecond), r.FLOPs/1e9, r.GFLOPS, r.RunGFLOPS,
			r.MatMulGFLOPS, pct(r.GFLOPS), pct(r.RunGFLOPS), pct(r.MatMulGFLOPS), theo(r.GFLOPS), theo(r.RunGFLOPS), theo(r.MatMulGFLOPS))
	}
	if err := tw.Flush(); err != nil {
		return err
	}
	fmt.Fprintln(b.w, "GoMLX v0.26.0 (pure Go) on the same shapes: cd bench/gomlx && go run . --layers 2 (separate module; see docs/BENCHMARKS.md)")
	return nil
}

func benchTracelog(ctx context.Context, b *benchEnv) error {
	dir, err := os.MkdirTemp("", "wsgrpo-bench-")
	if err != nil {
		return err
	}
	defer os.RemoveAll(dir)
	backends := []tracelog.Config{{Dir: dir}}
	if b.cfg.ClickHouseDSN != "" {
		backends = append(backends, tracelog.Config{DSN: b.cfg.ClickHouseDSN})
	}
	n := 32768
	if b.quick {
		n = 4096
	}
	rows := logstore.SyntheticRows("bench", n, 512, 1)
	tw := b.table(fmt.Sprintf("tracelog: insert %d trajectories of 512 tokens (goal: >= 100,000 rows/s to the server)", n), "backend", "batch", "inserters", "rows/s")
	for _, c := range backends {
		s, err := tracelog.Open(ctx, c)
		if err != nil {
			return err
		}
		if err := s.Migrate(ctx); err != nil {
			s.Close()
			return err
		}
		measure := func(label string, bs, w, runs int) error {
			// Each measurement starts once the merges of earlier ones
			// are done, and writes runs of its own (the same rows
			// under one run id would collapse in merges).
			if err := logstore.WaitMerges(ctx, s, time.Minute); err != nil {
				return err
			}
			start := time.Now()
			for r := range runs {
				run := fmt.Sprintf("bench-%s-%d-%d-%d", label, bs, w, r)
				for j := range rows {
					rows[j].RunID = run
				}
				if _, err := logstore.InsertParallel(ctx, s, rows, bs, w); err != nil {
					return err
				}
			}
			rate := float64(runs*len(rows)) / time.Since(start).Seconds()
			note := ""
			if runs > 1 {
				note = fmt.Sprintf(" (sustained: %d rows, merges competing)", runs*len(rows))
			}
			fmt.Fprintf(tw, "%s\t%d\t%d\t%.0f%s\n", c.BackendName(), bs, w, rate, note)
			return nil
		}
		for _, bs := range []int{64, 256, 1024, 4096} {
			// One inserter, as a logger with one worker; the server backend
			// also with 2 and 4 concurrent inserters, which it groups into
			// shared INSERTs (a logger with runner concurrency > 1).
			workers := []int{1}
			if c.DSN != "" {
				workers = []int{1, 2, 4}
			}
			for _, w := range workers {
				if err := measure("burst", bs, w, 1); err != nil {
					s.Close()
					return err
				}
			}
		}
		if c.DSN != "" && !b.quick {
			// A long insert: 8 runs back to back, so that the server's
			// merges of earlier rows compete with the inserts, as in a
			// long training run.
			if err := measure("sustained", 4096, 4, 8); err != nil {
				s.Close()
				return err
			}
		}
		s.Close()
	}
	return tw.Flush()
}
