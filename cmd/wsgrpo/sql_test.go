package main

import (
	"bytes"
	"context"
	"encoding/csv"
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"net"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/spf13/cobra"

	"github.com/wsgrpo/wsgrpo/bench/reporting"
	"github.com/wsgrpo/wsgrpo/tracelog"
	"github.com/wsgrpo/wsgrpo/tracelog/chtest"
)

func testCtx(tb testing.TB) context.Context {
	tb.Helper()
	c, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	tb.Cleanup(cancel)
	return c
}

// logBackend prepares trajectory logs for command tests on one backend.
type logBackend struct {
	name string
	// fill writes rows into the log of the run directory runDir and
	// returns the flags that select that log.
	fill func(tb testing.TB, runDir string, rows []tracelog.Row) []string
}

// logBackends returns the server backend (one server per test) and the
// embedded backend.
func logBackends(tb testing.TB) []logBackend {
	tb.Helper()
	return []logBackend{
		{tracelog.BackendServer, func(tb testing.TB, runDir string, rows []tracelog.Row) []string {
			tb.Helper()
			// The run directory exists, made by wsgrpo, so --run can name
			// it; the log is on the server.
			if err := markRunDir(runDir, filepath.Base(runDir)); err != nil {
				tb.Fatal(err)
			}
			srv := sharedServer(tb)
			fillStore(tb, tracelog.Config{DSN: srv.DSN}, rows)
			return []string{"--clickhouse-dsn", srv.DSN}
		}},
		{tracelog.BackendEmbedded, func(tb testing.TB, runDir string, rows []tracelog.Row) []string {
			tb.Helper()
			if err := markRunDir(runDir, filepath.Base(runDir)); err != nil {
				tb.Fatal(err)
			}
			fillStore(tb, tracelog.Config{Dir: tracelog.EmbeddedDir(runDir), Lib: chtest.Library(tb)}, rows)
			return nil
		}},
	}
}

// servers holds one ClickHouse server per (sub)test that fills logs.
var servers = map[string]*chtest.Server{}

func sharedServer(tb testing.TB) *chtest.Server {
	tb.Helper()
	name := tb.Name()
	if s, ok := servers[name]; ok {
		return s
	}
	s := chtest.Start(tb)
	servers[name] = s
	tb.Cleanup(func() { delete(servers, name) })
	return s
}

// fillStore migrates the log cfg selects, inserts rows and closes it (one
// embedded log per process: the command opens its own).
func fillStore(tb testing.TB, cfg tracelog.Config, rows []tracelog.Row) {
	tb.Helper()
	s, err := tracelog.Open(testCtx(tb), cfg)
	if err != nil {
		tb.Fatal(err)
	}
	defer s.Close()
	if err := s.Migrate(testCtx(tb)); err != nil {
		tb.Fatal(err)
	}
	if err := s.Insert(testCtx(tb), rows); err != nil {
		tb.Fatal(err)
	}
}

// execute runs cmd with args and returns what it printed.
func execute(tb testing.TB, cmd *cobra.Command, args ...string) (string, error) {
	tb.Helper()
	var out bytes.Buffer
	cmd.SetOut(&out)
	cmd.SetErr(&out)
	cmd.SetArgs(append(args, "--log-level", "error"))
	err := cmd.ExecuteContext(testCtx(tb))
	return out.String(), err
}

// stepQuery's expected rows are computed by expectSteps.
const stepQuery = `SELECT run_id, step, count() AS n, avg(completion_tokens) AS mean_tokens,
	'a	b' AS s, nan AS x, [1, 2] AS arr
FROM trajectories_dedup WHERE run_id = 'r1' GROUP BY run_id, step ORDER BY step`

var stepColumns = []string{"run_id", "step", "n", "mean_tokens", "s", "x", "arr"}

// expectSteps returns stepQuery's rows for rows as FormatValue text.
func expectSteps(rows []tracelog.Row) [][]string {
	type agg struct{ n, tok float64 }
	var steps []int64
	by := map[int64]*agg{}
	for _, r := range rows {
		a, ok := by[r.Step]
		if !ok {
			a = &agg{}
			by[r.Step] = a
			steps = append(steps, r.Step)
		}
		a.n++
		a.tok += float64(r.CompletionTokens)
	}
	out := make([][]string, len(steps))
	for i, st := range steps {
		a := by[st]
		out[i] = []string{"r1", strconv.FormatInt(st, 10), strconv.Itoa(int(a.n)), tracelog.FormatValue(a.tok / a.n), "a\tb", "nan", "[1,2]"}
	}
	return out
}

func TestSQLCommand(t *testing.T) {
	rows := reporting.SyntheticRows("r1", 0, 200, 200, 32, 7)
	want := expectSteps(rows)
	for _, b := range logBackends(t) {
		t.Run(b.name, func(t *testing.T) {
			runDir := filepath.Join(t.TempDir(), "r1")
			flags := append([]string{"--run", runDir}, b.fill(t, runDir, rows)...)

			t.Run("table", func(t *testing.T) {
				out, err := execute(t, newSQLCmd(), append(flags, stepQuery)...)
				if err != nil {
					t.Fatal(err)
				}
				lines := strings.Split(strings.TrimRight(out, "\n"), "\n")
				if len(lines) != len(want)+3 {
					t.Fatalf("%d lines, want %d:\n%s", len(lines), len(want)+3, out)
				}
				if got := strings.Fields(lines[0]); strings.Join(got, " ") != strings.Join(stepColumns, " ") {
					t.Errorf("header %q", lines[0])
				}
				for i, w := range want {
					w[4] = `a\tb` // tabs are escaped in tables
					if got := strings.Fields(lines[i+2]); strings.Join(got, " ") != strings.Join(w, " ") {
						t.Errorf("row %d: %q, want %q", i, got, w)
					}
					// Columns line up: every line is as long as the rule.
					if len([]rune(lines[i+2])) > len(lines[1]) {
						t.Errorf("row %d longer than the rule:\n%s\n%s", i, lines[1], lines[i+2])
					}
				}
				if last := lines[len(lines)-1]; last != fmt.Sprintf("(%d rows)", len(want)) {
					t.Errorf("last line %q", last)
				}
			})

			t.Run("csv", func(t *testing.T) {
				out, err := execute(t, newSQLCmd(), append(flags, "--format", "csv", stepQuery)...)
				if err != nil {
					t.Fatal(err)
				}
				recs, err := csv.NewReader(strings.NewReader(out)).ReadAll()
				if err != nil {
					t.Fatal(err)
				}
				wantRecs := append([][]string{stepColumns}, expectSteps(rows)...)
				if fmt.Sprint(recs) != fmt.Sprint(wantRecs) {
					t.Errorf("csv:\n%q\nwant\n%q", recs, wantRecs)
				}
			})

			t.Run("json", func(t *testing.T) {
				out, err := execute(t, newSQLCmd(), append(flags, "--format", "json", stepQuery)...)
				if err != nil {
					t.Fatal(err)
				}
				var got []map[string]any
				if err := json.Unmarshal([]byte(out), &got); err != nil {
					t.Fatalf("%v:\n%s", err, out)
				}
				if len(got) != len(want) {
					t.Fatalf("%d objects, want %d", len(got), len(want))
				}
				for i, w := range expectSteps(rows) {
					g := got[i]
					mean, _ := strconv.ParseFloat(w[3], 64)
					if g["run_id"] != "r1" || fmt.Sprint(g["step"]) != w[1] || fmt.Sprint(g["n"]) != w[2] ||
						g["mean_tokens"] != mean || g["s"] != "a\tb" || g["x"] != "nan" || fmt.Sprint(g["arr"]) != "[1 2]" {
						t.Errorf("object %d = %v, want %v", i, g, w)
					}
				}
				// Keys keep the column order.
				first := out[:strings.Index(out, "}")]
				if strings.Index(first, `"run_id"`) > strings.Index(first, `"step"`) || strings.Index(first, `"step"`) > strings.Index(first, `"arr"`) {
					t.Errorf("keys out of column order: %s", first)
				}
			})

			t.Run("bad query", func(t *testing.T) {
				_, err := execute(t, newSQLCmd(), append(flags, "SELEC nonsense FROM nowhere")...)
				if !errors.Is(err, tracelog.ErrQuery) || !strings.Contains(err.Error(), "the query failed") {
					t.Fatalf("err = %v, want a query error", err)
				}
			})

			t.Run("unknown table", func(t *testing.T) {
				_, err := execute(t, newSQLCmd(), append(flags, "SELECT count() FROM no_such_table")...)
				if !errors.Is(err, tracelog.ErrQuery) {
					t.Fatalf("err = %v, want a query error", err)
				}
			})
		})
	}
}

func TestSQLCommandErrors(t *testing.T) {
	t.Run("format", func(t *testing.T) {
		_, err := execute(t, newSQLCmd(), "--format", "xml", "SELECT 1")
		if !errors.Is(err, ErrConfig) {
			t.Fatalf("err = %v, want ErrConfig", err)
		}
	})
	t.Run("negative max width", func(t *testing.T) {
		_, err := execute(t, newSQLCmd(), "--max-width", "-1", "SELECT 1")
		if !errors.Is(err, ErrConfig) {
			t.Fatalf("err = %v, want ErrConfig", err)
		}
	})
	t.Run("empty query", func(t *testing.T) {
		_, err := execute(t, newSQLCmd(), "  ")
		if !errors.Is(err, ErrConfig) {
			t.Fatalf("err = %v, want ErrConfig", err)
		}
	})
	t.Run("no log", func(t *testing.T) {
		_, err := execute(t, newSQLCmd(), "--run", markedRunDir(t, t.TempDir()), "SELECT 1")
		if !errors.Is(err, ErrNoLog) {
			t.Fatalf("err = %v, want ErrNoLog", err)
		}
	})
	t.Run("dead server", func(t *testing.T) {
		l, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		addr := l.Addr().String()
		_ = l.Close() // nothing listens there now
		_, err = execute(t, newSQLCmd(), "--clickhouse-dsn", "clickhouse://user:secret@"+addr+"/default", "SELECT 1")
		if !errors.Is(err, tracelog.ErrUnavailable) || !strings.Contains(err.Error(), "cannot reach the ClickHouse server") {
			t.Fatalf("err = %v, want ErrUnavailable", err)
		}
		if strings.Contains(err.Error(), "secret") {
			t.Errorf("the error shows the password: %v", err)
		}
	})
	t.Run("missing library", func(t *testing.T) {
		runDir := markedRunDir(t, t.TempDir())
		if err := os.MkdirAll(tracelog.EmbeddedDir(runDir), 0o755); err != nil {
			t.Fatal(err)
		}
		t.Setenv("WSGRPO_CHDB_LIB", filepath.Join(t.TempDir(), "libchdb.so"))
		_, err := execute(t, newSQLCmd(), "--run", runDir, "SELECT 1")
		if !errors.Is(err, tracelog.ErrNoLibrary) || !strings.Contains(err.Error(), "make setup") {
			t.Fatalf("err = %v, want ErrNoLibrary naming make setup", err)
		}
	})
}

// FuzzSQLOutput: whatever a String column holds, the JSON and CSV outputs
// read back as the same value, and the table stays one line per row.
func FuzzSQLOutput(f *testing.F) {
	f.Add("plain", 1.5, int64(-3))
	f.Add("quote \" and \\ backslash\nnew line\ttab", math.NaN(), int64(0))
	f.Add("\x00\xff invalid utf-8, «unicode»", math.Inf(-1), int64(math.MaxInt64))
	f.Fuzz(func(t *testing.T, s string, x float64, n int64) {
		res := &tracelog.Result{
			Columns: []string{"s", "x", "n", "arr"},
			Types:   []string{"String", "Float64", "Int64", "Array(String)"},
			Rows:    [][]any{{s, x, n, []any{s, s}}},
		}
		var js bytes.Buffer
		if err := writeJSONResult(&js, res); err != nil {
			t.Fatal(err)
		}
		var back []map[string]any
		if err := json.Unmarshal(js.Bytes(), &back); err != nil {
			t.Fatalf("invalid JSON %q: %v", js.String(), err)
		}
		// encoding/json writes each invalid UTF-8 byte as U+FFFD.
		wantS := string([]rune(s))
		if len(back) != 1 || back[0]["s"] != wantS {
			t.Errorf("json s = %q, want %q", back[0]["s"], wantS)
		}
		if fmt.Sprint(back[0]["arr"]) != fmt.Sprint([]any{wantS, wantS}) {
			t.Errorf("json arr = %v", back[0]["arr"])
		}
		if got := back[0]["x"]; math.IsNaN(x) || math.IsInf(x, 0) {
			if got != tracelog.FormatValue(x) {
				t.Errorf("json x = %v, want %q", got, tracelog.FormatValue(x))
			}
		} else if got != x {
			t.Errorf("json x = %v, want %v", got, x)
		}
		var cs bytes.Buffer
		if err := writeCSVResult(&cs, res); err != nil {
			t.Fatal(err)
		}
		recs, err := csv.NewReader(&cs).ReadAll()
		if err != nil {
			t.Fatalf("invalid CSV %q: %v", cs.String(), err)
		}
		// encoding/csv reads \r\n inside a quoted field as \n.
		if wantCSV := strings.ReplaceAll(s, "\r\n", "\n"); len(recs) != 2 || recs[1][0] != wantCSV {
			t.Errorf("csv s = %q, want %q", recs, wantCSV)
		}
		var tb bytes.Buffer
		writeTableResult(&tb, res, 0)
		if lines := strings.Count(tb.String(), "\n"); lines != 4 {
			t.Errorf("table has %d lines, want 4:\n%s", lines, tb.String())
		}
	})
}
