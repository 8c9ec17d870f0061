package main

import (
	"errors"
	"fmt"
)

// runUse is what a command does with a run directory another process
// owns: it picks what the refusal tells the user to do.
type runUse int

const (
	// useRun runs the run: its embedded NATS server, its log, its
	// checkpoints.
	useRun runUse = iota
	// useLog opens its embedded trajectory log (sql, report, export,
	// labeler fit, replay's source).
	useLog
	// useNATS opens its embedded NATS store (dlq).
	useNATS
)

// hint says what to do instead; listening says that the holder's NATS
// server listens (its URL is in the refusal).
func (u runUse) hint(listening bool) string {
	switch {
	case u == useLog:
		return "its embedded trajectory log opens in one process at a time: wait for that process to finish (a run that logs to a ClickHouse server, --clickhouse-dsn, can be queried while it runs)"
	case u == useNATS && listening:
		return "its embedded NATS store opens in one process at a time: give that --nats URL, or wait for the process to finish"
	case u == useNATS:
		return "its embedded NATS store opens in one process at a time: give --nats URL of the server that process runs (runs started with --listen HOST:PORT have one), or wait for it to finish"
	case listening:
		return "one process owns a run directory: add stage processes to that run with `wsgrpo stage NAME --nats URL`, or wait for it to finish (or stop it), or give another --run"
	}
	return "one process owns a run directory: to add stage processes to a run, start it with --listen HOST:PORT and join them with `wsgrpo stage NAME --nats URL`; otherwise wait for that process to finish (or stop it), or give another --run"
}

// inUse adds use's hint to a refusal of acquireRunLock.
func (u runUse) inUse(err error) error {
	var e *runInUseError
	if !errors.As(err, &e) {
		return err
	}
	return fmt.Errorf("%w; %s", err, u.hint(e.Holder != nil && e.Holder.NATS != ""))
}

// claimRunDir readies cfg's run directory for a command that writes into
// it: created when missing, marked a run directory (runMarker), and held
// by this process (holdRunLock) until release. Another process that owns
// the directory makes it fail at once with ErrRunInUse, naming that
// process. Every command that writes into a run directory claims it
// before it opens the embedded NATS store or trajectory log.
func claimRunDir(cfg Config) (release func(), err error) {
	if err := markRunDir(cfg.RunDir(), cfg.Run); err != nil {
		return nil, err
	}
	release, err = holdRunLock(cfg.RunDir())
	if err != nil {
		return nil, useRun.inUse(err)
	}
	return release, nil
}

// holdRunDir holds the existing run directory dir for this process, for a
// command that opens what is in it (use) without making it a run: another
// process that owns it makes it fail at once with ErrRunInUse.
func holdRunDir(dir string, use runUse) (release func(), err error) {
	release, err = holdRunLock(dir)
	if err != nil {
		return nil, use.inUse(err)
	}
	return release, nil
}
