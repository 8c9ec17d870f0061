package decode_test

import (
	"errors"
	"testing"

	"github.com/wsgrpo/wsgrpo/bench/decode"
	"github.com/wsgrpo/wsgrpo/model/generate"
	"github.com/wsgrpo/wsgrpo/model/ort/orttest"
	"github.com/wsgrpo/wsgrpo/model/policy"
)

func TestThroughput(t *testing.T) {
	rt := orttest.Runtime(t)
	cfg := policy.Config{VocabSize: 20, DModel: 16, NLayers: 1, NHeads: 2, DFF: 32, MaxSeq: 8}
	for _, cache := range []bool{true, false} {
		tps, err := decode.Throughput(rt, cfg, 2, 5, cache)
		if err != nil || tps <= 0 {
			t.Fatalf("cache=%v: %v tokens/s, %v", cache, tps, err)
		}
	}
	if _, err := decode.Throughput(rt, cfg, 0, 5, true); !errors.Is(err, generate.ErrOptions) {
		t.Fatalf("batch 0: %v", err)
	}
	cfg.NHeads = 3
	if _, err := decode.Throughput(rt, cfg, 1, 5, true); !errors.Is(err, policy.ErrConfig) {
		t.Fatalf("bad config: %v", err)
	}
}
