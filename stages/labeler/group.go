package labeler

import (
	"cmp"
	"fmt"
	"slices"

	"github.com/wsgrpo/wsgrpo/schemas"
	"github.com/wsgrpo/wsgrpo/stages/stage"
)

// Errors of Process (see the package documentation).
var (
	// ErrBadGroup is wrapped by the error for rows that break the group
	// rules; it wraps schemas.ErrInvalid, so the batch is dead-lettered.
	ErrBadGroup = fmt.Errorf("%w: bad group", schemas.ErrInvalid)
	// ErrIncomplete is wrapped by the error for an incomplete group when
	// the processor has no Pending store; it wraps stage.ErrPermanent.
	ErrIncomplete = fmt.Errorf("%w: incomplete group and no pending store", stage.ErrPermanent)
	// ErrUnscorable is wrapped by the error for rows the scorer cannot
	// score, or scores it returns that cannot be used; it wraps
	// stage.ErrPermanent.
	ErrUnscorable = fmt.Errorf("%w: rows cannot be scored", stage.ErrPermanent)
)

// group is the rows of one group in a batch, one per sample index.
type group struct {
	id   string
	size int32
	rows []schemas.Verified
}

// checkRow reports a row that breaks the group rules.
func checkRow(r *schemas.Verified) error {
	switch {
	case r.GroupID == "":
		return fmt.Errorf("%w: row %s has no group id", ErrBadGroup, r.TrajectoryID)
	case r.GroupSize < 1:
		return fmt.Errorf("%w: row %s of group %s has group size %d", ErrBadGroup, r.TrajectoryID, r.GroupID, r.GroupSize)
	case r.SampleIndex < 0 || r.SampleIndex >= r.GroupSize:
		return fmt.Errorf("%w: row %s of group %s has sample index %d outside [0, %d)", ErrBadGroup, r.TrajectoryID, r.GroupID, r.SampleIndex, r.GroupSize)
	}
	prev := int32(0)
	for t, e := range r.StepEnds {
		if e <= prev || int(e) > len(r.CompletionTokenIDs) {
			return fmt.Errorf("%w: row %s: step end %d (step %d) after %d in a completion of %d tokens", ErrBadGroup, r.TrajectoryID, e, t+1, prev, len(r.CompletionTokenIDs))
		}
		prev = e
	}
	return nil
}

// groupRows checks rows and groups them by group id in order of first
// appearance, keeping the first row of each sample index; dups counts the
// others.
func groupRows(rows []schemas.Verified) (groups []*group, dups int, err error) {
	byID := map[string]*group{}
	seen := map[string]map[int32]bool{}
	for i := range rows {
		r := &rows[i]
		if err := checkRow(r); err != nil {
			return nil, 0, err
		}
		g := byID[r.GroupID]
		if g == nil {
			g = &group{id: r.GroupID, size: r.GroupSize}
			byID[r.GroupID], seen[r.GroupID] = g, map[int32]bool{}
			groups = append(groups, g)
		}
		if r.GroupSize != g.size {
			return nil, 0, fmt.Errorf("%w: group %s: row %s says %d samples, another row %d", ErrBadGroup, g.id, r.TrajectoryID, r.GroupSize, g.size)
		}
		if seen[r.GroupID][r.SampleIndex] {
			dups++
			continue
		}
		seen[r.GroupID][r.SampleIndex] = true
		g.rows = append(g.rows, *r)
	}
	return groups, dups, nil
}

// whole returns the rows of a group of size members, one per sample
// index in index order, and whether every index 0..size-1 is there. Rows
// that break the group rules, or disagree on the size, give ErrBadGroup.
func whole(id string, size int32, rows []schemas.Verified) ([]schemas.Verified, bool, error) {
	byIndex := map[int32]schemas.Verified{}
	for i := range rows {
		r := &rows[i]
		if err := checkRow(r); err != nil {
			return nil, false, err
		}
		if r.GroupID != id || r.GroupSize != size {
			return nil, false, fmt.Errorf("%w: group %s of %d samples: stored row %s is of group %s with %d", ErrBadGroup, id, size, r.TrajectoryID, r.GroupID, r.GroupSize)
		}
		if _, ok := byIndex[r.SampleIndex]; !ok {
			byIndex[r.SampleIndex] = *r
		}
	}
	if len(byIndex) != int(size) {
		return nil, false, nil
	}
	out := make([]schemas.Verified, 0, size)
	for _, r := range byIndex {
		out = append(out, r)
	}
	slices.SortFunc(out, func(a, b schemas.Verified) int { return cmp.Compare(a.SampleIndex, b.SampleIndex) })
	return out, true, nil
}
