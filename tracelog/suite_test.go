package tracelog_test

import (
	"context"
	"errors"
	"math"
	"reflect"
	"testing"
	"time"

	"github.com/wsgrpo/wsgrpo/bench/logstore"
	"github.com/wsgrpo/wsgrpo/schemas/ddl"
	"github.com/wsgrpo/wsgrpo/tracelog"
	"github.com/wsgrpo/wsgrpo/tracelog/chtest"
)

// forEachBackend runs f as a subtest against every backend with a fresh,
// migrated store.
func forEachBackend(t *testing.T, migrated bool, f func(t *testing.T, s tracelog.Store, cfg tracelog.Config, srv *chtest.Server)) {
	t.Helper()
	for _, b := range chtest.Backends() {
		t.Run(b.Name, func(t *testing.T) {
			cfg, srv := b.Open(t)
			var s tracelog.Store
			if migrated {
				s = openMigrated(t, cfg)
			} else {
				s = open(t, cfg)
			}
			f(t, s, cfg, srv)
		})
	}
}

func open(t testing.TB, cfg tracelog.Config) tracelog.Store {
	t.Helper()
	s, err := tracelog.Open(ctx(t), cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = s.Close() })
	return s
}

// openMigrated is open plus the migrations.
func openMigrated(t testing.TB, cfg tracelog.Config) tracelog.Store {
	t.Helper()
	s := open(t, cfg)
	if err := s.Migrate(ctx(t)); err != nil {
		t.Fatal(err)
	}
	return s
}

func ctx(t testing.TB) context.Context {
	c, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	t.Cleanup(cancel)
	return c
}

func count(t testing.TB, s tracelog.Store, run string) int64 {
	t.Helper()
	n, err := s.Count(ctx(t), run)
	if err != nil {
		t.Fatal(err)
	}
	return n
}

// normalizeRows maps empty slices to nil and clears Inserted so rows read
// back compare equal to rows written.
func normalizeRows(rows []tracelog.Row) []tracelog.Row {
	out := make([]tracelog.Row, len(rows))
	for i, r := range rows {
		v := reflect.ValueOf(&r).Elem()
		for j := range v.NumField() {
			if f := v.Field(j); f.Kind() == reflect.Slice && f.Len() == 0 {
				f.Set(reflect.Zero(f.Type()))
			}
		}
		r.Inserted = 0
		r.Created = r.Created.UTC().Truncate(time.Second)
		out[i] = r
	}
	return out
}

func TestMigrateTwice(t *testing.T) {
	forEachBackend(t, false, func(t *testing.T, s tracelog.Store, _ tracelog.Config, _ *chtest.Server) {
		for range 2 {
			if err := s.Migrate(ctx(t)); err != nil {
				t.Fatal(err)
			}
		}
		res, err := s.Query(ctx(t), "SELECT version, count() FROM schema_migrations GROUP BY version ORDER BY version")
		if err != nil {
			t.Fatal(err)
		}
		ms, err := ddl.Migrations()
		if err != nil {
			t.Fatal(err)
		}
		if len(res.Rows) != len(ms) {
			t.Fatalf("schema_migrations: %v, want %d versions", res.Rows, len(ms))
		}
		for i, r := range res.Rows {
			if r[0] != uint64(i+1) {
				t.Fatalf("version %d: %v", i, r)
			}
		}
		if n := count(t, s, "none"); n != 0 {
			t.Fatalf("count = %d", n)
		}
	})
}

func TestInsertCountReadBack(t *testing.T) {
	forEachBackend(t, true, func(t *testing.T, s tracelog.Store, _ tracelog.Config, _ *chtest.Server) {
		rows := logstore.SyntheticRows("run-a", 200, 16, 1)
		rows[3].Completion = "quote ' backslash \\ tab \t nul \x00 bad utf8 \xff end"
		rows[4].StepRewards = nil
		rows[5].GroupSize, rows[5].Labeler = 0, "" // a shaper without a preference model
		rows[6].GroupSize, rows[6].Labeler = math.MaxInt32, "pm/\x00\xff'"
		if rows[0].GroupSize == 0 || rows[0].Labeler == "" {
			t.Fatal("synthetic rows lack group_size or labeler: the round trip would not test them")
		}
		other := logstore.SyntheticRows("run-b", 10, 4, 2)
		if err := s.Insert(ctx(t), rows); err != nil {
			t.Fatal(err)
		}
		if err := s.Insert(ctx(t), other); err != nil {
			t.Fatal(err)
		}
		if n := count(t, s, "run-a"); n != 200 {
			t.Fatalf("count = %d, want 200", n)
		}
		got, err := tracelog.ReadRun(ctx(t), s, "run-a")
		if err != nil {
			t.Fatal(err)
		}
		want := normalizeRows(rows)
		sortRows(want)
		if g := normalizeRows(got); !reflect.DeepEqual(g, want) {
			for i := range g {
				if !reflect.DeepEqual(g[i], want[i]) {
					t.Fatalf("row %d differs:\n got %+v\nwant %+v", i, g[i], want[i])
				}
			}
			t.Fatalf("got %d rows, want %d", len(g), len(want))
		}
	})
}

func TestClosedStore(t *testing.T) {
	forEachBackend(t, true, func(t *testing.T, s tracelog.Store, _ tracelog.Config, _ *chtest.Server) {
		if err := s.Close(); err != nil {
			t.Fatal(err)
		}
		if err := s.Insert(ctx(t), logstore.SyntheticRows("r", 1, 1, 1)); err == nil {
			t.Fatal("insert on a closed store succeeded")
		}
		if err := s.Close(); err != nil {
			t.Fatalf("second Close: %v", err)
		}
	})
}

func TestOpenErrors(t *testing.T) {
	tests := []struct {
		name string
		cfg  tracelog.Config
		want error
	}{
		{"no dir no dsn", tracelog.Config{}, tracelog.ErrConfig},
		{"missing library", tracelog.Config{Dir: t.TempDir(), Lib: "/nonexistent/libchdb.so"}, tracelog.ErrNoLibrary},
		{"bad dsn", tracelog.Config{DSN: "http://127.0.0.1:1/x"}, tracelog.ErrConfig},
		{"server down", tracelog.Config{DSN: "clickhouse://127.0.0.1:1/default?dial_timeout=200ms"}, tracelog.ErrUnavailable},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			s, err := tracelog.Open(ctx(t), tc.cfg)
			if s != nil {
				_ = s.Close()
			}
			if !errors.Is(err, tc.want) {
				t.Fatalf("err = %v, want %v", err, tc.want)
			}
		})
	}
}
