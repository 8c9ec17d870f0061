// Command natsbenchserver starts the embedded NATS server exactly as the
// pipeline configures it (JetStream, file storage, 8 MiB max_payload), but
// listening on a TCP port, so that `nats bench` from natscli can measure the
// same server the pipeline benchmarks use. It runs until SIGINT/SIGTERM.
//
//	go run ./pipeline/internal/natsbenchserver -port 4333 -dir /tmp/natsbench
package main

import (
	"context"
	"flag"
	"log/slog"
	"os"
	"os/signal"
	"syscall"

	"github.com/wsgrpo/wsgrpo/pipeline"
)

func main() {
	port := flag.Int("port", 4333, "TCP port to listen on (127.0.0.1)")
	dir := flag.String("dir", "", "JetStream store directory (default: a temporary directory)")
	flag.Parse()
	log := slog.New(slog.NewTextHandler(os.Stderr, nil))
	if *dir == "" {
		d, err := os.MkdirTemp("", "natsbench-")
		if err != nil {
			log.Error("temp dir", "err", err)
			os.Exit(1)
		}
		defer os.RemoveAll(d)
		*dir = d
	}
	srv, err := pipeline.StartServer(pipeline.ServerConfig{StoreDir: *dir, Listen: true, Port: *port})
	if err != nil {
		log.Error("start", "err", err)
		os.Exit(1)
	}
	log.Info("nats server ready", "url", srv.URL(), "store", *dir)
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	<-ctx.Done()
	srv.Shutdown()
}
