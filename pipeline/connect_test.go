package pipeline

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"syscall"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
)

func TestIsTransient(t *testing.T) {
	for _, tc := range []struct {
		err  error
		want bool
	}{
		{context.DeadlineExceeded, true},
		{fmt.Errorf("run state put x: %w", context.DeadlineExceeded), true},
		{nats.ErrTimeout, true},
		{fmt.Errorf("publish: %w", errors.Join(nats.ErrDisconnected)), true},
		{nats.ErrNoResponders, true},
		{jetstream.ErrNoStreamResponse, true},
		{jetstream.ErrAsyncPublishTimeout, true},
		{context.Canceled, false},
		{nats.ErrPermissionViolation, false},
		{ErrBatchTooLarge, false},
		{jetstream.ErrStreamNotFound, false},
	} {
		if got := IsTransient(tc.err); got != tc.want {
			t.Errorf("IsTransient(%v) = %v, want %v", tc.err, got, tc.want)
		}
	}
}

func TestUnreachable(t *testing.T) {
	for _, tc := range []struct {
		err  error
		want bool
	}{
		{fmt.Errorf("connect x: %w", nats.ErrNoServers), true},
		{nats.ErrTimeout, true},
		{syscall.ECONNREFUSED, true},
		{io.EOF, true},
		{&net.DNSError{Err: "no such host", Name: "nats", IsNotFound: true}, true},
		{nats.ErrAuthorization, false},
		{ErrInvalidConfig, false},
	} {
		if got := unreachable(tc.err); got != tc.want {
			t.Errorf("unreachable(%v) = %v, want %v", tc.err, got, tc.want)
		}
	}
}

// TestConnectWaitGivesUp connects to a port nothing listens on: without a
// wait it returns the connect error, with one it tries until the wait
// has passed and says the server was unreachable; an ended context stops
// the wait.
func TestConnectWaitGivesUp(t *testing.T) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	url := "nats://" + l.Addr().String()
	_ = l.Close()
	cancelled, cancel := context.WithCancel(t.Context())
	cancel()
	for _, tc := range []struct {
		name string
		ctx  context.Context
		wait time.Duration
		want error
	}{
		{"no wait", t.Context(), 0, nats.ErrNoServers},
		{"a short wait", t.Context(), 600 * time.Millisecond, ErrServerUnreachable},
		{"context ended", cancelled, time.Hour, context.Canceled},
	} {
		t.Run(tc.name, func(t *testing.T) {
			nc, err := ConnectWait(tc.ctx, url, tc.wait, nil)
			if nc != nil {
				nc.Close()
			}
			if !errors.Is(err, tc.want) {
				t.Fatalf("ConnectWait: %v, want %v", err, tc.want)
			}
		})
	}
}
