package verifier

import (
	"context"
	"errors"
	"math"
	"reflect"
	"strings"
	"sync"
	"testing"
	"unicode/utf8"

	"github.com/apache/arrow-go/v18/arrow"
	"github.com/apache/arrow-go/v18/arrow/array"
	"github.com/apache/arrow-go/v18/arrow/memory"

	"github.com/wsgrpo/wsgrpo/schemas"
	"github.com/wsgrpo/wsgrpo/stages/stage"
)

var _ stage.Processor = (*Processor)(nil)

func checked(t testing.TB) *memory.CheckedAllocator {
	t.Helper()
	mem := memory.NewCheckedAllocator(memory.NewGoAllocator())
	t.Cleanup(func() { mem.AssertSize(t, 0) })
	return mem
}

// rollout returns a rollout row with every column set, so that a column
// dropped or shifted on the way shows.
func rollout(i int, task, ref, completion, finish string) schemas.Rollout {
	pid := "p" + string(rune('a'+i))
	return schemas.Rollout{
		Prompt: schemas.Prompt{
			RunID: "run", Step: 7, PromptID: pid, Task: task, Prompt: "question " + pid,
			PromptTokenIDs: []int32{int32(i), 2, 3}, ReferenceAnswer: ref, Replayed: i%2 == 1, CreatedMs: 1000 + int64(i),
		},
		TrajectoryID:       schemas.TrajectoryID("run", 7, pid, int32(i)),
		GroupID:            schemas.GroupID("run", 7, pid),
		SampleIndex:        int32(i),
		PolicyVersion:      6,
		Completion:         completion,
		CompletionTokenIDs: []int32{9, 8, int32(i)},
		TokenLogprobs:      []float32{-0.5, -1.25, float32(-i)},
		StepEnds:           []int32{1, 3},
		FinishReason:       finish,
		SampleMs:           12.5 + float64(i),
	}
}

type want struct {
	answer  string
	correct bool
}

func TestProcess(t *testing.T) {
	mem := checked(t)
	cases := []struct {
		row  schemas.Rollout
		want want
	}{
		{rollout(0, "arith", "118", "(17+25)*3-8\n= 42*3-8\nA: 118", "eos"), want{"118", true}},
		{rollout(1, "arith", "118", "(17+25)*3-8\nA: 126", "eos"), want{"126", false}},
		{rollout(2, "arith", "118", "(17+25)*3-8 = 42*3", "length"), want{"", false}},
		{rollout(3, "arith", "-5", "3-8\nA: \u22125", "eos"), want{"-5", true}},
		{rollout(4, "arith", "118", "A: 118\nA: 11", "length"), want{"11", false}},
		{rollout(5, "gsm8k", "1,234", "so 1000+234\n#### 1234", "eos"), want{"1234", true}},
		{rollout(6, "gsm8k", "0.5", `half is $\boxed{\frac{1}{2}}$`, "eos"), want{"0.5", true}},
		{rollout(7, "dataset", "Paris", "The capital is **Paris**", "stop"), want{"", false}},
		{rollout(8, "dataset", "Paris", "#### paris.", "stop"), want{"paris", true}},
		{rollout(9, "dataset", "42", "", "length"), want{"", false}},
		{rollout(10, "dataset", "42", "\ufffd\ufffd garbage \x00\x1b[0m 42", "eos"), want{"42", true}},
		{rollout(11, "dataset", "", "#### ", "eos"), want{"", false}},
		{rollout(12, "dataset", "", "#### 5", "eos"), want{"5", false}},
		{rollout(14, "arith", "56400", "20+61=81\ncheck 20+61=81\n81+13=94\n94*60=5640\n5640*10=56400\nA:56400\nverify:\n20+61=81\n81+13=94\n94*60=5640\n5640*10=56400\nA:56400", "eos"), want{"56400", true}},
		{rollout(15, "arith", "56400", "94*60=5640\nA:56400\nverify:\n94*60=5640\n5640*10=564", "length"), want{"56400", true}},
		{rollout(13, "arith", "7", "A: "+strings.Repeat("7", 5000), "length"), want{"", false}},
	}
	rows := make([]schemas.Rollout, len(cases))
	for i, c := range cases {
		rows[i] = c.row
	}
	in := schemas.NewRolloutBatch(mem, rows)
	defer in.Release()

	for _, rewards := range []struct{ correct, wrong float32 }{{0, 0}, {2, -0.5}} {
		p, err := New(Options{Allocator: mem, CorrectReward: rewards.correct, WrongReward: rewards.wrong})
		if err != nil {
			t.Fatal(err)
		}
		wantCorrect, wantWrong := rewards.correct, rewards.wrong
		if wantCorrect == 0 && wantWrong == 0 {
			wantCorrect, wantWrong = 1, 0
		}
		outs, err := p.Process(context.Background(), in)
		if err != nil {
			t.Fatal(err)
		}
		if len(outs) != 1 {
			t.Fatalf("%d outputs, want 1", len(outs))
		}
		out := outs[0]
		if k, err := schemas.KindOf(out); err != nil || k != schemas.KindVerified {
			t.Fatalf("output kind %q, %v", k, err)
		}
		if !out.Schema().Equal(schemas.MustSchema(schemas.KindVerified)) {
			t.Fatalf("output schema %v", out.Schema())
		}
		// Every input column is carried unchanged.
		for i := range int(in.NumCols()) {
			if !array.Equal(in.Column(i), out.Column(i)) {
				t.Errorf("column %s changed", in.ColumnName(i))
			}
		}
		got, err := schemas.ReadVerified(out)
		if err != nil {
			t.Fatal(err)
		}
		inRows, err := schemas.ReadRollouts(in)
		if err != nil {
			t.Fatal(err)
		}
		if len(got) != len(cases) {
			t.Fatalf("%d rows, want %d", len(got), len(cases))
		}
		for i, c := range cases {
			g := got[i]
			if !reflect.DeepEqual(g.Rollout, inRows[i]) {
				t.Errorf("row %d: rollout columns changed:\n got %+v\nwant %+v", i, g.Rollout, inRows[i])
			}
			if g.ExtractedAnswer != c.want.answer || g.Correct != c.want.correct {
				t.Errorf("row %d (%.40q): answer %q correct %v, want %q %v", i, c.row.Completion, g.ExtractedAnswer, g.Correct, c.want.answer, c.want.correct)
			}
			wantReward := wantWrong
			if c.want.correct {
				wantReward = wantCorrect
			}
			if g.TerminalReward != wantReward {
				t.Errorf("row %d: reward %v, want %v", i, g.TerminalReward, wantReward)
			}
			if g.VerifyMs < 0 || math.IsNaN(g.VerifyMs) || math.IsInf(g.VerifyMs, 0) || g.VerifyMs > 1000 {
				t.Errorf("row %d: verify_ms %v", i, g.VerifyMs)
			}
		}
		// The output survives the wire format of its kind.
		b, err := schemas.Encode(out)
		if err != nil {
			t.Fatal(err)
		}
		dec, err := schemas.Decode(schemas.KindVerified, b, mem)
		if err != nil {
			t.Fatalf("output does not decode: %v", err)
		}
		dec.Release()
		// It matches the simple construction, verify_ms aside.
		ref := rebuild(t, p, in, mem)
		for i := range int(ref.NumCols()) - 1 {
			if !array.Equal(ref.Column(i), out.Column(i)) {
				t.Errorf("column %s differs from NewVerifiedBatch's", ref.ColumnName(i))
			}
		}
		ref.Release()
		out.Release()
	}
}

// rebuild is the simple construction of the verifier's output: read the
// rows, judge them, build a new batch with schemas.NewVerifiedBatch. The
// processor retains the input columns instead (BenchmarkVerifier compares
// the two); the outputs must agree.
func rebuild(t testing.TB, p *Processor, in arrow.RecordBatch, mem memory.Allocator) arrow.RecordBatch {
	rows, err := schemas.ReadRollouts(in)
	if err != nil {
		t.Fatal(err)
	}
	vs := make([]schemas.Verified, len(rows))
	for i := range rows {
		v, err := p.Judge(rows[i].Task, rows[i].Completion, rows[i].ReferenceAnswer)
		if err != nil {
			t.Fatal(err)
		}
		vs[i] = schemas.Verified{Rollout: rows[i], ExtractedAnswer: v.Answer, Correct: v.Correct, TerminalReward: v.Reward}
	}
	return schemas.NewVerifiedBatch(mem, vs)
}

// TestJudgeBytes judges completions that are not UTF-8 (Decode refuses
// them on the wire, but a processor called in-process can see them): no
// panic, and the stored answer is valid UTF-8.
func TestJudgeBytes(t *testing.T) {
	p, err := New(Options{})
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		task, completion, ref, answer string
		correct                       bool
	}{
		{"dataset", "\xff\xfe garbage \x00 42", "42", "42", true},
		{"arith", "\xc3\x28\nA: 4\xff", "4", "4\ufffd", false},
		{"arith", "A: \xff", "\xff", "\ufffd", true},
		{"gsm8k", "#### \xe2\x88", "1", "\ufffd", false},
	} {
		v, err := p.Judge(tc.task, tc.completion, tc.ref)
		if err != nil {
			t.Fatal(err)
		}
		if v.Answer != tc.answer || v.Correct != tc.correct || !utf8.ValidString(v.Answer) {
			t.Errorf("Judge(%q, %q, %q) = %+v, want answer %q correct %v", tc.task, tc.completion, tc.ref, v, tc.answer, tc.correct)
		}
	}
}

func TestProcessEmptyBatch(t *testing.T) {
	mem := checked(t)
	in := schemas.NewRolloutBatch(mem, nil)
	defer in.Release()
	p, err := New(Options{Allocator: mem})
	if err != nil {
		t.Fatal(err)
	}
	outs, err := p.Process(context.Background(), in)
	if err != nil {
		t.Fatal(err)
	}
	if len(outs) != 1 || outs[0].NumRows() != 0 {
		t.Fatalf("outputs %v", outs)
	}
	outs[0].Release()
}

func TestUnknownTask(t *testing.T) {
	mem := checked(t)
	in := schemas.NewRolloutBatch(mem, []schemas.Rollout{
		rollout(0, "arith", "1", "A: 1", "eos"),
		rollout(1, "chess", "e4", "e4", "eos"),
	})
	defer in.Release()
	p, err := New(Options{Allocator: mem})
	if err != nil {
		t.Fatal(err)
	}
	outs, err := p.Process(context.Background(), in)
	if outs != nil {
		t.Fatalf("outputs %v for a refused batch", outs)
	}
	if !errors.Is(err, ErrUnknownTask) || !errors.Is(err, schemas.ErrInvalid) {
		t.Fatalf("err = %v, want ErrUnknownTask and schemas.ErrInvalid", err)
	}
	if c := stage.Classify(err); c != stage.ClassInvalid || !c.DeadLetters() {
		t.Fatalf("class %q", c)
	}
	if !strings.Contains(err.Error(), `"chess"`) || !strings.Contains(err.Error(), "row 1") {
		t.Errorf("error does not name the task and row: %v", err)
	}
	if _, err := p.Judge("chess", "e4", "e4"); !errors.Is(err, ErrUnknownTask) {
		t.Errorf("Judge: %v", err)
	}
}

// TestCustomExtractor adds a task to the default registry.
func TestCustomExtractor(t *testing.T) {
	ex := DefaultExtractors()
	ex["yesno"] = func(c string) string {
		if i := strings.LastIndex(c, "Answer:"); i >= 0 {
			return c[i+len("Answer:"):]
		}
		return ""
	}
	ex["arith2"] = ex["arith"]
	p, err := New(Options{Extractors: ex})
	if err != nil {
		t.Fatal(err)
	}
	delete(ex, "yesno") // New copied the map
	for _, tc := range []struct {
		task, completion, ref string
		correct               bool
	}{
		{"yesno", "hmm. Answer: YES", "yes", true},
		{"yesno", "hmm. Answer: no", "yes", false},
		{"arith2", "A: 3", "3", true},
		{"gsm8k", "#### 3", "3", true},
	} {
		v, err := p.Judge(tc.task, tc.completion, tc.ref)
		if err != nil || v.Correct != tc.correct {
			t.Errorf("Judge(%q, %q, %q) = %+v, %v, want correct %v", tc.task, tc.completion, tc.ref, v, err, tc.correct)
		}
	}
}

func TestNotRollouts(t *testing.T) {
	mem := checked(t)
	p, err := New(Options{Allocator: mem})
	if err != nil {
		t.Fatal(err)
	}
	prompts := schemas.NewPromptBatch(mem, []schemas.Prompt{{RunID: "r", PromptID: "p", Task: "arith"}})
	defer prompts.Release()
	verified := schemas.NewVerifiedBatch(mem, []schemas.Verified{{Rollout: rollout(0, "arith", "1", "A: 1", "eos")}})
	defer verified.Release()
	// A batch that claims to be rollouts but has a prompt batch's columns.
	liar := array.NewRecordBatch(arrow.NewSchema(prompts.Schema().Fields(), metaRollout()), prompts.Columns(), prompts.NumRows())
	defer liar.Release()
	noMeta := array.NewRecordBatch(arrow.NewSchema(prompts.Schema().Fields(), nil), prompts.Columns(), prompts.NumRows())
	defer noMeta.Release()
	for name, in := range map[string]arrow.RecordBatch{"prompt": prompts, "verified": verified, "short": liar, "no metadata": noMeta} {
		t.Run(name, func(t *testing.T) {
			outs, err := p.Process(context.Background(), in)
			if outs != nil || !errors.Is(err, schemas.ErrInvalid) || stage.Classify(err) != stage.ClassInvalid {
				t.Fatalf("Process = %v, %v; want an invalid error", outs, err)
			}
		})
	}
}

func metaRollout() *arrow.Metadata {
	md := schemas.MustSchema(schemas.KindRollout).Metadata()
	return &md
}

func TestOptionsValidate(t *testing.T) {
	for _, tc := range []struct {
		name string
		o    Options
		ok   bool
	}{
		{"zero", Options{}, true},
		{"negative wrong", Options{CorrectReward: 0, WrongReward: -1}, true},
		{"custom", Options{CorrectReward: 2, WrongReward: 1}, true},
		{"equal", Options{CorrectReward: 1, WrongReward: 1}, false},
		{"inverted", Options{CorrectReward: -1, WrongReward: 0.5}, false},
		{"nan", Options{CorrectReward: float32(math.NaN())}, false},
		{"inf", Options{CorrectReward: float32(math.Inf(1))}, false},
		{"empty registry", Options{Extractors: map[string]Extractor{}}, false},
		{"nil extractor", Options{Extractors: map[string]Extractor{"arith": nil}}, false},
		{"empty name", Options{Extractors: map[string]Extractor{" ": ExtractArith}}, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			err := tc.o.Validate()
			if (err == nil) != tc.ok {
				t.Fatalf("Validate = %v, want ok %v", err, tc.ok)
			}
			if err != nil && !errors.Is(err, ErrOptions) {
				t.Errorf("error does not wrap ErrOptions: %v", err)
			}
			if _, nerr := New(tc.o); (nerr == nil) != tc.ok {
				t.Errorf("New = %v, want ok %v", nerr, tc.ok)
			}
		})
	}
}

// TestConcurrent runs Process from several goroutines on one processor
// (go test -race).
func TestConcurrent(t *testing.T) {
	mem := checked(t)
	in := arithBatch(mem, 64, 1)
	defer in.Release()
	p, err := New(Options{Allocator: mem})
	if err != nil {
		t.Fatal(err)
	}
	first, err := p.Process(context.Background(), in)
	if err != nil {
		t.Fatal(err)
	}
	defer first[0].Release()
	var wg sync.WaitGroup
	for range 8 {
		wg.Go(func() {
			for range 20 {
				outs, err := p.Process(context.Background(), in)
				if err != nil {
					t.Error(err)
					return
				}
				for i := range int(outs[0].NumCols()) - 1 {
					if !array.Equal(outs[0].Column(i), first[0].Column(i)) {
						t.Errorf("column %d differs between calls", i)
					}
				}
				outs[0].Release()
			}
		})
	}
	wg.Wait()
}
