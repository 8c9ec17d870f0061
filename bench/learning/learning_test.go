package learning

import (
	"context"
	"errors"
	"testing"

	"github.com/wsgrpo/wsgrpo/model/ort/orttest"
)

func TestRunTiny(t *testing.T) {
	rt := orttest.Runtime(t)
	var points []string
	o := Options{DModel: 16, Layers: 1, Groups: 2, G: 3, Prompt: 4, Completion: 7, MicroBatch: 4, Warmup: 1, Updates: 2,
		Probe: func(p string) { points = append(points, p) }}
	res, err := Run(context.Background(), rt, o)
	if err != nil {
		t.Fatal(err)
	}
	if res.Rows != 6 || res.Tokens != 42 || res.MicroBatches != 2 || res.Params == 0 {
		t.Errorf("rows %d, tokens %d, micro-batches %d, params %d", res.Rows, res.Tokens, res.MicroBatches, res.Params)
	}
	if !(res.Update > 0 && res.Raw > 0 && res.ForwardBackward > 0 && res.Ref > 0 && res.TokensPerSec > 0 && res.RawTokensPerSec > 0) {
		t.Errorf("%+v", res)
	}
	if want := []string{"ready", "update 1", "update 2", "update 3"}; len(points) != len(want) || points[0] != want[0] || points[3] != want[3] {
		t.Errorf("probe points %v, want %v", points, want)
	}
	o.LabelerRef, o.Probe = true, nil
	res, err = Run(context.Background(), rt, o)
	if err != nil {
		t.Fatal(err)
	}
	if res.Ref != 0 || res.RefFromLabeler != res.Rows {
		t.Errorf("labeler's reference log-probs: reference pass %v, %d of %d rows from the labeler", res.Ref, res.RefFromLabeler, res.Rows)
	}
	o.LabelerRef = false
	o.NoKL, o.NoRaw = true, true
	res, err = Run(context.Background(), rt, o)
	if err != nil {
		t.Fatal(err)
	}
	if res.Ref != 0 || res.Raw != 0 || res.RawTokensPerSec != 0 {
		t.Errorf("no KL, no raw: %+v", res)
	}
}

func TestRunBadOptions(t *testing.T) {
	if _, err := Run(context.Background(), nil, Options{Updates: -1}); !errors.Is(err, ErrOptions) {
		t.Fatalf("err %v, want ErrOptions", err)
	}
}
