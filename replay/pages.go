package replay

import (
	"context"
	"fmt"

	"github.com/wsgrpo/wsgrpo/schemas/ddl"
	"github.com/wsgrpo/wsgrpo/tracelog"
)

// groupKeySQL is the key that keeps a group in one page: its group id, or
// the trajectory id of a row without one.
const groupKeySQL = "if(group_id = '', trajectory_id, group_id)"

func groupKey(r *tracelog.Row) string {
	if r.GroupID == "" {
		return r.TrajectoryID
	}
	return r.GroupID
}

// page is one read of the log: a range of the sort key (trajectory id),
// which the primary index narrows, and the groups assigned to it.
type page struct {
	lo, hi string
	groups map[string]bool
	rows   int64
}

// plan is how a selection is read.
type plan struct {
	pages       []page
	total       int64
	first, last int64 // steps
}

// planPages lists the selected groups in sort-key order with their id
// ranges and sizes, and packs consecutive groups into pages of at most
// pageRows rows (a larger group gets a page of its own).
func planPages(ctx context.Context, s tracelog.Store, where string, args []any, pageRows int) (plan, error) {
	q := "SELECT " + groupKeySQL + " AS g, min(trajectory_id) AS lo, max(trajectory_id) AS hi, count() AS n, min(step), max(step)" +
		" FROM " + ddl.Table + " FINAL WHERE (" + where + ") GROUP BY g ORDER BY lo, g"
	res, err := s.Query(ctx, q, args...)
	if err != nil {
		return plan{}, fmt.Errorf("replay: select rows: %w", err)
	}
	var (
		pl  plan
		cur page
	)
	flush := func() {
		if cur.rows > 0 {
			pl.pages = append(pl.pages, cur)
		}
		cur = page{groups: map[string]bool{}}
	}
	flush()
	for i, r := range res.Rows {
		g, ok1 := r[0].(string)
		lo, ok2 := r[1].(string)
		hi, ok3 := r[2].(string)
		n, ok4 := r[3].(uint64)
		first, ok5 := r[4].(int64)
		last, ok6 := r[5].(int64)
		if !ok1 || !ok2 || !ok3 || !ok4 || !ok5 || !ok6 {
			return plan{}, fmt.Errorf("replay: plan row %v has unexpected types %v", r, res.Types)
		}
		if cur.rows > 0 && cur.rows+int64(n) > int64(pageRows) {
			flush()
		}
		if cur.rows == 0 {
			cur.lo = lo
		}
		cur.hi = max(cur.hi, hi)
		cur.groups[g] = true
		cur.rows += int64(n)
		if i == 0 {
			pl.first, pl.last = first, last
		}
		pl.first, pl.last = min(pl.first, first), max(pl.last, last)
		pl.total += int64(n)
	}
	flush()
	return pl, nil
}

// where narrows the selection to the page's key range.
func (p *page) where(w string, args []any) (string, []any) {
	a := append(append(make([]any, 0, len(args)+2), args...), p.lo, p.hi)
	return w + " AND trajectory_id >= ? AND trajectory_id <= ?", a
}

// keep drops the rows of groups that belong to another page (their id
// ranges overlap this one's when ids do not sort by group).
func (p *page) keep(rows []tracelog.Row) []tracelog.Row {
	out := rows[:0]
	for i := range rows {
		if p.groups[groupKey(&rows[i])] {
			out = append(out, rows[i])
		}
	}
	return out
}
