package main

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"path/filepath"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/spf13/pflag"

	"github.com/wsgrpo/wsgrpo/internal/diskfull"
	"github.com/wsgrpo/wsgrpo/pipeline"
)

// session is a connection to the run's JetStream, embedded or external.
type session struct {
	nc     *nats.Conn
	js     jetstream.JetStream
	topo   pipeline.Topology
	srv    *pipeline.Server // nil with an external server
	reg    *prometheus.Registry
	metric *pipeline.Metrics
	// learnerSteps is the step log of a learner built in this process
	// (train's progress line watches it); nil otherwise.
	learnerSteps *stepLog
	// release ends the claim on the run directory of the embedded server.
	release func()
	// metrics is the Prometheus endpoint (--metrics), closed with the
	// session so that the next session of the command (train's evaluations
	// and training phase) can serve on the same address.
	metrics *pipeline.MetricsServer
}

// openSession connects to cfg.NATS, or starts the embedded server with its
// storage in the run directory (claimed until close: claimRunDir), and
// ensures the run's streams and buckets.
func openSession(ctx context.Context, cfg Config, log *slog.Logger, listen bool) (*session, error) {
	topo, err := cfg.topology()
	if err != nil {
		return nil, err
	}
	return openSessionAt(ctx, cfg, topo, log, listen, "", 0)
}

// openStageSession is openSession for a process that runs one stage,
// principal (pipeline.Principals): with an external server its replies
// come back on that stage's own inbox, the only one a stage user of a
// secured server (`wsgrpo nats-config`) may read.
func openStageSession(ctx context.Context, cfg Config, log *slog.Logger, principal string) (*session, error) {
	return openStageSessionWait(ctx, cfg, log, principal, 0)
}

// openSessionAt is openSession with the run's topology (cfg.topology(),
// possibly adjusted) and the embedded server's listen address.
func openSessionAt(ctx context.Context, cfg Config, topo pipeline.Topology, log *slog.Logger, listen bool, host string, port int) (*session, error) {
	return openSessionWait(ctx, cfg, topo, log, listen, host, port, "", 0)
}

// defaultNATSWait is the default --nats-wait of the commands that run a
// stage or the prompt source against an external server.
const defaultNATSWait = 2 * time.Minute

// addNATSWaitFlag registers --nats-wait into wait.
func addNATSWaitFlag(fs *pflag.FlagSet, wait *time.Duration) {
	fs.DurationVar(wait, "nats-wait", defaultNATSWait,
		"how long a starting process waits for the NATS server (to accept its connection and answer its first requests) before it gives up; 0: not at all")
}

// openStageSessionWait is openStageSession for a process that may start
// before its NATS server, or during an outage: until wait has passed it
// tries again to connect (logging the URL it waits for) and to ensure the
// run's streams.
func openStageSessionWait(ctx context.Context, cfg Config, log *slog.Logger, principal string, wait time.Duration) (*session, error) {
	topo, err := cfg.topology()
	if err != nil {
		return nil, err
	}
	return openSessionWait(ctx, cfg, topo, log, false, "", 0, principal, wait)
}

// waitable reports whether err, of a request on nc, may succeed once the
// NATS server is back: it timed out or met a lost connection, and it was
// not a request the server refused for permissions (which times out too).
func waitable(nc *nats.Conn, err error) bool {
	return pipeline.IsTransient(err) && !errors.Is(pipeline.WithRefusal(nc, err), nats.ErrPermissionViolation)
}

// openSessionWait is openSessionAt for principal ("" for no stage in
// particular: see openStageSession) that, with an external server, waits
// up to wait for it (0: not at all).
func openSessionWait(ctx context.Context, cfg Config, topo pipeline.Topology, log *slog.Logger, listen bool, host string, port int, principal string, wait time.Duration) (*session, error) {
	var err error
	deadline := time.Now().Add(wait)
	s := &session{topo: topo, reg: prometheus.NewRegistry()}
	if cfg.NATS == "" {
		if s.release, err = claimRunDir(cfg); err != nil {
			return nil, err
		}
		s.srv, err = pipeline.StartServer(pipeline.ServerConfig{
			StoreDir: filepath.Join(cfg.RunDir(), "nats"),
			Listen:   listen,
			Host:     host,
			Port:     port,
			Logger:   log.With("component", "nats-server"),
		})
		if err != nil {
			s.close()
			return nil, fmt.Errorf("start embedded NATS: %w", err)
		}
		if listen {
			log.Info("embedded NATS server listening", "url", s.srv.URL())
			if err := recordRunNATS(cfg.RunDir(), s.srv.URL()); err != nil {
				log.Warn("could not record the NATS URL in the run directory's lock", "err", err)
			}
		}
		s.nc, err = s.srv.Connect()
	} else {
		var opts []nats.Option
		if opts, err = natsOptions(cfg.NATSAuth, log, principal); err == nil {
			s.nc, err = pipeline.ConnectWait(ctx, cfg.NATS, wait, log, opts...)
		}
	}
	if err != nil {
		s.close()
		return nil, fmt.Errorf("connect to NATS: %w", err)
	}
	if s.js, err = pipeline.NewJetStream(s.nc); err != nil {
		s.close()
		return nil, err
	}
	ensure := func(ctx context.Context) error { return topo.Ensure(ctx, s.js) }
	if err := pipeline.WaitTransient(ctx, deadline, log, "create the streams of run "+cfg.Run, func(err error) bool { return waitable(s.nc, err) }, ensure); err != nil {
		err = pipeline.WithRefusal(s.nc, err)
		s.close()
		return nil, fmt.Errorf("create streams of run %s: %w", cfg.Run, err)
	}
	s.reg.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	if s.metric, err = pipeline.NewMetrics(s.reg); err != nil {
		s.close()
		return nil, err
	}
	if cfg.Metrics != "" {
		if s.metrics, err = pipeline.ServeMetrics(ctx, cfg.Metrics, s.reg, log); err != nil {
			s.close()
			return nil, fmt.Errorf("serve metrics: %w", err)
		}
		log.Info("serving Prometheus metrics", "addr", s.metrics.Addr().String())
	}
	return s, nil
}

// storageErr is the embedded server's report of a store out of space
// (pipeline.Server.StorageErr), for the runners; nil with an external
// server.
func (s *session) storageErr() func() error {
	if s.srv == nil {
		return nil
	}
	return s.srv.StorageErr
}

// storeDir is the embedded server's store directory, for the runners; ""
// with an external server.
func (s *session) storeDir() string {
	if s.srv == nil {
		return ""
	}
	return s.srv.StoreDir()
}

// whyFailed returns err, a failed JetStream write of this session, or the
// out-of-space error behind it: the embedded server's report of its store
// (a full file store answers no more publishes, so err is only a
// timeout), or err itself when it says so.
func (s *session) whyFailed(err error) error {
	if err == nil || errors.Is(err, pipeline.ErrStorageFull) {
		return err
	}
	if s.srv != nil {
		if full := s.srv.StorageErr(); full != nil {
			return fmt.Errorf("%w (%w)", full, err)
		}
	}
	if pipeline.IsStorageFull(err) && s.srv != nil {
		// The embedded server refused the write before its own check saw
		// the store full: the store is its directory.
		return diskfull.NewAt("the JetStream store", s.srv.StoreDir(), -1, err)
	}
	if pipeline.IsStorageFull(err) {
		where := "the NATS server"
		if s.nc != nil && s.nc.ConnectedUrlRedacted() != "" {
			where += " " + s.nc.ConnectedUrlRedacted()
		}
		return diskfull.New("the JetStream store", where, -1, err)
	}
	return err
}

func (s *session) close() {
	if s.metrics != nil {
		_ = s.metrics.Close()
		s.metrics = nil
	}
	if s.nc != nil {
		s.nc.Close()
	}
	if s.srv != nil {
		s.srv.Shutdown()
	}
	if s.release != nil {
		s.release()
		s.release = nil
	}
}
