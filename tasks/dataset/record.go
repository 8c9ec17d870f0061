package dataset

import (
	"bytes"
	"encoding/json"
	"fmt"
	"strings"
)

// GSM8KMarker separates a GSM8K-style answer's worked text from its final
// answer.
const GSM8KMarker = "####"

// Record is one good line of a dataset file.
type Record struct {
	// Line is the 1-based line number in the file (0 when the record was
	// decoded on its own by DecodeLine).
	Line int
	// ID is the line's "id" field, or empty when it has none.
	ID string
	// Prompt is the "prompt" field as written, or GSM8K's "question".
	Prompt string
	// Answer is the "answer" field as written (a number's JSON text).
	Answer string
	// Reference is the reference answer: ReferenceAnswer(Answer).
	Reference string
}

// ReferenceAnswer returns the final answer of an answer text: what follows
// the last GSM8KMarker, trimmed, when there is one; the whole text trimmed
// otherwise.
func ReferenceAnswer(answer string) string {
	if i := strings.LastIndex(answer, GSM8KMarker); i >= 0 {
		answer = answer[i+len(GSM8KMarker):]
	}
	return strings.TrimSpace(answer)
}

// DecodeLine decodes one dataset line (without its newline). Errors match
// ErrNotJSON, ErrPrompt, ErrAnswer or ErrID.
func DecodeLine(line []byte) (Record, error) {
	var fields map[string]json.RawMessage
	if err := json.Unmarshal(line, &fields); err != nil || fields == nil {
		if err == nil {
			err = fmt.Errorf("null")
		}
		return Record{}, fmt.Errorf("%w: %v", ErrNotJSON, err)
	}
	var r Record
	key, prompt, err := promptField(fields)
	if err != nil {
		return Record{}, err
	}
	if err := json.Unmarshal(prompt, &r.Prompt); err != nil || bytes.Equal(prompt, []byte("null")) {
		return Record{}, fmt.Errorf("%w: %q is not a string", ErrPrompt, key)
	}
	if strings.TrimSpace(r.Prompt) == "" {
		return Record{}, fmt.Errorf("%w: %q is blank", ErrPrompt, key)
	}
	answer, ok := fields["answer"]
	if !ok {
		return Record{}, fmt.Errorf("%w: no \"answer\" field", ErrAnswer)
	}
	a, err := answerText(answer)
	if err != nil {
		return Record{}, err
	}
	r.Answer, r.Reference = a, ReferenceAnswer(a)
	if r.Reference == "" {
		return Record{}, fmt.Errorf("%w: nothing after %q or blank", ErrAnswer, GSM8KMarker)
	}
	if id, ok := fields["id"]; ok {
		if err := json.Unmarshal(id, &r.ID); err != nil || bytes.Equal(id, []byte("null")) {
			return Record{}, fmt.Errorf("%w: \"id\" is not a string", ErrID)
		}
	}
	return r, nil
}

// promptField returns the prompt of a line and its key: "prompt", or
// "question" as GSM8K's files name it. A line with both, or neither, is
// an error wrapping ErrPrompt.
func promptField(fields map[string]json.RawMessage) (string, json.RawMessage, error) {
	prompt, hasPrompt := fields["prompt"]
	question, hasQuestion := fields["question"]
	switch {
	case hasPrompt && hasQuestion:
		return "", nil, fmt.Errorf("%w: both \"prompt\" and \"question\" fields; keep one", ErrPrompt)
	case hasQuestion:
		return "question", question, nil
	case hasPrompt:
		return "prompt", prompt, nil
	}
	return "", nil, fmt.Errorf("%w: no \"prompt\" (or GSM8K's \"question\") field", ErrPrompt)
}

// answerText returns the text of an answer field: a JSON string's value or
// a JSON number's literal text.
func answerText(raw json.RawMessage) (string, error) {
	var s string
	if err := json.Unmarshal(raw, &s); err == nil && !bytes.Equal(raw, []byte("null")) {
		return s, nil
	}
	var n json.Number
	if err := json.Unmarshal(raw, &n); err == nil && n != "" {
		return n.String(), nil
	}
	return "", fmt.Errorf("%w: \"answer\" is neither a string nor a number", ErrAnswer)
}
