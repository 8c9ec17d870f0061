package tracelog_test

import (
	"errors"
	"fmt"
	"path/filepath"
	"testing"

	"github.com/wsgrpo/wsgrpo/bench/logstore"
	"github.com/wsgrpo/wsgrpo/internal/diskfull"
	"github.com/wsgrpo/wsgrpo/internal/diskfull/fulltest"
	"github.com/wsgrpo/wsgrpo/tracelog"
	"github.com/wsgrpo/wsgrpo/tracelog/chtest"
)

// TestEmbeddedDiskFull fills the embedded log's disk (a small tmpfs): the
// insert that does not fit fails with ErrStorageFull, naming the data
// directory and the space left, and what was stored before stays readable.
func TestEmbeddedDiskFull(t *testing.T) {
	if testing.Short() {
		t.Skip("fills a file system")
	}
	lib := chtest.Library(t)
	dir := fulltest.Tmpfs(t, 24<<20)
	cfg := tracelog.Config{Dir: filepath.Join(dir, "tracelog"), Lib: lib}
	s := openMigrated(t, cfg)
	var err error
	stored := 0
	for i := 0; err == nil; i++ {
		if i == 200 {
			t.Fatalf("%d rows fit in a 24 MiB file system: the test no longer fills it", stored)
		}
		rows := logstore.SyntheticRows(fmt.Sprintf("run-%d", i), 1000, 256, uint64(i))
		if err = s.Insert(ctx(t), rows); err == nil {
			stored += len(rows)
		}
	}
	t.Logf("after %d rows: %v", stored, err)
	var e *diskfull.Error
	if !errors.Is(err, tracelog.ErrStorageFull) || !errors.As(err, &e) || e.Where != cfg.Dir || e.Free < 0 {
		t.Fatalf("Insert = %v, want ErrStorageFull naming %s and the space free there", err, cfg.Dir)
	}
	if n := count(t, s, "run-0"); n != 1000 {
		t.Errorf("run-0 holds %d rows after the disk filled, want 1000", n)
	}
}
