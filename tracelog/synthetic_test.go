package tracelog_test

import (
	"github.com/wsgrpo/wsgrpo/bench/logstore"
	"github.com/wsgrpo/wsgrpo/tracelog"
)

// The internal tests' rows come from logstore.SyntheticRows too.
func init() { tracelog.SetSyntheticRows(logstore.SyntheticRows) }
