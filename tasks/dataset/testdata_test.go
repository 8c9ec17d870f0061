package dataset

import (
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/wsgrpo/wsgrpo/tasks"
	"github.com/wsgrpo/wsgrpo/tasks/arith"
)

// testdataFile is the path of a file under the repository's testdata/tasks.
func testdataFile(name string) string {
	return filepath.Join("..", "..", "testdata", "tasks", name)
}

func TestLoadGSM8KSample(t *testing.T) {
	res, err := Load(testdataFile("gsm8k_sample.jsonl"), Options{})
	if err != nil {
		t.Fatalf("Load: %v", err)
	}
	if res.Lines != 11 || len(res.Records) != 8 || res.Blank != 1 || len(res.Bad) != 2 {
		t.Fatalf("lines %d, records %d, blank %d, bad %v; want 11, 8, 1, 2", res.Lines, len(res.Records), res.Blank, res.Bad)
	}
	wantBad := map[int]error{10: ErrPrompt, 11: ErrAnswer}
	for _, b := range res.Bad {
		if !errors.Is(b, wantBad[b.Line]) {
			t.Fatalf("bad line %v, want %v", b, wantBad[b.Line])
		}
	}
	want := []string{"15", "126", "210", "6", "-5", "8.75", "900", "54"}
	for i, r := range res.Records {
		if r.Reference != want[i] {
			t.Fatalf("record %s: reference %q, want %q", r.ID, r.Reference, want[i])
		}
	}
	if _, err := Load(testdataFile("gsm8k_sample.jsonl"), Options{FailFast: true}); !errors.Is(err, ErrPrompt) || !strings.Contains(err.Error(), "line 10") {
		t.Fatalf("FailFast load error %v, want line 10's ErrPrompt", err)
	}
	d, err := New(Config{Name: "gsm8k-sample", Split: tasks.Test}, res.Records)
	if err != nil {
		t.Fatalf("New: %v", err)
	}
	if items := tasks.Take(d.Items(tasks.Test, 1), 100); len(items) != 8 || items[0].Task != "gsm8k-sample" {
		t.Fatalf("items %+v", items)
	}
}

func TestLoadArithSample(t *testing.T) {
	path := testdataFile("arith_sample.jsonl")
	res, err := Load(path, Options{FailFast: true})
	if err != nil {
		t.Fatalf("Load: %v", err)
	}
	if len(res.Records) < 24 || len(res.Bad) != 0 || res.Blank != 0 {
		t.Fatalf("%d records, bad %v, %d blank", len(res.Records), res.Bad, res.Blank)
	}
	// The file's own split column must agree with hashing the prompt at
	// the arith default test share: one split rule for both sources.
	raw, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("read: %v", err)
	}
	lines := strings.Split(strings.TrimSuffix(string(raw), "\n"), "\n")
	share := arith.DefaultConfig().TestShare
	for i, r := range res.Records {
		v, err := arith.Eval(r.Prompt)
		if err != nil || fmt.Sprint(v) != r.Reference {
			t.Fatalf("line %d: %q evaluates to %d, %v; reference %q", r.Line, r.Prompt, v, err, r.Reference)
		}
		var extra struct {
			Split string `json:"split"`
		}
		if err := json.Unmarshal([]byte(lines[i]), &extra); err != nil {
			t.Fatalf("line %d: %v", i+1, err)
		}
		if got := tasks.SplitOf(r.Prompt, share).String(); got != extra.Split {
			t.Fatalf("line %d: split %q, SplitOf says %q", r.Line, extra.Split, got)
		}
	}
	d, err := New(Config{Name: arith.Name, TestShare: share}, res.Records)
	if err != nil {
		t.Fatalf("New: %v", err)
	}
	if d.Len(tasks.Test) != 12 || d.Len(tasks.Train) != len(res.Records)-12 {
		t.Fatalf("train %d, test %d; want %d, 12", d.Len(tasks.Train), d.Len(tasks.Test), len(res.Records)-12)
	}
}
