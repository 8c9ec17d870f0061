package report

import (
	"fmt"
	"image/color"
	"io"
	"math"
	"path/filepath"
	"strconv"

	"gonum.org/v1/plot"
	"gonum.org/v1/plot/plotter"
	"gonum.org/v1/plot/plotutil"
	"gonum.org/v1/plot/vg"
)

// Plot file names Write produces in its directory.
const (
	// PlotLength: completion tokens over training.
	PlotLength = "length.png"
	// PlotSteps: reasoning steps over training.
	PlotSteps = "steps.png"
	// PlotAccuracy: accuracy (and, for one run, truncated share) over training.
	PlotAccuracy = "accuracy.png"
	// PlotLengthHist: length histograms of the first and last step of the
	// report's run.
	PlotLengthHist = "length_hist.png"
	// PlotLengthHistOther: the same for the compared run.
	PlotLengthHistOther = "length_hist_other.png"
	// PlotLengthAccuracy: accuracy against length bucket.
	PlotLengthAccuracy = "length_accuracy.png"
)

// Plot is one PNG file written by WritePlots.
type Plot struct {
	Title string `json:"title"`
	File  string `json:"file"` // name inside the output directory
}

// plotWidth and plotHeight size every PNG (768x480 pixels at 96 dpi).
const (
	plotWidth  = 8 * vg.Inch
	plotHeight = 5 * vg.Inch
)

// WritePlots renders the plots of d into dir as PNG files, each written
// under a temporary name and renamed when complete.
func (d *Document) WritePlots(dir string) ([]Plot, error) {
	runs := d.reports()
	type job struct {
		file, title string
		make        func() (*plot.Plot, error)
	}
	jobs := []job{
		{PlotLength, "Completion length over training", func() (*plot.Plot, error) { return lengthPlot(runs, tokenSeries, "completion tokens") }},
		{PlotSteps, "Reasoning steps over training", func() (*plot.Plot, error) { return lengthPlot(runs, stepSeries, "reasoning steps") }},
		{PlotAccuracy, "Accuracy over training", func() (*plot.Plot, error) { return accuracyPlot(runs) }},
		{PlotLengthHist, "Length distribution, first vs last step: " + runs[0].Run, func() (*plot.Plot, error) { return histPlot(runs[0]) }},
	}
	if len(runs) > 1 {
		jobs = append(jobs, job{PlotLengthHistOther, "Length distribution, first vs last step: " + runs[1].Run, func() (*plot.Plot, error) { return histPlot(runs[1]) }})
	}
	jobs = append(jobs, job{PlotLengthAccuracy, "Accuracy against completion length", func() (*plot.Plot, error) { return lengthAccuracyPlot(runs) }})
	out := make([]Plot, 0, len(jobs))
	for _, j := range jobs {
		p, err := j.make()
		if err != nil {
			return out, fmt.Errorf("%w: %s: %w", ErrPlot, j.file, err)
		}
		p.Title.Text = j.title
		png, err := p.WriterTo(plotWidth, plotHeight, "png")
		if err != nil {
			return out, fmt.Errorf("%w: %s: %w", ErrPlot, j.file, err)
		}
		if err := writeFileAtomic(filepath.Join(dir, j.file), func(w io.Writer) error {
			_, err := png.WriteTo(w)
			return err
		}); err != nil {
			return out, fmt.Errorf("%w: %s: %w", ErrPlot, j.file, err)
		}
		out = append(out, Plot{Title: j.title, File: j.file})
	}
	return out, nil
}

// series picks one statistic per step for a line.
type series struct {
	label string
	y     func(LengthStats) float64
	part  func(Lengths) LengthStats
}

var (
	all       = func(l Lengths) LengthStats { return l.All }
	correct   = func(l Lengths) LengthStats { return l.Correct }
	incorrect = func(l Lengths) LengthStats { return l.Incorrect }

	tokenSeries = []series{
		{"mean", func(s LengthStats) float64 { return s.MeanTokens }, all},
		{"median", func(s LengthStats) float64 { return s.MedianTokens }, all},
		{"p90", func(s LengthStats) float64 { return s.P90Tokens }, all},
		{"mean, correct", func(s LengthStats) float64 { return s.MeanTokens }, correct},
		{"mean, incorrect", func(s LengthStats) float64 { return s.MeanTokens }, incorrect},
	}
	stepSeries = []series{
		{"mean", func(s LengthStats) float64 { return s.MeanSteps }, all},
		{"median", func(s LengthStats) float64 { return s.MedianSteps }, all},
		{"p90", func(s LengthStats) float64 { return s.P90Steps }, all},
		{"mean, correct", func(s LengthStats) float64 { return s.MeanSteps }, correct},
		{"mean, incorrect", func(s LengthStats) float64 { return s.MeanSteps }, incorrect},
	}
)

// lengthPlot draws, over training, every series for one run, or the mean
// and the p90 of each run when comparing.
func lengthPlot(runs []*Report, ss []series, yLabel string) (*plot.Plot, error) {
	p := newPlot(trainingAxis(runs), yLabel)
	if len(runs) > 1 {
		ss = []series{ss[0], ss[2]}
	}
	n := 0
	for _, r := range runs {
		for _, s := range ss {
			xys := make(plotter.XYs, 0, len(r.Steps))
			for _, st := range r.Steps {
				if part := s.part(st.Lengths); part.Trajectories > 0 {
					xys = append(xys, plotter.XY{X: float64(st.Step), Y: s.y(part)})
				}
			}
			label := s.label
			if len(runs) > 1 {
				label = r.Run + ": " + s.label
			}
			if err := addLine(p, label, xys, n); err != nil {
				return nil, err
			}
			n++
		}
	}
	headroom(p)
	return p, nil
}

// accuracyPlot draws accuracy over training for each run, and the
// truncated share for a single run.
func accuracyPlot(runs []*Report) (*plot.Plot, error) {
	p := newPlot(trainingAxis(runs), "share of trajectories")
	n := 0
	for _, r := range runs {
		acc := make(plotter.XYs, len(r.Steps))
		trunc := make(plotter.XYs, len(r.Steps))
		for i, st := range r.Steps {
			acc[i] = plotter.XY{X: float64(st.Step), Y: st.Accuracy}
			trunc[i] = plotter.XY{X: float64(st.Step), Y: st.TruncatedShare}
		}
		label := "accuracy"
		if len(runs) > 1 {
			label = r.Run + ": accuracy"
		}
		if err := addLine(p, label, acc, n); err != nil {
			return nil, err
		}
		n++
		if len(runs) == 1 {
			if err := addLine(p, "truncated (finish_reason = length)", trunc, n); err != nil {
				return nil, err
			}
			n++
		}
	}
	p.Y.Max = 1
	headroom(p)
	return p, nil
}

// histPlot overlays the length histograms of the first and last step of r
// as shares of their step's trajectories.
func histPlot(r *Report) (*plot.Plot, error) {
	p := newPlot("completion tokens", "% of the step's trajectories")
	fills := []color.Color{
		color.NRGBA{R: 31, G: 119, B: 180, A: 140},
		color.NRGBA{R: 255, G: 127, B: 14, A: 140},
	}
	for i, h := range []StepHistogram{r.FirstStepLengths, r.LastStepLengths} {
		bins := make([]plotter.HistogramBin, len(h.Buckets))
		for j, b := range h.Buckets {
			bins[j] = plotter.HistogramBin{Min: float64(b.MinTokens), Max: float64(b.MaxTokens), Weight: 100 * b.Share}
		}
		ph := &plotter.Histogram{Bins: bins, Width: float64(h.Width), FillColor: fills[i], LineStyle: plotter.DefaultLineStyle}
		edge := fills[i].(color.NRGBA)
		edge.A = 255
		ph.Color = edge
		p.Add(ph)
		which := "first"
		if i == 1 {
			which = "last"
		}
		p.Legend.Add(fmt.Sprintf("%s step (%d), n=%d", which, h.Step, h.Trajectories), ph)
	}
	headroom(p)
	return p, nil
}

// lengthAccuracyPlot draws accuracy against length bucket for each run.
func lengthAccuracyPlot(runs []*Report) (*plot.Plot, error) {
	p := newPlot("completion tokens (bucket middle)", "accuracy")
	for i, r := range runs {
		xys := make(plotter.XYs, 0, len(r.LengthAccuracy.Buckets))
		for _, b := range r.LengthAccuracy.Buckets {
			if b.Trajectories > 0 {
				xys = append(xys, plotter.XY{X: float64(b.MinTokens+b.MaxTokens) / 2, Y: b.Accuracy})
			}
		}
		if err := addLinePoints(p, r.Run, xys, i); err != nil {
			return nil, err
		}
	}
	p.Y.Max = 1
	headroom(p)
	return p, nil
}

func newPlot(x, y string) *plot.Plot {
	p := plot.New()
	p.X.Label.Text = x
	p.Y.Label.Text = y
	p.Legend.Top = true
	p.X.Tick.Marker = numberTicks{}
	p.Y.Tick.Marker = numberTicks{}
	p.Add(plotter.NewGrid())
	return p
}

// headroom starts the y axis at 0 and leaves the top fifth of the plot to
// the legend.
func headroom(p *plot.Plot) {
	p.Y.Min = 0
	if !(p.Y.Max > 0) || math.IsInf(p.Y.Max, 1) {
		p.Y.Max = 1
	}
	p.Y.Max *= 1.25
}

// numberTicks labels ticks in their shortest form (250, not 250.00).
type numberTicks struct{}

// Ticks returns plot.DefaultTicks with shorter labels.
func (numberTicks) Ticks(lo, hi float64) []plot.Tick {
	ticks := plot.DefaultTicks{}.Ticks(lo, hi)
	for i := range ticks {
		if ticks[i].Label != "" {
			ticks[i].Label = strconv.FormatFloat(ticks[i].Value, 'g', 6, 64)
		}
	}
	return ticks
}

// maxLinePoints bounds the points of a line over training: the PNG is 768
// pixels wide, and the rasterizer slows down sharply with the segments of
// one path (a run of a million trajectories has 15,625 steps).
const maxLinePoints = 500

// downsample averages runs of consecutive points so that at most limit
// remain; it returns xys itself when it is short enough.
func downsample(xys plotter.XYs, limit int) plotter.XYs {
	if len(xys) <= limit {
		return xys
	}
	k := (len(xys) + limit - 1) / limit
	out := make(plotter.XYs, 0, limit)
	for i := 0; i < len(xys); i += k {
		chunk := xys[i:min(i+k, len(xys))]
		var m plotter.XY
		for _, p := range chunk {
			m.X += p.X
			m.Y += p.Y
		}
		m.X /= float64(len(chunk))
		m.Y /= float64(len(chunk))
		out = append(out, m)
	}
	return out
}

// stepsPerPoint is how many training steps one point of a line over the
// steps of runs stands for.
func stepsPerPoint(runs []*Report) int {
	most := 0
	for _, r := range runs {
		most = max(most, len(r.Steps))
	}
	return max((most+maxLinePoints-1)/maxLinePoints, 1)
}

// trainingAxis labels the x axis of a plot over training.
func trainingAxis(runs []*Report) string {
	if k := stepsPerPoint(runs); k > 1 {
		return fmt.Sprintf("training step (each point: mean over up to %d steps)", k)
	}
	return "training step"
}

func addLine(p *plot.Plot, label string, xys plotter.XYs, i int) error {
	if len(xys) == 0 {
		return nil
	}
	l, err := plotter.NewLine(downsample(xys, maxLinePoints))
	if err != nil {
		return err
	}
	l.Color = plotutil.Color(i)
	l.Dashes = plotutil.Dashes(i / len(plotutil.DefaultColors))
	l.Width = vg.Points(1.5)
	p.Add(l)
	p.Legend.Add(label, l)
	return nil
}

func addLinePoints(p *plot.Plot, label string, xys plotter.XYs, i int) error {
	if len(xys) == 0 {
		return nil
	}
	l, pts, err := plotter.NewLinePoints(xys)
	if err != nil {
		return err
	}
	l.Color = plotutil.Color(i)
	l.Width = vg.Points(1.5)
	pts.Color = plotutil.Color(i)
	pts.Shape = plotutil.Shape(i)
	p.Add(l, pts)
	p.Legend.Add(label, l, pts)
	return nil
}
