package main

import (
	"encoding/json"
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

// TestLabelerFitTestSet: `labeler fit --eval-where` fits on the rows
// outside the filter and scores the pairs of the rows inside it: the test
// set's pairs are counted apart, are not fitted on (the fit sees fewer
// pairs than without the filter), and the model is saved.
func TestLabelerFitTestSet(t *testing.T) {
	if testing.Short() {
		t.Skip("samples the shipped base policy")
	}
	t.Setenv("WSGRPO_CHDB_LIB", chtest.Library(t))
	dir := filepath.Join(t.TempDir(), "run")
	// The shipped base is right on some samples of a prompt and wrong on
	// others: pairs.
	if got, err := execute(t, newEvalCmd(), "--model", shippedBase, "--task", "arith", "--n", "24", "--samples", "4", "--run", "fitsrc", "--dir", dir); err != nil {
		t.Fatalf("%v\n%s", err, got)
	}
	fit := func(t *testing.T, extra ...string) map[string]any {
		t.Helper()
		out := filepath.Join(t.TempDir(), "l")
		args := append([]string{"--dir", dir, "--from", "fitsrc", "--model", shippedBase, "--out", out, "--json"}, extra...)
		got, err := execute(t, newLabelerFitCmd(), args...)
		if err != nil {
			t.Fatalf("%v\n%s", err, got)
		}
		if _, err := os.Stat(filepath.Join(out, "labeler.json")); err != nil {
			t.Fatalf("no labeler saved: %v", err)
		}
		var v map[string]any
		if err := json.Unmarshal([]byte(got[strings.Index(got, "{"):]), &v); err != nil {
			t.Fatalf("%v\n%s", err, got)
		}
		return v
	}
	all := fit(t)
	if _, ok := all["test"]; ok {
		t.Fatalf("a test report without --eval-where: %v", all)
	}
	const half = "cityHash64(prompt_id) % 2 = 0"
	split := fit(t, "--eval-where", half)
	test, ok := split["test"].(map[string]any)
	if !ok {
		t.Fatalf("no test report: %v", split)
	}
	pairs, full, acc := test["pairs"].(float64), test["full_pairs"].(float64), test["accuracy"].(float64)
	if test["where"] != half || pairs < 1 || full < 1 || full > pairs || acc < 0 || acc > 1 {
		t.Fatalf("test report %v", test)
	}
	fitted := split["report"].(map[string]any)["pairs"].(float64)
	if whole := all["report"].(map[string]any)["pairs"].(float64); fitted >= whole {
		t.Fatalf("the fit saw %v pairs with half the prompts held out, %v without", fitted, whole)
	}
	t.Logf("fit on %v pairs (all rows: %v); test: %v pairs, accuracy %.3f", fitted, all["report"].(map[string]any)["pairs"], pairs, acc)
}
