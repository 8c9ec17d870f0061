// Package pipetest gives tests outside package pipeline a real NATS
// JetStream: an embedded server in the test's temporary directory, or a
// connection to a server's URL, closed when the test ends; and the
// configuration file of a nats-server process (natsproc) to start.
package pipetest

import (
	"fmt"
	"os"
	"path/filepath"
	"testing"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/wsgrpo/wsgrpo/pipeline"
	"github.com/wsgrpo/wsgrpo/pipeline/pipetest/natsproc"
)

// JetStream starts an embedded JetStream server with its storage in a
// temporary directory and returns an in-process client; both are closed at
// cleanup.
func JetStream(tb testing.TB) jetstream.JetStream {
	tb.Helper()
	srv, err := pipeline.StartServer(pipeline.ServerConfig{StoreDir: tb.TempDir()})
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(srv.Shutdown)
	nc, err := srv.Connect()
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(nc.Close)
	js, err := pipeline.NewJetStream(nc)
	if err != nil {
		tb.Fatal(err)
	}
	return js
}

// Connect connects to the NATS server at url and returns its JetStream,
// closed at cleanup.
func Connect(tb testing.TB, url string) jetstream.JetStream {
	tb.Helper()
	nc, err := pipeline.Connect(url)
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(nc.Close)
	js, err := pipeline.NewJetStream(nc)
	if err != nil {
		tb.Fatal(err)
	}
	return js
}

// NATSProcessConf writes the configuration of a nats-server process for a
// test (pipeline.NATSConfig: JetStream with its store in dir/jetstream,
// listening on a free loopback port) to dir/nats.conf and returns the
// file and the port, for natsproc.Start. It skips the test when there is
// no nats-server binary (natsproc.Binary).
func NATSProcessConf(tb testing.TB, dir string) (path string, port int) {
	tb.Helper()
	natsproc.Binary(tb)
	port = natsproc.FreePort(tb)
	conf, err := pipeline.NATSConfig{Listen: fmt.Sprintf("127.0.0.1:%d", port), StoreDir: filepath.Join(dir, "jetstream")}.Render()
	if err != nil {
		tb.Fatal(err)
	}
	path = filepath.Join(dir, "nats.conf")
	if err := os.WriteFile(path, conf, 0o644); err != nil {
		tb.Fatal(err)
	}
	return path, port
}
