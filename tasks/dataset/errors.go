package dataset

import "errors"

// Errors returned by this package; test with errors.Is.
var (
	// ErrNotJSON means a line is not a single JSON object.
	ErrNotJSON = errors.New("dataset: not a JSON object")
	// ErrPrompt means a line's prompt is missing, empty or not a string.
	ErrPrompt = errors.New("dataset: missing or empty prompt")
	// ErrAnswer means a line's answer is missing, empty (also after a
	// GSM8K "####"), or neither a string nor a number.
	ErrAnswer = errors.New("dataset: missing or empty answer")
	// ErrID means a line's id is not a string, or repeats an earlier id.
	ErrID = errors.New("dataset: bad id")
	// ErrLineTooLong means a line is longer than the reader's limit.
	ErrLineTooLong = errors.New("dataset: line too long")
	// ErrConfig means a dataset Config is out of range or inconsistent.
	ErrConfig = errors.New("dataset: invalid config")
)
