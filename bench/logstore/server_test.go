package logstore_test

import (
	"fmt"
	"syscall"
	"testing"
	"time"

	"github.com/wsgrpo/wsgrpo/bench/logstore"
	"github.com/wsgrpo/wsgrpo/tracelog"
	"github.com/wsgrpo/wsgrpo/tracelog/chtest"
)

// serverCPU returns the CPU time the server's query threads have used so
// far (system.events: user plus system time of all queries; background
// merges are not in it) and the wall time merges took.
func serverCPU(tb testing.TB, s tracelog.Store) (queries, merges time.Duration) {
	tb.Helper()
	res, err := s.Query(tb.Context(), `SELECT
		sumIf(value, event IN ('UserTimeMicroseconds', 'SystemTimeMicroseconds')),
		sumIf(value, event = 'MergesTimeMilliseconds')
		FROM system.events`)
	if err != nil {
		tb.Fatal(err)
	}
	q, _ := res.Rows[0][0].(uint64)
	m, _ := res.Rows[0][1].(uint64)
	return time.Duration(q) * time.Microsecond, time.Duration(m) * time.Millisecond
}

// clientCPU is the user plus system time of this process so far.
func clientCPU() time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// BenchmarkServerInsert measures InsertParallel against the
// server: 16,384 512-token rows per batch size and number of concurrent
// inserters, with the client's CPU time per row (this process) and the
// server's (its query threads, from system.events) next to rows/s. The
// server's background merges are reported as wall time per row. Each
// measurement starts once the merges of the previous ones are done; see
// BenchmarkServerInsertSustained for inserts that compete with merges.
//
//	go test ./bench/logstore/ -run XXX -bench ServerInsert -benchtime 1x
func BenchmarkServerInsert(b *testing.B) {
	rows := logstore.SyntheticRows("measure", 16384, 512, 2)
	srv := chtest.Start(b)
	s := openMigrated(b, tracelog.Config{DSN: srv.DSN})
	for _, workers := range []int{1, 2, 4} {
		for _, size := range []int{64, 256, 1024, 4096} {
			b.Run(fmt.Sprintf("workers=%d/batch=%d", workers, size), func(b *testing.B) {
				var st logstore.Result
				var client, server, merges time.Duration
				for i := 0; b.Loop(); i++ {
					run := fmt.Sprintf("measure-%d-%d-%d", workers, size, i)
					for j := range rows {
						rows[j].RunID = run
					}
					// Start from a quiet server: merges of the previous
					// cells' rows would otherwise compete with this one.
					if err := logstore.WaitMerges(b.Context(), s, time.Minute); err != nil {
						b.Fatal(err)
					}
					c0 := clientCPU()
					q0, m0 := serverCPU(b, s)
					var err error
					if st, err = logstore.InsertParallel(b.Context(), s, rows, size, workers); err != nil {
						b.Fatal(err)
					}
					c1 := clientCPU()
					q1, m1 := serverCPU(b, s)
					client, server, merges = client+c1-c0, server+q1-q0, merges+m1-m0
				}
				n := float64(b.N * len(rows))
				b.ReportMetric(st.RowsPerSecond(), "rows/s")
				b.ReportMetric(float64(client.Microseconds())/n, "client-µs/row")
				b.ReportMetric(float64(server.Microseconds())/n, "server-µs/row")
				b.ReportMetric(float64(merges.Microseconds())/n, "merge-µs/row")
			})
		}
	}
}

// BenchmarkServerInsertSustained measures a long insert into one table:
// runs of 16,384 512-token rows (262,144 rows in all, about 1.3 GB as
// RowBinary) inserted back to back by concurrent inserters, so that the
// server's background merges of earlier runs compete with the inserts as
// they do in a long training run. Next to rows/s it reports the CPU time
// per row of this process (the client) and of the whole server process
// (queries and merges, from /proc) while the rows went in, and the
// server's CPU per row for the merges still running after the last
// insert returned (waited for until system.merges is empty). Their sum is
// what the server spends per row; on a machine with C cores,
// C / (client + server + after) is the rate both can sustain at most.
//
//	go test ./bench/logstore/ -run XXX -bench ServerInsertSustained -benchtime 1x
func BenchmarkServerInsertSustained(b *testing.B) {
	const runs = 16
	rows := logstore.SyntheticRows("measure", 16384, 512, 2)
	for _, c := range []struct{ workers, batch int }{{4, 4096}, {8, 1024}, {16, 256}} {
		b.Run(fmt.Sprintf("workers=%d/batch=%d", c.workers, c.batch), func(b *testing.B) {
			srv := chtest.Start(b)
			if _, ok := srv.CPU(); !ok {
				b.Skip("needs a server this test started (not " + chtest.EnvDSN + ")")
			}
			s := openMigrated(b, tracelog.Config{DSN: srv.DSN})
			var elapsed, client, server, after time.Duration
			for i := 0; b.Loop(); i++ {
				s0, _ := srv.CPU()
				c0 := clientCPU()
				start := time.Now()
				for r := range runs {
					run := fmt.Sprintf("sustained-%d-%d", i, r)
					for j := range rows {
						rows[j].RunID = run
					}
					if _, err := logstore.InsertParallel(b.Context(), s, rows, c.batch, c.workers); err != nil {
						b.Fatal(err)
					}
				}
				elapsed += time.Since(start)
				c1 := clientCPU()
				s1, _ := srv.CPU()
				if err := logstore.WaitMerges(b.Context(), s, time.Minute); err != nil {
					b.Fatal(err)
				}
				s2, _ := srv.CPU()
				client, server, after = client+c1-c0, server+s1-s0, after+s2-s1
			}
			n := float64(b.N * runs * len(rows))
			b.ReportMetric(n/elapsed.Seconds(), "rows/s")
			b.ReportMetric(float64(client.Microseconds())/n, "client-µs/row")
			b.ReportMetric(float64(server.Microseconds())/n, "server-µs/row")
			b.ReportMetric(float64(after.Microseconds())/n, "after-µs/row")
		})
	}
}
