package tracelog_test

import (
	"reflect"
	"sync"
	"testing"

	"github.com/wsgrpo/wsgrpo/bench/logstore"
	"github.com/wsgrpo/wsgrpo/tracelog"
	"github.com/wsgrpo/wsgrpo/tracelog/chtest"
)

// Concurrent Inserts (which the server backend groups into fewer INSERTs)
// store every row exactly once, byte-exact, whatever order they came in.
func TestConcurrentInsertsReadBack(t *testing.T) {
	forEachBackend(t, true, func(t *testing.T, s tracelog.Store, _ tracelog.Config, _ *chtest.Server) {
		const callers, per = 16, 40
		all := logstore.SyntheticRows("conc", callers*per, 32, 7)
		// Reverse each batch so that no batch arrives in key order.
		var wg sync.WaitGroup
		errs := make(chan error, callers)
		for i := range callers {
			batch := make([]tracelog.Row, per)
			for j := range per {
				batch[j] = all[i*per+per-1-j]
			}
			wg.Go(func() { errs <- s.Insert(ctx(t), batch) })
		}
		wg.Wait()
		close(errs)
		for err := range errs {
			if err != nil {
				t.Fatal(err)
			}
		}
		if n := count(t, s, "conc"); n != callers*per {
			t.Fatalf("count = %d, want %d", n, callers*per)
		}
		got, err := tracelog.ReadRun(ctx(t), s, "conc")
		if err != nil {
			t.Fatal(err)
		}
		want := normalizeRows(all)
		sortRows(want)
		got = normalizeRows(got)
		sortRows(got)
		if len(got) != len(want) {
			t.Fatalf("read %d rows, want %d", len(got), len(want))
		}
		for i := range want {
			if !reflect.DeepEqual(got[i], want[i]) {
				t.Fatalf("row %d differs:\n got %v\nwant %v", i, got[i], want[i])
			}
		}
	})
}

// TestServerCPUCountsInserts checks chtest's CPU reading, which the
// sustained insert benchmark divides by rows: a started server's CPU time
// is readable and grows while it stores rows.
func TestServerCPUCountsInserts(t *testing.T) {
	srv := chtest.Start(t)
	before, ok := srv.CPU()
	if !ok {
		t.Skip("needs a server this test started (not " + chtest.EnvDSN + ")")
	}
	s := openMigrated(t, tracelog.Config{DSN: srv.DSN})
	if err := s.Insert(t.Context(), logstore.SyntheticRows("cpu", 4096, 512, 1)); err != nil {
		t.Fatal(err)
	}
	after, ok := srv.CPU()
	if !ok || after <= before {
		t.Fatalf("server CPU %v before and %v (ok %v) after storing 4,096 rows", before, after, ok)
	}
	srv.Stop(t)
	if cpu, ok := srv.CPU(); ok {
		t.Fatalf("stopped server reports CPU %v", cpu)
	}
}
