package replay_test

import (
	"fmt"
	"testing"

	"github.com/wsgrpo/wsgrpo/bench/logstore"
	"github.com/wsgrpo/wsgrpo/pipeline/pipetest"
	"github.com/wsgrpo/wsgrpo/replay"
	"github.com/wsgrpo/wsgrpo/tracelog"
	"github.com/wsgrpo/wsgrpo/tracelog/chtest"
)

// BenchmarkReplay measures replay throughput from each backend into an
// embedded JetStream (file storage) for 512-token trajectories, labeled
// batches of 64 rows: the log read, the conversion and the publication.
func BenchmarkReplay(b *testing.B) {
	const rows, tokens = 8192, 512
	for _, be := range chtest.Backends() {
		b.Run(be.Name, func(b *testing.B) {
			cfg, _ := be.Open(b)
			s, err := tracelog.Open(testCtx(b), cfg)
			if err != nil {
				b.Fatal(err)
			}
			b.Cleanup(func() { _ = s.Close() })
			if err := s.Migrate(testCtx(b)); err != nil {
				b.Fatal(err)
			}
			insertRows(b, s, logstore.SyntheticRows(srcRun, rows, tokens, 1))
			js := pipetest.JetStream(b)
			i := 0
			for b.Loop() {
				b.StopTimer()
				topo := ensureRun(b, js, fmt.Sprintf("bench%d", i))
				i++
				b.StartTimer()
				sum, err := replay.Replay(testCtx(b), s, js, replay.Options{Run: srcRun, Into: topo, Target: replay.TargetLabeler})
				if err != nil {
					b.Fatal(err)
				}
				if sum.Rows != rows {
					b.Fatalf("replayed %d rows, want %d", sum.Rows, rows)
				}
			}
			b.ReportMetric(float64(rows*b.N)/b.Elapsed().Seconds(), "rows/s")
		})
	}
}
