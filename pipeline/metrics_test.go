package pipeline

import (
	"context"
	"io"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/apache/arrow-go/v18/arrow"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/wsgrpo/wsgrpo/schemas"
)

// TestMetricsServed runs a sink over a few batches and scrapes /metrics.
func TestMetricsServed(t *testing.T) {
	mem := newChecked(t)
	srv := startServer(t, false)
	js := connectJS(t, srv)
	top := ensureRun(t, js, "metrics", jetstream.MemoryStorage)
	reg := prometheus.NewRegistry()
	m, err := NewMetrics(reg)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := NewMetrics(reg); err == nil {
		t.Fatal("registering the collectors twice succeeded")
	}
	var recs []arrow.RecordBatch
	for b := range 5 {
		recs = append(recs, schemas.NewVerifiedBatch(mem, []schemas.Verified{{Rollout: rolloutRows(top.Run, b, 1, 4)[0]}}))
	}
	publishRecs(t, js, mustHop(t, top, schemas.KindVerified).Subject, recs)
	for _, r := range recs {
		r.Release()
	}
	cfg, err := top.RunnerConfig(StageLabeler)
	if err != nil {
		t.Fatal(err)
	}
	cfg.OutputSubject, cfg.OutputKind = "", ""
	cfg.Allocator, cfg.Metrics, cfg.LagInterval = mem, m, 20*time.Millisecond
	sink := newCollector()
	startRunner(t, js, cfg, sink)
	waitFor(t, 10*time.Second, "five rows", func() bool { return sink.distinct() == 5 })

	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	ms, err := ServeMetrics(ctx, "127.0.0.1:0", reg, nil)
	if err != nil {
		t.Fatal(err)
	}
	addr := ms.Addr()
	var body string
	waitFor(t, 10*time.Second, "the batch counter on /metrics", func() bool {
		resp, err := http.Get("http://" + addr.String() + "/metrics")
		if err != nil {
			return false
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		body = string(b)
		return strings.Contains(body, `wsgrpo_stage_batches_total{outcome="ok",stage="labeler"} 5`)
	})
	for _, want := range []string{"wsgrpo_stage_rows_total", "wsgrpo_stage_batch_seconds_bucket", "wsgrpo_stage_queue_pending"} {
		if !strings.Contains(body, want) {
			t.Errorf("/metrics lacks %s", want)
		}
	}
}

// TestMetricsServerCloseReleasesPort: a closed server's address can be
// served again at once (a command that opens one session after another
// serves its metrics on one address).
func TestMetricsServerCloseReleasesPort(t *testing.T) {
	reg := prometheus.NewRegistry()
	first, err := ServeMetrics(t.Context(), "127.0.0.1:0", reg, nil)
	if err != nil {
		t.Fatal(err)
	}
	addr := first.Addr().String()
	if _, err := ServeMetrics(t.Context(), addr, reg, nil); err == nil {
		t.Fatal("a second server listened on a live server's address")
	}
	if err := first.Close(); err != nil {
		t.Fatal(err)
	}
	if err := first.Close(); err != nil {
		t.Fatalf("second Close: %v", err)
	}
	second, err := ServeMetrics(t.Context(), addr, reg, nil)
	if err != nil {
		t.Fatalf("serve again on %s after Close: %v", addr, err)
	}
	defer second.Close()
	resp, err := http.Get("http://" + addr + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("GET /metrics: %s", resp.Status)
	}
}
