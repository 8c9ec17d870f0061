package stage_test

import (
	"context"
	"errors"
	"fmt"

	"github.com/apache/arrow-go/v18/arrow"

	"github.com/wsgrpo/wsgrpo/schemas"
	"github.com/wsgrpo/wsgrpo/stages/stage"
)

// promptFilter is a tiny stage: prompt batches in, prompt batches out. It
// passes a batch on unchanged and refuses one holding an empty prompt: the
// same rows would fail on every delivery, so the error wraps
// schemas.ErrInvalid and the runner dead-letters the batch.
type promptFilter struct{}

// Process implements stage.Processor.
func (promptFilter) Process(_ context.Context, in arrow.RecordBatch) ([]arrow.RecordBatch, error) {
	rows, err := schemas.ReadPrompts(in)
	if err != nil {
		return nil, err // already wraps schemas.ErrInvalid
	}
	for i, r := range rows {
		if r.Prompt == "" {
			return nil, fmt.Errorf("prompt filter: row %d (%s) has an empty prompt: %w", i, r.PromptID, schemas.ErrInvalid)
		}
	}
	// The runner releases in after Process returns: an output that is
	// the input itself must be retained.
	in.Retain()
	return []arrow.RecordBatch{in}, nil
}

// Example_processor shows a stage as the runner sees it: a batch in,
// batches out, and an error whose class decides between retrying and the
// dead-letter stream. In a deployment the stage is wired into a
// pipeline.Runner (see cmd/wsgrpo's stage table); here Process is called
// directly.
func Example_processor() {
	var p stage.Processor = promptFilter{}
	ctx := context.Background()

	good := schemas.NewPromptBatch(nil, []schemas.Prompt{{RunID: "demo", PromptID: "p0", Task: "arith", Prompt: "(17+25)*3-8"}})
	defer good.Release()
	outs, err := p.Process(ctx, good)
	if err != nil {
		fmt.Println("unexpected:", err)
		return
	}
	for _, o := range outs {
		kind, _ := schemas.KindOf(o)
		fmt.Printf("out: %d %s row(s)\n", o.NumRows(), kind)
		o.Release()
	}

	bad := schemas.NewPromptBatch(nil, []schemas.Prompt{{RunID: "demo", PromptID: "p1", Task: "arith"}})
	defer bad.Release()
	_, err = p.Process(ctx, bad)
	fmt.Println("error class:", stage.Classify(err), "dead letter:", stage.Classify(err).DeadLetters())

	// A dependency that is down asks the runner to hold the batch and
	// retry it in place; any other error is retried up to MaxDeliver.
	down := fmt.Errorf("scorer: connection refused: %w", stage.ErrUnavailable)
	fmt.Println("error class:", stage.Classify(down))
	fmt.Println("error class:", stage.Classify(errors.New("model busy")))

	// Output:
	// out: 1 prompt row(s)
	// error class: invalid dead letter: true
	// error class: unavailable
	// error class: transient
}
