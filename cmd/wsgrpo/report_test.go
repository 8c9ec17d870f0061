package main

import (
	"encoding/json"
	"errors"
	"math"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/wsgrpo/wsgrpo/bench/reporting"
	"github.com/wsgrpo/wsgrpo/tracelog"
	"github.com/wsgrpo/wsgrpo/tracelog/report"
)

func TestReportCommand(t *testing.T) {
	base := reporting.SyntheticRows("grpo", 0, 320, 320, 64, 3)
	other := reporting.SyntheticRows("ws-grpo", 0, 256, 256, 48, 4)
	for _, b := range logBackends(t) {
		t.Run(b.name, func(t *testing.T) {
			root := t.TempDir()
			baseDir, otherDir := filepath.Join(root, "grpo"), filepath.Join(root, "ws-grpo")
			flags := append([]string{"--run", baseDir}, b.fill(t, baseDir, base)...)
			b.fill(t, otherDir, other)

			t.Run("compare json", func(t *testing.T) {
				out := t.TempDir()
				stdout, err := execute(t, newReportCmd(), append(flags, "--compare", "ws-grpo", "--out", out, "--json")...)
				if err != nil {
					t.Fatal(err)
				}
				var d report.Document
				if err := json.Unmarshal([]byte(stdout), &d); err != nil {
					t.Fatalf("%v:\n%s", err, stdout)
				}
				if d.Report.Run != "grpo" || d.Other == nil || d.Other.Run != "ws-grpo" || d.Comparison == nil {
					t.Fatalf("document runs: %+v", d)
				}
				if d.Report.Summary.Trajectories != int64(len(base)) || d.Other.Summary.Trajectories != int64(len(other)) {
					t.Errorf("trajectories %d and %d, want %d and %d", d.Report.Summary.Trajectories, d.Other.Summary.Trajectories, len(base), len(other))
				}
				if want := 1 - meanTokens(other)/meanTokens(base); math.Abs(d.Comparison.RelativeLengthCut-want) > 1e-9 {
					t.Errorf("length cut %v, want %v", d.Comparison.RelativeLengthCut, want)
				}
				for _, f := range append([]string{report.MarkdownFile, report.JSONFile}, report.PlotLength, report.PlotLengthHistOther) {
					if st, err := os.Stat(filepath.Join(out, f)); err != nil || st.Size() == 0 {
						t.Errorf("%s not written: %v", f, err)
					}
				}
			})

			t.Run("text", func(t *testing.T) {
				stdout, err := execute(t, newReportCmd(), flags...)
				if err != nil {
					t.Fatal(err)
				}
				for _, want := range []string{"run grpo: 320 trajectories", "wrote summary.md, report.json and 5 plots in " + filepath.Join(baseDir, "report")} {
					if !strings.Contains(stdout, want) {
						t.Errorf("output lacks %q:\n%s", want, stdout)
					}
				}
			})

			t.Run("unknown run", func(t *testing.T) {
				dir := filepath.Join(root, "nobody")
				_ = os.MkdirAll(tracelog.EmbeddedDir(markedRunDir(t, dir)), 0o755)
				if b.name == tracelog.BackendEmbedded {
					// An embedded log of its own, holding another run.
					b.fill(t, dir, reporting.SyntheticRows("someone", 0, 64, 64, 8, 5))
				}
				fl := append([]string{"--run", dir}, flags[2:]...)
				_, err := execute(t, newReportCmd(), fl...)
				if !errors.Is(err, report.ErrNoTrajectories) || !strings.Contains(err.Error(), "runs in this log:") {
					t.Fatalf("err = %v, want ErrNoTrajectories listing the runs", err)
				}
			})

			t.Run("bad compare", func(t *testing.T) {
				_, err := execute(t, newReportCmd(), append(flags, "--compare", "a b")...)
				if !errors.Is(err, ErrConfig) {
					t.Fatalf("err = %v, want ErrConfig", err)
				}
			})
		})
	}
}

func meanTokens(rows []tracelog.Row) float64 {
	var s float64
	for _, r := range rows {
		s += float64(r.CompletionTokens)
	}
	return s / float64(len(rows))
}
