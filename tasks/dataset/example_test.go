package dataset_test

import (
	"fmt"
	"strings"

	"github.com/wsgrpo/wsgrpo/tasks"
	"github.com/wsgrpo/wsgrpo/tasks/dataset"
)

// Example_usage loads a small JSONL dataset with a bad and a blank line,
// reports what was skipped, and uses the good records as a tasks.Source.
func Example_usage() {
	jsonl := `{"id":"q1","prompt":"Ann has 2 pens and buys 3. How many now?","answer":"2+3=5\n#### 5"}
{"prompt":"What is 6*7?","answer":42}

{"prompt":"no answer here"}
`
	res, err := dataset.Read(strings.NewReader(jsonl), dataset.Options{})
	if err != nil {
		fmt.Println(err)
		return
	}
	fmt.Printf("%d lines: %d good, %d blank, %d bad\n", res.Lines, len(res.Records), res.Blank, len(res.Bad))
	for _, b := range res.Bad {
		fmt.Println(b)
	}

	var src tasks.Source
	src, err = dataset.New(dataset.Config{Name: "toy", Split: tasks.Test}, res.Records)
	if err != nil {
		fmt.Println(err)
		return
	}
	for it := range src.Items(tasks.Test, 1) {
		fmt.Printf("%s %s: %q -> %s\n", it.Task, it.ID, it.Prompt, it.ReferenceAnswer)
	}
	// Output:
	// 4 lines: 2 good, 1 blank, 1 bad
	// line 4: dataset: missing or empty answer: no "answer" field
	// toy q1: "Ann has 2 pens and buys 3. How many now?" -> 5
	// toy toy-2: "What is 6*7?" -> 42
}
