package optim

import (
	"bytes"
	"errors"
	"math"
	"testing"
)

func near(a, b float32) bool { return math.Abs(float64(a-b)) <= 1e-6*math.Max(1, math.Abs(float64(b))) }

// TestAdamWHandComputed checks two steps against values worked out by hand:
// step 1 moves each weight by lr against the gradient's sign (bias-corrected
// m/sqrt(v) = g/|g|); step 2, for g = (0.5, 0.1) then (-0.5, 0.2), lr 0.1,
// betas (0.9, 0.999): m = (-0.005, 0.029), v = (0.00049975, 0.00004999),
// corrected by 0.19 and 0.001999, giving updates (-0.0526316, 0.96518).
// Decoupled decay 0.1 multiplies the weight by 1 - 0.1*0.1 first.
func TestAdamWHandComputed(t *testing.T) {
	cases := []struct {
		name  string
		decay bool
		want  [2][2]float32
	}{
		{"no-decay", false, [2][2]float32{{0.9, -2.1}, {0.9052631, -2.196518}}},
		{"decoupled-decay", true, [2][2]float32{{0.89, -2.08}, {0.8863631, -2.155718}}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			o, err := NewAdamW(Config{LR: 0.1, Beta1: 0.9, Beta2: 0.999, Eps: 1e-8, WeightDecay: 0.1},
				[]Param{{Name: "w", Size: 2, Decay: tc.decay}})
			if err != nil {
				t.Fatal(err)
			}
			w := []float32{1, -2}
			for s, g := range [][]float32{{0.5, 0.1}, {-0.5, 0.2}} {
				st, err := o.Step([][]float32{w}, [][]float32{g})
				if err != nil {
					t.Fatal(err)
				}
				if st.Step != int64(s+1) || st.Scale != 1 {
					t.Fatalf("stats %+v", st)
				}
				for j := range w {
					if !near(w[j], tc.want[s][j]) {
						t.Fatalf("step %d: w = %v, want %v", s+1, w, tc.want[s])
					}
				}
			}
		})
	}
}

// TestClipGlobalNorm: gradients (3, 4) and (12) have global norm 13; with
// ClipNorm 1.3 they are scaled by 1.3/13 ~ 0.1, so the first moment is
// 0.1 * 0.1 * g.
func TestClipGlobalNorm(t *testing.T) {
	o, err := NewAdamW(Config{LR: 0.01, ClipNorm: 1.3}, []Param{{Name: "a", Size: 2}, {Name: "b", Size: 1}})
	if err != nil {
		t.Fatal(err)
	}
	st, err := o.Step([][]float32{{0, 0}, {0}}, [][]float32{{3, 4}, {12}})
	if err != nil {
		t.Fatal(err)
	}
	if math.Abs(st.GradNorm-13) > 1e-9 || math.Abs(st.Scale-1.3/(13+1e-6)) > 1e-12 {
		t.Fatalf("stats %+v", st)
	}
	for i, want := range []float32{0.03, 0.04} {
		if !near(o.m[0][i], want) {
			t.Fatalf("m = %v, want 0.03 0.04", o.m[0])
		}
	}
	if !near(o.m[1][0], 0.12) {
		t.Fatalf("m = %v, want 0.12", o.m[1])
	}
}

func TestStepErrors(t *testing.T) {
	o, err := NewAdamW(DefaultConfig(), []Param{{Name: "a", Size: 2}})
	if err != nil {
		t.Fatal(err)
	}
	w := []float32{1, 2}
	cases := []struct {
		name    string
		weights [][]float32
		grads   [][]float32
		want    error
	}{
		{"wrong-count", [][]float32{w, w}, [][]float32{w}, ErrShape},
		{"wrong-size", [][]float32{{1}}, [][]float32{{1}}, ErrShape},
		{"nan", [][]float32{w}, [][]float32{{float32(math.NaN()), 0}}, ErrNonFinite},
		{"inf", [][]float32{w}, [][]float32{{float32(math.Inf(1)), 0}}, ErrNonFinite},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			if _, err := o.Step(tc.weights, tc.grads); !errors.Is(err, tc.want) {
				t.Fatalf("got %v, want %v", err, tc.want)
			}
			if w[0] != 1 || w[1] != 2 || o.StepCount() != 0 {
				t.Fatalf("failed step changed state: w %v, step %d", w, o.StepCount())
			}
		})
	}
	for _, cfg := range []Config{{LR: 0}, {LR: 1, Beta1: 1, Beta2: 0.9}, {LR: 1, WeightDecay: -1}} {
		if _, err := NewAdamW(cfg, nil); !errors.Is(err, ErrConfig) {
			t.Fatalf("config %+v: got %v, want ErrConfig", cfg, err)
		}
	}
	if _, err := NewAdamW(DefaultConfig(), []Param{{Name: "a"}, {Name: "a"}}); !errors.Is(err, ErrConfig) {
		t.Fatalf("duplicate names: got %v", err)
	}
}

// TestResumeExact: saving after 3 steps and restoring into a fresh
// optimizer gives bit-identical weights after 2 more steps.
func TestResumeExact(t *testing.T) {
	params := []Param{{Name: "w", Size: 3, Decay: true}, {Name: "b", Size: 2}}
	grad := func(s int) [][]float32 {
		return [][]float32{{float32(s) * 0.1, -0.3, 0.7}, {0.2, float32(s) * -0.05}}
	}
	a, _ := NewAdamW(DefaultConfig(), params)
	wa := [][]float32{{1, 2, 3}, {0, 0}}
	for s := range 3 {
		if _, err := a.Step(wa, grad(s)); err != nil {
			t.Fatal(err)
		}
	}
	state, err := a.MarshalBinary()
	if err != nil {
		t.Fatal(err)
	}
	b, _ := NewAdamW(DefaultConfig(), params)
	if err := b.UnmarshalBinary(state); err != nil {
		t.Fatal(err)
	}
	wb := [][]float32{append([]float32(nil), wa[0]...), append([]float32(nil), wa[1]...)}
	for s := 3; s < 5; s++ {
		if _, err := a.Step(wa, grad(s)); err != nil {
			t.Fatal(err)
		}
		if _, err := b.Step(wb, grad(s)); err != nil {
			t.Fatal(err)
		}
	}
	for i := range wa {
		for j := range wa[i] {
			if math.Float32bits(wa[i][j]) != math.Float32bits(wb[i][j]) {
				t.Fatalf("resumed weights differ: %v vs %v", wa, wb)
			}
		}
	}
	again, _ := b.MarshalBinary()
	a2, _ := a.MarshalBinary()
	if !bytes.Equal(again, a2) {
		t.Fatal("states differ after identical steps")
	}
}

func TestUnmarshalRejects(t *testing.T) {
	o, _ := NewAdamW(DefaultConfig(), []Param{{Name: "w", Size: 2}})
	good, _ := o.MarshalBinary()
	other, _ := NewAdamW(DefaultConfig(), []Param{{Name: "x", Size: 2}})
	otherState, _ := other.MarshalBinary()
	cases := map[string][]byte{
		"empty":      nil,
		"bad-magic":  append([]byte("XXXX"), good[4:]...),
		"truncated":  good[:len(good)-1],
		"trailing":   append(append([]byte(nil), good...), 0),
		"other-name": otherState,
	}
	for name, b := range cases {
		t.Run(name, func(t *testing.T) {
			if err := o.UnmarshalBinary(b); !errors.Is(err, ErrState) {
				t.Fatalf("got %v, want ErrState", err)
			}
		})
	}
}

func FuzzUnmarshalState(f *testing.F) {
	o, _ := NewAdamW(DefaultConfig(), []Param{{Name: "w", Size: 2}, {Name: "b", Size: 1}})
	_, _ = o.Step([][]float32{{1, 2}, {3}}, [][]float32{{0.1, 0.2}, {0.3}})
	good, _ := o.MarshalBinary()
	f.Add(good)
	f.Add([]byte("WSAW\x01"))
	f.Fuzz(func(t *testing.T, b []byte) {
		p, _ := NewAdamW(DefaultConfig(), []Param{{Name: "w", Size: 2}, {Name: "b", Size: 1}})
		if err := p.UnmarshalBinary(b); err != nil {
			if !errors.Is(err, ErrState) {
				t.Fatalf("unexpected error kind %v", err)
			}
			return
		}
		out, _ := p.MarshalBinary()
		if !bytes.Equal(out, b) {
			t.Fatal("accepted state does not round-trip")
		}
	})
}

// BenchmarkAdamWStep updates 1M weights in 4 buffers per iteration.
func BenchmarkAdamWStep(b *testing.B) {
	const n = 1 << 18
	params := make([]Param, 4)
	w, g := make([][]float32, 4), make([][]float32, 4)
	for i := range params {
		params[i] = Param{Name: string(rune('a' + i)), Size: n, Decay: i%2 == 0}
		w[i], g[i] = make([]float32, n), make([]float32, n)
		for j := range g[i] {
			g[i][j] = float32(j%7) * 0.01
		}
	}
	o, err := NewAdamW(DefaultConfig(), params)
	if err != nil {
		b.Fatal(err)
	}
	b.SetBytes(4 * n * 4 * 4)
	for b.Loop() {
		if _, err := o.Step(w, g); err != nil {
			b.Fatal(err)
		}
	}
}
