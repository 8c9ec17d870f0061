package pipeline

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"syscall"
	"time"

	"github.com/nats-io/nats.go"
)

// ErrServerUnreachable is returned by ConnectWait when the NATS server
// could not be reached within the wait.
var ErrServerUnreachable = errors.New("NATS server unreachable")

// Backoff of ConnectWait and WaitTransient between attempts.
const (
	waitBackoffMin = 250 * time.Millisecond
	waitBackoffMax = 5 * time.Second
	// waitLogEvery spaces the reminders of what a process waits for.
	waitLogEvery = 15 * time.Second
)

// ConnectWait is Connect for a process that may start before its NATS
// server: while the server cannot be reached (nothing listens at url yet,
// its name does not resolve yet, it does not answer), it tries again with
// backoff until wait has passed or ctx ends, logging what it waits for. An
// error that waiting cannot fix (credentials refused, a bad URL or TLS
// setup) returns at once; so does any error when wait is 0. A wait that
// runs out returns an error wrapping ErrServerUnreachable and the last
// failure.
func ConnectWait(ctx context.Context, url string, wait time.Duration, log *slog.Logger, opts ...nats.Option) (*nats.Conn, error) {
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	start := time.Now()
	var nc *nats.Conn
	attempts := 0
	err := WaitTransient(ctx, start.Add(wait), log, "connect to the NATS server at "+url, unreachable, func(context.Context) error {
		var err error
		nc, err = Connect(url, opts...)
		attempts++
		if err != nil && attempts == 1 && wait > 0 && unreachable(err) {
			log.Warn("waiting for the NATS server: start it, or check the URL (--nats: the host and port it listens on); --nats-wait sets how long to wait",
				"url", url, "wait", wait, "err", err)
		}
		return err
	})
	if err != nil {
		if wait > 0 && unreachable(err) && ctx.Err() == nil {
			return nil, fmt.Errorf("%w: %s, waited %s: %w", ErrServerUnreachable, url, time.Since(start).Round(time.Second), err)
		}
		return nil, err
	}
	if attempts > 1 {
		log.Info("connected to the NATS server", "url", nc.ConnectedUrlRedacted(), "waited", time.Since(start).Round(time.Millisecond))
	}
	return nc, nil
}

// unreachable reports whether a connect error may go away by waiting: no
// server listened, the name did not resolve, or the server did not answer.
func unreachable(err error) bool {
	var ne net.Error
	return errors.Is(err, nats.ErrNoServers) || errors.Is(err, nats.ErrTimeout) ||
		errors.Is(err, syscall.ECONNREFUSED) || errors.Is(err, syscall.ECONNRESET) ||
		errors.Is(err, io.EOF) || errors.As(err, &ne)
}

// WaitTransient runs call until it succeeds, fails with an error retry
// does not accept, deadline passes or ctx ends, pausing with backoff
// between attempts and reminding the log every so often of what it waits
// for (what). retry nil accepts the errors IsTransient accepts. It returns
// call's last error (ctx's error when ctx ended first).
func WaitTransient(ctx context.Context, deadline time.Time, log *slog.Logger, what string, retry func(error) bool, call func(context.Context) error) error {
	if retry == nil {
		retry = IsTransient
	}
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	pause, logged, start := waitBackoffMin, time.Now(), time.Now()
	for {
		err := call(ctx)
		if err == nil || !retry(err) || !time.Now().Before(deadline) {
			return err
		}
		if ctx.Err() != nil {
			return ctx.Err()
		}
		if time.Since(logged) >= waitLogEvery {
			log.Warn("still waiting for the NATS server", "for", what, "waited", time.Since(start).Round(time.Second), "gives_up_in", time.Until(deadline).Round(time.Second), "err", err)
			logged = time.Now()
		}
		t := time.NewTimer(min(pause, max(time.Until(deadline), time.Millisecond)))
		select {
		case <-ctx.Done():
			t.Stop()
			return ctx.Err()
		case <-t.C:
		}
		pause = min(2*pause, waitBackoffMax)
	}
}
