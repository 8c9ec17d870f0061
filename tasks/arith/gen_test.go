package arith

import (
	"fmt"
	"testing"

	"github.com/wsgrpo/wsgrpo/tasks"
)

func TestGeneratorDeterministic(t *testing.T) {
	task := newTask(t, DefaultConfig())
	for _, split := range []tasks.Split{tasks.Train, tasks.Test} {
		t.Run(split.String(), func(t *testing.T) {
			a := problems(t, task, split, 7, 200)
			b := problems(t, task, split, 7, 200)
			c := problems(t, task, split, 8, 200)
			same := 0
			for i := range a {
				if a[i].Text != b[i].Text || a[i].Answer != b[i].Answer {
					t.Fatalf("problem %d: %q vs %q under the same seed", i, a[i].Text, b[i].Text)
				}
				if a[i].Text == c[i].Text {
					same++
				}
			}
			if same > 20 {
				t.Fatalf("seeds 7 and 8 agree on %d of 200 problems", same)
			}
		})
	}
}

func TestGeneratorRanges(t *testing.T) {
	tests := []struct {
		name           string
		minOps, maxOps int
		maxOperand     int64
	}{
		{"default", 2, 4, 99},
		{"one op", 1, 1, 99},
		{"five ops", 5, 5, 99},
		{"wide", 1, 8, 99},
		{"small operands", 2, 3, 9},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			cfg := DefaultConfig()
			cfg.MinOps, cfg.MaxOps, cfg.MaxOperand = tc.minOps, tc.maxOps, tc.maxOperand
			task := newTask(t, cfg)
			seen := map[int]int{}
			for _, p := range problems(t, task, tasks.Train, 1, 3000) {
				ops := p.Ops()
				if ops < tc.minOps || ops > tc.maxOps {
					t.Fatalf("%q has %d ops, want %d..%d", p.Text, ops, tc.minOps, tc.maxOps)
				}
				seen[ops]++
				for _, v := range p.Expr.Operands() {
					if v < 0 || v > tc.maxOperand {
						t.Fatalf("%q has operand %d outside 0..%d", p.Text, v, tc.maxOperand)
					}
				}
				if v, err := Eval(p.Text); err != nil || v != p.Answer {
					t.Fatalf("Eval(%q) = %d, %v; problem says %d", p.Text, v, err, p.Answer)
				}
				if e, _ := Parse(p.Text); e.String() != p.Text {
					t.Fatalf("prompt %q is not canonical (%q)", p.Text, e.String())
				}
			}
			if len(seen) != tc.maxOps-tc.minOps+1 {
				t.Fatalf("op counts seen %v, want every one of %d..%d", seen, tc.minOps, tc.maxOps)
			}
		})
	}
}

func TestSplitsDisjoint(t *testing.T) {
	cfg := DefaultConfig()
	cfg.MinOps, cfg.MaxOps = 2, 2 // the smallest space, where collisions are likeliest
	task := newTask(t, cfg)
	const perSeed = 5000
	test := map[string]bool{}
	for seed := range uint64(4) {
		for _, p := range problems(t, task, tasks.Test, seed+100, perSeed) {
			if p.Split != tasks.Test || tasks.SplitOf(p.Text, cfg.TestShare) != tasks.Test {
				t.Fatalf("test generator yielded %q of split %q", p.Text, tasks.SplitOf(p.Text, cfg.TestShare))
			}
			test[p.Text] = true
		}
	}
	train := 0
	for seed := range uint64(4) {
		for _, p := range problems(t, task, tasks.Train, seed, perSeed) {
			if test[p.Text] {
				t.Fatalf("train problem %q (seed %d) is also a test problem", p.Text, seed)
			}
			train++
		}
	}
	t.Logf("%d train and %d distinct test expressions, none shared", train, len(test))
}

func TestItems(t *testing.T) {
	task := newTask(t, DefaultConfig())
	var src tasks.Source = task
	items := tasks.Take(src.Items(tasks.Test, 3), 50)
	again := tasks.Take(src.Items(tasks.Test, 3), 50)
	for i, it := range items {
		if it != again[i] {
			t.Fatalf("item %d differs between runs: %+v vs %+v", i, it, again[i])
		}
		if want := fmt.Sprintf("arith-test-3-%d", i); it.ID != want || it.Task != Name {
			t.Fatalf("item %d: ID %q task %q, want %q %q", i, it.ID, it.Task, want, Name)
		}
		if v, err := Eval(it.Prompt); err != nil || fmt.Sprint(v) != it.ReferenceAnswer {
			t.Fatalf("item %q: reference %q, Eval gives %d, %v", it.Prompt, it.ReferenceAnswer, v, err)
		}
	}
	if got := tasks.Take(src.Items("dev", 3), 5); len(got) != 0 {
		t.Fatalf("invalid split yielded %d items", len(got))
	}
}
