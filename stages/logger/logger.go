// Package logger is the logger stage: it writes every trajectory of the
// labeled stream (or of the verified stream, for runs without a labeler
// such as eval) to the trajectory log, one row per trajectory, and returns
// no outputs.
//
// Errors: a batch that is not a labeled or verified batch, or holds a row
// without run or trajectory id, returns an error wrapping
// schemas.ErrInvalid (the runner dead-letters it). A store that cannot be
// reached (tracelog.ErrUnavailable: server down, connection refused or
// timed out) returns an error wrapping stage.ErrUnavailable: the runner
// holds the batch and retries it with backoff however long the outage
// lasts, and the stream holds the backlog behind it. A log whose disk is
// full (tracelog.ErrStorageFull, which is stage.ErrStorageFull) hands the
// batch back and stops the runner with that error, naming the log's
// directory or server and the space left. Other store failures (a query
// the server refuses) are retried with backoff until the runner's
// MaxDeliver. Redelivered batches are harmless: the log de-duplicates by
// trajectory id.
package logger

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"time"

	"github.com/apache/arrow-go/v18/arrow"

	"github.com/wsgrpo/wsgrpo/schemas"
	"github.com/wsgrpo/wsgrpo/stages/stage"
	"github.com/wsgrpo/wsgrpo/tracelog"
)

// ErrBadRow is returned for a row the log cannot key (no run or trajectory
// id). It wraps schemas.ErrInvalid: retrying cannot fix it.
var ErrBadRow = fmt.Errorf("%w: row cannot be logged", schemas.ErrInvalid)

// Options configure a Processor.
type Options struct {
	// Logger receives insert failures; nil discards.
	Logger *slog.Logger
	// Linger is how long the first of concurrent Process calls (a runner
	// with Concurrency > 1) waits for others to join one INSERT: group
	// commit. ClickHouse writes a part per INSERT, so a few large inserts
	// cost far less than many 64-row ones. Every call still returns only
	// after its rows are stored, so an ack never precedes the write.
	// Zero inserts every batch on its own.
	Linger time.Duration
	// MaxRows closes a group to new batches once it holds this many rows
	// and inserts it at once (default 4096).
	MaxRows int
}

// Processor writes batches to a trajectory log. It satisfies
// stage.Processor and is safe for concurrent use when its
// store is.
type Processor struct {
	store tracelog.Store
	opts  Options

	mu  sync.Mutex
	cur *group // the group open to new batches, if any
}

// group is one INSERT shared by concurrent Process calls.
type group struct {
	rows    []tracelog.Row
	full    chan struct{} // closed when the group reaches MaxRows
	done    chan struct{} // closed after the insert; err is then set
	err     error
	members int
}

// New returns a processor writing to store (migrated by the caller).
func New(store tracelog.Store, opts Options) *Processor {
	if opts.Logger == nil {
		opts.Logger = slog.New(slog.DiscardHandler)
	}
	if opts.MaxRows <= 0 {
		opts.MaxRows = 4096
	}
	return &Processor{store: store, opts: opts}
}

// Process decodes the labeled or verified rows of in and inserts them,
// alone or together with concurrent calls' rows (Options.Linger). It
// returns no batches.
func (p *Processor) Process(ctx context.Context, in arrow.RecordBatch) ([]arrow.RecordBatch, error) {
	rows, err := Rows(in)
	if err != nil {
		return nil, err
	}
	if len(rows) == 0 {
		return nil, nil
	}
	if p.opts.Linger <= 0 {
		return nil, p.insert(ctx, rows, 1)
	}
	p.mu.Lock()
	g, leader := p.cur, false
	if g == nil {
		g = &group{full: make(chan struct{}), done: make(chan struct{})}
		p.cur, leader = g, true
	}
	g.rows = append(g.rows, rows...)
	g.members++
	if len(g.rows) >= p.opts.MaxRows {
		p.cur = nil // closed to new batches
		close(g.full)
	}
	p.mu.Unlock()
	if leader {
		t := time.NewTimer(p.opts.Linger)
		select {
		case <-t.C:
		case <-g.full:
		case <-ctx.Done():
		}
		t.Stop()
		p.mu.Lock()
		if p.cur == g {
			p.cur = nil
		}
		p.mu.Unlock()
		g.err = p.insert(ctx, g.rows, g.members)
		close(g.done)
		return nil, g.err
	}
	select {
	case <-g.done:
		return nil, g.err
	case <-ctx.Done():
		// The group may still store these rows; the batch is retried
		// either way and the log de-duplicates it.
		return nil, fmt.Errorf("logger: %w", ctx.Err())
	}
}

func (p *Processor) insert(ctx context.Context, rows []tracelog.Row, batches int) error {
	start := time.Now()
	if err := p.store.Insert(ctx, rows); err != nil {
		if errors.Is(err, schemas.ErrInvalid) {
			// Never let a store error read as a bad payload: the
			// text is kept, the chain to schemas.ErrInvalid is not.
			err = fmt.Errorf("trajectory log insert: %v", err) //nolint:errorlint // deliberately not wrapped
		}
		if errors.Is(err, tracelog.ErrStorageFull) {
			p.opts.Logger.Error("trajectory log insert failed: out of space; the batches are handed back", "rows", len(rows), "batches", batches, "err", err)
			return fmt.Errorf("logger: %w", err)
		}
		p.opts.Logger.Warn("trajectory log insert failed; batches will be retried", "rows", len(rows), "batches", batches, "err", err)
		if errors.Is(err, tracelog.ErrUnavailable) {
			// The store is down: the runner holds the batch and retries
			// it for as long as the outage lasts (stage.ErrUnavailable).
			return fmt.Errorf("logger: %w: %w", stage.ErrUnavailable, err)
		}
		return fmt.Errorf("logger: %w", err)
	}
	p.opts.Logger.Debug("trajectories logged", "rows", len(rows), "batches", batches, "elapsed", time.Since(start))
	return nil
}

// Rows converts a labeled or verified batch to trajectory-log rows.
func Rows(in arrow.RecordBatch) ([]tracelog.Row, error) {
	k, err := schemas.KindOf(in)
	if err != nil {
		return nil, fmt.Errorf("logger: %w", err)
	}
	var rows []tracelog.Row
	switch k {
	case schemas.KindLabeled:
		ls, err := schemas.ReadLabeled(in)
		if err != nil {
			return nil, fmt.Errorf("logger: %w", err)
		}
		rows = make([]tracelog.Row, len(ls))
		for i := range ls {
			rows[i] = tracelog.FromLabeled(&ls[i])
		}
	case schemas.KindVerified:
		vs, err := schemas.ReadVerified(in)
		if err != nil {
			return nil, fmt.Errorf("logger: %w", err)
		}
		rows = make([]tracelog.Row, len(vs))
		for i := range vs {
			rows[i] = tracelog.FromVerified(&vs[i])
		}
	default:
		return nil, fmt.Errorf("logger: %w: %q batch, the logger reads labeled or verified batches", schemas.ErrWrongKind, k)
	}
	for i := range rows {
		if rows[i].RunID == "" || rows[i].TrajectoryID == "" {
			return nil, fmt.Errorf("logger: %w: row %d has run %q, trajectory %q", ErrBadRow, i, rows[i].RunID, rows[i].TrajectoryID)
		}
	}
	return rows, nil
}
