package main

import (
	"errors"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/wsgrpo/wsgrpo/model/checkpoint"
	"github.com/wsgrpo/wsgrpo/model/labeler"
	"github.com/wsgrpo/wsgrpo/tracelog/chtest"
)

// shippedBase is the shipped base policy, as seen from this package.
const shippedBase = "../../testdata/base"

// writeTrainConfig writes a short training run's configuration.
func writeTrainConfig(t *testing.T, run, extra string) string {
	t.Helper()
	path := filepath.Join(t.TempDir(), "run.yaml")
	yaml := fmt.Sprintf(`run: %s
sampler:
  samples: 4
  max_new_tokens: 128
train:
  model: %s
  steps: 2
  prompts_per_step: 4
  warmup_steps: 2
  eval_prompts: 8
learner:
  max_staleness: 2
  checkpoint_every: 1
%s`, run, shippedBase, extra)
	if err := os.WriteFile(path, []byte(yaml), 0o644); err != nil {
		t.Fatal(err)
	}
	return path
}

// TestTrainRun trains for two steps end to end (real NATS, ONNX Runtime
// and chDB) with WS-GRPO and with a baseline shaper: the warm-up fits a
// labeler, the learner publishes versions, the steps table and the
// trajectory log record them, and the trained policy loads. The baseline
// serves --metrics: every session of the command (evaluations, warm-up,
// training) serves on the one address in turn.
func TestTrainRun(t *testing.T) {
	t.Setenv("WSGRPO_CHDB_LIB", chtest.Library(t))
	for _, tc := range []struct {
		name, shaper string
		labeled      bool
		metrics      bool
	}{
		{"ws-grpo", "ws-grpo", true, false},
		{"grpo baseline", "grpo", false, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			dir := filepath.Join(t.TempDir(), "run")
			run := "tr" + strings.ReplaceAll(tc.shaper, "-", "")
			cfg := writeTrainConfig(t, run, "shaping:\n  shaper: "+tc.shaper+"\n")
			args := []string{"--config", cfg, "--dir", dir}
			if tc.metrics {
				args = append(args, "--metrics", freeAddr(t))
			}
			got, err := execute(t, newTrainCmd(), args...)
			if err != nil {
				t.Fatalf("%v\n%s", err, got)
			}
			for _, want := range []string{"before: greedy accuracy", "before: sampled accuracy", "training run", "first update:", "last step:", "greedy test eval:", "sampled test eval:", "trained policy:"} {
				if !strings.Contains(got, want) {
					t.Errorf("summary lacks %q:\n%s", want, got)
				}
			}
			if _, err := checkpoint.Load(filepath.Join(dir, "policy")); err != nil {
				t.Fatalf("trained policy: %v", err)
			}
			steps, err := execute(t, newSQLCmd(), "--run", dir, "--format", "csv",
				"SELECT count(), max(step), min(policy_version) > 1 FROM steps_dedup WHERE run_id = '"+run+"' AND skipped = 0")
			if err != nil || !strings.Contains(steps, "2,2,1") {
				t.Fatalf("steps table: %v\n%s", err, steps)
			}
			// Every labeled row names its shaper, and under ws-grpo the
			// labeler that scored it: the one the warm-up fitted.
			q := "SELECT count(), countIf(shaper = '" + tc.shaper + "'), countIf(labeler != ''), uniqExact(labeler) FROM trajectories_dedup WHERE run_id = '" + run + "'"
			rows, err := execute(t, newSQLCmd(), "--run", dir, "--format", "csv", q)
			if err != nil {
				t.Fatalf("%v\n%s", err, rows)
			}
			var n, shaped, labeled, uniq int
			if _, err := fmt.Sscanf(strings.TrimSpace(lastLine(rows)), "%d,%d,%d,%d", &n, &shaped, &labeled, &uniq); err != nil {
				t.Fatalf("%v: %q", err, rows)
			}
			if n < 2*4*4 || shaped != n {
				t.Fatalf("%d rows, %d with shaper %s; want >= 32, all", n, shaped, tc.shaper)
			}
			if tc.labeled {
				m, err := labeler.Load(filepath.Join(dir, "labeler"))
				if err != nil {
					t.Fatal(err)
				}
				if labeled != n || uniq != 1 || !strings.Contains(got, m.ID()) {
					t.Fatalf("%d of %d rows carry a labeler (%d distinct); the fitted one is %s", labeled, n, uniq, m.ID())
				}
			} else if labeled != 0 {
				t.Fatalf("%d rows of a %s run carry a labeler", labeled, tc.shaper)
			}
		})
	}
}

// TestTrainRunRefusesBadSetups covers the setups a run refuses before it
// starts, with ErrConfig.
func TestTrainRunRefusesBadSetups(t *testing.T) {
	t.Setenv("WSGRPO_CHDB_LIB", chtest.Library(t))
	for _, tc := range []struct{ name, extra string }{
		{"ws-grpo without warm-up or artifact", "shaping:\n  shaper: ws-grpo\n"},
		{"unknown shaper", "shaping:\n  shaper: best-of-n\n"},
		{"missing labeler artifact", "labeler:\n  artifact: /nonexistent/labeler\n"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			cfg := writeTrainConfig(t, "bad", tc.extra)
			if tc.name == "ws-grpo without warm-up or artifact" {
				raw, _ := os.ReadFile(cfg)
				_ = os.WriteFile(cfg, []byte(strings.Replace(strings.Replace(string(raw), "warmup_steps: 2", "warmup_steps: 0", 1), "eval_prompts: 8", "eval_prompts: 0", 1)), 0o644)
			}
			got, err := execute(t, newTrainCmd(), "--config", cfg, "--dir", filepath.Join(t.TempDir(), "run"))
			if err == nil {
				t.Fatalf("accepted:\n%s", got)
			}
			if tc.name != "missing labeler artifact" && !errors.Is(err, ErrConfig) {
				t.Fatalf("err = %v, want ErrConfig", err)
			}
			if !strings.Contains(err.Error(), "labeler") && !strings.Contains(err.Error(), "shaper") {
				t.Fatalf("the error does not say what is wrong: %v", err)
			}
		})
	}
}

// lastLine returns the last non-empty line of s.
func lastLine(s string) string {
	lines := strings.Split(strings.TrimSpace(s), "\n")
	return lines[len(lines)-1]
}

// TestTrainResume stops a run after one step, refuses to start it again
// without --resume or --force, and continues it with --resume from the
// learner's checkpoint: the steps table then holds both steps, each with
// its own, increasing version.
func TestTrainResume(t *testing.T) {
	t.Setenv("WSGRPO_CHDB_LIB", chtest.Library(t))
	dir := filepath.Join(t.TempDir(), "run")
	cfg := writeTrainConfig(t, "resume", "shaping:\n  shaper: dr-grpo\n")
	raw, _ := os.ReadFile(cfg)
	_ = os.WriteFile(cfg, []byte(strings.Replace(string(raw), "eval_prompts: 8", "eval_prompts: 0", 1)), 0o644)
	if got, err := execute(t, newTrainCmd(), "--config", cfg, "--dir", dir, "--steps", "1"); err != nil {
		t.Fatalf("%v\n%s", err, got)
	}
	if _, err := execute(t, newTrainCmd(), "--config", cfg, "--dir", dir, "--steps", "2"); !errors.Is(err, ErrConfig) || !strings.Contains(err.Error(), "--resume") {
		t.Fatalf("an existing run started again without --resume: %v", err)
	}
	got, err := execute(t, newTrainCmd(), "--config", cfg, "--dir", dir, "--steps", "2", "--resume")
	if err != nil {
		t.Fatalf("%v\n%s", err, got)
	}
	if !strings.Contains(got, "resuming at step 1 of 2") {
		t.Errorf("no resume line:\n%s", got)
	}
	steps, err := execute(t, newSQLCmd(), "--run", dir, "--format", "csv",
		"SELECT count(), uniqExact(policy_version), min(step), max(step), max(policy_version) > min(policy_version) FROM steps_dedup WHERE run_id = 'resume'")
	if err != nil || lastLine(steps) != "2,2,1,2,1" {
		t.Fatalf("steps table after the resume: %v\n%s", err, steps)
	}
}

// freeAddr returns a loopback address with a port that was free a moment
// ago.
func freeAddr(t testing.TB) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	if err := ln.Close(); err != nil {
		t.Fatal(err)
	}
	return addr
}
