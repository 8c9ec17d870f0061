package report_test

import (
	"encoding/json"
	"math"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/wsgrpo/wsgrpo/tracelog"
	"github.com/wsgrpo/wsgrpo/tracelog/chtest"
)

// dashboardPath is the Grafana dashboard over the trajectory log.
var dashboardPath = filepath.Join("..", "..", "deploy", "grafana", "dashboards", "wsgrpo-reasoning-length.json")

type dashboard struct {
	Panels []struct {
		Title   string `json:"title"`
		Targets []struct {
			RawSQL     string `json:"rawSql"`
			EditorType string `json:"editorType"`
		} `json:"targets"`
	} `json:"panels"`
	Templating struct {
		List []struct {
			Name  string `json:"name"`
			Query any    `json:"query"`
		} `json:"list"`
	} `json:"templating"`
}

// grafanaSQL expands the dashboard's variables and the plugin's
// $__timeFilter macro as Grafana would for run and a 64-token bucket.
func grafanaSQL(q, run string) string {
	return strings.NewReplacer(
		"${run:sqlstring}", "'"+strings.ReplaceAll(run, "'", "''")+"'",
		"${bucket}", "64",
		"$__timeFilter(created)", "created >= toDateTime(0) AND created <= toDateTime(4000000000)",
	).Replace(q)
}

// TestDashboard runs every panel query of the Grafana dashboard on both
// backends and checks the figures it shares with the report.
func TestDashboard(t *testing.T) {
	b, err := os.ReadFile(dashboardPath)
	if err != nil {
		t.Fatal(err)
	}
	var d dashboard
	if err := json.Unmarshal(b, &d); err != nil {
		t.Fatalf("dashboard JSON: %v", err)
	}
	queries := map[string]string{}
	for _, p := range d.Panels {
		for _, tg := range p.Targets {
			if tg.EditorType != "sql" || tg.RawSQL == "" {
				t.Fatalf("panel %q: target without raw SQL", p.Title)
			}
			if !strings.Contains(tg.RawSQL, "trajectories_dedup") {
				t.Errorf("panel %q does not read the de-duplicated view", p.Title)
			}
			queries[p.Title] = tg.RawSQL
		}
	}
	for _, v := range d.Templating.List {
		if q, ok := v.Query.(map[string]any); ok {
			queries["variable "+v.Name] = q["rawSql"].(string)
		}
	}
	for _, want := range []string{"Run summary", "Accuracy per training step", "Completion tokens per training step",
		"Share truncated per training step", "Length histogram: first vs last step", "Rows per run", "variable run"} {
		if _, ok := queries[want]; !ok {
			t.Errorf("dashboard lacks %q", want)
		}
	}

	a, bRows := testRuns()
	want := expectReport("run-a", a, 20, 10)
	for _, backend := range chtest.Backends() {
		t.Run(backend.Name, func(t *testing.T) {
			s := openStore(t, backend, true)
			insert(t, s, a)
			insert(t, s, bRows)
			results := map[string]*tracelog.Result{}
			for title, q := range queries {
				res, err := s.Query(ctx(t), grafanaSQL(q, "run-a"))
				if err != nil {
					t.Errorf("%s: %v", title, err)
					continue
				}
				if len(res.Rows) == 0 {
					t.Errorf("%s: no rows", title)
				}
				results[title] = res
			}
			if res := results["Run summary"]; res != nil {
				got := map[string]any{}
				for j, c := range res.Columns {
					got[c] = res.Rows[0][j]
				}
				if got["trajectories"] != uint64(want.Summary.Trajectories) || !near(got["accuracy"], want.Summary.Accuracy) ||
					!near(got["truncated_share"], want.Summary.TruncatedShare) || !near(got["tokens_per_correct_answer"], want.Summary.TokensPerCorrect) ||
					!near(got["mean_tokens"], want.Summary.Lengths.All.MeanTokens) {
					t.Errorf("run summary %v, want %+v", got, want.Summary)
				}
			}
			if res := results["Accuracy per training step"]; res != nil {
				if len(res.Rows) != len(want.Steps) {
					t.Fatalf("accuracy: %d steps, want %d", len(res.Rows), len(want.Steps))
				}
				for i, row := range res.Rows {
					if !near(row[1], want.Steps[i].Accuracy) {
						t.Errorf("accuracy at step %v: %v, want %v", row[0], row[1], want.Steps[i].Accuracy)
					}
				}
			}
			if res := results["Rows per run"]; res != nil {
				if len(res.Rows) != 2 {
					t.Fatalf("rows per run: %v", res.Rows)
				}
				for _, row := range res.Rows {
					n := map[string]int{"run-a": len(a), "run-b": len(bRows)}[row[0].(string)]
					if row[1] != uint64(n) {
						t.Errorf("rows per run: %v has %v, want %d", row[0], row[1], n)
					}
				}
			}
			if res := results["Length histogram: first vs last step"]; res != nil {
				var first, last uint64
				for _, row := range res.Rows {
					first += row[1].(uint64)
					last += row[2].(uint64)
				}
				if int64(first) != want.FirstStepLengths.Trajectories || int64(last) != want.LastStepLengths.Trajectories {
					t.Errorf("histogram totals %d and %d, want %d and %d", first, last, want.FirstStepLengths.Trajectories, want.LastStepLengths.Trajectories)
				}
			}
		})
	}
}

func near(v any, want float64) bool {
	f, ok := v.(float64)
	return ok && math.Abs(f-want) <= 1e-9*math.Max(1, math.Abs(want))
}
