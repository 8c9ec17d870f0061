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
)

func main() {
	if spec := os.Getenv(envRSSChild); spec != "" {
		os.Exit(rssChild(spec))
	}
	tuneGC()
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	err := newRootCmd().ExecuteContext(ctx)
	stop()
	if err != nil {
		fmt.Fprintln(os.Stderr, "wsgrpo:", err)
		if errors.Is(err, ErrConfig) {
			os.Exit(2)
		}
		os.Exit(1)
	}
}
