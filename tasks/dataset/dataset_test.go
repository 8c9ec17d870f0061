package dataset

import (
	"errors"
	"fmt"
	"math"
	"strings"
	"testing"

	"github.com/wsgrpo/wsgrpo/tasks"
)

// records returns n records "q<i>" with answers i and lines i+1.
func records(tb testing.TB, n int) []Record {
	tb.Helper()
	out := make([]Record, n)
	for i := range out {
		out[i] = Record{Line: i + 1, Prompt: fmt.Sprintf("q%d", i), Answer: fmt.Sprint(i), Reference: fmt.Sprint(i)}
	}
	return out
}

func TestConfigValidate(t *testing.T) {
	tests := []struct {
		name string
		cfg  Config
		ok   bool
	}{
		{"hash split", Config{Name: "g", TestShare: 0.2}, true},
		{"all test", Config{Name: "g", Split: tasks.Test}, true},
		{"all train, share ignored", Config{Name: "g", Split: tasks.Train, TestShare: 5}, true},
		{"no name", Config{TestShare: 0.2}, false},
		{"bad split", Config{Name: "g", Split: "dev"}, false},
		{"share above one", Config{Name: "g", TestShare: 1.5}, false},
		{"share NaN", Config{Name: "g", TestShare: math.NaN()}, false},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			err := tc.cfg.Validate()
			if tc.ok != (err == nil) || (err != nil && !errors.Is(err, ErrConfig)) {
				t.Fatalf("Validate() = %v, want ok=%v", err, tc.ok)
			}
			if _, err := New(tc.cfg, nil); tc.ok != (err == nil) {
				t.Fatalf("New() = %v, want ok=%v", err, tc.ok)
			}
		})
	}
}

func TestDatasetSplits(t *testing.T) {
	recs := records(t, 2000)
	tests := []struct {
		name            string
		cfg             Config
		minTest, maxTst int
	}{
		{"all test", Config{Name: "g", Split: tasks.Test}, 2000, 2000},
		{"all train", Config{Name: "g", Split: tasks.Train}, 0, 0},
		{"hash 20%", Config{Name: "g", TestShare: 0.2}, 330, 470},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			d, err := New(tc.cfg, recs)
			if err != nil {
				t.Fatalf("New: %v", err)
			}
			if n := d.Len(tasks.Test); n < tc.minTest || n > tc.maxTst {
				t.Fatalf("%d test items, want %d..%d", n, tc.minTest, tc.maxTst)
			}
			seen := map[string]tasks.Split{}
			for _, split := range []tasks.Split{tasks.Train, tasks.Test} {
				items := tasks.Take(d.Items(split, 1), 1<<20)
				if len(items) != d.Len(split) {
					t.Fatalf("%s yielded %d items, Len says %d", split, len(items), d.Len(split))
				}
				for _, it := range items {
					if prev, dup := seen[it.Prompt]; dup {
						t.Fatalf("%q yielded in %s and %s", it.Prompt, prev, split)
					}
					seen[it.Prompt] = split
					if tc.cfg.Split == "" && tasks.SplitOf(it.Prompt, tc.cfg.TestShare) != split {
						t.Fatalf("%q in %s, SplitOf disagrees", it.Prompt, split)
					}
				}
			}
			if len(seen) != len(recs) {
				t.Fatalf("%d items in all, want %d", len(seen), len(recs))
			}
		})
	}
}

func TestDatasetItems(t *testing.T) {
	recs := records(t, 50)
	recs[3].ID = "custom"
	d, err := New(Config{Name: "toy", Split: tasks.Train}, recs)
	if err != nil {
		t.Fatalf("New: %v", err)
	}
	var src tasks.Source = d
	a := tasks.Take(src.Items(tasks.Train, 7), 100)
	b := tasks.Take(src.Items(tasks.Train, 7), 100)
	c := tasks.Take(src.Items(tasks.Train, 8), 100)
	if fmt.Sprint(a) != fmt.Sprint(b) {
		t.Fatal("same seed, different orders")
	}
	if fmt.Sprint(a) == fmt.Sprint(c) {
		t.Fatal("seeds 7 and 8 give the same order")
	}
	byPrompt := map[string]tasks.Item{}
	for _, it := range a {
		byPrompt[it.Prompt] = it
	}
	if it := byPrompt["q3"]; it.ID != "custom" || it.Task != "toy" || it.ReferenceAnswer != "3" {
		t.Fatalf("q3 item %+v", it)
	}
	if it := byPrompt["q4"]; it.ID != "toy-5" {
		t.Fatalf("q4 item ID %q, want toy-5 (name and line)", it.ID)
	}
	if got := tasks.Take(src.Items(tasks.Test, 7), 10); len(got) != 0 {
		t.Fatalf("empty split yielded %d items", len(got))
	}
	if got := tasks.Take(src.Items("dev", 7), 10); len(got) != 0 {
		t.Fatalf("invalid split yielded %d items", len(got))
	}
	if !strings.HasPrefix(src.Name(), "toy") {
		t.Fatalf("Name() = %q", src.Name())
	}
}
