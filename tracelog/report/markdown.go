package report

import (
	"bytes"
	"fmt"
	"io"
	"strconv"
	"strings"
)

// maxStepRows bounds the per-step table of the markdown summary; the JSON
// has every step.
const maxStepRows = 21

// WriteMarkdown writes the markdown summary of d to w. Plots are
// referenced when d.Plots lists them.
func (d *Document) WriteMarkdown(w io.Writer) error {
	var b bytes.Buffer
	d.markdown(&b)
	_, err := w.Write(b.Bytes())
	return err
}

func (d *Document) markdown(b *bytes.Buffer) {
	r := d.Report
	s := r.Summary
	fmt.Fprintf(b, "# Reasoning-length report: %s\n\n", cell(r.Run))
	fmt.Fprintf(b, "%d trajectories over %d training steps (steps %d to %d).\n\n", s.Trajectories, s.TrainingSteps, s.FirstStep, s.LastStep)
	fmt.Fprintf(b, "- Accuracy: %s (%d correct)\n", pct(s.Accuracy), s.Correct)
	fmt.Fprintf(b, "- Truncated (finish_reason = 'length'): %s (%d)\n", pct(s.TruncatedShare), s.Truncated)
	fmt.Fprintf(b, "- Completion tokens per correct answer: %s\n", perCorrect(s.Totals))
	fmt.Fprintf(b, "- Longest completion: %d tokens\n\n", s.MaxTokens)
	b.WriteString("## Length over the whole run\n\n")
	lengthsTable(b, s.Lengths)
	d.plot(b, PlotLength, PlotSteps, PlotAccuracy)

	b.WriteString("## Over training\n\n")
	if len(r.Steps) > maxStepRows {
		fmt.Fprintf(b, "%d of %d steps, evenly spaced (every step is in %s).\n\n", maxStepRows, len(r.Steps), JSONFile)
	}
	b.WriteString("| step | n | accuracy | truncated | mean tokens | median | p90 | mean tokens, correct | mean tokens, incorrect | mean steps | tokens per correct |\n")
	b.WriteString("|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|\n")
	for _, i := range sampleIndexes(len(r.Steps), maxStepRows) {
		st := r.Steps[i]
		l := st.Lengths
		fmt.Fprintf(b, "| %d | %d | %s | %s | %s | %s | %s | %s | %s | %s | %s |\n", st.Step, st.Trajectories,
			pct(st.Accuracy), pct(st.TruncatedShare), num(l.All.MeanTokens), num(l.All.MedianTokens), num(l.All.P90Tokens),
			orDash(l.Correct, l.Correct.MeanTokens), orDash(l.Incorrect, l.Incorrect.MeanTokens), num(l.All.MeanSteps), perCorrect(st.Totals))
	}
	b.WriteString("\n")

	b.WriteString("## Length distribution: first vs last step\n\n")
	d.plot(b, PlotLengthHist, PlotLengthHistOther)
	histTable(b, r)

	b.WriteString("## Accuracy against length\n\n")
	d.plot(b, PlotLengthAccuracy)
	bucketTable(b, r.LengthAccuracy)

	if c := d.Comparison; c != nil {
		compareMarkdown(b, c)
	}
}

// plot references the listed plot files that d rendered.
func (d *Document) plot(b *bytes.Buffer, files ...string) {
	for _, f := range files {
		for _, p := range d.Plots {
			if p.File == f {
				fmt.Fprintf(b, "![%s](%s)\n\n", p.Title, p.File)
			}
		}
	}
}

func lengthsTable(b *bytes.Buffer, l Lengths) {
	b.WriteString("| | all | correct | incorrect |\n|---|---:|---:|---:|\n")
	row := func(name string, f func(LengthStats) string) {
		fmt.Fprintf(b, "| %s | %s | %s | %s |\n", name, f(l.All), f(l.Correct), f(l.Incorrect))
	}
	row("trajectories", func(s LengthStats) string { return strconv.FormatInt(s.Trajectories, 10) })
	row("mean tokens", func(s LengthStats) string { return orDash(s, s.MeanTokens) })
	row("median tokens", func(s LengthStats) string { return orDash(s, s.MedianTokens) })
	row("p90 tokens", func(s LengthStats) string { return orDash(s, s.P90Tokens) })
	row("mean steps", func(s LengthStats) string { return orDash(s, s.MeanSteps) })
	row("median steps", func(s LengthStats) string { return orDash(s, s.MedianSteps) })
	row("p90 steps", func(s LengthStats) string { return orDash(s, s.P90Steps) })
	b.WriteString("\n")
}

func histTable(b *bytes.Buffer, r *Report) {
	f, l := r.FirstStepLengths, r.LastStepLengths
	fmt.Fprintf(b, "| tokens | step %d: share | step %d: share |\n|---|---:|---:|\n", f.Step, l.Step)
	for i := range f.Buckets {
		fmt.Fprintf(b, "| %d-%d | %s | %s |\n", f.Buckets[i].MinTokens, f.Buckets[i].MaxTokens-1, pct(f.Buckets[i].Share), pct(l.Buckets[i].Share))
	}
	b.WriteString("\n")
}

func bucketTable(b *bytes.Buffer, h Histogram) {
	b.WriteString("| tokens | trajectories | accuracy | truncated |\n|---|---:|---:|---:|\n")
	for _, k := range h.Buckets {
		fmt.Fprintf(b, "| %d-%d | %d | %s | %s |\n", k.MinTokens, k.MaxTokens-1, k.Trajectories, pct(k.Accuracy), pct(k.TruncatedShare))
	}
	b.WriteString("\n")
}

func compareMarkdown(b *bytes.Buffer, c *Comparison) {
	fmt.Fprintf(b, "## Comparison: %s (base) vs %s\n\n", cell(c.Base.Run), cell(c.Other.Run))
	b.WriteString("| | " + cell(c.Base.Run) + " | " + cell(c.Other.Run) + " | change |\n|---|---:|---:|---:|\n")
	row := func(name, x, y, d string) { fmt.Fprintf(b, "| %s | %s | %s | %s |\n", name, x, y, d) }
	bt, ot := c.Base, c.Other
	row("trajectories", strconv.FormatInt(bt.Trajectories, 10), strconv.FormatInt(ot.Trajectories, 10), "")
	row("accuracy", pct(bt.Accuracy), pct(ot.Accuracy), signedPoints(c.AccuracyDelta))
	row("mean tokens", num(bt.MeanTokens), num(ot.MeanTokens), "length cut "+pct(c.RelativeLengthCut))
	row("mean steps", num(bt.MeanSteps), num(ot.MeanSteps), "steps cut "+pct(c.RelativeStepsCut))
	row("truncated", pct(bt.TruncatedShare), pct(ot.TruncatedShare), signedPoints(ot.TruncatedShare-bt.TruncatedShare))
	ratio := ""
	if c.TokensPerCorrectRatio > 0 {
		ratio = "ratio " + num2(c.TokensPerCorrectRatio)
	}
	row("tokens per correct answer", orNone(bt.TokensPerCorrect), orNone(ot.TokensPerCorrect), ratio)
	row(fmt.Sprintf("accuracy at the last step (%d / %d)", bt.FinalStep, ot.FinalStep), pct(bt.FinalAccuracy), pct(ot.FinalAccuracy), signedPoints(c.FinalAccuracyDelta))
	row("mean tokens at the last step", num(bt.FinalMeanTokens), num(ot.FinalMeanTokens), "length cut "+pct(c.RelativeFinalLengthCut))
	b.WriteString("\nLength cut is 1 - other/base (positive: the other run is shorter). Accuracy changes are in percentage points.\n")
}

// sampleIndexes picks at most k indexes of 0..n-1, evenly spaced, always
// the first and the last.
func sampleIndexes(n, k int) []int {
	if n <= k {
		out := make([]int, n)
		for i := range out {
			out[i] = i
		}
		return out
	}
	out := make([]int, k)
	for i := range out {
		out[i] = i * (n - 1) / (k - 1)
	}
	return out
}

func pct(x float64) string { return strconv.FormatFloat(100*x, 'f', 1, 64) + "%" }

func num(x float64) string { return strconv.FormatFloat(x, 'f', 1, 64) }

func num2(x float64) string { return strconv.FormatFloat(x, 'f', 2, 64) }

func signedPoints(x float64) string {
	s := strconv.FormatFloat(100*x, 'f', 1, 64)
	if !strings.HasPrefix(s, "-") {
		s = "+" + s
	}
	return s + " pp"
}

// perCorrect formats the tokens per correct answer of t, or "-" when no
// answer was correct.
func perCorrect(t Totals) string {
	if t.Correct == 0 {
		return "-"
	}
	return num(t.TokensPerCorrect)
}

// orNone formats x, or "-" for 0 (undefined).
func orNone(x float64) string {
	if x == 0 {
		return "-"
	}
	return num(x)
}

// cell makes s safe inside a markdown table cell or heading.
func cell(s string) string {
	return strings.NewReplacer("|", "\\|", "\n", " ", "\r", " ").Replace(s)
}

// orDash formats a statistic of s, or "-" when s is empty.
func orDash(s LengthStats, x float64) string {
	if s.Trajectories == 0 {
		return "-"
	}
	return num(x)
}
