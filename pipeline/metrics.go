package pipeline

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"
)

// Metrics holds the Prometheus collectors of every runner in a process,
// labelled by stage. Create one per registry and share it between runners.
type Metrics struct {
	Batches     *prometheus.CounterVec   // stage, outcome (ok, retry, dead_letter, shutdown)
	Rows        *prometheus.CounterVec   // stage, direction (in, out)
	Errors      *prometheus.CounterVec   // stage, kind (transient, unavailable, permanent, invalid, publish, ack, fetch)
	DeadLetters *prometheus.CounterVec   // stage, reason
	Redelivered *prometheus.CounterVec   // stage
	Latency     *prometheus.HistogramVec // stage: seconds from fetch to ack
	Pending     *prometheus.GaugeVec     // stage: messages waiting in the input consumer (queue lag)
	AckPending  *prometheus.GaugeVec     // stage: messages delivered and not yet acknowledged
	Deferred    *prometheus.GaugeVec     // stage: processed inputs waiting for their deferred stage.Ack
}

// NewMetrics creates the collectors and registers them on reg (nil: they are
// not registered anywhere, which suits tests and benchmarks).
func NewMetrics(reg prometheus.Registerer) (*Metrics, error) {
	m := &Metrics{
		Batches: prometheus.NewCounterVec(prometheus.CounterOpts{
			Namespace: "wsgrpo", Subsystem: "stage", Name: "batches_total",
			Help: "Input batches handled, by outcome.",
		}, []string{"stage", "outcome"}),
		Rows: prometheus.NewCounterVec(prometheus.CounterOpts{
			Namespace: "wsgrpo", Subsystem: "stage", Name: "rows_total",
			Help: "Rows read (in) and published (out).",
		}, []string{"stage", "direction"}),
		Errors: prometheus.NewCounterVec(prometheus.CounterOpts{
			Namespace: "wsgrpo", Subsystem: "stage", Name: "errors_total",
			Help: "Errors, by kind.",
		}, []string{"stage", "kind"}),
		DeadLetters: prometheus.NewCounterVec(prometheus.CounterOpts{
			Namespace: "wsgrpo", Subsystem: "stage", Name: "dead_letters_total",
			Help: "Messages sent to the dead-letter stream, by reason.",
		}, []string{"stage", "reason"}),
		Redelivered: prometheus.NewCounterVec(prometheus.CounterOpts{
			Namespace: "wsgrpo", Subsystem: "stage", Name: "redelivered_total",
			Help: "Input messages received more than once.",
		}, []string{"stage"}),
		Latency: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Namespace: "wsgrpo", Subsystem: "stage", Name: "batch_seconds",
			Help:    "Seconds from fetching a batch to acknowledging it.",
			Buckets: prometheus.ExponentialBuckets(0.0005, 2, 18),
		}, []string{"stage"}),
		Pending: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Namespace: "wsgrpo", Subsystem: "stage", Name: "queue_pending",
			Help: "Messages waiting in the stage's input consumer (queue lag).",
		}, []string{"stage"}),
		AckPending: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Namespace: "wsgrpo", Subsystem: "stage", Name: "ack_pending",
			Help: "Messages delivered to the stage and not yet acknowledged.",
		}, []string{"stage"}),
		Deferred: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Namespace: "wsgrpo", Subsystem: "stage", Name: "deferred",
			Help: "Processed input messages whose acknowledgement the processor deferred, waiting for its Ack.",
		}, []string{"stage"}),
	}
	if reg == nil {
		return m, nil
	}
	for _, c := range []prometheus.Collector{m.Batches, m.Rows, m.Errors, m.DeadLetters, m.Redelivered, m.Latency, m.Pending, m.AckPending, m.Deferred} {
		if err := reg.Register(c); err != nil {
			return nil, fmt.Errorf("register metrics: %w", err)
		}
	}
	return m, nil
}

// MetricsServer is a Prometheus endpoint that ServeMetrics started.
type MetricsServer struct {
	srv  *http.Server
	ln   net.Listener
	addr net.Addr
	once sync.Once
	err  error
}

// Addr is the address it listens on (useful with port 0).
func (m *MetricsServer) Addr() net.Addr { return m.addr }

// Close stops the server now and releases its port, so that another
// server can listen on the same address at once. It is safe to call more
// than once and after the context ended.
func (m *MetricsServer) Close() error {
	m.once.Do(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		m.err = m.srv.Shutdown(ctx)
		// Serve may not have started yet (then Shutdown knows no
		// listener): close it here so the port is free when Close returns.
		_ = m.ln.Close()
	})
	return m.err
}

// ServeMetrics serves g on http://addr/metrics until ctx is done or the
// returned server is closed, whichever comes first.
func ServeMetrics(ctx context.Context, addr string, g prometheus.Gatherer, log *slog.Logger) (*MetricsServer, error) {
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return nil, fmt.Errorf("metrics listen %s: %w", addr, err)
	}
	mux := http.NewServeMux()
	mux.Handle("/metrics", promhttp.HandlerFor(g, promhttp.HandlerOpts{}))
	m := &MetricsServer{srv: &http.Server{Handler: mux, ReadHeaderTimeout: 5 * time.Second}, ln: ln, addr: ln.Addr()}
	go func() {
		if err := m.srv.Serve(ln); err != nil && !errors.Is(err, http.ErrServerClosed) {
			log.Error("metrics server stopped", "addr", ln.Addr().String(), "err", err)
		}
	}()
	context.AfterFunc(ctx, func() { _ = m.Close() })
	log.Info("serving metrics", "addr", ln.Addr().String())
	return m, nil
}
