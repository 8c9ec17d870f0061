package dataset

import (
	"fmt"
	"iter"
	"math/rand/v2"

	"github.com/wsgrpo/wsgrpo/tasks"
)

// streamShuffle is the PCG stream of the item order.
const streamShuffle uint64 = 0x6461746173657473 // "datasets"

// Config sets up a Dataset.
type Config struct {
	// Name is the task name the items carry, e.g. "gsm8k"; required.
	Name string
	// Split, when set, puts every record in that split (a file that is
	// all test items, say). When empty, each record's split is
	// tasks.SplitOf(prompt, TestShare).
	Split tasks.Split
	// TestShare is the test share of the hash split; in [0, 1], used only
	// when Split is empty.
	TestShare float64
}

// Validate reports a missing name, an unknown split or a test share out
// of range, with an error matching ErrConfig.
func (c Config) Validate() error {
	switch {
	case c.Name == "":
		return fmt.Errorf("%w: empty Name", ErrConfig)
	case c.Split != "" && !c.Split.Valid():
		return fmt.Errorf("%w: Split %q, want empty, %q or %q", ErrConfig, c.Split, tasks.Train, tasks.Test)
	case c.Split == "" && !(c.TestShare >= 0 && c.TestShare <= 1):
		return fmt.Errorf("%w: TestShare %v, want in [0, 1]", ErrConfig, c.TestShare)
	}
	return nil
}

// Dataset is a fixed set of items split into train and test; it satisfies
// tasks.Source and is safe for concurrent use.
type Dataset struct {
	name  string
	items map[tasks.Split][]tasks.Item
}

// New returns the dataset of records under cfg. An item's ID is its
// record's ID, or "<name>-<line>" when the record has none.
func New(cfg Config, records []Record) (*Dataset, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	d := &Dataset{name: cfg.Name, items: map[tasks.Split][]tasks.Item{}}
	for _, r := range records {
		split := cfg.Split
		if split == "" {
			split = tasks.SplitOf(r.Prompt, cfg.TestShare)
		}
		id := r.ID
		if id == "" {
			id = fmt.Sprintf("%s-%d", cfg.Name, r.Line)
		}
		d.items[split] = append(d.items[split], tasks.Item{ID: id, Task: cfg.Name, Prompt: r.Prompt, ReferenceAnswer: r.Reference})
	}
	return d, nil
}

// Name returns the task name of the dataset's items.
func (d *Dataset) Name() string { return d.name }

// Len returns the number of items of split.
func (d *Dataset) Len(split tasks.Split) int { return len(d.items[split]) }

// Items yields every item of split once, in an order shuffled by seed, then
// ends. An invalid split yields nothing.
func (d *Dataset) Items(split tasks.Split, seed uint64) iter.Seq[tasks.Item] {
	return func(yield func(tasks.Item) bool) {
		items := d.items[split]
		order := rand.New(rand.NewPCG(seed, streamShuffle)).Perm(len(items))
		for _, i := range order {
			if !yield(items[i]) {
				return
			}
		}
	}
}
