package arith_test

import (
	"fmt"

	"github.com/wsgrpo/wsgrpo/tasks"
	"github.com/wsgrpo/wsgrpo/tasks/arith"
)

// Example_usage shows the arith task: a problem of the test split as a task item,
// its minimal trace, and the evaluator.
func Example_usage() {
	task, err := arith.New(arith.DefaultConfig())
	if err != nil {
		fmt.Println(err)
		return
	}
	for _, it := range tasks.Take(task.Items(tasks.Test, 1), 2) {
		fmt.Printf("%s: %s = %s\n", it.ID, it.Prompt, it.ReferenceAnswer)
	}

	e, err := arith.Parse("(41*2)+23")
	if err != nil {
		fmt.Println(err)
		return
	}
	fmt.Println(arith.MinimalTrace(e, false))

	// Pretraining examples: a problem with a trace that may overthink.
	for ex := range task.Examples(tasks.Train, 1) {
		fmt.Printf("%s overthinks=%v slipped=%v minimal=%d chars, trace=%d chars\n",
			ex.Text, ex.Trace.Overthinks, ex.Trace.Slipped, ex.Trace.MinimalLen, len(ex.Trace.Text))
		break
	}

	_, err = arith.Eval("3+-4")
	fmt.Println(err)
	// Output:
	// arith-test-1-0: (51+6)*63-51 = 3540
	// arith-test-1-1: 23+26+75-22 = 102
	// 41*2=82
	// 82+23=105
	// A:105
	// 50-32-7-9 overthinks=false slipped=false minimal=27 chars, trace=27 chars
	// arith: syntax error at offset 2 of "3+-4": unexpected '-' where an operand was expected
}
