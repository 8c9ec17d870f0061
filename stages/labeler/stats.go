package labeler

import (
	"maps"
	"sync"
)

// Reasons for dropped rows and refused batches, the keys of
// Stats.RowsDropped and Stats.BatchesRefused.
const (
	DropDuplicate    = "duplicate"     // a sample index seen twice in one batch
	DropZeroVariance = "zero_variance" // rows of a dropped zero-variance group
	RefuseInvalid    = "invalid"       // rows break the group rules
	RefuseScore      = "score"         // rows cannot be scored
	RefusePending    = "pending"       // the Pending store failed
	RefuseTransient  = "transient"     // the scorer failed otherwise
)

// Stats are a processor's counters since New, for metrics.
type Stats struct {
	// Batches and RowsIn count the input processed successfully.
	Batches, RowsIn int64
	// RowsLabeled counts the rows emitted.
	RowsLabeled int64
	// GroupsScored counts complete groups shaped (dropped ones included);
	// GroupsFromPending those of them completed through the Pending store.
	GroupsScored, GroupsFromPending int64
	// GroupsDeferred counts the times an incomplete group was stored in
	// Pending and was still incomplete.
	GroupsDeferred int64
	// OneMemberGroups counts scored groups of G = 1 (advantage 0).
	OneMemberGroups int64
	// ZeroVarianceKept and ZeroVarianceDropped count scored groups whose
	// shaped rewards were all equal.
	ZeroVarianceKept, ZeroVarianceDropped int64
	// RowsDropped counts rows not emitted, by reason (Drop*).
	RowsDropped map[string]int64
	// BatchesRefused counts batches Process failed, by reason (Refuse*).
	BatchesRefused map[string]int64
}

// counters guards a Stats.
type counters struct {
	mu sync.Mutex
	s  Stats
}

func (c *counters) update(f func(*Stats)) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.s.RowsDropped == nil {
		c.s.RowsDropped, c.s.BatchesRefused = map[string]int64{}, map[string]int64{}
	}
	f(&c.s)
}

func (c *counters) snapshot() Stats {
	c.mu.Lock()
	defer c.mu.Unlock()
	s := c.s
	s.RowsDropped, s.BatchesRefused = maps.Clone(c.s.RowsDropped), maps.Clone(c.s.BatchesRefused)
	if s.RowsDropped == nil {
		s.RowsDropped, s.BatchesRefused = map[string]int64{}, map[string]int64{}
	}
	return s
}
