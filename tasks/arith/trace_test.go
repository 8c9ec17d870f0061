package arith

import (
	"math"
	"strings"
	"testing"

	"github.com/wsgrpo/wsgrpo/model/tokenizer"
	"github.com/wsgrpo/wsgrpo/tasks"
)

func TestMinimalTrace(t *testing.T) {
	tests := []struct {
		in       string
		reversed bool
		want     string
	}{
		{"(41*2)+23", false, "41*2=82\n82+23=105\nA:105"},
		{"(41*2)+23", true, "41*2=28\n82+23=501\nA:105"},
		{"(17+25)*3-8", false, "17+25=42\n42*3=126\n126-8=118\nA:118"},
		{"5-17*3", false, "17*3=51\n5-51=-46\nA:-46"},
		{"5-17*3", true, "17*3=15\n5-51=-64\nA:-46"},
		{"2*3-(4-5)*6", false, "2*3=6\n4-5=-1\n-1*6=-6\n6--6=12\nA:12"},
		{"60*2", true, "60*2=021\nA:120"},
	}
	for _, tc := range tests {
		t.Run(tc.in, func(t *testing.T) {
			e, err := Parse(tc.in)
			if err != nil {
				t.Fatalf("Parse: %v", err)
			}
			if got := MinimalTrace(e, tc.reversed); got != tc.want {
				t.Fatalf("MinimalTrace(%q, %v) = %q, want %q", tc.in, tc.reversed, got, tc.want)
			}
		})
	}
}

// traceStats counts a run of examples under one config.
type traceStats struct {
	n, overthink, slipped int
	chars, minimal        int
	otChars, otMinimal    int
}

// runTraces writes n traces under cfg, checks every one against the
// evaluator, and returns the counts.
func runTraces(t *testing.T, cfg Config, seed uint64, n int) traceStats {
	t.Helper()
	task := newTask(t, cfg)
	alphabet := tokenizer.DefaultAlphabet
	var s traceStats
	for ex := range task.Examples(tasks.Train, seed) {
		tr := ex.Trace
		if i := strings.IndexFunc(tr.Text, func(r rune) bool { return !strings.ContainsRune(alphabet, r) }); i >= 0 {
			t.Fatalf("trace %q has %q, outside the tokenizer's alphabet", tr.Text, tr.Text[i])
		}
		if i := strings.IndexFunc(ex.Text, func(r rune) bool { return !strings.ContainsRune(alphabet, r) }); i >= 0 {
			t.Fatalf("prompt %q has %q, outside the tokenizer's alphabet", ex.Text, ex.Text[i])
		}
		c := checkTrace(t, tr.Text, cfg.ReverseResults)
		if c.answer != tr.Answer {
			t.Fatalf("trace %q: last answer line %d, Trace.Answer %d", tr.Text, c.answer, tr.Answer)
		}
		if want := len(task.MinimalTrace(ex.Problem)); tr.MinimalLen != want {
			t.Fatalf("MinimalLen %d, minimal trace has %d characters", tr.MinimalLen, want)
		}
		if tr.Slipped {
			if c.answer == ex.Answer || !c.wrongStep {
				t.Fatalf("slipped trace of %q = %d: answer %d, a wrong step: %v", ex.Text, ex.Answer, c.answer, c.wrongStep)
			}
			s.slipped++
		} else {
			if c.answer != ex.Answer || c.wrongStep {
				t.Fatalf("trace of %q = %d: answer %d, a wrong step: %v\n%s", ex.Text, ex.Answer, c.answer, c.wrongStep, tr.Text)
			}
			if !tr.Overthinks && tr.Text != task.MinimalTrace(ex.Problem) {
				t.Fatalf("trace of %q neither overthinks nor is minimal:\n%s", ex.Text, tr.Text)
			}
		}
		// Overthinking adds lines: check, verify and answer lines, repeated
		// steps.
		if lines := strings.Count(tr.Text, "\n") + 1; tr.Overthinks != (lines > ex.Ops()+1) {
			t.Fatalf("trace of %q: Overthinks %v with %d lines (%d extra):\n%s", ex.Text, tr.Overthinks, lines, c.extra, tr.Text)
		}
		if tr.Overthinks {
			s.overthink++
			s.otChars += len(tr.Text)
			s.otMinimal += tr.MinimalLen
		}
		s.chars += len(tr.Text)
		s.minimal += tr.MinimalLen
		if s.n++; s.n == n {
			break
		}
	}
	return s
}

func TestTraceShares(t *testing.T) {
	tests := []struct {
		name            string
		overthink, slip float64
		reversed        bool
	}{
		{"default", 0.5, 0.05, false},
		{"reversed", 0.5, 0.05, true},
		{"none", 0, 0, false},
		{"all overthink", 1, 0, false},
		{"all slip", 0.3, 1, true},
		{"heavy", 0.8, 0.2, false},
	}
	const n = 4000
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			cfg := DefaultConfig()
			cfg.Overthink.Share, cfg.SlipShare, cfg.ReverseResults = tc.overthink, tc.slip, tc.reversed
			s := runTraces(t, cfg, 11, n)
			// Four standard deviations of a share over n draws.
			within := func(what string, got int, want float64) {
				tol := 4*math.Sqrt(want*(1-want)/n) + 1e-9
				if share := float64(got) / n; math.Abs(share-want) > tol {
					t.Errorf("%s share %.4f, want %.2f±%.4f", what, share, want, tol)
				}
			}
			within("overthinking", s.overthink, tc.overthink)
			within("slip", s.slipped, tc.slip)
		})
	}
}

func TestTraceLength(t *testing.T) {
	s := runTraces(t, DefaultConfig(), 5, 4000)
	ratio := float64(s.chars) / float64(s.minimal)
	otRatio := float64(s.otChars) / float64(s.otMinimal)
	t.Logf("default config, %d traces: mean %.1f characters, minimal %.1f: ratio %.2f (overthinking traces alone: %.2f, %.1f%% of traces)",
		s.n, float64(s.chars)/float64(s.n), float64(s.minimal)/float64(s.n), ratio, otRatio, 100*float64(s.overthink)/float64(s.n))
	if ratio < 2 {
		t.Fatalf("mean trace length is %.2fx minimal, want at least 2x at the default settings", ratio)
	}
}

func TestTracerDeterministic(t *testing.T) {
	task := newTask(t, DefaultConfig())
	ps := problems(t, task, tasks.Train, 1, 300)
	a, b := task.Tracer(9), task.Tracer(9)
	for _, p := range ps {
		if x, y := a.Trace(p), b.Trace(p); x != y {
			t.Fatalf("same seed, different traces of %q:\n%+v\n%+v", p.Text, x, y)
		}
	}
}
