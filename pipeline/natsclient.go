package pipeline

import (
	"errors"
	"fmt"
	"log/slog"

	"github.com/nats-io/nats.go"
)

// LogAsyncErrors returns a nats.Option that logs the errors the server
// reports on a connection outside any call. A permissions violation (the
// server refused to let this user publish or subscribe to a subject; the
// call that tried only sees a timeout) is logged at error level with what
// to check, the others at warn level.
func LogAsyncErrors(log *slog.Logger) nats.Option {
	return nats.ErrorHandler(func(_ *nats.Conn, sub *nats.Subscription, err error) {
		if errors.Is(err, nats.ErrPermissionViolation) {
			log.Error("the NATS server refused an operation this process's user is not permitted (check which credentials this process was given, and the server's users: wsgrpo nats-config)", "err", err)
			return
		}
		if sub != nil {
			log.Warn("NATS asynchronous error", "subject", sub.Subject, "err", err)
			return
		}
		log.Warn("NATS asynchronous error", "err", err)
	})
}

// WithRefusal returns err with the permissions violation the server last
// reported on nc added, if there is one: a publish or request the server
// refused gets no reply, so err alone is a timeout that does not say why.
// The result then matches nats.ErrPermissionViolation with errors.Is.
func WithRefusal(nc *nats.Conn, err error) error {
	if err == nil || nc == nil || errors.Is(err, nats.ErrPermissionViolation) {
		return err
	}
	if last := nc.LastError(); errors.Is(last, nats.ErrPermissionViolation) {
		return fmt.Errorf("%w (the NATS server refused: %w)", err, last)
	}
	return err
}
