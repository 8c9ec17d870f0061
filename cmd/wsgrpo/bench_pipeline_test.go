package main

import (
	"bytes"
	"context"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/wsgrpo/wsgrpo/model/ort/orttest"
	"github.com/wsgrpo/wsgrpo/tracelog/chtest"
)

// TestBenchPipelineQuick runs the pipeline suite in --quick mode: every
// stage a process (the test binary as wsgrpo), alone and in a run, with 1
// and 2 sampler processes, and checks that both rows are printed with
// positive figures: for the shipped base policy and for a tiny Hugging
// Face model (the stages take either kind of checkpoint unchanged).
func TestBenchPipelineQuick(t *testing.T) {
	if testing.Short() {
		t.Skip("starts a dozen processes")
	}
	orttest.Runtime(t)
	t.Setenv("WSGRPO_CHDB_LIB", chtest.Library(t))
	t.Setenv(envCLI, "1") // the children the suite starts are this binary
	for _, tc := range []struct {
		name, model string
		passes      int
	}{
		{"wsgrpo checkpoint", shippedBase, 1},
		{"Hugging Face, two passes", writeHFModel(t, tinyHFTokenizer(t, false), 0, 1), 2},
	} {
		t.Run(tc.name, func(t *testing.T) {
			benchPipelineQuick(t, tc.model, tc.passes)
		})
	}
}

// benchPipelineQuick is TestBenchPipelineQuick with one model.
func benchPipelineQuick(t *testing.T, model string, passes int) {
	ctx, cancel := context.WithTimeout(t.Context(), 4*time.Minute)
	defer cancel()
	cmd := newBenchCmd()
	var stdout, stderr bytes.Buffer
	cmd.SetOut(&stdout)
	cmd.SetErr(&stderr)
	cfg := filepath.Join(t.TempDir(), "bench.yaml")
	if err := os.WriteFile(cfg, []byte("train:\n  model: "+model+"\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	cmd.SetArgs([]string{"pipeline", "--quick", "--config", cfg, "--log-level", "error", "--passes", strconv.Itoa(passes)})
	if err := cmd.ExecuteContext(ctx); err != nil {
		t.Fatalf("%v\n%s", err, stderr.String())
	}
	got := stdout.String()
	if !strings.Contains(got, "## pipeline: every stage its own process") {
		t.Fatalf("no pipeline table:\n%s", got)
	}
	for _, n := range []string{"1", "2"} {
		var row []string
		for line := range strings.Lines(got) {
			if f := strings.Fields(line); len(f) > 0 && f[0] == n {
				row = f
			}
		}
		if len(row) < 8 || row[1] != "shared" || row[2] == "0" || row[3] == "0" || row[4] == "0.00" {
			t.Errorf("row for %s samplers: %q\n%s", n, row, got)
		}
		// With several passes the efficiency lists each pass's.
		if passes > 1 && (len(row) < 8+passes || !strings.HasPrefix(row[5], "(")) {
			t.Errorf("row for %s samplers lists no efficiency per pass: %q", n, row)
		}
	}
}

// TestTimedWindow: the window opens when the last batch of the untimed
// steps arrives and counts what arrives after it.
func TestTimedWindow(t *testing.T) {
	t0 := time.Unix(100, 0)
	at := func(ms int) time.Time { return t0.Add(time.Duration(ms) * time.Millisecond) }
	for _, tc := range []struct {
		name         string
		seen         []arrival
		skip         int64
		rows, tokens int
		window       time.Duration
	}{
		{"none", nil, 1, 0, 0, 0},
		{"skip one step", []arrival{{at: at(0), step: 1, rows: 4, tokens: 40}, {at: at(100), step: 1, rows: 4, tokens: 40}, {at: at(300), step: 2, rows: 4, tokens: 20}, {at: at(600), step: 3, rows: 4, tokens: 10}}, 1, 8, 30, 500 * time.Millisecond},
		{"skip none", []arrival{{at: at(0), step: 1, rows: 4, tokens: 40}, {at: at(250), step: 2, rows: 4, tokens: 20}}, 0, 4, 20, 250 * time.Millisecond},
		{"a late untimed batch closes the window's start", []arrival{{at: at(0), step: 2, rows: 4, tokens: 20}, {at: at(200), step: 1, rows: 4, tokens: 40}, {at: at(400), step: 3, rows: 4, tokens: 10}}, 1, 4, 10, 200 * time.Millisecond},
	} {
		t.Run(tc.name, func(t *testing.T) {
			rows, tokens, _, window := timedWindow(tc.seen, tc.skip)
			if rows != tc.rows || tokens != tc.tokens || window != tc.window {
				t.Fatalf("got %d rows, %d tokens, %s; want %d, %d, %s", rows, tokens, window, tc.rows, tc.tokens, tc.window)
			}
		})
	}
}
