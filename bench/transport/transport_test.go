package transport_test

import (
	"context"
	"fmt"
	"os"
	"testing"

	"github.com/wsgrpo/wsgrpo/bench/transport"
	"github.com/wsgrpo/wsgrpo/pipeline"
)

// benchURLEnv names an external (listening) NATS server for the benchmarks,
// e.g. one started by pipeline/internal/natsbenchserver; unset, they start an
// in-process server.
const benchURLEnv = "WSGRPO_BENCH_NATS_URL"

// TestMeasurements runs each measurement on a few batches: they must
// complete and report consistent figures.
func TestMeasurements(t *testing.T) {
	ctx := context.Background()
	o := transport.Options{Rows: 8, Tokens: 32, Batches: 6, Workers: 2}
	for _, tc := range []struct {
		name string
		fn   func(context.Context, transport.Options) (transport.Result, error)
	}{
		{"round trip", transport.RoundTrip}, {"hop", transport.Hop}, {"channel", transport.ChannelHop},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r, err := tc.fn(ctx, o)
			if err != nil {
				t.Fatal(err)
			}
			if r.Batches != o.Batches || r.Rows != o.Batches*o.Rows || r.MsgBytes <= 0 || r.Elapsed <= 0 || r.RowsPerSec <= 0 {
				t.Fatalf("result %+v", r)
			}
		})
	}
	if _, err := transport.Hop(ctx, transport.Options{FetchSize: pipeline.MaxFetch + 1}); err == nil {
		t.Fatal("Hop accepted FetchSize over MaxFetch")
	}
}

func report(b *testing.B, r transport.Result) {
	b.Helper()
	b.ReportMetric(float64(r.PerBatch.Microseconds()), "µs/batch")
	b.ReportMetric(r.RowsPerSec, "rows/s")
	b.ReportMetric(r.BytesPerSec/1e6, "MB/s")
	b.ReportMetric(float64(r.MsgBytes), "msg-bytes")
}

// BenchmarkRoundTrip: encode + publish + PubAck + fetch + decode + ack of one
// rollout batch of 512-token rows.
func BenchmarkRoundTrip(b *testing.B) {
	for _, rows := range []int{64, 256} {
		b.Run(fmt.Sprintf("rows=%d", rows), func(b *testing.B) {
			r, err := transport.RoundTrip(b.Context(), transport.Options{Rows: rows, Batches: max(b.N, 20), NATSURL: os.Getenv(benchURLEnv)})
			if err != nil {
				b.Fatal(err)
			}
			report(b, r)
			b.ReportMetric(float64(r.Codec.Microseconds()), "codec-µs/batch")
		})
	}
}

// BenchmarkHop: rows/s through one runner hop (with 1 or 3 workers, pulling
// 1 or 4 messages at a time), and the channel baseline.
func BenchmarkHop(b *testing.B) {
	for _, rows := range []int{64, 256} {
		for _, w := range []int{1, 3} {
			for _, fetch := range []int{1, 4} {
				b.Run(fmt.Sprintf("nats/rows=%d/workers=%d/fetch=%d", rows, w, fetch), func(b *testing.B) {
					o := transport.Options{Rows: rows, Workers: w, FetchSize: fetch, Batches: max(b.N, 60), NATSURL: os.Getenv(benchURLEnv)}
					r, err := transport.Hop(b.Context(), o)
					if err != nil {
						b.Fatal(err)
					}
					report(b, r)
				})
			}
			b.Run(fmt.Sprintf("channel/rows=%d/workers=%d", rows, w), func(b *testing.B) {
				r, err := transport.ChannelHop(b.Context(), transport.Options{Rows: rows, Workers: w, Batches: max(b.N, 60)})
				if err != nil {
					b.Fatal(err)
				}
				report(b, r)
			})
		}
	}
}
