package learner

import (
	"errors"
	"os"
	"slices"
	"testing"

	"github.com/wsgrpo/wsgrpo/model/ort/orttest"
)

// TestCrashLosesNothing: a learner that dies without Close resumes at its
// last checkpoint; exactly the batches it had not acknowledged come back,
// and their rows train again (they were not in the checkpoint's dedup
// window), while the acknowledged ones would be duplicates.
func TestCrashLosesNothing(t *testing.T) {
	rt := orttest.Runtime(t)
	init := tiny(t, 9)
	dir := t.TempDir()
	o := Options{GroupsPerStep: 1, CheckpointEvery: 2, Dir: dir, KeepCheckpoints: 1, MaxStaleness: 100}
	pub := &store{}
	a := &acks{}
	p, err := New(t.Context(), rt, init, pub, o)
	if err != nil {
		t.Fatal(err)
	}
	inputs := resumeInputs(t, 2)[:3]
	for _, rows := range inputs {
		feed(a.ctx(t.Context()), t, p, rows)
	}
	if got, want := a.state(), []string{"acked", "acked", "open"}; !slices.Equal(got, want) {
		t.Fatalf("acks before the crash %v, want %v", got, want)
	}
	p.closeSessions() // the process dies: no final checkpoint, no acks
	steps, err := stepDirs(dir)
	if err != nil || !slices.Equal(steps, []int64{2}) {
		t.Fatalf("checkpoints %v (%v), want only step 2", steps, err)
	}
	q := newLearner(t, rt, init, pub, o)
	if st := q.Stats(); st.Step != 2 || st.Version != 5 {
		t.Fatalf("resumed at step %d version %d, want step 2 and version 5 (4 was published before the crash)", st.Step, st.Version)
	}
	// The stream redelivers the unacknowledged batch; a stray redelivery
	// of an acknowledged one is a duplicate.
	b := &acks{}
	feed(b.ctx(t.Context()), t, q, inputs[2])
	feed(b.ctx(t.Context()), t, q, inputs[0])
	st := q.Stats()
	if st.Step != 3 || st.Dropped[DropDuplicate] != int64(len(inputs[0])) || st.RowsTrained != 6 {
		t.Fatalf("after redelivery: %+v; want step 3, one batch of duplicates, 6 rows trained in all", st)
	}
	if got, want := b.state(), []string{"open", "acked"}; !slices.Equal(got, want) {
		t.Fatalf("acks after redelivery %v, want %v", got, want)
	}
}

// TestResumeRefusesOtherReference: a checkpoint directory belongs to the
// reference policy it was trained from.
func TestResumeRefusesOtherReference(t *testing.T) {
	rt := orttest.Runtime(t)
	dir := t.TempDir()
	p, err := New(t.Context(), rt, tiny(t, 10), &store{}, Options{GroupsPerStep: 1, Dir: dir})
	if err != nil {
		t.Fatal(err)
	}
	feed(t.Context(), t, p, spec{prompt: "1+1", comps: []string{"A: 2", "A: 3"}, advs: []float32{1, -1}, version: 1}.build(t, nil))
	if err := p.Close(t.Context()); err != nil {
		t.Fatal(err)
	}
	if _, err := New(t.Context(), rt, tiny(t, 11), &store{}, Options{Dir: dir}); !errors.Is(err, ErrCheckpoint) {
		t.Fatalf("got %v, want ErrCheckpoint", err)
	}
	ents, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	for _, e := range ents {
		if e.Name() != stepName(1) {
			t.Errorf("unexpected entry %s in the checkpoint directory", e.Name())
		}
	}
}

// TestOptionsValidate rejects settings that cannot work.
func TestOptionsValidate(t *testing.T) {
	cases := []struct {
		name string
		o    Options
		ok   bool
	}{
		{"defaults", Options{}, true},
		{"negative staleness", Options{MaxStaleness: -1}, false},
		{"eps low 1", Options{EpsLow: 1}, false},
		{"negative beta", Options{Beta: -0.1}, false},
		{"unknown aggregation", Options{Aggregation: "sum"}, false},
		{"template without placeholder", Options{PromptTemplate: "x"}, false},
		{"negative micro batch", Options{MicroBatch: -1}, false},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			err := tc.o.Validate()
			if (err == nil) != tc.ok || (err != nil && !errors.Is(err, ErrOptions)) {
				t.Fatalf("Validate() = %v, want ok=%v", err, tc.ok)
			}
		})
	}
}
