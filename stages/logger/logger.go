// Package logger is the logger stage: it writes every trajectory of the
// labeled stream (or of the verified stream, for runs without a labeler
// such as eval) to the trajectory log, one row per trajectory, and returns
// no outputs.
//
// Errors: a batch that is not a labeled or verified batch, or holds a row
// without run or trajectory id, returns an error wrapping
// schemas.ErrInvalid (the runner dead-letters it). A store failure (server
// down, disk full) returns the store's error, which does not wrap
// schemas.ErrInvalid: the runner naks the batch with backoff and the
// stream holds the backlog until the store is back. Redelivered batches are
// harmless: the log de-duplicates by trajectory id.
package logger

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"time"

	"github.com/apache/arrow-go/v18/arrow"

	"github.com/wsgrpo/wsgrpo/schemas"
	"github.com/wsgrpo/wsgrpo/tracelog"
)

// ErrBadRow is returned for a row the log cannot key (no run or trajectory
// id). It wraps schemas.ErrInvalid: retrying cannot fix it.
var ErrBadRow = fmt.Errorf("%w: row cannot be logged", schemas.ErrInvalid)

// Processor writes batches to a trajectory log. It satisfies the
// pipeline's Processor interface and is safe for concurrent use when its
// store is.
type Processor struct {
	store tracelog.Store
	log   *slog.Logger
}

// New returns a processor writing to store (migrated by the caller). log
// may be nil.
func New(store tracelog.Store, log *slog.Logger) *Processor {
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	return &Processor{store: store, log: log}
}

// Process decodes the labeled or verified rows of in and inserts them. It
// returns no batches.
func (p *Processor) Process(ctx context.Context, in arrow.RecordBatch) ([]arrow.RecordBatch, error) {
	rows, err := Rows(in)
	if err != nil {
		return nil, err
	}
	if len(rows) == 0 {
		return nil, nil
	}
	start := time.Now()
	if err := p.store.Insert(ctx, rows); err != nil {
		if errors.Is(err, schemas.ErrInvalid) {
			// Never let a store error read as a bad payload.
			err = fmt.Errorf("trajectory log insert: %v", err)
		}
		p.log.Warn("trajectory log insert failed; batch will be retried", "rows", len(rows), "err", err)
		return nil, fmt.Errorf("logger: %w", err)
	}
	p.log.Debug("trajectories logged", "rows", len(rows), "run", rows[0].RunID, "elapsed", time.Since(start))
	return nil, nil
}

// Rows converts a labeled or verified batch to trajectory-log rows.
func Rows(in arrow.RecordBatch) ([]tracelog.Row, error) {
	md := in.Schema().Metadata()
	ki := md.FindKey(schemas.MetaKind)
	if ki < 0 {
		return nil, fmt.Errorf("logger: %w: batch schema has no %s metadata", schemas.ErrSchemaMismatch, schemas.MetaKind)
	}
	var rows []tracelog.Row
	switch k := schemas.Kind(md.Values()[ki]); k {
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
