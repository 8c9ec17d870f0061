// Package arith is wsgrpo's built-in arithmetic task family: integer
// expressions over + - * and parentheses with operands 0..99, such as
// "(17+25)*3-8", whose answer is the integer value (negative allowed).
//
// A Task, built from a Config, generates problems deterministically from a
// seed (Generator), yields them as task items (Items, so a Task is a
// tasks.Source), and writes worked traces for supervised pretraining
// (Tracer, Examples). Train and test splits are disjoint by construction:
// tasks.SplitOf decides an expression's split from a hash of its canonical
// text, and a generator only yields expressions of its own split.
//
// The minimal trace solves one operation per line in evaluation order, with
// the values already reduced, and ends with the answer line:
//
//	(41*2)+23  ->  41*2=82
//	               82+23=105
//	               A:105
//
// A share of traces overthink (re-check lines, repeated steps, verify passes,
// the answer written early and again at the end) so that a policy pretrained
// on them has the redundant continuation WS-GRPO is meant to remove; a small
// share has one arithmetic slip carried to a wrong answer. The last "A:"
// line always holds the trace's answer. Every character is in the
// character tokenizer's DefaultAlphabet. Config.ReverseResults writes step
// results digit-reversed, a form a small policy learns much faster.
//
// Parse and Eval read expression text with the usual precedence and refuse
// anything else with an error matching ErrSyntax.
package arith
