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

func TestQueryTypesAgree(t *testing.T) {
	at := time.Date(2026, 3, 4, 5, 6, 7, 0, time.UTC)
	const q = `SELECT toInt8(-3) AS i8, toInt64(-9007199254740993) AS i64, toUInt8(200) AS u8,
		toUInt64(18446744073709551615) AS u64, toFloat32(0.5) AS f32, toFloat64(-2.25) AS f64,
		'a\tb' AS s, toDateTime(?) AS dt, toDate('2026-03-04') AS d, [1, 2, 3] AS arr,
		[[toFloat32(1.5)], []] AS nested, CAST(NULL AS Nullable(String)) AS n, toNullable(toInt32(7)) AS nn,
		nan AS fnan, ? AS arg`
	want := []any{int64(-3), int64(-9007199254740993), uint64(200), uint64(math.MaxUint64), 0.5, -2.25,
		"a\tb", at, time.Date(2026, 3, 4, 0, 0, 0, 0, time.UTC), []any{uint64(1), uint64(2), uint64(3)},
		[]any{[]any{1.5}, []any{}}, nil, int64(7), math.NaN(), "it's"}
	forEachBackend(t, false, func(t *testing.T, s tracelog.Store, _ tracelog.Config, _ *chtest.Server) {
		res, err := s.Query(ctx(t), q, at, "it's")
		if err != nil {
			t.Fatal(err)
		}
		if len(res.Rows) != 1 || len(res.Columns) != len(want) || len(res.Types) != len(want) {
			t.Fatalf("result shape: %v %v %v", res.Columns, res.Types, res.Rows)
		}
		if res.Columns[0] != "i8" || res.Types[3] != "UInt64" {
			t.Fatalf("names/types: %v %v", res.Columns, res.Types)
		}
		for j, w := range want {
			g := res.Rows[0][j]
			if f, ok := w.(float64); ok && math.IsNaN(f) {
				if gf, ok := g.(float64); !ok || !math.IsNaN(gf) {
					t.Errorf("%s = %#v, want NaN", res.Columns[j], g)
				}
				continue
			}
			if !reflect.DeepEqual(g, w) {
				t.Errorf("%s (%s) = %#v, want %#v", res.Columns[j], res.Types[j], g, w)
			}
		}
		if c := res.Cell(0, 9); c != "[1,2,3]" {
			t.Errorf("Cell(arr) = %q", c)
		}
	})
}

// Injection-shaped arguments come back as the same string: they never end
// their literal.
func TestBindInjection(t *testing.T) {
	inputs := []string{
		"x' OR 1=1 --",
		`\' OR 1=1; DROP TABLE trajectories; --`,
		"'; DROP TABLE trajectories; SELECT '",
		"a\\",
		"\\\\'",
		"multi\nline\r\n\x00nul\x1b\x7f",
		"?",
		"/* ? */ -- ?",
		"Ünïcødé ✓",
	}
	forEachBackend(t, true, func(t *testing.T, s tracelog.Store, _ tracelog.Config, _ *chtest.Server) {
		for _, in := range inputs {
			res, err := s.Query(ctx(t), "SELECT ? AS v, length(?) AS n /* ? in a comment */ -- and ? here", in, in)
			if err != nil {
				t.Fatalf("%q: %v", in, err)
			}
			if res.Rows[0][0] != in || res.Rows[0][1] != uint64(len(in)) {
				t.Fatalf("%q came back as %q (length %v)", in, res.Rows[0][0], res.Rows[0][1])
			}
		}
		if n := count(t, s, "x' OR 1=1 --"); n != 0 {
			t.Fatalf("injection-shaped run id counted %d rows", n)
		}
		res, err := s.Query(ctx(t), "SELECT count() FROM system.tables WHERE database = currentDatabase() AND name = 'trajectories'")
		if err != nil || res.Rows[0][0] != uint64(1) {
			t.Fatalf("trajectories table gone: %v %v", res, err)
		}
	})
}

func TestQueryErrors(t *testing.T) {
	forEachBackend(t, false, func(t *testing.T, s tracelog.Store, _ tracelog.Config, _ *chtest.Server) {
		if _, err := s.Query(ctx(t), "SELECT ?"); !errors.Is(err, tracelog.ErrBind) {
			t.Fatalf("missing argument: %v", err)
		}
		if _, err := s.Query(ctx(t), "SELECT * FROM no_such_table"); !errors.Is(err, tracelog.ErrQuery) {
			t.Fatalf("unknown table: %v", err)
		}
	})
}
