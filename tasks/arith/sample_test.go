package arith

import (
	"bytes"
	"encoding/json"
	"flag"
	"os"
	"path/filepath"
	"strconv"
	"testing"

	"github.com/wsgrpo/wsgrpo/tasks"
)

var update = flag.Bool("update", false, "rewrite testdata/tasks/arith_sample.jsonl from the generator")

// samplePath is the committed sample of generated arith examples.
var samplePath = filepath.Join("..", "..", "testdata", "tasks", "arith_sample.jsonl")

// sampleLine is one line of the sample file: a dataset line (id, prompt,
// answer) plus the generator's view of it.
type sampleLine struct {
	ID         string `json:"id"`
	Prompt     string `json:"prompt"`
	Answer     string `json:"answer"`
	Split      string `json:"split"`
	Ops        int    `json:"ops"`
	Trace      string `json:"trace"`
	Overthinks bool   `json:"overthinks"`
	Slipped    bool   `json:"slipped"`
	MinimalLen int    `json:"minimal_len"`
}

// sample generates the sample file's contents: 24 train and 12 test
// examples at the default config, seed 1.
func sample(tb testing.TB) []byte {
	tb.Helper()
	task := newTask(tb, DefaultConfig())
	var buf bytes.Buffer
	enc := json.NewEncoder(&buf)
	enc.SetEscapeHTML(false)
	for _, part := range []struct {
		split tasks.Split
		n     int
	}{{tasks.Train, 24}, {tasks.Test, 12}} {
		i := 0
		for ex := range task.Examples(part.split, 1) {
			line := sampleLine{
				ID:         "arith-sample-" + part.split.String() + "-" + strconv.Itoa(i),
				Prompt:     ex.Text,
				Answer:     formatAnswer(ex.Answer),
				Split:      part.split.String(),
				Ops:        ex.Ops(),
				Trace:      ex.Trace.Text,
				Overthinks: ex.Trace.Overthinks,
				Slipped:    ex.Trace.Slipped,
				MinimalLen: ex.Trace.MinimalLen,
			}
			if err := enc.Encode(line); err != nil {
				tb.Fatalf("encode: %v", err)
			}
			if i++; i == part.n {
				break
			}
		}
	}
	return buf.Bytes()
}

// TestSampleFile checks that the committed sample matches the generator;
// run with -update to rewrite it after a deliberate change.
func TestSampleFile(t *testing.T) {
	got := sample(t)
	if *update {
		if err := os.WriteFile(samplePath, got, 0o644); err != nil {
			t.Fatalf("write sample: %v", err)
		}
		return
	}
	want, err := os.ReadFile(samplePath)
	if err != nil {
		t.Fatalf("read sample (run go test -run TestSampleFile -update to create it): %v", err)
	}
	if !bytes.Equal(got, want) {
		t.Fatalf("%s is out of date with the generator; if the change is deliberate, run go test ./tasks/arith -run TestSampleFile -update", samplePath)
	}
}
