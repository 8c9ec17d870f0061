package main

import (
	"bytes"
	"context"
	"encoding/csv"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"math"
	"net/url"
	"os"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/spf13/cobra"

	"github.com/wsgrpo/wsgrpo/tracelog"
)

// ErrNoLog is returned when the embedded backend is selected and the run
// directory holds no trajectory log.
var ErrNoLog = errors.New("no trajectory log")

// Output formats of `wsgrpo sql`.
const (
	formatTable = "table"
	formatJSON  = "json"
	formatCSV   = "csv"
)

func newSQLCmd() *cobra.Command {
	var (
		format   string
		maxWidth int
		readOnly bool
	)
	cmd := &cobra.Command{
		Use:   "sql [--run ID] QUERY",
		Short: "Run SQL on the trajectory log",
		Long: `Run one SQL statement on the trajectory log of a run and print the result:
the ClickHouse server when clickhouse_dsn is set (--clickhouse-dsn, config,
WSGRPO_CLICKHOUSE_DSN), else the embedded chDB log in the run directory
(<run dir>/tracelog; --run takes a run id or a run directory).

Tables: trajectories (one row per trajectory, one column per field:
run_id, step, completion_tokens, steps, correct, finish_reason, ...) and
trajectories_dedup, the de-duplicated view. A redelivered batch can leave
duplicate rows in trajectories until ClickHouse merges them: count, sum and
average over trajectories_dedup.

Exactly one statement: a query holding more (SELECT 1; DROP TABLE ...) is
refused before anything runs. Semicolons in string literals, quoted
identifiers, heredocs and comments do not count, nor does one at the end.

RAW SQL FOR TRUSTED USERS ONLY: the statement runs as written, with the
rights of the connection's user: on the embedded log all of them, on a
server those of the DSN's user. That includes ClickHouse's file and URL
table functions (file('/etc/...'), url(...)) and SELECT ... INTO OUTFILE,
which read and write files as this process (or the server). Do not pass
text you did not write or check.

--read-only (the default) runs the statement with ClickHouse's readonly = 1
setting (the embedded log's session; sent with the query to a server): it
may only read. INSERT, ALTER, DROP, CREATE, table functions such as file()
and SETTINGS changes fail with the engine's readonly error, and INTO OUTFILE
is refused. --read-only=false runs it with every right of the connection.

Output: an aligned table (--format table, the default), a JSON array of
objects (--format json; nan and inf as strings) or CSV with a header row
(--format csv).`,
		Example: `  wsgrpo sql --run demo "SELECT step, avg(completion_tokens) FROM trajectories_dedup GROUP BY step ORDER BY step"
  wsgrpo sql --run runs/demo --format csv "SELECT * FROM trajectories_dedup LIMIT 10"
  wsgrpo sql --run runs/demo --read-only=false "OPTIMIZE TABLE trajectories FINAL"`,
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			switch format {
			case formatTable, formatJSON, formatCSV:
			default:
				return fmt.Errorf("%w: --format %q (want table, json or csv)", ErrConfig, format)
			}
			if maxWidth < 0 {
				return fmt.Errorf("%w: --max-width %d must be >= 0 (0: never cut)", ErrConfig, maxWidth)
			}
			if strings.TrimSpace(args[0]) == "" {
				return fmt.Errorf("%w: empty query", ErrConfig)
			}
			st, err := singleStatement(args[0])
			if err != nil {
				return err
			}
			if readOnly && st.IntoOutfile {
				return fmt.Errorf("%w: %w: INTO OUTFILE writes a file, which the engine's readonly setting does not stop (pass --read-only=false to allow it)", ErrConfig, ErrReadOnlyStatement)
			}
			cfg, log, err := setup(cmd)
			if err != nil {
				return err
			}
			s, err := openLogMode(cmd.Context(), cfg, log, readOnly)
			if err != nil {
				return err
			}
			defer s.Close()
			res, err := s.Query(cmd.Context(), st.Text)
			if err != nil && readOnly && readOnlyRefusal(err) {
				return fmt.Errorf("%w: ClickHouse's readonly setting does not allow it (pass --read-only=false to let the statement write): %w", ErrReadOnlyStatement, err)
			}
			if err != nil {
				return logError(cfg, err)
			}
			var buf bytes.Buffer
			switch format {
			case formatJSON:
				err = writeJSONResult(&buf, res)
			case formatCSV:
				err = writeCSVResult(&buf, res)
			default:
				writeTableResult(&buf, res, maxWidth)
			}
			if err != nil {
				return err
			}
			_, err = cmd.OutOrStdout().Write(buf.Bytes())
			return err
		},
	}
	addConfigFlags(cmd.Flags())
	cmd.Flags().StringVar(&format, "format", formatTable, "output format: table, json or csv")
	cmd.Flags().IntVar(&maxWidth, "max-width", 60, "cut table cells longer than this many characters (0: never)")
	cmd.Flags().BoolVar(&readOnly, "read-only", true, "run the statement with ClickHouse's readonly = 1 setting (no writes, DDL, table functions or INTO OUTFILE); --read-only=false allows them")
	return cmd
}

// openLog opens the trajectory log cfg selects: the server at
// cfg.ClickHouseDSN, or the embedded log of the run directory, which must
// exist (reading a log never creates one) and is held (holdRunDir) until
// the store is closed.
func openLog(ctx context.Context, cfg Config, log *slog.Logger) (tracelog.Store, error) {
	return openLogMode(ctx, cfg, log, false)
}

// openLogMode is openLog, read-only (tracelog.Config.ReadOnly) when
// readOnly is set.
func openLogMode(ctx context.Context, cfg Config, log *slog.Logger, readOnly bool) (tracelog.Store, error) {
	tc := cfg.logConfig(log)
	tc.ReadOnly = readOnly
	release := func() {}
	if tc.DSN == "" {
		if st, err := os.Stat(tc.Dir); err != nil || !st.IsDir() {
			return nil, fmt.Errorf("%w at %s: run %q has not logged trajectories here (give --run the run id or its directory, or --clickhouse-dsn for a ClickHouse server)", ErrNoLog, tc.Dir, cfg.Run)
		}
		// One process at a time: a live run that holds its directory is
		// named, instead of the engine's failure to open its data.
		var err error
		if release, err = holdRunDir(cfg.RunDir(), useLog); err != nil {
			return nil, err
		}
	}
	tc.OnClose = release
	s, err := tracelog.Open(ctx, tc)
	if err != nil {
		release()
		return nil, logError(cfg, err)
	}
	return s, nil
}

// logError adds what a user needs to act on a trajectory-log error.
func logError(cfg Config, err error) error {
	switch {
	case errors.Is(err, tracelog.ErrNoLibrary):
		return err // says to run `make setup` or set WSGRPO_CHDB_LIB
	case errors.Is(err, tracelog.ErrUnavailable) && cfg.ClickHouseDSN != "":
		return fmt.Errorf("cannot reach the ClickHouse server %s (is it running? check clickhouse_dsn): %w", redactDSN(cfg.ClickHouseDSN), err)
	case errors.Is(err, tracelog.ErrQuery):
		return fmt.Errorf("the query failed: %w", err)
	}
	return err
}

// readOnlyRefusal reports whether err is ClickHouse's READONLY error
// (code 164): a statement the readonly setting does not allow.
func readOnlyRefusal(err error) bool {
	return errors.Is(err, tracelog.ErrQuery) && strings.Contains(strings.ToLower(err.Error()), "code: 164")
}

// redactDSN drops the password from a DSN for messages.
func redactDSN(dsn string) string {
	u, err := url.Parse(dsn)
	if err != nil {
		return "(unparsable DSN)"
	}
	if u.User != nil {
		u.User = url.User(u.User.Username())
	}
	return u.Redacted()
}

// numericType reports whether a ClickHouse type holds numbers (right
// aligned in tables).
func numericType(t string) bool {
	t = strings.TrimSuffix(strings.TrimPrefix(t, "Nullable("), ")")
	for _, p := range []string{"Int", "UInt", "Float", "Decimal"} {
		if strings.HasPrefix(t, p) {
			return true
		}
	}
	return false
}

// tableCell formats a value for the aligned table: control characters
// escaped, cut to maxWidth characters.
func tableCell(v any, maxWidth int) string {
	s := strings.NewReplacer("\n", `\n`, "\r", `\r`, "\t", `\t`).Replace(tracelog.FormatValue(v))
	if maxWidth > 0 && utf8.RuneCountInString(s) > maxWidth {
		r := []rune(s)
		s = string(r[:max(maxWidth-1, 0)]) + "…"
	}
	return s
}

// writeTableResult writes res as an aligned table with a row count.
func writeTableResult(w *bytes.Buffer, res *tracelog.Result, maxWidth int) {
	cells := make([][]string, len(res.Rows))
	widths := make([]int, len(res.Columns))
	for j, c := range res.Columns {
		widths[j] = utf8.RuneCountInString(c)
	}
	for i, row := range res.Rows {
		cells[i] = make([]string, len(row))
		for j, v := range row {
			cells[i][j] = tableCell(v, maxWidth)
			widths[j] = max(widths[j], utf8.RuneCountInString(cells[i][j]))
		}
	}
	right := make([]bool, len(res.Columns))
	for j := range right {
		right[j] = j < len(res.Types) && numericType(res.Types[j])
	}
	line := func(vals []string) {
		for j, v := range vals {
			if j > 0 {
				w.WriteString("  ")
			}
			pad := strings.Repeat(" ", widths[j]-utf8.RuneCountInString(v))
			switch {
			case right[j]:
				w.WriteString(pad + v)
			case j == len(vals)-1:
				w.WriteString(v)
			default:
				w.WriteString(v + pad)
			}
		}
		w.WriteByte('\n')
	}
	line(res.Columns)
	rule := make([]string, len(widths))
	for j, n := range widths {
		rule[j] = strings.Repeat("-", n)
	}
	line(rule)
	for _, row := range cells {
		line(row)
	}
	if len(res.Rows) == 1 {
		w.WriteString("(1 row)\n")
	} else {
		fmt.Fprintf(w, "(%d rows)\n", len(res.Rows))
	}
}

// writeCSVResult writes res as CSV with a header row.
func writeCSVResult(w io.Writer, res *tracelog.Result) error {
	cw := csv.NewWriter(w)
	if err := cw.Write(res.Columns); err != nil {
		return err
	}
	rec := make([]string, len(res.Columns))
	for _, row := range res.Rows {
		for j, v := range row {
			rec[j] = tracelog.FormatValue(v)
		}
		if err := cw.Write(rec); err != nil {
			return err
		}
	}
	cw.Flush()
	return cw.Error()
}

// writeJSONResult writes res as a JSON array of objects whose keys follow
// the column order.
func writeJSONResult(w *bytes.Buffer, res *tracelog.Result) error {
	w.WriteString("[")
	for i, row := range res.Rows {
		if i > 0 {
			w.WriteString(",")
		}
		w.WriteString("\n  {")
		for j, v := range row {
			if j > 0 {
				w.WriteString(", ")
			}
			k, _ := json.Marshal(res.Columns[j])
			w.Write(k)
			w.WriteString(": ")
			if err := appendJSONValue(w, v); err != nil {
				return fmt.Errorf("column %s: %w", res.Columns[j], err)
			}
		}
		w.WriteString("}")
	}
	if len(res.Rows) > 0 {
		w.WriteString("\n")
	}
	w.WriteString("]\n")
	return nil
}

// appendJSONValue writes one Result value as JSON: numbers as numbers
// (nan and inf, which JSON lacks, as strings), times as
// "2006-01-02 15:04:05", arrays as arrays, NULL as null.
func appendJSONValue(w *bytes.Buffer, v any) error {
	switch x := v.(type) {
	case nil:
		w.WriteString("null")
	case float64:
		if math.IsNaN(x) || math.IsInf(x, 0) {
			fmt.Fprintf(w, "%q", tracelog.FormatValue(x))
			return nil
		}
		w.WriteString(tracelog.FormatValue(x))
	case int64, uint64:
		w.WriteString(tracelog.FormatValue(x))
	case time.Time:
		fmt.Fprintf(w, "%q", tracelog.FormatValue(x))
	case []any:
		w.WriteString("[")
		for i, e := range x {
			if i > 0 {
				w.WriteString(",")
			}
			if err := appendJSONValue(w, e); err != nil {
				return err
			}
		}
		w.WriteString("]")
	default:
		b, err := json.Marshal(tracelog.FormatValue(x))
		if err != nil {
			return err
		}
		w.Write(b)
	}
	return nil
}
