package report_test

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"image/png"
	"math"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/wsgrpo/wsgrpo/bench/logstore"
	"github.com/wsgrpo/wsgrpo/bench/reporting"
	"github.com/wsgrpo/wsgrpo/tracelog"
	"github.com/wsgrpo/wsgrpo/tracelog/chtest"
	"github.com/wsgrpo/wsgrpo/tracelog/report"
)

func ctx(tb testing.TB) context.Context {
	tb.Helper()
	c, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	tb.Cleanup(cancel)
	return c
}

// openStore opens a fresh store of backend b, migrated when migrate is set.
func openStore(tb testing.TB, b chtest.Backend, migrate bool) tracelog.Store {
	tb.Helper()
	cfg, _ := b.Open(tb)
	return open(tb, cfg, migrate)
}

// open opens the store cfg selects, closed in tb.Cleanup.
func open(tb testing.TB, cfg tracelog.Config, migrate bool) tracelog.Store {
	tb.Helper()
	s, err := tracelog.Open(ctx(tb), cfg)
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(func() { _ = s.Close() })
	if migrate {
		if err := s.Migrate(ctx(tb)); err != nil {
			tb.Fatal(err)
		}
	}
	return s
}

// testRuns are two runs with known content: run-a has a step where every
// answer is wrong (step 0), one where every answer is right (step 1) and a
// short last step; run-b has a different length limit.
func testRuns() (a, b []tracelog.Row) {
	a = reporting.SyntheticRows("run-a", 0, 650, 650, 64, 1)
	for i := range a {
		switch a[i].Step {
		case 0:
			a[i].Correct = false
		case 1:
			a[i].Correct = true
		}
	}
	b = reporting.SyntheticRows("run-b", 0, 384, 384, 48, 2)
	return a, b
}

// insert writes rows in batches and then one batch again, as a
// redelivery would.
func insert(tb testing.TB, s tracelog.Store, rows []tracelog.Row) {
	tb.Helper()
	if _, err := logstore.Insert(ctx(tb), s, rows, 100); err != nil {
		tb.Fatal(err)
	}
	if err := s.Insert(ctx(tb), rows[:min(100, len(rows))]); err != nil {
		tb.Fatal(err)
	}
}

func TestReport(t *testing.T) {
	a, b := testRuns()
	for _, backend := range chtest.Backends() {
		t.Run(backend.Name, func(t *testing.T) {
			s := openStore(t, backend, true)
			insert(t, s, a)
			insert(t, s, b)

			for _, opts := range []report.Options{{}, {HistogramBins: 7, AccuracyBins: 3}, {HistogramBins: 1000, AccuracyBins: 1}} {
				t.Run(fmt.Sprintf("bins=%d,%d", opts.HistogramBins, opts.AccuracyBins), func(t *testing.T) {
					hb, ab := opts.HistogramBins, opts.AccuracyBins
					if hb == 0 {
						hb, ab = 20, 10
					}
					for run, rows := range map[string][]tracelog.Row{"run-a": a, "run-b": b} {
						got, err := report.Build(ctx(t), s, run, opts)
						if err != nil {
							t.Fatal(err)
						}
						assertClose(t, run, expectReport(run, rows, hb, ab), got)
					}
				})
			}

			ra, err := report.Build(ctx(t), s, "run-a", report.Options{})
			if err != nil {
				t.Fatal(err)
			}
			rb, err := report.Build(ctx(t), s, "run-b", report.Options{})
			if err != nil {
				t.Fatal(err)
			}

			t.Run("empty splits", func(t *testing.T) {
				if st := ra.Steps[0]; st.Lengths.Correct.Trajectories != 0 || st.Lengths.Correct.MeanTokens != 0 || st.TokensPerCorrect != 0 || st.Accuracy != 0 {
					t.Errorf("step 0 (no correct answer): %+v", st)
				}
				if st := ra.Steps[1]; st.Lengths.Incorrect.Trajectories != 0 || st.Lengths.Incorrect.P90Tokens != 0 || st.Accuracy != 1 {
					t.Errorf("step 1 (all correct): %+v", st)
				}
			})

			t.Run("compare", func(t *testing.T) {
				c := report.Compare(ra, rb)
				assertClose(t, "comparison", report.Compare(expectReport("run-a", a, 20, 10), expectReport("run-b", b, 20, 10)), c)
				ma, mb := meanTokens(a), meanTokens(b)
				if want := 1 - mb/ma; math.Abs(c.RelativeLengthCut-want) > 1e-9 {
					t.Errorf("relative length cut %v, want %v", c.RelativeLengthCut, want)
				}
			})

			t.Run("runs", func(t *testing.T) {
				got, err := report.Runs(ctx(t), s)
				if err != nil {
					t.Fatal(err)
				}
				want := []report.RunInfo{runInfo("run-a", a), runInfo("run-b", b)}
				assertClose(t, "runs", want, got)
			})

			t.Run("no trajectories", func(t *testing.T) {
				_, err := report.Build(ctx(t), s, "nobody", report.Options{})
				if !errors.Is(err, report.ErrNoTrajectories) {
					t.Fatalf("err = %v, want ErrNoTrajectories", err)
				}
			})

			t.Run("injection-shaped run id", func(t *testing.T) {
				_, err := report.Build(ctx(t), s, "run-a' OR 1=1 --", report.Options{})
				if !errors.Is(err, report.ErrNoTrajectories) {
					t.Fatalf("err = %v, want ErrNoTrajectories", err)
				}
			})

			t.Run("write", func(t *testing.T) {
				testWrite(t, report.NewDocument(ra, nil), 5)
				testWrite(t, report.NewDocument(ra, rb), 6)
			})
		})
	}
}

func runInfo(run string, rows []tracelog.Row) report.RunInfo {
	ri := report.RunInfo{Run: run, Trajectories: int64(len(rows)), FirstStep: rows[0].Step, LastStep: rows[0].Step}
	steps := map[int64]bool{}
	for _, r := range rows {
		steps[r.Step] = true
		ri.FirstStep, ri.LastStep = min(ri.FirstStep, r.Step), max(ri.LastStep, r.Step)
	}
	ri.TrainingSteps = int64(len(steps))
	return ri
}

func meanTokens(rows []tracelog.Row) float64 {
	var s float64
	for _, r := range rows {
		s += float64(r.CompletionTokens)
	}
	return s / float64(len(rows))
}

// testWrite writes d and checks its files: valid, non-blank PNGs the
// markdown references, and JSON that reads back as d.
func testWrite(t testing.TB, d *report.Document, plots int) {
	t.Helper()
	dir := t.TempDir()
	f, err := d.Write(dir)
	if err != nil {
		t.Fatal(err)
	}
	if len(f.Plots) != plots {
		t.Fatalf("%d plots, want %d: %v", len(f.Plots), plots, f.Plots)
	}
	md, err := os.ReadFile(f.Markdown)
	if err != nil {
		t.Fatal(err)
	}
	for _, p := range f.Plots {
		checkPNG(t, p)
		if !bytes.Contains(md, []byte("]("+filepath.Base(p)+")")) {
			t.Errorf("markdown does not reference %s", filepath.Base(p))
		}
	}
	for _, want := range []string{"# Reasoning-length report: " + d.Report.Run, "tokens per correct answer", "## Accuracy against length"} {
		if !strings.Contains(strings.ToLower(string(md)), strings.ToLower(want)) {
			t.Errorf("markdown lacks %q", want)
		}
	}
	if d.Comparison != nil && !bytes.Contains(md, []byte("## Comparison: "+d.Report.Run+" (base) vs "+d.Other.Run)) {
		t.Error("markdown lacks the comparison")
	}
	js, err := os.ReadFile(f.JSON)
	if err != nil {
		t.Fatal(err)
	}
	var back report.Document
	if err := json.Unmarshal(js, &back); err != nil {
		t.Fatal(err)
	}
	assertClose(t, "json", d, &back)
}

// checkPNG decodes the PNG at path and checks that it is not blank.
func checkPNG(t testing.TB, path string) {
	t.Helper()
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	img, err := png.Decode(f)
	if err != nil {
		t.Fatalf("%s: %v", path, err)
	}
	b := img.Bounds()
	if b.Dx() < 300 || b.Dy() < 200 {
		t.Fatalf("%s: %v too small", path, b)
	}
	colors := map[[4]uint32]bool{}
	for y := b.Min.Y; y < b.Max.Y; y += 4 {
		for x := b.Min.X; x < b.Max.X; x += 4 {
			r, g, bb, a := img.At(x, y).RGBA()
			colors[[4]uint32{r, g, bb, a}] = true
		}
	}
	if len(colors) < 3 {
		t.Errorf("%s: only %d colours: blank plot", path, len(colors))
	}
}

func TestBuildErrors(t *testing.T) {
	for _, backend := range chtest.Backends() {
		t.Run(backend.Name, func(t *testing.T) {
			s := openStore(t, backend, false)
			if _, err := report.Build(ctx(t), s, "run-a", report.Options{HistogramBins: -1}); !errors.Is(err, report.ErrOptions) {
				t.Errorf("negative bins: err = %v, want ErrOptions", err)
			}
			if _, err := report.Build(ctx(t), s, "run-a", report.Options{AccuracyBins: report.MaxBins + 1}); !errors.Is(err, report.ErrOptions) {
				t.Errorf("too many bins: err = %v, want ErrOptions", err)
			}
			// No table yet: the engine's error comes through.
			if _, err := report.Build(ctx(t), s, "run-a", report.Options{}); !errors.Is(err, tracelog.ErrQuery) {
				t.Errorf("unmigrated store: err = %v, want tracelog.ErrQuery", err)
			}
		})
	}
}

// assertClose compares want and got through their JSON form: equal
// structure, numbers equal within a relative 1e-9 (the engines sum in
// their own order).
func assertClose(t testing.TB, name string, want, got any) {
	t.Helper()
	var w, g any
	for _, p := range []struct {
		v   any
		out *any
	}{{want, &w}, {got, &g}} {
		b, err := json.Marshal(p.v)
		if err != nil {
			t.Fatal(err)
		}
		if err := json.Unmarshal(b, p.out); err != nil {
			t.Fatal(err)
		}
	}
	var diffs []string
	diffJSON(name, w, g, &diffs)
	if len(diffs) > 0 {
		if len(diffs) > 10 {
			diffs = append(diffs[:10], fmt.Sprintf("... %d more", len(diffs)-10))
		}
		t.Errorf("%s differs:\n%s", name, strings.Join(diffs, "\n"))
	}
}

func diffJSON(path string, w, g any, diffs *[]string) {
	switch wv := w.(type) {
	case map[string]any:
		gv, ok := g.(map[string]any)
		if !ok || len(gv) != len(wv) {
			*diffs = append(*diffs, fmt.Sprintf("%s: got %v, want %v", path, g, w))
			return
		}
		for k := range wv {
			diffJSON(path+"."+k, wv[k], gv[k], diffs)
		}
	case []any:
		gv, ok := g.([]any)
		if !ok || len(gv) != len(wv) {
			*diffs = append(*diffs, fmt.Sprintf("%s: got %d elements, want %d", path, len(gv), len(wv)))
			return
		}
		for i := range wv {
			diffJSON(fmt.Sprintf("%s[%d]", path, i), wv[i], gv[i], diffs)
		}
	case float64:
		gv, ok := g.(float64)
		if !ok || math.Abs(gv-wv) > 1e-9*math.Max(1, math.Abs(wv)) {
			*diffs = append(*diffs, fmt.Sprintf("%s: got %v, want %v", path, g, w))
		}
	default:
		if w != g {
			*diffs = append(*diffs, fmt.Sprintf("%s: got %v, want %v", path, g, w))
		}
	}
}
