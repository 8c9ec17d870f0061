package tasks

// Item is one task instance: a prompt to sample completions for and the
// answer a verifier compares the completion's final answer with.
type Item struct {
	// ID identifies the item within its source and seed; it is stable
	// across runs with the same source, split and seed.
	ID string
	// Task names the task family or dataset the item comes from.
	Task string
	// Prompt is the text the policy is conditioned on.
	Prompt string
	// ReferenceAnswer is the expected final answer, as text.
	ReferenceAnswer string
}
