package main

import (
	"encoding/json"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// TestEval runs `wsgrpo eval` end to end through the real sampler,
// verifier and logger stages on an embedded run.
func TestEval(t *testing.T) {
	model := tinyModel(t)
	t.Run("arith json", func(t *testing.T) {
		dir := filepath.Join(t.TempDir(), "run")
		got, err := execute(t, newEvalCmd(), "--model", model, "--task", "arith", "--n", "6", "--samples", "2", "--json", "--run", "ev1", "--dir", dir)
		if err != nil {
			t.Fatalf("%v\n%s", err, got)
		}
		var rep map[string]any
		if err := json.Unmarshal([]byte(got), &rep); err != nil {
			t.Fatalf("%v: %s", err, got)
		}
		for _, k := range []string{"accuracy", "mean_tokens", "mean_steps", "truncated", "n", "by_ops"} {
			if _, ok := rep[k]; !ok {
				t.Errorf("no %q in %s", k, got)
			}
		}
		if rep["n"] != 6.0 || rep["samples"] != 2.0 {
			t.Errorf("n %v samples %v", rep["n"], rep["samples"])
		}
		// The trajectory log holds every completion.
		out, err := execute(t, newSQLCmd(), "--run", dir, "--format", "csv", "SELECT count() FROM trajectories_dedup")
		if err != nil || !strings.Contains(out, "12") {
			t.Fatalf("sql: %v\n%s", err, out)
		}
		// The same run id again is refused without --force.
		if _, err := execute(t, newEvalCmd(), "--model", model, "--task", "arith", "--n", "1", "--run", "ev1", "--dir", dir); !errors.Is(err, ErrConfig) {
			t.Fatalf("reused run: %v", err)
		}
	})
	t.Run("dataset with bad and unencodable lines", func(t *testing.T) {
		data := filepath.Join(t.TempDir(), "d.jsonl")
		lines := `{"prompt": "2+2", "answer": "#### 4"}
{"prompt": "", "answer": "1"}
{"prompt": "¿cuántos? 3", "answer": "3"}
`
		if err := os.WriteFile(data, []byte(lines), 0o644); err != nil {
			t.Fatal(err)
		}
		got, err := execute(t, newEvalCmd(), "--model", model, "--data", data, "--json", "--no-log", "--run", "ev2", "--dir", filepath.Join(t.TempDir(), "run"))
		if err != nil {
			t.Fatalf("%v\n%s", err, got)
		}
		if !strings.Contains(got, "line 2") {
			t.Errorf("the bad line is not reported:\n%s", got)
		}
		js := got[strings.Index(got, "{"):]
		var rep evalReport
		if err := json.Unmarshal([]byte(js), &rep); err != nil {
			t.Fatalf("%v: %s", err, js)
		}
		if rep.N != 2 || rep.PromptErrors != 1 {
			t.Fatalf("n %d, prompt errors %d, want 2 and 1: %s", rep.N, rep.PromptErrors, js)
		}
	})
	for _, tc := range []struct {
		name string
		args []string
	}{
		{"no model", []string{"--task", "arith"}},
		{"task and data", []string{"--model", model, "--task", "arith", "--data", "x.jsonl"}},
		{"unknown task", []string{"--model", model, "--task", "chess"}},
		{"bad ops", []string{"--model", model, "--task", "arith", "--ops", "99"}},
		{"negative ops", []string{"--model", model, "--task", "arith", "--ops", "-1"}},
		{"negative timeout", []string{"--model", model, "--task", "arith", "--timeout", "-1s"}},
		{"absurd samples", []string{"--model", model, "--task", "arith", "--samples", "100000000"}},
		{"absurd n", []string{"--model", model, "--task", "arith", "--n", "1000000000000"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if _, err := execute(t, newEvalCmd(), append(tc.args, "--dir", t.TempDir())...); !errors.Is(err, ErrConfig) {
				t.Fatalf("err = %v, want ErrConfig", err)
			}
		})
	}
}
