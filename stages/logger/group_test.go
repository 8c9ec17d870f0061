package logger_test

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/apache/arrow-go/v18/arrow"
	"github.com/apache/arrow-go/v18/arrow/memory"

	"github.com/wsgrpo/wsgrpo/bench/logstore"
	"github.com/wsgrpo/wsgrpo/schemas"
	"github.com/wsgrpo/wsgrpo/stages/logger"
	"github.com/wsgrpo/wsgrpo/tracelog"
	"github.com/wsgrpo/wsgrpo/tracelog/chtest"
)

// countingStore counts the Insert calls reaching a real store.
type countingStore struct {
	tracelog.Store
	inserts atomic.Int64
}

func (c *countingStore) Insert(ctx context.Context, rows []tracelog.Row) error {
	c.inserts.Add(1)
	return c.Store.Insert(ctx, rows)
}

// batches builds n labeled batches of size rows each, with tokens
// completion tokens per row and distinct trajectory ids.
func batches(mem memory.Allocator, run string, n, size, tokens int) []arrow.RecordBatch {
	rows := logstore.SyntheticRows(run, n*size, tokens, 1)
	out := make([]arrow.RecordBatch, n)
	for i := range out {
		ls := make([]schemas.Labeled, size)
		for j := range ls {
			ls[j] = rows[i*size+j].LabeledRow()
		}
		out[i] = schemas.NewLabeledBatch(mem, ls)
	}
	return out
}

// processAll calls Process on every batch from workers goroutines (a runner
// with Concurrency workers) and returns the first error.
func processAll(ctx context.Context, p *logger.Processor, recs []arrow.RecordBatch, workers int) error {
	var (
		wg    sync.WaitGroup
		next  atomic.Int64
		first atomic.Pointer[error]
	)
	for range workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				i := int(next.Add(1)) - 1
				if i >= len(recs) {
					return
				}
				if _, err := p.Process(ctx, recs[i]); err != nil {
					first.CompareAndSwap(nil, &err)
				}
			}
		}()
	}
	wg.Wait()
	if e := first.Load(); e != nil {
		return *e
	}
	return nil
}

func TestGroupCommit(t *testing.T) {
	for _, b := range chtest.Backends() {
		t.Run(b.Name, func(t *testing.T) {
			mem := memory.NewCheckedAllocator(memory.NewGoAllocator())
			defer mem.AssertSize(t, 0)
			cfg, srv := b.Open(t)
			inner, err := tracelog.Open(ctx(t), cfg)
			if err != nil {
				t.Fatal(err)
			}
			defer inner.Close()
			if err := inner.Migrate(ctx(t)); err != nil {
				t.Fatal(err)
			}
			store := &countingStore{Store: inner}
			p := logger.New(store, logger.Options{Linger: 200 * time.Millisecond, MaxRows: 256})
			recs := batches(mem, "g", 32, 64, 8)
			defer func() {
				for _, r := range recs {
					r.Release()
				}
			}()
			if err := processAll(ctx(t), p, recs, 8); err != nil {
				t.Fatal(err)
			}
			if n, err := store.Count(ctx(t), "g"); err != nil || n != 32*64 {
				t.Fatalf("count = %d, %v; want %d", n, err, 32*64)
			}
			if got := store.inserts.Load(); got >= 32 {
				t.Fatalf("%d inserts for 32 batches from 8 workers: no grouping", got)
			}
			t.Logf("32 batches in %d inserts", store.inserts.Load())
			if srv == nil || srv.External() {
				return
			}
			// Every member of a failed group sees the failure.
			srv.Stop(t)
			err = processAll(ctx(t), p, recs[:8], 8)
			if !errors.Is(err, tracelog.ErrUnavailable) || errors.Is(err, schemas.ErrInvalid) {
				t.Fatalf("group insert while down: err = %v", err)
			}
		})
	}
}

// BenchmarkLogger measures the logger stage's throughput over batches of
// 64 512-token rows (what a NATS message carries), with 8 concurrent workers,
// inserting each batch alone and with group commit.
//
//	go test ./stages/logger/ -run XXX -bench Logger -benchtime 3x
func BenchmarkLogger(b *testing.B) {
	mem := memory.NewGoAllocator()
	for _, be := range chtest.Backends() {
		for _, linger := range []time.Duration{0, 20 * time.Millisecond} {
			b.Run(fmt.Sprintf("%s/linger=%v", be.Name, linger), func(b *testing.B) {
				cfg, _ := be.Open(b)
				store, err := tracelog.Open(b.Context(), cfg)
				if err != nil {
					b.Fatal(err)
				}
				defer store.Close()
				if err := store.Migrate(b.Context()); err != nil {
					b.Fatal(err)
				}
				p := logger.New(store, logger.Options{Linger: linger})
				const n, size = 64, 64
				rows := 0
				for i := 0; b.Loop(); i++ {
					b.StopTimer()
					recs := batches(mem, fmt.Sprint("bench", i), n, size, 512)
					b.StartTimer()
					if err := processAll(b.Context(), p, recs, 8); err != nil {
						b.Fatal(err)
					}
					rows += n * size
					for _, r := range recs {
						r.Release()
					}
				}
				b.ReportMetric(float64(rows)/b.Elapsed().Seconds(), "rows/s")
			})
		}
	}
}
