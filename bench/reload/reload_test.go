package reload_test

import (
	"errors"
	"testing"

	"github.com/wsgrpo/wsgrpo/bench/reload"
	"github.com/wsgrpo/wsgrpo/model/ort"
	"github.com/wsgrpo/wsgrpo/model/ort/orttest"
	"github.com/wsgrpo/wsgrpo/model/policy"
)

// kvModel returns the KV-cache graph of a small policy, as the sampler
// loads it.
func kvModel(tb testing.TB, dModel int) []byte {
	tb.Helper()
	cfg := policy.DefaultConfig(96)
	cfg.DModel, cfg.NLayers, cfg.DFF = dModel, 2, 4*dModel
	w, err := policy.Init(cfg, 1)
	if err != nil {
		tb.Fatal(err)
	}
	m, err := policy.KVGraph(cfg, w)
	if err != nil {
		tb.Fatal(err)
	}
	blob, err := m.Marshal()
	if err != nil {
		tb.Fatal(err)
	}
	return blob
}

func TestSession(t *testing.T) {
	rt := orttest.Runtime(t)
	model := kvModel(t, 32)
	dt, err := reload.Session(rt, model, 2)
	if err != nil {
		t.Fatal(err)
	}
	if dt <= 0 {
		t.Fatalf("mean creation time %v", dt)
	}
	if _, err := reload.Session(rt, model, 0); !errors.Is(err, ort.ErrBadConfig) {
		t.Fatalf("zero repetitions: %v, want ErrBadConfig", err)
	}
	if _, err := reload.Session(rt, []byte("junk"), 1); !errors.Is(err, ort.ErrBadModel) {
		t.Fatalf("junk model: %v, want ErrBadModel", err)
	}
}
