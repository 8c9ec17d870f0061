package labeling

import (
	"context"
	"errors"
	"math/rand/v2"
	"testing"

	"github.com/wsgrpo/wsgrpo/model/ort/orttest"
	"github.com/wsgrpo/wsgrpo/model/tokenizer"
)

func TestRows(t *testing.T) {
	rows := Rows(rand.New(rand.NewPCG(1, 1)), tokenizer.Default(), 3, 4)
	if len(rows) != 12 {
		t.Fatalf("%d rows, want 12", len(rows))
	}
	correct := 0
	for _, r := range rows {
		if n := len(r.PromptTokenIDs) + len(r.CompletionTokenIDs); n < 50 || n > 100 {
			t.Errorf("%s: %d tokens, want arith-like 50-100", r.TrajectoryID, n)
		}
		if len(r.StepEnds) < 4 {
			t.Errorf("%s: %d steps", r.TrajectoryID, len(r.StepEnds))
		}
		if r.Correct {
			correct++
		}
	}
	if correct != 6 {
		t.Errorf("%d correct rows, want half", correct)
	}
}

func TestRunTiny(t *testing.T) {
	rt := orttest.Runtime(t)
	res, err := Run(context.Background(), rt, Options{DModel: 16, Layers: 1, Groups: 2, G: 4, Batches: 1, FitPairs: 32, FitEpochs: 1})
	if err != nil {
		t.Fatal(err)
	}
	if len(res.Stages) != 2 || res.Stages[0].Shaper != "ws-grpo" || res.Stages[1].Shaper != "grpo" {
		t.Fatalf("stages %+v", res.Stages)
	}
	for _, s := range res.Stages {
		if !(s.RowsPerSec > 0 && s.RawRowsPerSec > 0) {
			t.Errorf("%+v", s)
		}
	}
	if res.Rows != 8 || res.Fit.Pairs != 32 || !(res.FitPairsPerSec > 0) {
		t.Errorf("rows %d, fit %+v, %v pairs/s", res.Rows, res.Fit, res.FitPairsPerSec)
	}
}

func TestRunBadOptions(t *testing.T) {
	if _, err := Run(context.Background(), nil, Options{Batches: -1}); !errors.Is(err, ErrOptions) {
		t.Fatalf("err %v, want ErrOptions", err)
	}
}
