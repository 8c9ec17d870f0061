package report_test

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"maps"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"slices"
	"strconv"
	"syscall"
	"testing"

	"github.com/wsgrpo/wsgrpo/tracelog/report"
)

// Environment of TestHelperWriteFull, the child of TestWriteFullDisk.
const (
	envFullDoc   = "WSGRPO_REPORT_TEST_FULL_DOC"   // the Document as JSON
	envFullDir   = "WSGRPO_REPORT_TEST_FULL_DIR"   // where to Write it
	envFullLimit = "WSGRPO_REPORT_TEST_FULL_LIMIT" // RLIMIT_FSIZE in bytes
)

// TestWriteFullDisk writes a report where an earlier one is, in a child
// process whose files may not grow past half the size of the first plot
// (RLIMIT_FSIZE: writes fail with EFBIG as on a full disk). Write fails,
// and the directory holds the earlier report, every file whole, and no
// temporary file.
func TestWriteFullDisk(t *testing.T) {
	if testing.Short() {
		t.Skip("starts a process")
	}
	a, _ := testRuns()
	d := report.NewDocument(expectReport("run-a", a, 20, 10), nil)
	dir := t.TempDir()
	if _, err := d.Write(dir); err != nil {
		t.Fatal(err)
	}
	before := readDir(t, dir)
	doc, err := json.Marshal(d)
	if err != nil {
		t.Fatal(err)
	}
	docFile := filepath.Join(t.TempDir(), "doc.json")
	if err := os.WriteFile(docFile, doc, 0o644); err != nil {
		t.Fatal(err)
	}
	limit := len(before[report.PlotLength]) / 2
	cmd := exec.Command(os.Args[0], "-test.run=^TestHelperWriteFull$", "-test.count=1")
	cmd.Env = append(os.Environ(), envFullDoc+"="+docFile, envFullDir+"="+dir, envFullLimit+"="+strconv.Itoa(limit))
	out, err := cmd.CombinedOutput()
	if err == nil || !bytes.Contains(out, []byte("file too large")) {
		t.Fatalf("the child's write under a %d-byte file limit: %v\n%s\nwant it to fail with EFBIG", limit, err, out)
	}
	after := readDir(t, dir)
	if names, want := slices.Sorted(maps.Keys(after)), slices.Sorted(maps.Keys(before)); !slices.Equal(names, want) {
		t.Fatalf("after the failed write the directory holds %v, want the earlier report's %v (no temporary files)", names, want)
	}
	for name, data := range before {
		if !bytes.Equal(after[name], data) {
			t.Errorf("%s changed (%d bytes, was %d): a failed write must leave it whole", name, len(after[name]), len(data))
		}
	}
	for _, p := range d.Plots {
		checkPNG(t, filepath.Join(dir, p.File))
	}
}

// TestHelperWriteFull is the child of TestWriteFullDisk.
func TestHelperWriteFull(t *testing.T) {
	docFile := os.Getenv(envFullDoc)
	if docFile == "" {
		t.Skip("runs as the child process of TestWriteFullDisk")
	}
	var d report.Document
	b, err := os.ReadFile(docFile)
	if err != nil {
		t.Fatal(err)
	}
	if err := json.Unmarshal(b, &d); err != nil {
		t.Fatal(err)
	}
	limit, err := strconv.ParseUint(os.Getenv(envFullLimit), 10, 64)
	if err != nil {
		t.Fatal(err)
	}
	// Past the limit, writes fail with EFBIG instead of the default
	// SIGXFSZ killing the process.
	signal.Ignore(syscall.SIGXFSZ)
	var rl syscall.Rlimit
	if err := syscall.Getrlimit(syscall.RLIMIT_FSIZE, &rl); err != nil {
		t.Fatal(err)
	}
	rl.Cur = limit
	if err := syscall.Setrlimit(syscall.RLIMIT_FSIZE, &rl); err != nil {
		t.Fatal(err)
	}
	_, err = d.Write(os.Getenv(envFullDir))
	if !errors.Is(err, syscall.EFBIG) {
		t.Fatalf("Write under the file size limit: %v, want EFBIG", err)
	}
	fmt.Println(err)
	t.Fatal("write failed as it should") // the parent wants a failed child
}

// readDir returns the files of dir by name.
func readDir(t *testing.T, dir string) map[string][]byte {
	t.Helper()
	entries, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	files := map[string][]byte{}
	for _, e := range entries {
		b, err := os.ReadFile(filepath.Join(dir, e.Name()))
		if err != nil {
			t.Fatal(err)
		}
		files[e.Name()] = b
	}
	return files
}
