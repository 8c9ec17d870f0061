// Package pipetest gives tests outside package pipeline a real NATS
// JetStream: an embedded server in the test's temporary directory, or a
// connection to a server's URL, closed when the test ends.
package pipetest

import (
	"testing"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/wsgrpo/wsgrpo/pipeline"
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
