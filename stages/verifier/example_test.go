package verifier_test

import (
	"context"
	"fmt"

	"github.com/wsgrpo/wsgrpo/schemas"
	"github.com/wsgrpo/wsgrpo/stages/verifier"
)

// Example_judge shows how the verifier judges completions: the task picks
// the extractor, the answer and the reference are normalised, and a
// correct answer earns the correct reward. Process does the same for
// every row of a rollout batch.
func Example_judge() {
	v, err := verifier.New(verifier.Options{}) // rewards 1 and 0, default tasks
	if err != nil {
		fmt.Println(err)
		return
	}
	for _, c := range []struct{ task, completion, reference string }{
		{"arith", "(17+25)*3-8\n= 42*3-8\nA: 118", "118"},
		{"arith", "(17+25)*3-8 = 42*3 = 126", "118"}, // cut off: no A: line
		{"gsm8k", "She pays 3.50 for two, so each costs\n#### $1.75", "7/4"},
		{"dataset", `The answer is $\boxed{\frac{1}{2}}$.`, "0.5"},
		{"dataset", "1,000 + 234 = **1,234**.", "1234"},
	} {
		j, _ := v.Judge(c.task, c.completion, c.reference)
		fmt.Printf("%-7s answer %-7q correct %-5v reward %v\n", c.task, j.Answer, j.Correct, j.Reward)
	}

	in := schemas.NewRolloutBatch(nil, []schemas.Rollout{{
		Prompt:     schemas.Prompt{RunID: "demo", PromptID: "p0", Task: "chess", ReferenceAnswer: "e4"},
		Completion: "A: e4",
	}})
	defer in.Release()
	_, err = v.Process(context.Background(), in)
	fmt.Println(err)

	// Output:
	// arith   answer "118"   correct true  reward 1
	// arith   answer ""      correct false reward 0
	// gsm8k   answer "1.75"  correct true  reward 1
	// dataset answer "0.5"   correct true  reward 1
	// dataset answer "1234"  correct true  reward 1
	// verifier: row 0: invalid payload: unknown task "chess" (known tasks: arith, dataset, gsm8k)
}
