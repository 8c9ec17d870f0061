package tracelog_test

import (
	"errors"
	"math"
	"reflect"
	"testing"
	"time"

	"github.com/wsgrpo/wsgrpo/tracelog"
	"github.com/wsgrpo/wsgrpo/tracelog/chtest"
)

// stepRow returns a learner step row of run with every field set and
// values derived from step and v (a content version).
func stepRow(run string, step int64, v float64) tracelog.StepRow {
	f := float64(step) + v/10
	return tracelog.StepRow{
		RunID: run, Step: step, PolicyVersion: step + 1, Shaper: "ws",
		Loss: -f, KL: f / 100, ClipFrac: 0.25, Ratio: 1 + f/1000, GradNorm: 3 * f,
		MeanReward: f / 7, Accuracy: 0.5, MeanTokens: 40 + f, MeanSteps: 3.5, Staleness: 0.75,
		Rows: uint32(64 + step), Skipped: step%2 == 1,
		WaitMs: 1.5, ForwardBackwardMs: 120 + f, OptimizerMs: 8.25, PublishMs: 30,
		Created: time.Date(2026, 12, 6, 1, 2, 3, 0, time.UTC).Add(time.Duration(step) * time.Second),
	}
}

// readSteps returns Steps(run) with Inserted cleared, so rows compare equal
// to rows written without a version.
func readSteps(t testing.TB, s tracelog.Store, run string) []tracelog.StepRow {
	t.Helper()
	got, err := s.Steps(ctx(t), run)
	if err != nil {
		t.Fatal(err)
	}
	for i := range got {
		if got[i].Inserted == 0 {
			t.Fatalf("step %d read back without an insert version", got[i].Step)
		}
		got[i].Inserted = 0
	}
	return got
}

func TestStepsInsertAndRead(t *testing.T) {
	forEachBackend(t, true, func(t *testing.T, s tracelog.Store, _ tracelog.Config, _ *chtest.Server) {
		// Written out of order, with a non-finite skipped update.
		rows := []tracelog.StepRow{stepRow("run-a", 2, 0), stepRow("run-a", 0, 0), stepRow("run-a", 1, 0)}
		rows[2].Loss, rows[2].GradNorm, rows[2].Shaper = math.NaN(), math.Inf(1), "quote ' nul \x00 bad \xff"
		if err := s.InsertSteps(ctx(t), rows); err != nil {
			t.Fatal(err)
		}
		if err := s.InsertSteps(ctx(t), []tracelog.StepRow{stepRow("run-b", 0, 5), stepRow("run-b", 1, 5)}); err != nil {
			t.Fatal(err)
		}
		got := readSteps(t, s, "run-a")
		want := []tracelog.StepRow{rows[1], rows[2], rows[0]}
		if len(got) != len(want) {
			t.Fatalf("read %d steps, want %d: %+v", len(got), len(want), got)
		}
		for i := range want {
			g, w := got[i], want[i]
			if !math.IsNaN(g.Loss) || !math.IsNaN(w.Loss) {
				if g.Loss != w.Loss {
					t.Fatalf("step %d loss %v, want %v", w.Step, g.Loss, w.Loss)
				}
			} else {
				g.Loss, w.Loss = 0, 0
			}
			if !reflect.DeepEqual(g, w) {
				t.Fatalf("step %d:\n got %+v\nwant %+v", w.Step, g, w)
			}
		}
		if got := readSteps(t, s, "run-b"); len(got) != 2 || got[0].Step != 0 || got[1].Step != 1 || got[0].Loss != -0.5 {
			t.Fatalf("run-b: %+v", got)
		}
		if got := readSteps(t, s, "none"); len(got) != 0 {
			t.Fatalf("unknown run: %+v", got)
		}
		if err := s.InsertSteps(ctx(t), nil); err != nil {
			t.Fatalf("empty insert: %v", err)
		}
	})
}

func TestStepsReinsertKeepsOneRow(t *testing.T) {
	type write struct {
		v        float64 // content version (changes Loss)
		inserted uint64  // 0: the insert time
	}
	tests := []struct {
		name   string
		writes []write
		wantV  float64 // content version of step 1 read back
	}{
		{"same row twice", []write{{0, 0}, {0, 0}}, 0},
		{"restart rewrites the step", []write{{0, 10}, {3, 20}}, 3},
		{"older version written last", []write{{3, 20}, {0, 10}}, 3},
		{"three copies", []write{{1, 5}, {2, 7}, {4, 6}}, 2},
	}
	forEachBackend(t, true, func(t *testing.T, s tracelog.Store, _ tracelog.Config, _ *chtest.Server) {
		for _, tc := range tests {
			t.Run(tc.name, func(t *testing.T) {
				run := "re/" + tc.name
				if err := s.InsertSteps(ctx(t), []tracelog.StepRow{stepRow(run, 0, 0)}); err != nil {
					t.Fatal(err)
				}
				for _, w := range tc.writes {
					r := stepRow(run, 1, w.v)
					r.Inserted = w.inserted
					if err := s.InsertSteps(ctx(t), []tracelog.StepRow{r}); err != nil {
						t.Fatal(err)
					}
				}
				got := readSteps(t, s, run)
				if len(got) != 2 || got[0].Step != 0 || got[1].Step != 1 {
					t.Fatalf("read %+v, want steps 0 and 1 once each", got)
				}
				if want := stepRow(run, 1, tc.wantV).Loss; got[1].Loss != want {
					t.Fatalf("step 1 loss %v, want %v (the copy with the largest version)", got[1].Loss, want)
				}
				res, err := s.Query(ctx(t), "SELECT count() FROM steps_dedup WHERE run_id = ?", run)
				if err != nil {
					t.Fatal(err)
				}
				if n := res.Rows[0][0]; n != uint64(2) {
					t.Fatalf("steps_dedup holds %v rows of the run, want 2", n)
				}
			})
		}
	})
}

func TestStepsOnClosedStore(t *testing.T) {
	forEachBackend(t, true, func(t *testing.T, s tracelog.Store, _ tracelog.Config, _ *chtest.Server) {
		if err := s.Close(); err != nil {
			t.Fatal(err)
		}
		err := s.InsertSteps(ctx(t), []tracelog.StepRow{stepRow("closed", 0, 0)})
		if !errors.Is(err, tracelog.ErrClosed) && !errors.Is(err, tracelog.ErrUnavailable) {
			t.Fatalf("insert on a closed store: err = %v", err)
		}
		if _, err := s.Steps(ctx(t), "closed"); err == nil {
			t.Fatal("Steps on a closed store succeeded")
		}
	})
}
