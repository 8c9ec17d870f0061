package main

import (
	"context"
	"fmt"
	"log/slog"
	"os"
	"os/signal"
	"syscall"
	"testing"
)

// Environment of a stage process started by a test (the test binary
// re-executed): it runs one stage of the stage table and exits.
const (
	envStageProc    = "WSGRPO_CMD_TEST_STAGE"
	envStageProcURL = "WSGRPO_CMD_TEST_STAGE_NATS"
	envStageProcRun = "WSGRPO_CMD_TEST_STAGE_RUN"
)

func TestMain(m *testing.M) {
	if spec := os.Getenv(envRSSChild); spec != "" {
		os.Exit(rssChild(spec))
	}
	if name := os.Getenv(envStageProc); name != "" {
		os.Exit(stageProcess(name))
	}
	os.Exit(m.Run())
}

// stageProcess runs one stage until SIGTERM, as `wsgrpo stage NAME` does.
func stageProcess(name string) int {
	cfg := DefaultConfig()
	cfg.Run, cfg.NATS = os.Getenv(envStageProcRun), os.Getenv(envStageProcURL)
	cfg.NoLabeler = true
	cfg.Sampler = SamplerConfig{Samples: 3, MaxNewTokens: 200}
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGTERM)
	defer stop()
	log := slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelWarn}))
	if err := runStage(ctx, cfg, log, name, ""); err != nil {
		fmt.Fprintln(os.Stderr, "stage process:", err)
		return 1
	}
	return 0
}
