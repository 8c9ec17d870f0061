package main

import (
	"path/filepath"
	"testing"
)

// markedRunDir makes dir a run directory as a wsgrpo command that wrote
// into it would (markRunDir), for tests that fill one by hand, and
// returns it.
func markedRunDir(tb testing.TB, dir string) string {
	tb.Helper()
	if err := markRunDir(dir, filepath.Base(dir)); err != nil {
		tb.Fatal(err)
	}
	return dir
}
