package reporting_test

import (
	"context"
	"errors"
	"os"
	"strconv"
	"testing"
	"time"

	"github.com/ClickHouse/clickhouse-go/v2"

	"github.com/wsgrpo/wsgrpo/bench/reporting"
	"github.com/wsgrpo/wsgrpo/tracelog"
	"github.com/wsgrpo/wsgrpo/tracelog/chtest"
	"github.com/wsgrpo/wsgrpo/tracelog/report"
)

// Environment variables of BenchmarkReport.
const (
	// benchRowsEnv sets the trajectories of the synthetic run (default 1,000,000).
	benchRowsEnv = "WSGRPO_REPORT_BENCH_ROWS"
	// benchTokensEnv sets the completion-length limit (default 64 tokens:
	// short completions keep generating and inserting a million rows fast;
	// the report reads only scalar columns).
	benchTokensEnv = "WSGRPO_REPORT_BENCH_TOKENS"
)

// openMigrated opens a migrated store, closed when tb ends.
func openMigrated(tb testing.TB, cfg tracelog.Config) tracelog.Store {
	tb.Helper()
	s, err := tracelog.Open(context.Background(), cfg)
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(func() { _ = s.Close() })
	if err := s.Migrate(context.Background()); err != nil {
		tb.Fatal(err)
	}
	return s
}

// TestReport fills each backend with a small synthetic run and times its
// report twice.
func TestReport(t *testing.T) {
	for _, backend := range chtest.Backends() {
		t.Run(backend.Name, func(t *testing.T) {
			cfg, _ := backend.Open(t)
			s := openMigrated(t, cfg)
			st, err := reporting.InsertSynthetic(t.Context(), s, "run-b", 384, 100, 48, 2)
			if err != nil {
				t.Fatal(err)
			}
			if st.Rows != 384 || st.Batches != 4 {
				t.Fatalf("insert %+v", st)
			}
			l, err := reporting.Report(t.Context(), s, "run-b", report.Options{}, t.TempDir(), 2)
			if err != nil {
				t.Fatal(err)
			}
			if l.Trajectories != 384 || len(l.Query) != 2 || len(l.Render) != 2 || l.TotalMedian() < l.QueryMedian() {
				t.Fatalf("latency %+v", l)
			}
			if _, err := reporting.Report(t.Context(), s, "run-b", report.Options{}, "", 0); !errors.Is(err, report.ErrOptions) {
				t.Fatalf("zero repeats: %v, want ErrOptions", err)
			}
		})
	}
}

func envInt(tb testing.TB, name string, def int) int {
	tb.Helper()
	v := os.Getenv(name)
	if v == "" {
		return def
	}
	n, err := strconv.Atoi(v)
	if err != nil || n < 1 {
		tb.Fatalf("%s=%q: want a positive integer", name, v)
	}
	return n
}

// BenchmarkReport times the report of one run of a million synthetic
// trajectories on each backend: query is Build (every report query), render
// is Write (plots, markdown, JSON), query-merged is Build again after
// OPTIMIZE ... FINAL, measure is Report. The run is inserted once per backend,
// before timing, in batches of 8,192.
//
//	go test ./bench/reporting -run '^$' -bench Report -benchtime 5x -timeout 60m
func BenchmarkReport(b *testing.B) {
	if testing.Short() {
		b.Skip("the report benchmark inserts a million rows per backend; not in -short")
	}
	n := envInt(b, benchRowsEnv, 1_000_000)
	tokens := envInt(b, benchTokensEnv, 64)
	for _, backend := range chtest.Backends() {
		b.Run(backend.Name, func(b *testing.B) {
			c, cancel := context.WithTimeout(context.Background(), 60*time.Minute)
			defer cancel()
			cfg, _ := backend.Open(b)
			s := openMigrated(b, cfg)
			st, err := reporting.InsertSynthetic(c, s, "bench", n, 8192, tokens, 1)
			if err != nil {
				b.Fatal(err)
			}
			b.Logf("%s: inserted %d trajectories (1..%d tokens) in %s, %.0f rows/s", backend.Name, st.Rows, tokens, st.Elapsed.Round(time.Millisecond), st.RowsPerSecond())
			var r *report.Report
			b.Run("query", func(b *testing.B) {
				for b.Loop() {
					if r, err = report.Build(c, s, "bench", report.Options{}); err != nil {
						b.Fatal(err)
					}
				}
				if r.Summary.Trajectories != int64(n) {
					b.Fatalf("report counts %d trajectories, want %d", r.Summary.Trajectories, n)
				}
				b.ReportMetric(float64(n)/(float64(b.Elapsed().Nanoseconds())/float64(b.N))*1e9, "rows/s")
			})
			b.Run("render", func(b *testing.B) {
				dir := b.TempDir()
				for b.Loop() {
					if _, err := report.NewDocument(r, nil).Write(dir); err != nil {
						b.Fatal(err)
					}
				}
			})
			// The same after merging the parts of the inserts into one
			// (what ClickHouse's background merges converge to): FINAL then
			// has nothing left to collapse.
			b.Run("query-merged", func(b *testing.B) {
				optimize(c, b, cfg, s)
				for b.Loop() {
					if r, err = report.Build(c, s, "bench", report.Options{}); err != nil {
						b.Fatal(err)
					}
				}
				if r.Summary.Trajectories != int64(n) {
					b.Fatalf("report counts %d trajectories, want %d", r.Summary.Trajectories, n)
				}
			})
			b.Run("measure", func(b *testing.B) {
				for b.Loop() {
					l, err := reporting.Report(c, s, "bench", report.Options{}, b.TempDir(), 1)
					if err != nil {
						b.Fatal(err)
					}
					b.ReportMetric(float64(l.QueryMedian().Milliseconds()), "query-ms")
					b.ReportMetric(float64(l.RenderMedian().Milliseconds()), "render-ms")
				}
			})
		})
	}
}

// optimize merges the parts of the trajectories table: through the driver
// for a server (tracelog's Query reads a result, which OPTIMIZE lacks),
// through Query for chDB.
func optimize(c context.Context, b testing.TB, cfg tracelog.Config, s tracelog.Store) {
	b.Helper()
	const q = "OPTIMIZE TABLE trajectories FINAL"
	if cfg.DSN == "" {
		if _, err := s.Query(c, q); err != nil {
			b.Fatal(err)
		}
		return
	}
	opts, err := clickhouse.ParseDSN(cfg.DSN)
	if err != nil {
		b.Fatal(err)
	}
	conn, err := clickhouse.Open(opts)
	if err != nil {
		b.Fatal(err)
	}
	defer conn.Close()
	if err := conn.Exec(c, q); err != nil {
		b.Fatal(err)
	}
}
