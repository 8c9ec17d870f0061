package arith

import (
	"math/rand/v2"
	"strconv"

	"github.com/wsgrpo/wsgrpo/tasks"
)

// PCG stream constants, so that problems, traces and the two splits draw
// from unrelated random streams even under the same seed.
const (
	streamTrain uint64 = 0x617269746874726e // "arithtrn"
	streamTest  uint64 = 0x6172697468747374 // "arithtst"
	streamTrace uint64 = 0x6172697468747263 // "arithtrc"
)

// Problem is one generated expression with its value.
type Problem struct {
	// Expr is the expression tree as Parse reads Text; its evaluation
	// order is the order of the trace's step lines.
	Expr *Expr
	// Text is the canonical text (Expr.String), the prompt.
	Text string
	// Answer is the value of the expression.
	Answer int64
	// Split is the split Text belongs to.
	Split tasks.Split
}

// Ops returns the number of operators of the problem.
func (p Problem) Ops() int { return p.Expr.Ops() }

// Generator yields the problems of one split, deterministically from a seed.
// It is not safe for concurrent use.
type Generator struct {
	cfg   Config
	split tasks.Split
	rng   *rand.Rand
}

// Next returns the next problem of the generator's split. It draws random
// expressions and keeps the first whose canonical text tasks.SplitOf
// assigns to the split (about 1/TestShare draws for the test split).
func (g *Generator) Next() Problem {
	for {
		ops := g.cfg.MinOps + g.rng.IntN(g.cfg.MaxOps-g.cfg.MinOps+1)
		text := g.tree(ops).String()
		if tasks.SplitOf(text, g.cfg.TestShare) != g.split {
			continue
		}
		// Parse the canonical text back, so the tree is the one any reader
		// of the prompt gets ("1+(2-3)" is written, and solved, as "1+2-3").
		// Neither step can fail: the text is well formed and Config.Validate
		// bounds every value well inside int64.
		e, err := Parse(text)
		if err != nil {
			panic("arith: generated text does not parse: " + err.Error())
		}
		v, err := e.Eval()
		if err != nil {
			panic("arith: generated expression overflows: " + err.Error())
		}
		return Problem{Expr: e, Text: text, Answer: v, Split: g.split}
	}
}

// tree returns a random expression with ops operators: the operators left
// of the root are drawn uniformly from 0..ops-1, each operator uniformly
// from + - *, each operand uniformly from 0..MaxOperand.
func (g *Generator) tree(ops int) *Expr {
	if ops == 0 {
		return &Expr{Value: g.rng.Int64N(g.cfg.MaxOperand + 1)}
	}
	left := g.rng.IntN(ops)
	op := [...]Op{Add, Sub, Mul}[g.rng.IntN(3)]
	return &Expr{Op: op, Left: g.tree(left), Right: g.tree(ops - 1 - left)}
}

// formatAnswer writes an answer in normal digit order.
func formatAnswer(v int64) string { return strconv.FormatInt(v, 10) }
