// Package fulltest gives tests a small file system to fill: a tmpfs of a
// given size, mounted for the test and unmounted at its end.
package fulltest

import (
	"os"
	"os/exec"
	"runtime"
	"strconv"
	"testing"
)

// Tmpfs mounts a tmpfs of size bytes on a new temporary directory and
// returns that directory; it is unmounted when the test ends. Mounting
// needs Linux and root (or CAP_SYS_ADMIN): elsewhere, and where the mount
// fails, the test is skipped with the reason.
func Tmpfs(tb testing.TB, size int64) string {
	tb.Helper()
	if runtime.GOOS != "linux" {
		tb.Skipf("a full disk is simulated with a tmpfs mount, which needs Linux (this is %s)", runtime.GOOS)
	}
	if os.Geteuid() != 0 {
		tb.Skip("a full disk is simulated with a tmpfs mount, which needs root: run the tests as root to include it")
	}
	dir := tb.TempDir()
	out, err := exec.Command("mount", "-t", "tmpfs", "-o", "size="+strconv.FormatInt(size, 10), "tmpfs", dir).CombinedOutput()
	if err != nil {
		tb.Skipf("cannot mount a tmpfs to fill (%v: %s): a container without CAP_SYS_ADMIN?", err, out)
	}
	tb.Cleanup(func() {
		// Lazily: a store the test could not close still holds files.
		if out, err := exec.Command("umount", "-l", dir).CombinedOutput(); err != nil {
			tb.Errorf("umount %s: %v: %s", dir, err, out)
		}
	})
	return dir
}
