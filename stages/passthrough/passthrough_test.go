package passthrough

import (
	"context"
	"errors"
	"testing"

	"github.com/apache/arrow-go/v18/arrow"
	"github.com/apache/arrow-go/v18/arrow/memory"

	"github.com/wsgrpo/wsgrpo/schemas"
)

func checked(t *testing.T) *memory.CheckedAllocator {
	t.Helper()
	mem := memory.NewCheckedAllocator(memory.NewGoAllocator())
	t.Cleanup(func() { mem.AssertSize(t, 0) })
	return mem
}

func TestNewRejectsKinds(t *testing.T) {
	for _, tc := range []struct{ from, to schemas.Kind }{
		{schemas.KindPrompt, schemas.KindVerified},
		{schemas.KindLabeled, schemas.KindPrompt},
		{"nope", schemas.KindRollout},
	} {
		t.Run(string(tc.from)+"-"+string(tc.to), func(t *testing.T) {
			if _, err := New(tc.from, tc.to, nil); !errors.Is(err, ErrKinds) {
				t.Fatalf("New = %v, want ErrKinds", err)
			}
		})
	}
}

// TestChainKinds runs a prompt batch through every hop and checks that the
// result decodes as its kind, keeps the input columns, and carries zero
// values (not invented results) in the added ones.
func TestChainKinds(t *testing.T) {
	mem := checked(t)
	in := schemas.NewPromptBatch(mem, []schemas.Prompt{
		{RunID: "r", Step: 3, PromptID: "a", Prompt: "2+2=", PromptTokenIDs: []int32{5, 6}, ReferenceAnswer: "4"},
		{RunID: "r", Step: 3, PromptID: "b", Prompt: "3+3="},
	})
	cur := in
	for {
		from := kindOf(t, cur)
		to, ok := Next(from)
		if !ok {
			break
		}
		p, err := New(from, to, mem)
		if err != nil {
			t.Fatal(err)
		}
		outs, err := p.Process(context.Background(), cur)
		cur.Release()
		if err != nil {
			t.Fatal(err)
		}
		if len(outs) != 1 {
			t.Fatalf("%s->%s: %d outputs", from, to, len(outs))
		}
		cur = outs[0]
		// The output must survive the wire format of its kind.
		b, err := schemas.Encode(cur)
		if err != nil {
			t.Fatal(err)
		}
		dec, err := schemas.Decode(to, b, mem)
		if err != nil {
			t.Fatalf("%s output does not decode: %v", to, err)
		}
		dec.Release()
	}
	defer cur.Release()
	rows, err := schemas.ReadLabeled(cur)
	if err != nil {
		t.Fatal(err)
	}
	if len(rows) != 2 {
		t.Fatalf("%d rows", len(rows))
	}
	r := rows[0]
	if r.TrajectoryID != schemas.TrajectoryID("r", 3, "a", 0) || r.GroupID != schemas.GroupID("r", 3, "a") {
		t.Errorf("ids %q %q", r.TrajectoryID, r.GroupID)
	}
	if r.Prompt.Prompt != "2+2=" || r.ReferenceAnswer != "4" || len(r.PromptTokenIDs) != 2 {
		t.Errorf("prompt columns not carried: %+v", r.Prompt)
	}
	if r.Correct || r.Advantage != 0 || r.TerminalReward != 0 || len(r.CompletionTokenIDs) != 0 {
		t.Errorf("added columns are not zero: %+v", r)
	}
}

func TestIdentity(t *testing.T) {
	mem := checked(t)
	in := schemas.NewPromptBatch(mem, []schemas.Prompt{{RunID: "r", PromptID: "a"}})
	defer in.Release()
	p, err := New(schemas.KindPrompt, schemas.KindPrompt, mem)
	if err != nil {
		t.Fatal(err)
	}
	outs, err := p.Process(context.Background(), in)
	if err != nil {
		t.Fatal(err)
	}
	if outs[0] != in {
		t.Error("identity did not return its input")
	}
	outs[0].Release()
}

func kindOf(t *testing.T, rec arrow.RecordBatch) schemas.Kind {
	t.Helper()
	k, err := schemas.KindOf(rec)
	if err != nil {
		t.Fatal(err)
	}
	return k
}
