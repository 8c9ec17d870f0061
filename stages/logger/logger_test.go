package logger_test

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/apache/arrow-go/v18/arrow"
	"github.com/apache/arrow-go/v18/arrow/memory"

	"github.com/wsgrpo/wsgrpo/schemas"
	"github.com/wsgrpo/wsgrpo/stages/logger"
	"github.com/wsgrpo/wsgrpo/stages/stage"
	"github.com/wsgrpo/wsgrpo/tracelog"
	"github.com/wsgrpo/wsgrpo/tracelog/chtest"
)

func labeledRows(run string, n int) []schemas.Labeled {
	out := make([]schemas.Labeled, n)
	for i := range out {
		prompt := "p" + string(rune('a'+i/4))
		sample := int32(i % 4)
		l := &out[i]
		l.RunID, l.Step, l.PromptID, l.Task, l.Prompt.Prompt = run, 3, prompt, "arith", "2+3="
		l.PromptTokenIDs, l.ReferenceAnswer, l.CreatedMs = []int32{5, 6}, "5", 1767225600123
		l.TrajectoryID, l.GroupID = schemas.TrajectoryID(run, 3, prompt, sample), schemas.GroupID(run, 3, prompt)
		l.SampleIndex, l.PolicyVersion = sample, 2
		l.Completion, l.CompletionTokenIDs = "2+3 is 5", []int32{10, 11, 12, 13}
		l.TokenLogprobs, l.StepEnds, l.FinishReason = []float32{-0.5, -0.25, -1, -0.25}, []int32{2, 4}, "eos"
		l.ExtractedAnswer, l.Correct, l.TerminalReward = "5", i%2 == 0, float32(1-i%2)
		l.StepScores, l.StepRewards = []float32{0, 0.4, 0.9}, []float32{0.4, 0.5}
		l.ShapedReward, l.Advantage, l.Shaper = 0.9, 0.3, "ws"
		l.SampleMs, l.VerifyMs, l.LabelMs = 12, 0.5, 3
	}
	return out
}

func ctx(t *testing.T) context.Context {
	c, cancel := context.WithTimeout(context.Background(), time.Minute)
	t.Cleanup(cancel)
	return c
}

func TestProcessorWritesLabeledAndVerified(t *testing.T) {
	for _, b := range chtest.Backends() {
		t.Run(b.Name, func(t *testing.T) {
			mem := memory.NewCheckedAllocator(memory.NewGoAllocator())
			defer mem.AssertSize(t, 0)
			cfg, _ := b.Open(t)
			store, err := tracelog.Open(ctx(t), cfg)
			if err != nil {
				t.Fatal(err)
			}
			defer store.Close()
			if err := store.Migrate(ctx(t)); err != nil {
				t.Fatal(err)
			}
			p := logger.New(store, logger.Options{})
			lab := labeledRows("train", 16)
			rec := schemas.NewLabeledBatch(mem, lab)
			defer rec.Release()
			// Encode and decode as the runner does, then deliver twice.
			payload, err := schemas.Encode(rec)
			if err != nil {
				t.Fatal(err)
			}
			for range 2 {
				in, err := schemas.Decode(schemas.KindLabeled, payload, mem)
				if err != nil {
					t.Fatal(err)
				}
				outs, err := p.Process(ctx(t), in)
				in.Release()
				if err != nil || len(outs) != 0 {
					t.Fatalf("Process = %d outputs, %v", len(outs), err)
				}
			}
			if n, err := store.Count(ctx(t), "train"); err != nil || n != 16 {
				t.Fatalf("count = %d, %v; want 16", n, err)
			}
			got, err := tracelog.ReadRun(ctx(t), store, "train")
			if err != nil || len(got) != 16 {
				t.Fatalf("ReadRun: %d, %v", len(got), err)
			}
			g := got[0]
			if !g.Labeled || g.CompletionTokens != 4 || g.Steps != 2 || g.SamplerLogprobSum != -2 ||
				g.Created != time.Unix(1767225600, 0).UTC() || g.Advantage != 0.3 || g.Shaper != "ws" {
				t.Fatalf("logged row: %+v", g)
			}
			if back := g.LabeledRow(); back.TrajectoryID != lab[0].TrajectoryID || back.CreatedMs != lab[0].CreatedMs || len(back.StepScores) != 3 {
				t.Fatalf("LabeledRow: %+v", back)
			}
			// An eval run: verified batches, no labeler columns.
			vs := make([]schemas.Verified, 5)
			for i, l := range labeledRows("eval", 5) {
				vs[i] = l.Verified
			}
			vrec := schemas.NewVerifiedBatch(mem, vs)
			defer vrec.Release()
			if _, err := p.Process(ctx(t), vrec); err != nil {
				t.Fatal(err)
			}
			res, err := store.Query(ctx(t), "SELECT count(), max(labeled), sum(shaped_reward) FROM trajectories_dedup WHERE run_id = ?", "eval")
			if err != nil || res.Rows[0][0] != uint64(5) || res.Rows[0][1] != uint64(0) || res.Rows[0][2] != 0.0 {
				t.Fatalf("eval rows: %v, %v", res, err)
			}
		})
	}
}

func TestProcessorRefusesBadBatches(t *testing.T) {
	mem := memory.NewCheckedAllocator(memory.NewGoAllocator())
	defer mem.AssertSize(t, 0)
	cfg, _ := chtest.Backends()[1].Open(t)
	store, err := tracelog.Open(ctx(t), cfg)
	if err != nil {
		t.Fatal(err)
	}
	defer store.Close()
	p := logger.New(store, logger.Options{})
	prompt := schemas.NewPromptBatch(mem, []schemas.Prompt{{RunID: "r", PromptID: "p"}})
	defer prompt.Release()
	noID := labeledRows("r", 2)
	noID[1].TrajectoryID = ""
	bad := schemas.NewLabeledBatch(mem, noID)
	defer bad.Release()
	tests := []struct {
		name string
		in   arrow.RecordBatch
		want error
	}{
		{"prompt batch", prompt, schemas.ErrWrongKind},
		{"row without trajectory id", bad, logger.ErrBadRow},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			outs, err := p.Process(ctx(t), tc.in)
			if len(outs) != 0 {
				t.Fatalf("%d outputs", len(outs))
			}
			if !errors.Is(err, tc.want) || !errors.Is(err, schemas.ErrInvalid) {
				t.Fatalf("err = %v, want %v and ErrInvalid", err, tc.want)
			}
		})
	}
}

// TestProcessorServerOutage: while the server is down Process fails with
// a transient error (not ErrInvalid), and the retried batch lands once.
func TestProcessorServerOutage(t *testing.T) {
	mem := memory.NewCheckedAllocator(memory.NewGoAllocator())
	defer mem.AssertSize(t, 0)
	store, srv := outageStore(t)
	p := logger.New(store, logger.Options{})
	first := schemas.NewLabeledBatch(mem, labeledRows("o", 8))
	defer first.Release()
	rows := labeledRows("o", 16)
	second := schemas.NewLabeledBatch(mem, rows[8:])
	defer second.Release()
	if _, err := p.Process(ctx(t), first); err != nil {
		t.Fatal(err)
	}
	srv.Stop(t)
	_, err := p.Process(ctx(t), second)
	if err == nil || errors.Is(err, schemas.ErrInvalid) || !errors.Is(err, tracelog.ErrUnavailable) || !errors.Is(err, stage.ErrUnavailable) {
		t.Fatalf("while down: err = %v, want tracelog's and the pipeline's ErrUnavailable", err)
	}
	srv.Restart(t)
	if _, err := p.Process(ctx(t), second); err != nil {
		t.Fatalf("retry after restart: %v", err)
	}
	if _, err := p.Process(ctx(t), first); err != nil {
		t.Fatalf("redelivery after restart: %v", err)
	}
	if n, err := store.Count(ctx(t), "o"); err != nil || n != 16 {
		t.Fatalf("count = %d, %v; want 16", n, err)
	}
}
