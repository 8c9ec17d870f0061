package trainstep_test

import (
	"fmt"
	"testing"

	"github.com/wsgrpo/wsgrpo/bench/trainstep"
	"github.com/wsgrpo/wsgrpo/model/ort"
	"github.com/wsgrpo/wsgrpo/model/ort/orttest"
	"github.com/wsgrpo/wsgrpo/model/policy"
)

// BenchmarkTrainStep measures one GRPO training step (forward, backward,
// AdamW) of 32x128 tokens on d_model-128 policies with 2 and 4 layers and
// reports the achieved matmul GFLOP/s (see trainstep.FLOPs) over the whole
// step, over its ONNX Runtime run and over its matrix-product kernels (from
// five profiled steps), with one and two ONNX Runtime intra-op threads (the
// latter with and without spinning pool threads).
func BenchmarkTrainStep(b *testing.B) {
	base := orttest.Runtime(b)
	for _, v := range []struct {
		threads int
		spin    bool
	}{{1, true}, {2, true}, {2, false}} {
		oc := base.Config()
		oc.IntraOpThreads, oc.NoSpinning = v.threads, !v.spin
		rt, err := ort.Init(oc, nil)
		if err != nil {
			b.Fatal(err)
		}
		for _, layers := range []int{2, 4} {
			b.Run(fmt.Sprintf("layers=%d/threads=%d/spin=%v", layers, v.threads, v.spin), func(b *testing.B) {
				cfg := policy.DefaultConfig(100)
				cfg.NLayers = layers
				res, err := trainstep.Run(rt, trainstep.Options{Policy: cfg, Batch: 32, Seq: 128, Warmup: 1, Steps: b.N, ProfileSteps: 5}, nil)
				if err != nil {
					b.Fatal(err)
				}
				b.ReportMetric(res.GFLOPS, "GFLOP/s")
				b.ReportMetric(res.StepTime.Seconds()*1e3, "ms/step")
				b.ReportMetric(res.MinStepTime.Seconds()*1e3, "min-ms/step")
				b.ReportMetric(res.MinRunTime.Seconds()*1e3, "min-ort-ms/step")
				b.ReportMetric(res.BestRunGFLOPS, "best-ort-GFLOP/s")
				b.ReportMetric(res.CPUPerStep.Seconds()*1e3, "cpu-ms/step")
				b.ReportMetric(res.MatMulGFLOPS, "matmul-GFLOP/s")
				b.ReportMetric(res.BestMatMulGFLOPS, "best-matmul-GFLOP/s")
				b.ReportMetric(0, "ns/op")
			})
		}
	}
}

func TestFLOPs(t *testing.T) {
	// d 128, f 512, V 100, T 128, 2 layers: per token 2*(131072+262144+65536)
	// + 25600 = 943104; times 3*32*128.
	cfg := policy.DefaultConfig(100)
	cfg.NLayers = 2
	if got, want := trainstep.FLOPs(cfg, 32, 128), 3.0*32*128*943104; got != want {
		t.Fatalf("FLOPs %v, want %v", got, want)
	}
}

func TestRunSmall(t *testing.T) {
	rt := orttest.Runtime(t)
	cfg := policy.Config{VocabSize: 11, DModel: 16, NLayers: 1, NHeads: 2, DFF: 32, MaxSeq: 8}
	res, err := trainstep.Run(rt, trainstep.Options{Policy: cfg, Batch: 2, Seq: 8, Steps: 2, ProfileSteps: 2}, nil)
	if err != nil {
		t.Fatal(err)
	}
	if res.Tokens != 16 || res.StepTime <= 0 || res.GFLOPS <= 0 || res.Params != cfg.NumParams() {
		t.Fatalf("result %+v", res)
	}
	if res.RunTime <= 0 || res.RunTime > res.StepTime || res.MinRunTime > res.MinStepTime || res.RunGFLOPS < res.GFLOPS {
		t.Fatalf("run time %v (min %v) against step %v (min %v)", res.RunTime, res.MinRunTime, res.StepTime, res.MinStepTime)
	}
	p := res.Profile
	if p == nil || p.Steps != 2 || p.MatMul <= 0 || p.MatMul > p.Kernels || p.FastestMatMul > 2*p.MatMul || p.ByOp["Softmax"] <= 0 {
		t.Fatalf("profile %+v", p)
	}
	if res.MatMulGFLOPS <= 0 || res.BestMatMulGFLOPS <= 0 {
		t.Fatalf("matmul GFLOP/s %v, best %v", res.MatMulGFLOPS, res.BestMatMulGFLOPS)
	}
	if _, err := trainstep.Run(rt, trainstep.Options{Policy: cfg, Batch: 2, Seq: 9, Steps: 1}, nil); err == nil {
		t.Fatal("seq beyond MaxSeq accepted")
	}
}
