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
		fmt.Fprintln(os.Stderr, "wsgrpo:", err)
		if errors.Is(err, ErrConfig) {
			return 2
		}
		return 1
	}
	return 0
}
