package arith

import (
	"math/rand/v2"
	"strings"
)

// AnswerPrefix starts the answer line of a trace; a verifier takes the
// answer from the last line that starts with it.
const AnswerPrefix = "A:"

// Trace is a worked solution of a problem, for supervised pretraining.
type Trace struct {
	// Text is the trace: step lines, optional overthinking lines, and an
	// "A:" line last. It has no trailing newline.
	Text string
	// Answer is the value written on the last "A:" line; it differs from
	// the problem's answer exactly when Slipped is set.
	Answer int64
	// Overthinks is set when the trace has lines beyond the minimal trace.
	Overthinks bool
	// Slipped is set when one step line has a wrong result.
	Slipped bool
	// MinimalLen is the length, in characters, of the problem's minimal
	// correct trace (MinimalTrace), for comparing completion lengths.
	MinimalLen int
}

// MinimalTrace returns the shortest correct trace of e: one line per
// operator in evaluation order, then the answer line. For "(41*2)+23":
//
//	41*2=82
//	82+23=105
//	A:105
//
// With reversed set the step results are digit-reversed ("82+23=501") and
// the answer line is not.
func MinimalTrace(e *Expr, reversed bool) string {
	steps, v := slippedSteps(e, -1, 0)
	var b strings.Builder
	for _, s := range steps {
		b.WriteString(s.Line(reversed))
		b.WriteByte('\n')
	}
	b.WriteString(AnswerPrefix + formatAnswer(v))
	return b.String()
}

// Tracer writes traces of problems: minimal ones, overthinking ones and
// ones with a slip, in the shares its Config sets, deterministically from
// its seed and the sequence of problems it is given. It is not safe for
// concurrent use.
type Tracer struct {
	cfg Config
	rng *rand.Rand
}

// Trace writes one trace of p. With chance Overthink.Share the trace
// overthinks: after each step line it may add a re-check line
// ("check 82+23=105") or repeat the step; it may write the answer line early;
// then it writes one or more verify passes ("verify:" and every step line
// again) and the answer line last. With chance SlipShare one step's result
// is off by a small amount and the wrong value is carried through every
// later line (the re-checks and verify passes repeat the slip), so the final
// answer is wrong.
func (tr *Tracer) Trace(p Problem) Trace {
	reversed := tr.cfg.ReverseResults
	out := Trace{MinimalLen: len(MinimalTrace(p.Expr, reversed))}
	// Draw both decisions first, so that changing one share does not
	// reshuffle which traces get the other.
	overthink := tr.rng.Float64() < tr.cfg.Overthink.Share
	slip := tr.rng.Float64() < tr.cfg.SlipShare
	steps, answer := slippedSteps(p.Expr, -1, 0)
	if slip {
		steps, answer = tr.slip(p.Expr, answer)
		out.Slipped = true
	}
	out.Answer = answer
	lines := make([]string, len(steps))
	for i, s := range steps {
		lines[i] = s.Line(reversed)
	}
	answerLine := AnswerPrefix + formatAnswer(answer)
	var b strings.Builder
	for _, l := range lines {
		b.WriteString(l + "\n")
	}
	plain := b.String() + answerLine
	if !overthink {
		out.Text = plain
		return out
	}
	b.Reset()
	o := tr.cfg.Overthink
	for _, l := range lines {
		b.WriteString(l + "\n")
		if tr.rng.Float64() < o.CheckProb {
			b.WriteString("check " + l + "\n")
		}
		if tr.rng.Float64() < o.RepeatProb {
			b.WriteString(l + "\n")
		}
	}
	if tr.rng.Float64() < o.EarlyAnswerProb {
		b.WriteString(answerLine + "\n")
	}
	passes := o.MinVerify + tr.rng.IntN(o.MaxVerify-o.MinVerify+1)
	for range passes {
		b.WriteString("verify:\n")
		for _, l := range lines {
			b.WriteString(l + "\n")
		}
	}
	b.WriteString(answerLine)
	out.Text = b.String()
	out.Overthinks = out.Text != plain
	return out
}

// slipDeltas are the errors a slip adds to a step result.
var slipDeltas = [...]int64{-10, -2, -1, 1, 2, 10}

// slip returns the steps of e with one wrong result carried forward and the
// answer they reach, which differs from answer. A slip early on can vanish
// later (a wrong factor times zero), so it tries a few random slips and
// falls back to the last step, whose result is the answer itself.
func (tr *Tracer) slip(e *Expr, answer int64) ([]Step, int64) {
	n := e.Ops()
	for range 8 {
		k := tr.rng.IntN(n)
		d := slipDeltas[tr.rng.IntN(len(slipDeltas))]
		if steps, v := slippedSteps(e, k, d); v != answer {
			return steps, v
		}
	}
	return slippedSteps(e, n-1, slipDeltas[tr.rng.IntN(len(slipDeltas))])
}
