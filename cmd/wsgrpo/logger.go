package main

import (
	"context"
	"fmt"
	"log/slog"
	"time"

	"github.com/wsgrpo/wsgrpo/stages/logger"
	"github.com/wsgrpo/wsgrpo/stages/stage"
	"github.com/wsgrpo/wsgrpo/tracelog"
)

// openLogForWrite opens (creating and migrating if needed) the trajectory
// log cfg selects: the ClickHouse server at cfg.ClickHouseDSN, or embedded
// chDB in the run directory.
// The embedded log's run directory is claimed (claimRunDir) until the
// store is closed (tracelog.Config.OnClose).
func openLogForWrite(ctx context.Context, cfg Config, log *slog.Logger) (_ tracelog.Store, err error) {
	release := func() {}
	if cfg.ClickHouseDSN == "" {
		if release, err = claimRunDir(cfg); err != nil {
			return nil, err
		}
	}
	tc := cfg.logConfig(log)
	tc.OnClose = release
	s, err := tracelog.Open(ctx, tc)
	if err != nil {
		release()
		return nil, logError(cfg, err)
	}
	if err := s.Migrate(ctx); err != nil {
		s.Close()
		return nil, fmt.Errorf("migrate trajectory log: %w", logError(cfg, err))
	}
	return s, nil
}

// newLoggerStage builds the logger stage: labeled rows (verified rows in a
// run without a labeler) into the trajectory log.
func newLoggerStage(ctx context.Context, env stageEnv) (stage.Processor, error) {
	s, err := env.logs.get(ctx)
	if err != nil {
		return nil, err
	}
	opts := logger.Options{Logger: env.log}
	if env.rc.Concurrency > 1 && env.cfg.ClickHouseDSN == "" {
		// Concurrent batches share one chDB INSERT (group commit). The
		// server backend groups concurrent inserts itself, and a linger
		// only slows it (docs/benchmarks/tracelog.md).
		opts.Linger = 20 * time.Millisecond
	}
	return logger.New(s, opts), nil
}
