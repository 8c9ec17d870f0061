package main

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/wsgrpo/wsgrpo/tracelog/chtest"
)

// TestLabelerFitRefuses: `labeler fit` says what is wrong and writes
// nothing when it cannot fit: no --out, an --out that exists, a run with no
// rows in the log, and rows that hold no (correct, incorrect) pair.
func TestLabelerFitRefuses(t *testing.T) {
	t.Setenv("WSGRPO_CHDB_LIB", chtest.Library(t))
	model := tinyModel(t)
	dir := filepath.Join(t.TempDir(), "run")
	// An untrained tiny policy: every completion is wrong, so no pairs.
	if got, err := execute(t, newEvalCmd(), "--model", model, "--task", "arith", "--n", "4", "--samples", "2", "--run", "fitsrc", "--dir", dir); err != nil {
		t.Fatalf("%v\n%s", err, got)
	}
	exists := t.TempDir()
	for _, tc := range []struct {
		name string
		args []string
		out  string // an --out that must not be written
		want error
		text string
	}{
		{"no --out", []string{"--run", dir, "--from", "fitsrc", "--model", model}, "", ErrConfig, "--out"},
		{"--out exists", []string{"--run", dir, "--from", "fitsrc", "--model", model, "--out", exists}, "", ErrConfig, "--force"},
		{"no rows for the run", []string{"--run", dir, "--from", "nosuchrun", "--model", model}, filepath.Join(t.TempDir(), "l"), ErrNoPairs, "no sampled rows"},
		{"no pair", []string{"--run", dir, "--from", "fitsrc", "--model", model}, filepath.Join(t.TempDir(), "l"), ErrNoPairs, "both a correct and an incorrect"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			args := tc.args
			if tc.out != "" {
				args = append(args, "--out", tc.out)
			}
			got, err := execute(t, newLabelerFitCmd(), args...)
			if !errors.Is(err, tc.want) || !strings.Contains(err.Error(), tc.text) {
				t.Fatalf("err = %v, want %v saying %q\n%s", err, tc.want, tc.text, got)
			}
			if tc.out != "" {
				if _, err := os.Stat(tc.out); err == nil {
					t.Fatalf("%s was written", tc.out)
				}
			}
		})
	}
}
