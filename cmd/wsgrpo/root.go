package main

import (
	"fmt"
	"io"
	"log/slog"
	"os"

	"github.com/spf13/cobra"
)

func newRootCmd() *cobra.Command {
	root := &cobra.Command{
		Use:   "wsgrpo",
		Short: "WS-GRPO training as a NATS JetStream pipeline",
		Long: `wsgrpo trains language-model policies with WS-GRPO (weakly-supervised
group-relative policy optimization). Stages talk only through NATS JetStream;
every message is one Arrow record batch; every trajectory lands in ClickHouse.

Configuration: defaults < --config FILE (YAML) < WSGRPO_* environment < flags.`,
		SilenceUsage:  true,
		SilenceErrors: true,
	}
	root.AddCommand(
		newTrainCmd(),
		newStageCmd(),
		newVersionCmd(),
		newBenchCmd(),
		newSQLCmd(),
		newReportCmd(),
		newReplayCmd(),
		newExportCmd(),
		newImportCmd(),
		newDLQCmd(),
		newPretrainCmd(),
		newEvalCmd(),
		newLabelerCmd(),
		newResultsCmd(),
		newNATSConfigCmd(),
		newSourceCmd(),
	)
	return root
}

// newLogger builds the process logger from the configuration.
func newLogger(c Config, w io.Writer) *slog.Logger {
	var level slog.Level
	_ = level.UnmarshalText([]byte(c.Log.Level))
	opts := &slog.HandlerOptions{Level: level}
	if c.Log.Format == "json" {
		return slog.New(slog.NewJSONHandler(w, opts))
	}
	return slog.New(slog.NewTextHandler(w, opts))
}

// setup loads the configuration of cmd and returns it with a logger.
func setup(cmd *cobra.Command) (Config, *slog.Logger, error) {
	c, err := loadConfig(cmd.Flags())
	if err != nil {
		return Config{}, nil, err
	}
	return c, newLogger(c, os.Stderr), nil
}

// out is where commands print results for people.
func out(cmd *cobra.Command, format string, args ...any) {
	fmt.Fprintf(cmd.OutOrStdout(), format, args...)
}
