// Command wsgrpo trains language-model policies with WS-GRPO as a NATS
// JetStream pipeline of sampler, verifier, labeler and learner stages.
//
// Run `wsgrpo --help` for the commands.
package main

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/signal"
	"syscall"
	"time"

	"github.com/wsgrpo/wsgrpo/pipeline"
)

// processStart is when the process started: `train` reports the time from
// it to the first learner update.
var processStart = time.Now()

func main() {
	if spec := os.Getenv(envRSSChild); spec != "" {
		os.Exit(rssChild(spec))
	}
	tuneGC()
	os.Exit(runCLI(os.Args[1:]))
}

// runCLI runs the command line args (without the program name) and
// returns the exit status: 0, 2 for a configuration error, 1 for any
// other error, which it prints.
func runCLI(args []string) int {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	root := newRootCmd()
	root.SetArgs(args)
	err := root.ExecuteContext(ctx)
	stop()
	if err != nil {
		for _, line := range errorLines(err) {
			fmt.Fprintln(os.Stderr, "wsgrpo:", line)
		}
		if errors.Is(err, ErrConfig) {
			return 2
		}
		return 1
	}
	return 0
}

// errorLines is what runCLI prints for err: the error, or, for a store
// that ran out of space, first what is full, where and how much room is
// left, then what to do, then the error in full.
func errorLines(err error) []string {
	var full *pipeline.StorageFullError
	if !errors.As(err, &full) {
		return []string{err.Error()}
	}
	return []string{
		full.Summary(),
		"the run stopped: free space there, or move the run to a larger disk (--dir), and run it again (a training run: train --resume); " +
			"batches acknowledged so far are kept, and those in flight were handed back to be delivered again",
		"details: " + err.Error(),
	}
}
