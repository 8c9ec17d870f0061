package tracelog

import (
	"context"
	"fmt"
	"sync"
)

// Group commit for the server backend. ClickHouse 18.16 writes every INSERT
// as a new part of about 90 files, whatever its size, so an INSERT costs a
// few milliseconds on tmpfs and tens on a busy ext4 disk before the first
// row. Concurrent Insert calls (a logger with runner Concurrency > 1, or
// several loggers sharing a store) therefore queue here, and each of
// insertWriters goroutines, each with a connection of its own, takes
// everything queued (up to groupMaxRows) into one INSERT. A lone Insert is
// sent at once: nothing waits for company.
const (
	// insertWriters is the number of INSERTs in flight at once.
	insertWriters = 2
	// groupMaxRows bounds the rows of one grouped INSERT (about 80 MB of
	// 512-token trajectories). A larger Insert is sent alone, whole.
	// Larger parts mean fewer merges later: with 4 inserters of 4,096
	// rows, 16,384 sustained 89k-94k rows/s where 4,096 sustained 76k-84k
	// (docs/benchmarks/tracelog.md).
	groupMaxRows = 16384
)

// pendingInsert is one Insert call waiting for a writer.
type pendingInsert struct {
	ctx  context.Context
	rows []Row
	done chan error // buffered: the writer never blocks on it
}

// insertQueue hands Insert calls to the writers.
type insertQueue struct {
	write func(ctx context.Context, rows []Row) error

	mu      sync.Mutex
	cond    *sync.Cond
	pending []*pendingInsert
	closed  bool
	wg      sync.WaitGroup
}

// newInsertQueue starts writers goroutines that pass grouped rows to write.
func newInsertQueue(writers int, write func(ctx context.Context, rows []Row) error) *insertQueue {
	q := &insertQueue{write: write}
	q.cond = sync.NewCond(&q.mu)
	q.wg.Add(writers)
	for range writers {
		go q.run()
	}
	return q
}

// insert queues rows and waits until a writer has written them, or ctx
// ends. A call whose context ends after a writer took its rows returns the
// context's error although the rows may still be written; the log
// de-duplicates a retry.
func (q *insertQueue) insert(ctx context.Context, rows []Row) error {
	p := &pendingInsert{ctx: ctx, rows: rows, done: make(chan error, 1)}
	q.mu.Lock()
	if q.closed {
		q.mu.Unlock()
		return ErrClosed
	}
	q.pending = append(q.pending, p)
	q.cond.Signal()
	q.mu.Unlock()
	select {
	case err := <-p.done:
		return err
	case <-ctx.Done():
		q.mu.Lock()
		for i, x := range q.pending {
			if x == p {
				q.pending = append(q.pending[:i], q.pending[i+1:]...)
				break
			}
		}
		q.mu.Unlock()
		return fmt.Errorf("%w: %w", ErrUnavailable, ctx.Err())
	}
}

// take waits for queued inserts and removes a group of them: the first,
// then more while the group stays within groupMaxRows. It returns nil once
// the queue is closed and empty.
func (q *insertQueue) take() []*pendingInsert {
	q.mu.Lock()
	defer q.mu.Unlock()
	for len(q.pending) == 0 {
		if q.closed {
			return nil
		}
		q.cond.Wait()
	}
	n, rows := 1, len(q.pending[0].rows)
	for n < len(q.pending) && rows+len(q.pending[n].rows) <= groupMaxRows {
		rows += len(q.pending[n].rows)
		n++
	}
	group := make([]*pendingInsert, n)
	copy(group, q.pending)
	q.pending = append(q.pending[:0], q.pending[n:]...)
	return group
}

// run is one writer.
func (q *insertQueue) run() {
	defer q.wg.Done()
	for {
		group := q.take()
		if group == nil {
			return
		}
		q.writeGroup(group)
	}
}

// writeGroup writes the rows of group in one INSERT and tells each caller
// the outcome. The INSERT runs until every caller has given up (or it ends):
// it is cancelled only when all of their contexts are done.
func (q *insertQueue) writeGroup(group []*pendingInsert) {
	if len(group) == 1 {
		p := group[0]
		p.done <- q.write(p.ctx, p.rows)
		return
	}
	ctx, cancel := context.WithCancel(context.WithoutCancel(group[0].ctx))
	defer cancel()
	var mu sync.Mutex
	waiting := len(group)
	var rows []Row
	for _, p := range group {
		stop := context.AfterFunc(p.ctx, func() {
			mu.Lock()
			defer mu.Unlock()
			if waiting--; waiting == 0 {
				cancel()
			}
		})
		defer stop()
		rows = append(rows, p.rows...)
	}
	err := q.write(ctx, rows)
	for _, p := range group {
		p.done <- err
	}
}

// close stops the writers after they have written what is queued.
func (q *insertQueue) close() {
	q.mu.Lock()
	q.closed = true
	q.cond.Broadcast()
	q.mu.Unlock()
	q.wg.Wait()
}
