package main

import (
	"context"
	"encoding/json"
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
	// envStageProcConfig, when set, is the whole configuration of the
	// stage process as JSON (run and NATS URL still come from the two
	// variables above); otherwise it runs a no-labeler sampler setup.
	envStageProcConfig = "WSGRPO_CMD_TEST_STAGE_CONFIG"
	// envCLI, when set, makes the test binary the wsgrpo binary: it runs
	// its command line arguments as a wsgrpo command line (runCLI).
	envCLI = "WSGRPO_CMD_TEST_CLI"
)

func TestMain(m *testing.M) {
	if spec := os.Getenv(envRSSChild); spec != "" {
		os.Exit(rssChild(spec))
	}
	if name := os.Getenv(envStageProc); name != "" {
		os.Exit(stageProcess(name))
	}
	if os.Getenv(envCLI) != "" {
		os.Exit(runCLI(os.Args[1:]))
	}
	os.Exit(m.Run())
}

// stageProcess runs one stage until SIGTERM, as `wsgrpo stage NAME` does.
func stageProcess(name string) int {
	cfg := DefaultConfig()
	cfg.NoLabeler = true
	cfg.Sampler = SamplerConfig{Samples: 3, MaxNewTokens: 200}
	if js := os.Getenv(envStageProcConfig); js != "" {
		cfg = DefaultConfig()
		if err := json.Unmarshal([]byte(js), &cfg); err != nil {
			fmt.Fprintln(os.Stderr, "stage process: config:", err)
			return 2
		}
	}
	cfg.Run, cfg.NATS = os.Getenv(envStageProcRun), os.Getenv(envStageProcURL)
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGTERM)
	defer stop()
	log := slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelWarn}))
	if err := runStage(ctx, cfg, log, name, ""); err != nil {
		fmt.Fprintln(os.Stderr, "stage process:", err)
		return 1
	}
	return 0
}
