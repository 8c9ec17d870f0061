package tracelog_test

import (
	"fmt"
	"testing"

	"github.com/wsgrpo/wsgrpo/bench/logstore"
	"github.com/wsgrpo/wsgrpo/tracelog"
	"github.com/wsgrpo/wsgrpo/tracelog/chtest"
)

// BenchmarkInsert measures Insert of 512-token trajectories into each
// backend at the batch sizes the logger sees. Each iteration inserts one
// batch of new trajectories (a new run id), as the logger does.
//
//	go test ./tracelog/ -run XXX -bench Insert -benchtime 20x
func BenchmarkInsert(b *testing.B) {
	const tokens = 512
	src := logstore.SyntheticRows("bench", 4096, tokens, 1)
	for _, be := range chtest.Backends() {
		b.Run(be.Name, func(b *testing.B) {
			cfg, _ := be.Open(b)
			s, err := tracelog.Open(b.Context(), cfg)
			if err != nil {
				b.Fatal(err)
			}
			defer s.Close()
			if err := s.Migrate(b.Context()); err != nil {
				b.Fatal(err)
			}
			for _, size := range []int{64, 256, 1024, 4096} {
				b.Run(fmt.Sprintf("batch=%d", size), func(b *testing.B) {
					batch := make([]tracelog.Row, size)
					copy(batch, src)
					b.ResetTimer()
					for i := 0; b.Loop(); i++ {
						b.StopTimer()
						run := fmt.Sprintf("bench-%d-%d", size, i)
						for j := range batch {
							batch[j].RunID = run
						}
						b.StartTimer()
						if err := s.Insert(b.Context(), batch); err != nil {
							b.Fatal(err)
						}
					}
					b.ReportMetric(float64(size)*float64(b.N)/b.Elapsed().Seconds(), "rows/s")
				})
			}
		})
	}
}
