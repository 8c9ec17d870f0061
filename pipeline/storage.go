package pipeline

import (
	"errors"
	"log/slog"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/wsgrpo/wsgrpo/internal/diskfull"
)

// StorageFullError describes a store that ran out of space: what it is,
// where (a directory or a server's address), the bytes free and needed
// when known, and the store's own error. It wraps ErrStorageFull; find it
// with errors.As.
type StorageFullError = diskfull.Error

// JetStream API error codes of a server out of resources.
const (
	jsAccountResourcesExceeded = 10002 // resource limits exceeded for account
	jsInsufficientResources    = 10023 // the server's max_storage or max_memory reached
	jsMemoryResourcesExceeded  = 10028 // insufficient memory resources available
	jsStorageResourcesExceeded = 10047 // insufficient storage resources available
)

// storeWhat names the JetStream store in StorageFullError.What.
const storeWhat = "the JetStream store"

// IsStorageFull reports whether err says that a store ran out of space:
// it wraps ErrStorageFull, syscall.ENOSPC or syscall.EDQUOT, it is a
// JetStream API error of exhausted resources (insufficient resources,
// account or storage limits exceeded), or its text is one that
// nats-server, chDB or ClickHouse give for a full store ("no space left on
// device", "NOT_ENOUGH_SPACE", ...).
func IsStorageFull(err error) bool {
	if err == nil {
		return false
	}
	var api *jetstream.APIError
	if errors.As(err, &api) {
		switch api.ErrorCode {
		case jsAccountResourcesExceeded, jsInsufficientResources, jsMemoryResourcesExceeded, jsStorageResourcesExceeded:
			return true
		}
	}
	return diskfull.Match(err)
}

// jetStreamFull returns the out-of-space error behind err, the failure of
// a JetStream write (a publish of need bytes, -1 when unknown, a dead
// letter, an acknowledgement), or nil when the store is not known to be
// full. The embedded server's own report (RunnerConfig.StorageErr) comes
// first: it names the directory and the space left there.
func (r *Runner) jetStreamFull(err error, need int64) error {
	if err == nil {
		return nil
	}
	if r.cfg.StorageErr != nil {
		if serr := r.cfg.StorageErr(); serr != nil {
			var sf *StorageFullError
			if need > 0 && errors.As(serr, &sf) && sf.Need < 0 {
				c := *sf
				c.Need = need
				return &c
			}
			return serr
		}
	}
	if !IsStorageFull(err) {
		return nil
	}
	var sf *StorageFullError
	if errors.As(err, &sf) {
		return err
	}
	if r.cfg.StoreDir != "" {
		return diskfull.NewAt(storeWhat, r.cfg.StoreDir, need, err)
	}
	where := "the NATS server"
	if u := r.js.Conn().ConnectedUrlRedacted(); u != "" {
		where += " " + u
	}
	return diskfull.New(storeWhat, where, need, err)
}

// processorFull returns the out-of-space error behind a processor's
// error, or nil: the processor said so (ErrStorageFull), its error reads
// as a full store's, or the JetStream store it may have written to is
// full. Whichever store it is, the batch is not at fault.
func (r *Runner) processorFull(err error) error {
	if err == nil {
		return nil
	}
	if errors.Is(err, ErrStorageFull) {
		return err
	}
	if r.cfg.StorageErr != nil {
		if serr := r.cfg.StorageErr(); serr != nil {
			return serr
		}
	}
	if IsStorageFull(err) {
		return diskfull.New("a store of stage "+r.cfg.Stage, "", -1, err)
	}
	return nil
}

// halt stops the runner because a store is out of space; the first such
// error is what Run returns. It is safe from any goroutine, also after
// Run has returned.
func (r *Runner) halt(err error) {
	r.haltMu.Lock()
	first := r.fatal == nil
	if first {
		r.fatal = err
	}
	stop := r.stop
	r.haltMu.Unlock()
	if !first {
		return
	}
	r.cfg.Metrics.Errors.WithLabelValues(r.cfg.Stage, "storage_full").Inc()
	r.log.Error("out of storage space: stopping the stage runner and handing its batches back", "err", err)
	if stop != nil {
		stop()
	}
}

// fatalErr is the error that halted the runner, or nil.
func (r *Runner) fatalErr() error {
	r.haltMu.Lock()
	defer r.haltMu.Unlock()
	return r.fatal
}

// handBackFull hands m back unacknowledged, for redelivery, because a
// store is out of space (full), and stops the runner. The batch is not
// at fault: it is neither retried later nor dead-lettered here.
func (r *Runner) handBackFull(m jetstream.Msg, full error, log *slog.Logger) {
	_ = m.Nak()
	r.cfg.Metrics.Batches.WithLabelValues(r.cfg.Stage, "storage_full").Inc()
	log.Warn("batch handed back: out of storage space", "err", full)
	r.halt(full)
}
