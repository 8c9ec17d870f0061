package main

import (
	"bytes"
	"context"
	"strings"
	"testing"
	"time"

	"github.com/wsgrpo/wsgrpo/model/ort/orttest"
)

// TestBenchStagesQuick runs the labeler and learner suites in --quick mode,
// the learner's peak-RSS children included, and checks that every table
// is printed.
func TestBenchStagesQuick(t *testing.T) {
	orttest.Runtime(t)
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	cmd := newBenchCmd()
	var stdout, stderr bytes.Buffer
	cmd.SetOut(&stdout)
	cmd.SetErr(&stderr)
	cmd.SetArgs([]string{"labeler", "learner", "--quick", "--rss", "--log-level", "error"})
	if err := cmd.ExecuteContext(ctx); err != nil {
		t.Fatalf("%v\n%s", err, stderr.String())
	}
	got := stdout.String()
	for _, want := range []string{"## labeler stage vs raw", "ws-grpo", "grpo", "## labeler fit", "## learner vs raw", "## learner peak RSS"} {
		if !strings.Contains(got, want) {
			t.Errorf("output lacks %q:\n%s", want, got)
		}
	}
	// Three rows in the learner table (KL on with the learner's own
	// reference pass or the labeler's log-probs, and off) and two in the
	// RSS table (micro-batch 16 and 64).
	for _, prefix := range []string{"on, learner's ref pass ", "on, labeler's ref log-probs ", "off ", "16 ", "64 "} {
		if !strings.Contains(got, "\n"+prefix) {
			t.Errorf("no row starting %q:\n%s", prefix, got)
		}
	}
}
