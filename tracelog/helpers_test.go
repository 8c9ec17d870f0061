package tracelog_test

import (
	"sort"

	"github.com/wsgrpo/wsgrpo/tracelog"
)

func sortRows(rows []tracelog.Row) {
	sort.Slice(rows, func(i, j int) bool {
		if rows[i].Step != rows[j].Step {
			return rows[i].Step < rows[j].Step
		}
		return rows[i].TrajectoryID < rows[j].TrajectoryID
	})
}
