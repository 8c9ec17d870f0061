//go:build linux || darwin || freebsd

package diskfull

import (
	"os"
	"path/filepath"
	"syscall"
)

// Space returns the bytes an unprivileged writer may still use on path's
// file system and that file system's size. A path that does not exist yet
// is measured at its nearest existing parent. ok is false when the file
// system cannot be asked.
func Space(path string) (free, size uint64, ok bool) {
	p := filepath.Clean(path)
	for {
		if _, err := os.Stat(p); err == nil {
			break
		}
		parent := filepath.Dir(p)
		if parent == p {
			return 0, 0, false
		}
		p = parent
	}
	var st syscall.Statfs_t
	if err := syscall.Statfs(p, &st); err != nil {
		return 0, 0, false
	}
	// The fields' types differ by platform.
	bs := uint64(st.Bsize)
	return uint64(st.Bavail) * bs, uint64(st.Blocks) * bs, true
}
